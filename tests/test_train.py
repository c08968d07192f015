import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import faderlib.checkpoint as ckpt
import faderlib.train as train_module
from faderlib.cli import main
from faderlib.devices import pick_device
from faderlib.errors import CheckpointError, TrainingError
from faderlib.fastconv import uses_gemm
from faderlib.metrics_log import read_metrics
from faderlib.runs import FORMAT_VERSION
from faderlib.train import TrainConfig, Trainer


def tiny(data_dir, **kw):
    values = dict(data_dir=str(data_dir), attributes=("Male", "Smiling"), image_size=32, steps=40,
                  batch_size=8, lambda_e=0.05, lambda_ramp=10, checkpoint_every=10, eval_every=20,
                  eval_images=32, log_every=5, device="cpu")
    values.update(kw)
    return TrainConfig(**values)


def weights(trainer):
    return {**{"ae." + k: v for k, v in trainer.ae.state_dict().items()},
            **{"dis." + k: v for k, v in trainer.dis.state_dict().items()}}


def assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []


def test_run_directory_layout(synthetic_dir, tmp_path):
    trainer = Trainer(tiny(synthetic_dir), tmp_path / "run", progress=False)
    trainer.train()
    run = tmp_path / "run"
    assert (run / "config.json").exists()
    assert (run / "checkpoints" / "last.pt").exists() and (run / "checkpoints" / "best.pt").exists()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000020.png", "step_0000040.png"]
    m = read_metrics(run)
    train = m[m.phase == "train"]
    assert list(train.step) == list(range(5, 41, 5))
    for col in ("rec_loss", "dis_loss", "adv_loss", "lambda_e", "dis_accuracy", "images_per_s"):
        assert train[col].notna().all()
    assert set(m[m.phase == "valid"].step) == {20, 40}


def test_checkpoints_load_weights_only_and_hold_plain_data(synthetic_dir, tmp_path):
    Trainer(tiny(synthetic_dir, steps=10), tmp_path / "run", progress=False).train()
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 10
    assert state["model_config"]["attributes"] == ["Male", "Smiling"]

    def plain(obj):
        if isinstance(obj, dict):
            return all(isinstance(k, (str, int)) and plain(v) for k, v in obj.items())
        if isinstance(obj, (list, tuple)):
            return all(plain(v) for v in obj)
        return obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor))

    assert plain(state)


def test_resume_is_bitwise_identical_to_an_uninterrupted_run(synthetic_dir, tmp_path):
    straight = Trainer(tiny(synthetic_dir, balance="Smiling"), tmp_path / "a", progress=False)
    assert uses_gemm(straight.dis)  # on a CPU the small convolutions run as one matrix product (fastconv.py)
    straight.train()

    def kill_at_25(trainer, row):
        if row["step"] == 25:
            raise KeyboardInterrupt  # killed after logging step 25: the last checkpoint is at step 20

    first = Trainer(tiny(synthetic_dir, balance="Smiling"), tmp_path / "b", progress=False, callbacks=[kill_at_25])
    with pytest.raises(KeyboardInterrupt):
        first.train()
    del first
    resumed = Trainer(tiny(synthetic_dir, balance="Smiling"), tmp_path / "b", progress=False)
    assert resumed.step == 20
    resumed.train()
    assert_bitwise_equal(weights(straight), weights(resumed))
    a = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=True)
    assert_bitwise_equal(a["opt_autoencoder"]["state"][0], b["opt_autoencoder"]["state"][0])
    # the log holds each step once: rows after the checkpoint were dropped and run again
    steps = list(read_metrics(tmp_path / "b").query("phase == 'train'").step)
    assert steps == sorted(set(steps))


def test_a_killed_process_resumes_exactly(synthetic_dir, tmp_path):
    """Kill `fader train` with SIGKILL mid-run (maybe mid-write), rerun the same command."""
    cmd = [sys.executable, "-m", "faderlib", "train", "--data", str(synthetic_dir), "--attrs", "Male",
           "--size", "32", "--steps", "60", "--batch-size", "8", "--checkpoint-every", "3",
           "--eval-every", "30", "--lambda-e", "0.05", "--lambda-ramp", "10", "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd + ["--out", str(tmp_path / "straight")], check=True, env=env, capture_output=True)

    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(last, weights_only=True)["step"]  # the file left behind is whole
    subprocess.run(cmd + ["--out", str(tmp_path / "killed")], check=True, env=env, capture_output=True)
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert b["step"] == 60 and killed_at < 60
    assert_bitwise_equal(a["autoencoder"], b["autoencoder"])
    assert_bitwise_equal(a["latent_discriminator"], b["latent_discriminator"])


def test_a_failed_write_leaves_the_previous_checkpoint(synthetic_dir, tmp_path, monkeypatch):
    trainer = Trainer(tiny(synthetic_dir, steps=10), tmp_path / "run", progress=False)
    trainer.train()
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    before = last.read_bytes()

    def dying_save(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # the process is interrupted in the middle of the write

    monkeypatch.setattr(torch, "save", dying_save)
    trainer.step = 11
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint()
    assert last.read_bytes() == before
    assert torch.load(last, weights_only=True)["step"] == 10
    assert [p.name for p in last.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_another_configuration_is_refused_and_nothing_changes(synthetic_dir, tmp_path):
    Trainer(tiny(synthetic_dir, steps=10), tmp_path / "run", progress=False).train()
    snapshot = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(TrainingError, match=r"another configuration \(differs in: lambda_e\).*Nothing was changed"):
        Trainer(tiny(synthetic_dir, steps=10, lambda_e=0.5), tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match="differs in: model"):
        Trainer(tiny(synthetic_dir, steps=10, model={"init_fm": 8}), tmp_path / "run", progress=False)
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == snapshot
    # more steps is not another configuration: the run goes on
    more = Trainer(tiny(synthetic_dir, steps=15), tmp_path / "run", progress=False)
    assert more.step == 10


def test_a_run_folder_or_checkpoint_of_another_format_is_refused(synthetic_dir, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(tiny(synthetic_dir, steps=10), run, progress=False).train()
    record = json.loads((run / "config.json").read_text())
    assert record["format_version"] == FORMAT_VERSION == 2
    # a run folder written by an earlier faderlib (format 1)
    (run / "config.json").write_text(json.dumps({**record, "format_version": 1}))
    snapshot = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(TrainingError) as err:
        Trainer(tiny(synthetic_dir, steps=20), run, progress=False)
    msg = str(err.value)
    assert str(run) in msg and "run-folder format 1" in msg and "format 2" in msg
    assert "Train into a new folder" in msg and "the faderlib version that made it" in msg
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == snapshot  # nothing changed
    assert main(["train", "--data", str(synthetic_dir), "--attrs", "Male", "--size", "32", "--steps", "20",
                 "--device", "cpu", "--quiet", "--out", str(run)]) == 2
    err_text = capsys.readouterr().err
    assert "run-folder format 1" in err_text and "Traceback" not in err_text
    # a checkpoint of format 1 in a folder of format 2 (copied in from an older run folder)
    (run / "config.json").write_text(json.dumps(record))
    last = run / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["checksum"]
    ckpt.atomic_save({**state, "format_version": 1}, last)
    with pytest.raises(CheckpointError) as err:
        Trainer(tiny(synthetic_dir, steps=20), run, progress=False)
    msg = str(err.value)
    assert f"{last} is a checkpoint of run-folder format 1" in msg and "format 2" in msg
    assert "best.pt is intact (step 10)" in msg  # and what to do instead


def test_a_folder_of_other_files_is_refused(synthetic_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(TrainingError, match="not empty and holds no faderlib run"):
        Trainer(tiny(synthetic_dir), tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(synthetic_dir, tmp_path, monkeypatch):
    trainer = Trainer(tiny(synthetic_dir, steps=20, checkpoint_every=4), tmp_path / "run", progress=False)
    real = train_module.reconstruction_loss

    def poisoned(x_hat, x):
        loss = real(x_hat, x)
        return loss * float("nan") if trainer.step == 6 else loss

    monkeypatch.setattr(train_module, "reconstruction_loss", poisoned)
    with pytest.raises(TrainingError, match=r"step 7: rec_loss = nan is not finite.*step 4"):
        trainer.train()
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["autoencoder"].values() if v.is_floating_point())


def test_bad_training_settings(monkeypatch):
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        TrainConfig(steps=-1)
    with pytest.raises(ValueError, match="malformed attribute"):
        TrainConfig(attributes=("Smi ling",))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU, even on one
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")


def test_unknown_attribute_names_the_closest(synthetic_dir, tmp_path):
    with pytest.raises(ValueError, match="Smiling"):
        Trainer(tiny(synthetic_dir, attributes=("Smilng",)), tmp_path / "run", progress=False)


def _discriminator_accuracy(trainer) -> float:
    """The discriminator's accuracy over the whole training split, in eval mode."""
    from faderlib.metrics import correct_counts

    trainer.ae.eval()
    trainer.dis.eval()
    ds = trainer.train_set
    correct = 0.0
    with torch.no_grad():
        for start in range(0, len(ds), 128):
            x, y = ds.batch(torch.arange(start, min(start + 128, len(ds))))
            correct += float(correct_counts(trainer.dis(trainer.ae.encode(x)), y, trainer.model_config)[0])
    return correct / len(ds)


def test_a_short_run_learns_and_the_adversary_removes_the_attribute(synthetic_dir, tmp_path):
    """400 steps at 32 px: reconstruction improves in both runs; the discriminator reads Male
    from z when lambda_E = 0, and falls to about the majority rate when lambda_E > 0."""
    results = {}
    for lam in (0.0, 0.3):
        config = tiny(synthetic_dir, attributes=("Male",), steps=400, batch_size=16, lambda_e=lam, lambda_ramp=50,
                      eval_every=50, eval_images=64, checkpoint_every=400, log_every=25, model={"init_fm": 16})
        trainer = Trainer(config, tmp_path / f"lambda{lam}", progress=False)
        trainer.train()
        valid = read_metrics(trainer.run_dir).query("phase == 'valid'")
        results[lam] = (valid.rec_loss.iloc[0], valid.rec_loss.iloc[-1], _discriminator_accuracy(trainer))
    majority = float(trainer.train_set.y[:, 0].float().mean())
    majority = max(majority, 1 - majority)
    for lam, (first, last, _) in results.items():
        assert last < 0.6 * first, f"lambda_E={lam}: validation MSE went from {first:.3f} to {last:.3f}"
    assert results[0.0][2] > majority + 0.25, results  # z carries the attribute ...
    assert results[0.3][2] < majority + 0.12, results  # ... unless the encoder is trained to hide it


def test_a_run_killed_before_its_first_checkpoint_starts_clean(synthetic_dir, tmp_path):
    def kill_at_5(trainer, row):
        if row["step"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny(synthetic_dir), tmp_path / "run", progress=False, callbacks=[kill_at_5]).train()
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    again = Trainer(tiny(synthetic_dir, steps=10), tmp_path / "run", progress=False)
    assert again.step == 0
    again.train()
    steps = list(read_metrics(tmp_path / "run").query("phase == 'train'").step)
    assert steps == [5, 10]  # the killed attempt's rows are gone, not doubled


def test_the_course_recipe_is_what_the_demo_and_the_notebooks_train(synthetic_dir, celeba_dir, monkeypatch):
    from faderlib.cache import prepared
    from faderlib.config import ModelConfig
    from faderlib.demo import DEMO, QUICK
    from faderlib.train import GPU_STEPS, RECIPES

    attrs = ("Smiling", "Eyeglasses", "Male")
    config = TrainConfig.from_recipe("course", data_dir=str(synthetic_dir), attributes=attrs, image_size=64,
                                     steps=None, device="cpu")
    assert DEMO.recipe == "course" and QUICK.recipe == "tiny"
    assert config.steps == RECIPES["course"]["steps"] == 9000  # steps=None: the recipe's, on a CPU
    assert config.batch_size == 16 and config.lr_decay == RECIPES["course"]["lr_decay"] == 0.5
    assert TrainConfig.from_recipe("course", batch_size=None).batch_size == 16  # the notebooks' BATCH_SIZE = None
    assert TrainConfig.from_recipe("course", batch_size=32).batch_size == 32
    assert {"preset", "lr", "lambda_e", "lambda_ramp"} <= set(RECIPES["course"])
    for key, value in RECIPES["course"].items():
        assert getattr(config, key) == value, key
    assert config.model_config() == ModelConfig.from_preset("paper", 64, list(attrs))
    data = prepared(synthetic_dir, 32, progress=False)
    assert config.balance == "auto" and config.for_data(data).balance == "Eyeglasses"  # the rare one, balanced
    steps = config.steps
    assert (config.checkpoint_every, config.eval_every, config.log_every) == \
        (min(1000, max(steps // 4, 100)), min(1000, max(steps // 6, 50)), min(25, steps // 10))
    two = TrainConfig.from_recipe("course", data_dir=str(synthetic_dir), attributes=["Smiling", "Male"], steps=10)
    assert two.for_data(data).balance is None  # nothing rare: no balancing
    assert TrainConfig.from_recipe("course", attributes=attrs, steps=10, balance=None).for_data(data).balance is None
    small = TrainConfig.from_recipe("course", data_dir=str(celeba_dir), attributes=["Smiling"], image_size=32, steps=12)
    assert (small.checkpoint_every, small.eval_every, small.log_every) == (100, 50, 1)
    # a long run keeps checkpoints and validations frequent enough to lose little to a crash
    assert (TrainConfig(steps=500_000).checkpoint_every, TrainConfig(steps=500_000).eval_every) == (1000, 1000)
    # on a CUDA GPU, steps=None trains longer
    monkeypatch.setattr(train_module, "pick_device", lambda name="auto": torch.device("cuda"))
    assert TrainConfig.from_recipe("course", steps=None).steps == GPU_STEPS["course"] == 20_000
    assert TrainConfig.from_recipe("paper", steps=None).steps == TrainConfig().steps
    with pytest.raises(ValueError, match="unknown recipe 'corse'.*Did you mean 'course'"):
        TrainConfig.from_recipe("corse")
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_recipe("course", learning_rate=1e-3)


def test_every_setting_is_recorded_and_a_change_is_refused(synthetic_dir, tmp_path):
    """A run folder records every setting, at its default or not (lr_decay and patch_weight at 0
    too), and reads it back; a change of one is refused."""
    config = tiny(synthetic_dir, steps=10)
    assert set(config.to_dict()) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert config.to_dict()["lr_decay"] == 0.0 and config.to_dict()["patch_weight"] == 0.0
    assert TrainConfig.from_dict(config.to_dict()) == config
    decayed = tiny(synthetic_dir, steps=10, lr_decay=0.5)
    assert decayed.to_dict()["lr_decay"] == 0.5 and TrainConfig.from_dict(decayed.to_dict()) == decayed
    Trainer(decayed, tmp_path / "run", progress=False).train()
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["train"]["lr_decay"] == 0.5 and record["train"]["patch_weight"] == 0.0
    with pytest.raises(TrainingError, match="lr_decay"):
        Trainer(tiny(synthetic_dir, steps=10), tmp_path / "run", progress=False)
    for bad in ({"lr_decay": 2}, {"patch_weight": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            tiny(synthetic_dir, **bad)


def test_lr_decay_reaches_both_optimisers_and_ends_near_zero(synthetic_dir, tmp_path):
    trainer = Trainer(tiny(synthetic_dir, steps=20, lr_decay=0.5, lr=1e-3), tmp_path / "run", progress=False)
    seen = []
    trainer.callbacks.append(lambda t, row: seen.append((row["step"], t.opt_ae.param_groups[0]["lr"],
                                                         t.opt_dis.param_groups[0]["lr"])))
    trainer.train()
    train_rows = [s for s in seen if s[0] % 5 == 0]
    assert train_rows[0][1] == train_rows[0][2] == 1e-3           # step 5: still the full rate
    assert train_rows[-1][1] == train_rows[-1][2] == pytest.approx(1e-3 * 1 / 10)  # the last step's rate


def test_the_patch_discriminator_trains_saves_and_resumes_exactly(synthetic_dir, tmp_path):
    straight = Trainer(tiny(synthetic_dir, patch_weight=0.05), tmp_path / "a", progress=False)
    before = {k: v.clone() for k, v in straight.ptc.state_dict().items()}
    straight.train()
    assert any(not torch.equal(before[k], v) for k, v in straight.ptc.state_dict().items())  # it learnt
    state = torch.load(tmp_path / "a" / "checkpoints" / "last.pt", weights_only=True)
    assert "patch_discriminator" in state and "opt_patch_discriminator" in state

    def stop_at_25(trainer, row):
        if row["step"] == 25:
            raise KeyboardInterrupt

    first = Trainer(tiny(synthetic_dir, patch_weight=0.05), tmp_path / "b", progress=False, callbacks=[stop_at_25])
    with pytest.raises(KeyboardInterrupt):
        first.train()
    del first
    resumed = Trainer(tiny(synthetic_dir, patch_weight=0.05), tmp_path / "b", progress=False)
    resumed.train()
    assert_bitwise_equal(weights(straight), weights(resumed))
    assert_bitwise_equal(straight.ptc.state_dict(), resumed.ptc.state_dict())
    # off (the paper's and the default): no patch discriminator at all
    assert Trainer(tiny(synthetic_dir, steps=5), tmp_path / "c", progress=False).ptc is None


# ----------------------------------------------------------------------------- the adversary's settings
class CountingTrainer(Trainer):
    """A Trainer that notes the loss of every discriminator step and counts both steps."""

    def __init__(self, *args, **kw):
        self.dis_losses, self.ae_calls = [], 0
        super().__init__(*args, **kw)

    def discriminator_step(self, x, y):
        out = super().discriminator_step(x, y)
        self.dis_losses.append(float(out["dis_loss"]))
        return out

    def autoencoder_step(self, x, y):
        self.ae_calls += 1
        return super().autoencoder_step(x, y)


def test_dis_steps_are_honoured_and_their_losses_averaged(synthetic_dir, tmp_path):
    trainer = CountingTrainer(tiny(synthetic_dir, steps=4, dis_steps=3, log_every=2, eval_every=4, probe_images=0),
                              tmp_path / "run", progress=False)
    rows = [r for r in trainer.train() if r["phase"] == "train"]
    assert len(trainer.dis_losses) == 3 * 4 and trainer.ae_calls == 4
    # a row's dis_loss: the mean over its iterations of the mean over each iteration's 3 steps
    for row, losses in zip(rows, (trainer.dis_losses[:6], trainer.dis_losses[6:])):
        assert row["dis_loss"] == pytest.approx(sum(losses) / 6, rel=1e-6)


def test_dis_steps_resume_exactly(synthetic_dir, tmp_path):
    config = dict(steps=6, dis_steps=2, checkpoint_every=3, eval_every=3, log_every=1, adversary="uniform")
    straight = Trainer(tiny(synthetic_dir, **config), tmp_path / "a", progress=False)
    straight.train()
    first = Trainer(tiny(synthetic_dir, **config), tmp_path / "b", progress=False)
    first.train(3)
    first.close()
    resumed = Trainer(tiny(synthetic_dir, **config), tmp_path / "b", progress=False)
    assert resumed.step == 3
    resumed.train()
    assert_bitwise_equal(weights(straight), weights(resumed))
    assert torch.equal(straight.generator.get_state(), resumed.generator.get_state())


def test_dis_lr_scale_sets_the_discriminators_rate_at_every_step(synthetic_dir, tmp_path):
    """P's learning rate is dis_lr_scale times E's and D's through the decay, and nothing else changes:
    at 1 the run is bitwise the one without the setting; another scale trains P differently."""
    seen = []

    class Watching(Trainer):
        def discriminator_step(self, x, y):
            seen.append((self.opt_dis.param_groups[0]["lr"], self.opt_ae.param_groups[0]["lr"]))
            return super().discriminator_step(x, y)

    trained = {}
    for scale in (1.0, 3.0):
        seen.clear()
        t = Watching(tiny(synthetic_dir, steps=6, lr_decay=0.5, dis_lr_scale=scale, probe_images=0),
                     tmp_path / f"s{scale:g}", progress=False)
        t.train()
        trained[scale] = (weights(t), list(seen))
    lrs = trained[3.0][1]
    assert len(lrs) == 6 and lrs[-1][1] < lrs[0][1]  # the rate fell over the last half
    assert all(d == pytest.approx(3 * a, rel=1e-12) for d, a in lrs)
    assert all(d == a for d, a in trained[1.0][1])
    default = Trainer(tiny(synthetic_dir, steps=6, lr_decay=0.5, probe_images=0), tmp_path / "default", progress=False)
    default.train()
    assert_bitwise_equal(weights(default), trained[1.0][0])
    dis = [k for k in trained[1.0][0] if k.startswith("dis.")]
    assert dis and not torch.equal(trained[1.0][0][dis[0]], trained[3.0][0][dis[0]])
    for bad in (0, -1.0, float("inf"), True, "4"):
        with pytest.raises(ValueError, match="dis_lr_scale multiplies the learning rate of the latent discriminator"):
            tiny(synthetic_dir, dis_lr_scale=bad)


def _rows(rows, probe=True):
    """Logged rows but their speed (and the probe's columns if ``probe`` is False)."""
    return [{k: v for k, v in r.items() if k != "images_per_s" and (probe or not k.startswith("probe/"))}
            for r in rows]


def test_the_in_training_probe_is_logged_deterministic_and_changes_no_training(synthetic_dir, tmp_path):
    """The probe is in the validation rows, the same in two runs of one seed; probe_images=0 turns it
    off; training with or without it gives the same bits (it draws no random number): the paper's
    settings (TrainConfig's defaults: official preset, 64 px, flip, one discriminator step)."""
    runs = {}
    for name, probe_images in (("a", 512), ("b", 512), ("off", 0)):
        config = TrainConfig(data_dir=str(synthetic_dir), steps=4, eval_every=2, device="cpu",
                             probe_images=probe_images)
        assert (config.adversary, config.dis_steps, config.preset) == ("flip", 1, "official")
        trainer = Trainer(config, tmp_path / name, progress=False)
        runs[name] = (trainer, trainer.train(), torch.get_rng_state())
    names = runs["a"][0].model_config.attribute_names
    valid = [r for r in runs["a"][1] if r["phase"] == "valid"]
    assert [r["step"] for r in valid] == [2, 4]
    for row in valid:
        assert all(0 <= row[f"probe/{n}"] <= 1 for n in names) and f"dis_accuracy/{names[0]}" in row
    assert _rows(runs["a"][1]) == _rows(runs["b"][1])  # the same probe values, for one seed
    assert not any(k.startswith("probe/") for r in runs["off"][1] for k in r)
    assert _rows(runs["a"][1], probe=False) == _rows(runs["off"][1])
    assert_bitwise_equal(weights(runs["a"][0]), weights(runs["off"][0]))
    assert torch.equal(runs["a"][2], runs["off"][2])  # torch's own generator, where the discriminator's dropout draws
    m = read_metrics(tmp_path / "a")
    assert m[m.phase == "valid"][f"probe/{names[0]}"].notna().all()


def test_the_adversary_settings_are_recorded_checked_and_change_training(synthetic_dir, tmp_path):
    for bad, match in (({"adversary": "entropy"}, "unknown adversary 'entropy'; choose one of flip, uniform, reverse"),
                       ({"dis_steps": 0}, "dis_steps must be a positive integer"),
                       ({"probe_images": -1}, "probe_images")):
        with pytest.raises(ValueError, match=match):
            tiny(synthetic_dir, **bad)
    assert "probe_images" in TrainConfig.RUNTIME_KEYS and "adversary" not in TrainConfig.RUNTIME_KEYS
    trained = {}
    for adversary in ("flip", "uniform"):
        t = Trainer(tiny(synthetic_dir, steps=3, lambda_ramp=0, adversary=adversary, probe_images=0),
                    tmp_path / adversary, progress=False)
        t.train()
        trained[adversary] = weights(t)
        record = json.loads((tmp_path / adversary / "config.json").read_text())["train"]
        assert (record["adversary"], record["dis_steps"], record["probe_images"]) == (adversary, 1, 0)
    first = "ae.encoder.layers.0.0.weight"
    assert not torch.equal(trained["flip"][first], trained["uniform"][first])  # the target took effect
    with pytest.raises(TrainingError, match=r"differs in: adversary"):
        Trainer(tiny(synthetic_dir, steps=3, lambda_ramp=0, adversary="flip", probe_images=0), tmp_path / "uniform",
                progress=False)


def test_a_run_recorded_before_the_adversary_settings_resumes(synthetic_dir, tmp_path):
    """A run folder and checkpoint of before ``adversary`` and ``dis_steps`` existed (they do not record
    them) resume, with their fingerprint: they were trained with the flip and one discriminator step."""
    from faderlib.runs import ADDED_SETTINGS

    run = tmp_path / "run"
    Trainer(tiny(synthetic_dir, steps=5), run, progress=False).train()
    record = json.loads((run / "config.json").read_text())
    added = (*ADDED_SETTINGS, "fast_convs", "probe_images")  # and two runtime settings added with them
    for key in added:
        del record["train"][key]
    (run / "config.json").write_text(json.dumps(record))
    last = run / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    del state["checksum"]
    for key in added:
        del state["train_config"][key]
    old_keys = {k: v for k, v in state["train_config"].items() if k not in TrainConfig.RUNTIME_KEYS}
    assert state["fingerprint"] == ckpt.fingerprint({"train": json.loads(json.dumps(old_keys)),
                                                     "model": state["model_config"]})  # as before the settings
    ckpt.atomic_save(state, last)
    resumed = Trainer(tiny(synthetic_dir, steps=10), run, progress=False)
    assert resumed.step == 5
    resumed.close()
    with pytest.raises(TrainingError, match=r"differs in: dis_steps"):
        Trainer(tiny(synthetic_dir, steps=10, dis_steps=2), run, progress=False)
