import json

from faderlib.demo import run_demo, summary_table


def test_quick_demo_writes_every_output_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    summary = run_demo(out, quick=True, progress=False)
    for name in ("metrics.json", "loss_curves.png", "interpolation_Smiling.png", "interpolation_Eyeglasses.png",
                 "interpolation_Male.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("reconstruction", "latent_discriminator", "swap_accuracy", "classifier_accuracy",
                "counterfactual_psnr", "counterfactual_gain", "latent_probe", "probe_floor", "ablation_lambda0", "timings_s",
                "checks"):
        assert key in metrics, key
    assert metrics["ablation_lambda0"]["swap_accuracy"].keys() == metrics["swap_accuracy"].keys()
    assert set(metrics["checks"]) == {"min_swap_accuracy", "discriminator_off_blind",
                                      "ablation_mean_swap_lower_by", "minutes", "reconstruction_psnr",
                                      "counterfactual_gain", "latent_probe_ablation_higher_by",
                                      "latent_probe_mean"}
    for key in ("counterfactual_gain", "counterfactual_gain_masked", "latent_probe", "probe_floor"):
        assert set(metrics[key]) == set(metrics["ablation_lambda0"][key]) == {"Smiling", "Eyeglasses", "Male"}, key
    printed = capsys.readouterr().out
    assert "Eyeglasses" in printed and "target" in printed and "floor" in printed
    # the timings come with the machine that made them
    assert metrics["machine"] and f"machine: {metrics['machine']}" in printed and "cores" in metrics["machine"]

    # a second run finds everything done: no training again, same weights
    before = (out / "fader" / "checkpoints" / "last.pt").read_bytes()
    again = run_demo(out, quick=True, progress=False)
    assert (out / "fader" / "checkpoints" / "last.pt").read_bytes() == before
    assert again["timings_s"]["trainings (side by side)"] < summary["timings_s"]["trainings (side by side)"] + 5
    assert summary_table(again).count("\n") > 5
    assert "other_adversary" not in again and not (out / "other_adversary").exists()
    # the cores go to the jobs with steps left: the two trained runs have none, a new one has all
    from types import SimpleNamespace

    from faderlib.demo import _steps_left

    steps = SimpleNamespace(steps=summary["settings"]["train"]["steps"])
    assert not _steps_left(steps, out / "fader") and not _steps_left(steps, out / "ablation_lambda0")
    assert _steps_left(steps, out / "other_adversary") and _steps_left(SimpleNamespace(steps=10**6), out / "fader")

    # make demo-adversary: the same, and the recipe trained with the other adversary beside
    from faderlib.course import OTHER_ADVERSARY

    capsys.readouterr()
    third = run_demo(out, quick=True, progress=False, other_adversary=True)
    assert (out / "fader" / "checkpoints" / "last.pt").read_bytes() == before  # reused, not trained again
    record = json.loads((out / "other_adversary" / "config.json").read_text())["train"]
    fader = json.loads((out / "fader" / "config.json").read_text())["train"]
    assert {k for k in record if record[k] != fader[k]} == set(OTHER_ADVERSARY)
    assert all(record[k] == v for k, v in OTHER_ADVERSARY.items())
    other = third["other_adversary"]
    assert other["changes"] == OTHER_ADVERSARY and set(other["latent_probe"]) == {"Smiling", "Eyeglasses", "Male"}
    assert json.loads((out / "metrics.json").read_text())["other_adversary"]["reconstruction"] == other["reconstruction"]
    printed = capsys.readouterr().out
    changes = ", ".join(f"{k} {v}" for k, v in OTHER_ADVERSARY.items())
    assert f"the other adversary ({changes}" in printed and "other_adversary/" in printed


def test_side_by_side_training_reports_a_failed_job_and_stops_the_other(synthetic_dir, tmp_path):
    import pytest

    from faderlib.demo import train_side_by_side
    from faderlib.train import TrainConfig

    def config(data_dir, steps):
        return TrainConfig(data_dir=str(data_dir), attributes=("Smiling",), image_size=32, steps=steps, batch_size=4,
                           checkpoint_every=10, eval_every=10**6, device="cpu")

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")  # a folder the user made: training must refuse it
    jobs = {"long": config(synthetic_dir, 100_000), "taken": config(synthetic_dir, 5)}
    with pytest.raises(Exception, match="not empty"):
        train_side_by_side(jobs, tmp_path, progress=False)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    last = tmp_path / "long" / "checkpoints" / "last.pt"
    if last.exists():  # stopped with the failed job, long before its 100,000 steps
        import torch

        assert torch.load(last, weights_only=True)["step"] < 100_000


def test_side_by_side_training_says_which_job_died_without_a_word_instead_of_waiting_for_it(synthetic_dir, tmp_path):
    """A job killed from outside (out of memory, a kill from a shared lab's admin) raises at once, naming
    it, and the other job is stopped: a multiprocessing.Pool would wait for the dead one forever."""
    import multiprocessing
    import os
    import signal
    import threading
    import time

    import pytest

    from faderlib.demo import train_side_by_side
    from faderlib.errors import TrainingError
    from faderlib.train import TrainConfig

    def config(steps):
        return TrainConfig(data_dir=str(synthetic_dir), attributes=("Smiling",), image_size=32, steps=steps, batch_size=4,
                           checkpoint_every=10**6, eval_every=10**6, device="cpu")

    def kill_first_job():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            children = multiprocessing.active_children()
            if len(children) >= 2:
                time.sleep(1)
                os.kill(children[0].pid, signal.SIGKILL)
                return
            time.sleep(0.1)

    threading.Thread(target=kill_first_job, daemon=True).start()
    t = time.monotonic()
    with pytest.raises(TrainingError, match="stopped without a word.*exit code -9"):
        train_side_by_side({"a": config(100_000), "b": config(100_000)}, tmp_path, progress=False)
    assert time.monotonic() - t < 120
    assert multiprocessing.active_children() == []   # the other job was stopped too
