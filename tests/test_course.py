"""The helpers of the course notebooks (faderlib.course), on tiny data."""

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from faderlib import course
from faderlib.cache import prepared
from faderlib.celeba import DataError, read_celeba
from faderlib.config import ModelConfig
from faderlib.data import FaderDataset
from faderlib.losses import adversarial_loss, discriminator_loss, reconstruction_loss
from faderlib.models import AutoEncoder, LatentDiscriminator
from faderlib.runs import load_run
from faderlib.summary import parameter_counts
from faderlib.synth import is_synthetic

ATTRS = ("Smiling", "Eyeglasses", "Male")


def tiny_config(data_dir, **kw):
    values = dict(image_size=32, steps=6, batch_size=4, device="cpu", eval_images=16)
    values.update(kw)
    return course.train_config(data_dir, ATTRS, **values)


@pytest.fixture(scope="module")
def trained(synthetic_dir, tmp_path_factory):
    """A course folder with a tiny Fader run and its classifier (seconds, not quality)."""
    root = tmp_path_factory.mktemp("course") / "runs"
    runs = course.ensure_run(root, synthetic_dir, ATTRS, image_size=32, steps=6, batch_size=4, device="cpu",
                             progress=False)
    course.ensure_classifier(runs, steps=6, progress=False)
    return runs


@pytest.fixture(scope="module")
def celeba_dir(tmp_path_factory):
    from celeba_fixture import write_celeba_fixture

    return write_celeba_fixture(tmp_path_factory.mktemp("celeba") / "celeba", n=40, layout="kaggle")


# ------------------------------------------------------------------------------------- environment
def test_environment_check_reports_ok_fail_and_the_device():
    report = course.environment_check()
    assert report.ok
    text = str(report)
    assert text.count("[  OK]") == len(course.REQUIREMENTS) + 1  # python and every package
    assert "torch" in text and "device: cpu" in text  # conftest hides any GPU
    import sys

    assert sys.executable in text  # the kernel's interpreter: the first thing to check when imports fail

    bad = course.environment_check([("json", "no-such-distribution-xyz", "1.0"), ("numpy", "numpy", "999.0")])
    assert not bad.ok
    lines = str(bad).splitlines()
    assert lines[1].startswith("[FAIL] no-such-distribution-xyz is not installed") and "pip install" in lines[1]
    assert lines[2].startswith("[FAIL] numpy") and ">=999.0" in lines[2]
    assert "make install" in str(bad)


# ------------------------------------------------------------------------------------- data
def test_ensure_data_uses_a_synthetic_set_as_it_is(synthetic_dir):
    assert course.ensure_data(synthetic_dir) == synthetic_dir.resolve()


def test_ensure_data_draws_the_default_set_once(tmp_path, monkeypatch, capsys):
    import faderlib.celeba

    monkeypatch.delenv("FADER_DATA", raising=False)
    monkeypatch.setattr(faderlib.celeba, "default_data_dir", lambda: tmp_path / "data" / "synthetic")
    path = course.ensure_data(None, n_faces=12, progress=False)
    assert path == (tmp_path / "data" / "synthetic").resolve() and is_synthetic(path)
    assert "drawing 12 synthetic faces" in capsys.readouterr().out
    assert course.ensure_data(None, n_faces=12, progress=False) == path
    assert capsys.readouterr().out == ""


def test_ensure_data_accepts_celeba_and_explains_a_missing_folder(celeba_dir, tmp_path):
    assert course.ensure_data(celeba_dir) == celeba_dir.resolve()
    with pytest.raises(DataError, match="How to get CelebA"):
        course.ensure_data(tmp_path / "nothing_here")


def test_sample_grid_shows_each_attribute_with_and_without(synthetic_dir):
    data = prepared(synthetic_dir, 32, progress=False)
    fig = course.sample_grid(data, ATTRS, n=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * len(ATTRS)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[2].startswith("with Eyeglasses") and titles[3].startswith("without Eyeglasses")
    # a class with no face in the split says so instead of failing
    data.attributes["Smiling"] = 0
    fig = course.sample_grid(data, ["Smiling"], n=3)
    assert any(t.get_text() == "none in this split" for t in fig.axes[0].texts)
    with pytest.raises(DataError, match="Did you mean 'Smiling'"):
        course.sample_grid(data, ["Smilling"])


def test_crop_figure_frames_the_reference_rows(synthetic_dir):
    celeba = read_celeba(synthetic_dir)
    fig = course.crop_figure(celeba.image_path(celeba.filenames[0]), sizes=(64, 32))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["original 178x218", "rows 20..197: 178x178", "resized to 64x64", "resized to 32x32"]
    (frame,) = fig.axes[0].patches
    assert frame.get_y() == pytest.approx(19.5) and frame.get_height() == 178
    assert fig.axes[2].images[0].get_array().shape == (64, 64, 3)


def test_toggle_figure_renders_counterfactuals_or_explains(synthetic_dir, celeba_dir, capsys):
    fig = course.toggle_figure(synthetic_dir, 0, ATTRS, size=32)
    assert len(fig.axes) == 1 + len(ATTRS)
    assert fig.axes[1].get_title().startswith("Smiling ")
    assert course.toggle_figure(celeba_dir, 0, ATTRS) is None
    assert "no ground truth" in capsys.readouterr().out


def test_imbalance_table_and_rarest_attribute(synthetic_dir):
    celeba = read_celeba(synthetic_dir)
    table = course.imbalance_table(celeba, ATTRS)
    assert list(table.index)[0] == "Eyeglasses"  # rarest first
    np.testing.assert_allclose(table['accuracy of always "no"'], 1 - table["positives"])
    assert (table["majority accuracy"] >= 0.5).all() and (table["balanced accuracy of a constant"] == 0.5).all()
    train = celeba.attributes[celeba.split.to_numpy() == 0]
    assert table.loc["Male", "positives"] == pytest.approx(train["Male"].mean())
    assert course.rarest_attribute(celeba, ATTRS) == "Eyeglasses"
    assert course.rarest_attribute(celeba, ["Smiling", "Male"]) in ("Smiling", "Male")


def test_sampling_table_shows_what_balancing_does(synthetic_dir):
    train = FaderDataset(prepared(synthetic_dir, 32, progress=False), "train", ATTRS)
    rate = float(train.y[:, 1].float().mean())
    table = course.sampling_table(train, "Eyeglasses", batches=400)
    uniform, balanced = table.iloc[0], table.iloc[1]
    assert uniform["share of Eyeglasses"] == pytest.approx(rate, abs=0.02)
    assert balanced["share of Eyeglasses"] == pytest.approx(0.5, abs=0.03)
    assert uniform["draws of each positive image per epoch"] == pytest.approx(1.0, rel=0.15)
    assert balanced["draws of each positive image per epoch"] == pytest.approx(0.5 / rate, rel=0.15)


# ------------------------------------------------------------------------------------- networks, losses
def test_decoder_inputs_match_the_built_decoder():
    config = ModelConfig.from_preset("official", 64, list(ATTRS), init_fm=16)
    table = course.decoder_inputs(config)
    layers = [m[0] for m in AutoEncoder(config).decoder.layers]
    assert list(table["input channels"]) == [m.in_channels for m in layers]
    assert list(table["output channels"]) == [m.out_channels for m in layers]
    assert (table["attribute code"] == 6).all()
    assert list(table["features"] + table["attribute code"]) == list(table["input channels"])
    assert table["input side"].iloc[0] == "4x4" and table["output side"].iloc[-1] == "64x64"


def test_gradient_table_says_which_network_each_loss_reaches():
    torch.manual_seed(0)
    config = ModelConfig.from_preset("official", 32, ["Smiling", "Male"], init_fm=8)
    ae, dis = AutoEncoder(config), LatentDiscriminator(config)
    x, y = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([[0, 1], [1, 0], [1, 1], [0, 0]])
    z, x_hat = ae(x, y)
    nets = {"E": ae.encoder, "D": ae.decoder, "P": dis}
    reached = lambda t: dict(t["reached by the gradient"])  # noqa: E731
    n = {k: len(list(m.parameters())) for k, m in nets.items()}

    assert reached(course.gradient_table(reconstruction_loss(x_hat, x), nets)) == {"E": n["E"], "D": n["D"], "P": 0}
    assert reached(course.gradient_table(adversarial_loss(dis(z), y, config), nets)) == {"E": n["E"], "D": 0,
                                                                                         "P": n["P"]}
    table = course.gradient_table(discriminator_loss(dis(z.detach()), y, config), nets)
    assert reached(table) == {"E": 0, "D": 0, "P": n["P"]} and table.loc["P", "gradient norm"] > 0
    # nothing is left behind for an optimiser step
    assert all(p.grad is None for m in nets.values() for p in m.parameters())


def test_plot_lambda_schedule_and_memory_estimate():
    fig = course.plot_lambda_schedule(0.01, 1000, 3000)
    assert len(fig.axes) == 2
    paper, ours = (ax.lines[0].get_ydata() for ax in fig.axes)
    assert paper[0] == 0 and max(paper) == pytest.approx(1e-4) and max(ours) == pytest.approx(0.01)

    config = ModelConfig.from_preset("official", 256, ["Male"])
    table = course.memory_estimate(config, batch_size=32)
    counts = parameter_counts(config)
    params = counts["autoencoder"] + counts["latent_discriminator"]
    assert int(table.iloc[0]["parameters"]) == params == 14_000_512 + 8_655_362
    assert table.iloc[0]["weights, gradients, Adam (MiB)"] == pytest.approx(16 * params / 2**20, abs=0.1)
    doubled = course.memory_estimate(config, batch_size=64).iloc[0]["activations, batch 64 (MiB)"]
    assert doubled == pytest.approx(2 * table.iloc[0]["activations, batch 32 (MiB)"], abs=0.2)


# ------------------------------------------------------------------------------------- configuration, runs
def test_train_config_is_the_demo_recipe(synthetic_dir, celeba_dir):
    from faderlib.demo import DEMO

    config = course.train_config(synthetic_dir, ATTRS, 64, steps=None, device="cpu")
    assert config.steps == DEMO["steps"] == course.default_steps("cpu")
    assert {"model", "lambda_e", "lambda_ramp"} <= set(course.COURSE_RECIPE)
    for key, value in course.COURSE_RECIPE.items():
        assert getattr(config, key) == DEMO[key], key
    assert config.model_config() == course.model_config(64, ATTRS)
    assert config.balance == "Eyeglasses" == DEMO["balance"]  # the rare attribute is balanced automatically
    steps = DEMO["steps"]
    assert (config.checkpoint_every, config.eval_every, config.log_every) == \
        (max(steps // 4, 100), max(steps // 6, 50), min(25, steps // 10))
    assert course.train_config(synthetic_dir, ["Smiling", "Male"], steps=10).balance is None
    assert course.train_config(synthetic_dir, ATTRS, steps=10, balance=None).balance is None
    small = course.train_config(celeba_dir, ["Smiling"], 32, steps=12)
    assert (small.checkpoint_every, small.eval_every, small.log_every) == (100, 50, 1)


def test_course_layout_for_a_course_folder_and_a_run_folder(trained, tmp_path):
    runs = course.course_runs(tmp_path / "course")
    assert (runs.fader.name, runs.classifier.name, runs.ablation.name, runs.unbalanced.name) == \
        ("fader", "classifier", "ablation_lambda0", "unbalanced")
    bare = course.course_runs(trained.fader)  # a run made by `fader train --out`
    assert bare.fader == trained.fader and bare.classifier == trained.fader.with_name("fader_classifier")


def test_find_run_prefers_run_dir_then_the_demo(trained, tmp_path):
    assert course.find_run(tmp_path / "empty") is None
    demo_root = trained.fader.parent
    found = course.find_run(tmp_path / "mine", demo_dir=demo_root)
    assert found.fader == trained.fader and "demo" in found.source
    assert found.classifier == trained.classifier  # the demo's classifier exists: reuse it
    assert found.unbalanced == tmp_path / "mine" / "unbalanced"  # new runs go to RUN_DIR, not the demo
    assert course.find_run(demo_root, demo_dir=tmp_path / "elsewhere").fader == trained.fader


def test_ensure_run_trains_once_then_reuses(trained, capsys):
    state = torch.load(trained.fader / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 6 and state["train_config"]["balance"] == "Eyeglasses"
    before = (trained.fader / "checkpoints" / "last.pt").stat().st_mtime_ns
    again = course.ensure_run(trained.fader.parent, None, ATTRS, 32, 6, 4, "cpu", progress=False)
    assert again.fader == trained.fader and "trained in" in capsys.readouterr().out
    assert (trained.fader / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_ensure_classifier_reuses_and_refuses_a_mismatch(trained, tmp_path):
    assert course.ensure_classifier(trained) == trained.classifier
    record = json.loads((trained.classifier / "config.json").read_text())
    assert record["model"]["image_size"] == 32 and record["train"]["steps"] == 6
    other = course.CourseRuns(trained.fader, tmp_path / "clf", tmp_path / "a", tmp_path / "b", "test")
    (tmp_path / "clf").mkdir()
    (tmp_path / "clf" / "classifier.pt").write_bytes(b"")
    (tmp_path / "clf" / "config.json").write_text(json.dumps({"model": {"image_size": 64, "attributes": ["Male"]}}))
    with pytest.raises(FileExistsError, match="delete"):
        course.ensure_classifier(other)


def test_train_variant_changes_only_what_is_asked(trained, tmp_path):
    out = course.train_variant(trained.fader, tmp_path / "lambda0", progress=False, lambda_e=0.0)
    a = json.loads((trained.fader / "config.json").read_text())["train"]
    b = json.loads((out / "config.json").read_text())["train"]
    assert b["lambda_e"] == 0.0
    assert {k for k in a if a[k] != b[k]} <= {"lambda_e", "data_dir"}
    assert load_run(out).step == a["steps"]
    mtime = (out / "checkpoints" / "last.pt").stat().st_mtime_ns
    course.train_variant(trained.fader, out, progress=False, lambda_e=0.0)  # done already: nothing to train
    assert (out / "checkpoints" / "last.pt").stat().st_mtime_ns == mtime


def test_speed_report_reads_the_log(trained):
    text = course.speed_report(trained.fader)
    assert "images/s" in text and "epoch of 50,000 images" in text


# ------------------------------------------------------------------------------------- results
RESULT = {
    "reconstruction": {"mse": 0.01, "psnr": 26.0},
    "latent_discriminator": {"Smiling": {"accuracy": 0.52, "majority_rate": 0.51, "balanced_accuracy": 0.5},
                             "Eyeglasses": {"accuracy": 0.93, "majority_rate": 0.935, "balanced_accuracy": 0.5}},
    "swap_accuracy": {"Smiling": {"0": 0.97, "1": 0.95}, "Eyeglasses": {"0": 0.99, "1": 0.7}},
    "classifier_accuracy": {"Smiling": 0.98, "Eyeglasses": 0.99},
    "counterfactual_psnr": {"Smiling": 24.0, "Eyeglasses": 22.0},
}


def test_swap_table_and_compare_results():
    table = course.swap_table(RESULT)
    assert table.loc["Eyeglasses", "add (0 -> 1)"] == 0.7 and table.loc["Eyeglasses", "remove (1 -> 0)"] == 0.99
    assert table.loc["Smiling", "classifier accuracy"] == 0.98
    worse = json.loads(json.dumps(RESULT))
    worse["swap_accuracy"]["Eyeglasses"]["1"] = 0.1
    both = course.compare_results({"fader": RESULT, "lambda 0": worse})
    assert list(both.columns) == ["fader", "lambda 0"]
    assert both.loc["Eyeglasses: swap 0 -> 1 (add)"].tolist() == [0.7, 0.1]
    assert both.loc["reconstruction PSNR (dB)", "fader"] == 26.0
    assert "Smiling: counterfactual PSNR (dB)" in both.index
    no_clf = {k: v for k, v in RESULT.items() if k in ("reconstruction", "latent_discriminator")}
    assert "Smiling: swap 0 -> 1 (add)" not in course.compare_results({"x": no_clf}).index


def test_side_by_side_titles_each_image():
    from PIL import Image

    fig = course.side_by_side({"a": Image.new("RGB", (10, 8)), "b": Image.new("RGB", (10, 8))})
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]


def test_counterfactual_figure_and_failures_on_a_trained_run(trained):
    run = load_run(trained.fader)
    fig = course.counterfactual_figure(run, "Smiling", n=2)
    assert len(fig.axes) == 8
    assert "dB from the truth" in fig.axes[1].get_title() and "dB from the truth" in fig.axes[2].get_title()
    assert fig.axes[3].get_title() == "truth: re-rendered"

    fig = course.swap_failures(run, trained.classifier, "Eyeglasses", target=1, n=3, max_images=20)
    title = fig._suptitle.get_text()
    assert title.startswith("Eyeglasses -> 1: ") and "edits not read as 1" in title
    failed, tried = (int(t) for t in title.split(": ")[1].split(" edits")[0].split(" of "))
    assert 0 <= failed <= tried <= 20
    assert len(fig.axes) == 2 * max(min(failed, 3), 1)


def test_counterfactual_figure_explains_photographs(celeba_dir, tmp_path, capsys):
    runs = course.ensure_run(tmp_path / "celeba_runs", celeba_dir, ["Smiling"], 32, 2, 4, "cpu", progress=False)
    assert course.counterfactual_figure(load_run(runs.fader), "Smiling") is None
    assert "photographs" in capsys.readouterr().out


def test_sample_photo_copies_an_original_file(trained, tmp_path):
    from PIL import Image

    run = load_run(trained.fader)
    path = course.sample_photo(run, tmp_path / "photos" / "me.jpg", index=1)
    with Image.open(path) as im:
        assert im.size == (178, 218)

