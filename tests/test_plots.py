"""Figures (faderlib.plots): the lambda_E schedule, images side by side, and the pictures of an
evaluation (edits against the truth, failure cases) on a tiny trained run."""

import pytest

from faderlib import course, plots
from faderlib.runs import load_run


def test_plot_lambda_schedule_shows_the_paper_and_the_run():
    fig = plots.plot_lambda_schedule(0.01, 1000, 3000)
    assert len(fig.axes) == 2
    paper, ours = (ax.lines[0].get_ydata() for ax in fig.axes)
    assert paper[0] == 0 and max(paper) == pytest.approx(1e-4) and max(ours) == pytest.approx(0.01)


def test_side_by_side_titles_each_image():
    from PIL import Image

    fig = plots.side_by_side({"a": Image.new("RGB", (10, 8)), "b": Image.new("RGB", (10, 8))})
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]


def test_counterfactual_figure_and_failures_on_a_trained_run(course_dir):
    run = load_run(course_dir.fader)
    fig = plots.counterfactual_figure(run, "Smiling", n=2)
    assert len(fig.axes) == 8
    assert "dB from the truth" in fig.axes[1].get_title() and "dB from the truth" in fig.axes[2].get_title()
    assert fig.axes[3].get_title() == "truth: re-rendered"

    fig = plots.failure_figure(run, course_dir.classifier, "Eyeglasses", target=1, n=3, max_images=20)
    title = fig._suptitle.get_text()
    assert title.startswith("Eyeglasses -> 1: ") and "edits not read as 1" in title
    failed, tried = (int(t) for t in title.split(": ")[1].split(" edits")[0].split(" of "))
    assert 0 <= failed <= tried <= 20
    assert len(fig.axes) == 2 * max(min(failed, 3), 1)


def test_counterfactual_figure_explains_photographs(celeba_dir, tmp_path, capsys):
    runs = course.ensure_run(tmp_path / "celeba_runs", celeba_dir, ["Smiling"], 32, 2, 4, "cpu", progress=False)
    assert plots.counterfactual_figure(load_run(runs.fader), "Smiling") is None
    assert "photographs" in capsys.readouterr().out


def test_the_training_plot_shows_the_probe_beside_the_discriminator_when_logged():
    import pandas as pd

    rows = [{"phase": "train", "step": s, "rec_loss": 0.1, "dis_loss": 0.7, "dis_accuracy": 0.6, "lambda_e": 0.01}
            for s in (5, 10)]
    rows += [{"phase": "valid", "step": 10, "rec_loss": 0.1, "dis_accuracy/Smiling": 0.5, "dis_accuracy/Male": 0.55}]
    fig = plots.plot_training(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes][2:] == ["discriminator accuracy", "lambda_E"]  # a log of before
    rows[-1].update({"probe/Smiling": 0.6, "probe/Male": 0.9})
    fig = plots.plot_training(pd.DataFrame(rows), {"Smiling": 0.52, "Male": 0.55})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[2:] == ["discriminator accuracy", "fresh probe on z (balanced acc.)", "lambda_E"]
    accuracy, probe = fig.axes[2], fig.axes[3]
    assert [t.get_text() for t in probe.get_legend().get_texts()] == ["0.5: blind (binary)", "Smiling", "Male"]
    points = {line.get_color(): list(line.get_ydata()) for line in probe.lines if line.get_marker() == "s"}
    colours = [line.get_color() for line in accuracy.lines if line.get_marker() == "o"]
    assert [points[c] for c in colours] == [[0.6], [0.9]]  # each attribute in its colour of the accuracy panel


def test_the_adversary_sweep_is_drawn_one_line_per_objective_seeds_averaged():
    import pytest

    from faderlib.plots import plot_adversaries

    def row(adversary, lam, dis, seed, psnr, probe):
        return {"adversary": adversary, "lambda_e": lam, "dis_steps": dis, "seed": seed, "psnr": psnr, "probe_mean": probe}

    rows = [row("flip", 0.0, 1, 0, 24.3, 0.93), row("flip", 0.02, 1, 0, 23.6, 0.94), row("flip", 0.02, 1, 1, 23.8, 0.92),
            row("uniform", 0.02, 1, 0, 23.1, 0.93), row("uniform", 0.1, 1, 0, 22.2, 0.90),
            row("uniform", 0.1, 4, 0, 21.0, 0.80), {**row("flip", 0.02, 1, 0, 23.5, 0.91), "dis_lr_scale": 4.0}]
    fig = plot_adversaries(rows, floor=0.62)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["uniform"].get_xdata()) == [21.0, 22.2, 23.1]        # by reconstruction
    assert list(lines["flip"].get_xdata()) == pytest.approx([23.7])         # the two seeds averaged
    assert list(lines["flip"].get_ydata()) == pytest.approx([0.93])
    assert list(lines["$\\lambda_E$ = 0 (ablation)"].get_xdata()) == [24.3]
    assert list(lines["flip, P's lr x4"].get_ydata()) == [0.91]               # its own line, not the flip's
    texts = [t.get_text() for t in ax.texts]
    assert "0.1 ×4" in texts and any("floor" in t for t in texts)
    rows[0]["probe_floor_mean"] = 0.6                                       # the rows' own floor by default
    assert any("floor" in t.get_text() for t in plot_adversaries(rows).axes[0].texts)
    assert not any("floor" in t.get_text() for t in plot_adversaries(rows[1:]).axes[0].texts)
    with pytest.raises(ValueError, match="sweep_adversary"):
        plot_adversaries([])
