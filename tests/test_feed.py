"""The training feed (faderlib.feed): the same batches whichever way they travel, a prefetch
thread that never changes them and stops cleanly, and the Trainer's lab-GPU settings on a CPU."""

import json
import threading

import pytest
import torch

import faderlib.train as train_module
from faderlib.cache import prepared
from faderlib.data import FaderDataset, balanced_weights
from faderlib.errors import TrainingError
from faderlib.feed import BatchFeed, resident_split, split_bytes, to_device_batch
from faderlib.metrics_log import read_metrics
from faderlib.train import TrainConfig, Trainer
from train_fixture import tiny as shared_tiny

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def train_set(synthetic_dir):
    return FaderDataset(prepared(synthetic_dir, 32, progress=False), "train", ("Smiling", "Eyeglasses"), flip=True)


def batches(feed, n):
    out = [feed.next() for _ in range(n)]
    feed.close()
    return out


@pytest.mark.parametrize("prefetch", [0, 3])
@pytest.mark.parametrize("resident", [False, True])
def test_every_feed_gives_the_batches_of_dataset_sample(train_set, prefetch, resident):
    """Same pixels after scaling, same flips, same order as the float path, drawn from the same stream."""
    weights = balanced_weights(train_set, "Eyeglasses")
    g_ref, g = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    expected = [train_set.sample(8, g_ref, weights) for _ in range(6)]
    feed = BatchFeed(train_set, 8, g, CPU, weights=weights, prefetch=prefetch,
                     resident=resident_split(train_set, CPU) if resident else None)
    assert feed.mode == ("resident" if resident else "host")
    got = batches(feed, 6)
    for (x, y), b in zip(expected, got):
        assert torch.equal(x, b.x) and torch.equal(y, b.y)
    assert torch.equal(g.get_state(), g_ref.get_state())  # closed: the stream is where the last batch left it
    assert torch.equal(got[-1].rng_state, g_ref.get_state())


def test_the_device_half_is_the_host_half(train_set):
    """uint8 moved as it is, then mirrored and scaled where it lands: the bits of the numpy path."""
    idx, mirror = train_set.draw(16, torch.Generator().manual_seed(0))
    x_host, _ = train_set.assemble(idx, mirror)
    pixels = torch.from_numpy(train_set.read(idx))
    x_dev = to_device_batch(pixels, mirror, channels_last=True)
    assert torch.equal(x_host, x_dev) and x_dev.is_contiguous(memory_format=torch.channels_last)
    assert mirror.any() and not mirror.all()  # both branches of the flip were taken
    assert split_bytes(train_set) == len(train_set) * 3 * 32 * 32


def test_a_prefetch_error_is_raised_in_the_loop_and_the_thread_stops(train_set, monkeypatch):
    feed = BatchFeed(train_set, 4, torch.Generator().manual_seed(0), CPU, prefetch=2)
    first = feed.next()
    calls = {"n": 0}
    real_read = train_set.prepared.read

    def failing_read(rows, out=None):
        calls["n"] += 1
        if calls["n"] >= 1:
            raise OSError("disk unplugged")
        return real_read(rows, out)

    monkeypatch.setattr(train_set.prepared, "read", failing_read)
    with pytest.raises(OSError, match="disk unplugged"):
        for _ in range(10):
            feed.next()
    assert not any(t.name == "fader-prefetch" and t.is_alive() for t in threading.enumerate())
    assert first.x.shape == (4, 3, 32, 32)


def test_close_stops_a_thread_blocked_on_a_full_queue(train_set):
    feed = BatchFeed(train_set, 4, torch.Generator().manual_seed(0), CPU, prefetch=1)
    feed.next()
    feed.close()  # the thread has a batch ready and waits for room: it must still stop
    assert not any(t.name == "fader-prefetch" and t.is_alive() for t in threading.enumerate())


# ------------------------------------------------------------------------------------- the Trainer
def tiny(data_dir, **kw):
    return shared_tiny(data_dir, **{"steps": 40, "eval_every": 20, "eval_images": 32, **kw})


def weights_of(trainer):
    return {**{"ae." + k: v for k, v in trainer.ae.state_dict().items()},
            **{"dis." + k: v for k, v in trainer.dis.state_dict().items()}}


def test_prefetching_and_resident_data_train_bitwise_the_same_and_resume_exactly(synthetic_dir, tmp_path):
    straight = Trainer(tiny(synthetic_dir, balance="Smiling"), tmp_path / "straight", progress=False)
    straight.train()

    def kill_at_25(trainer, row):
        if row["step"] == 25:
            raise KeyboardInterrupt  # Ctrl-C while the thread reads ahead; the last checkpoint is at 20

    config = tiny(synthetic_dir, balance="Smiling", prefetch=3)
    first = Trainer(config, tmp_path / "b", progress=False, callbacks=[kill_at_25])
    with pytest.raises(KeyboardInterrupt):
        first.train()
    assert not any(t.name == "fader-prefetch" and t.is_alive() for t in threading.enumerate())
    del first
    resumed = Trainer(tiny(synthetic_dir, balance="Smiling", prefetch=3, data_on_device=True), tmp_path / "b",
                      progress=False)
    assert resumed.step == 20 and resumed.data.on_device and resumed.data.prefetch == 3
    resumed.train()
    a, b = weights_of(straight), weights_of(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = lambda run: [{k: v for k, v in json.loads(line).items() if k != "images_per_s"}  # noqa: E731
                        for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows(tmp_path / "straight")[-3:] == rows(tmp_path / "b")[-3:]  # the same losses, logged the same way


def test_train_called_twice_continues_the_stream_where_it_stopped(synthetic_dir, tmp_path):
    once = Trainer(tiny(synthetic_dir, steps=20), tmp_path / "once", progress=False)
    once.train()
    twice = Trainer(tiny(synthetic_dir, steps=20, prefetch=2), tmp_path / "twice", progress=False)
    twice.train(steps=10)  # the thread has read ahead; the next call must not skip those batches
    twice.train()
    a, b = weights_of(once), weights_of(twice)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_non_finite_loss_is_caught_at_the_next_check_without_a_bad_checkpoint(synthetic_dir, tmp_path,
                                                                                monkeypatch):
    trainer = Trainer(tiny(synthetic_dir, steps=30, checkpoint_every=10, log_every=10, prefetch=2),
                      tmp_path / "run", progress=False)
    real = train_module.reconstruction_loss

    def poisoned(x_hat, x):
        loss = real(x_hat, x)
        return loss * float("inf") if trainer.step == 12 else loss

    monkeypatch.setattr(train_module, "reconstruction_loss", poisoned)
    with pytest.raises(TrainingError, match=r"step 13: rec_loss = (inf|nan) is not finite \(found at the check of "
                                            r"step 20\).*step 10\) is kept"):
        trainer.train()
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 10  # the checkpoint of step 20 was never written
    assert all(torch.isfinite(v).all() for v in state["autoencoder"].values() if v.is_floating_point())
    assert max(read_metrics(tmp_path / "run").step) == 10  # nor the log row of steps 11..20


def test_bf16_autocast_trains_on_the_cpu(synthetic_dir, tmp_path):
    trainer = Trainer(tiny(synthetic_dir, steps=6, precision="bf16"), tmp_path / "bf16", progress=False)
    assert trainer.precision == "bf16"
    rows = trainer.train()
    train_rows = [r for r in rows if r["phase"] == "train"]
    assert all(torch.isfinite(torch.tensor(r["rec_loss"])) for r in train_rows)
    assert all(p.dtype == torch.float32 for p in trainer.ae.parameters())  # the weights stay float32
    bn = trainer.ae.encoder.layers[1][1]
    assert bn.running_mean.dtype == torch.float32 and not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))


def test_precision_auto_and_no_legacy_record(monkeypatch):
    from faderlib import devices

    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert [devices.choose_precision("auto", cpu, s) for s in (32, 64, 128, 256)] == ["fp32", "fp32", "bf16", "bf16"]
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert devices.choose_precision("auto", cpu, 256) == "fp32" and devices.choose_precision("bf16", cpu, 32) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        TrainConfig(precision="half")
    old = {**TrainConfig().to_dict(), "bf16": True}
    del old["precision"]
    with pytest.raises(ValueError, match=r"unknown training setting\(s\) \['bf16'\]"):
        TrainConfig.from_dict(old)  # a record of run-folder format 1: the faderlib version that made it reads it


def test_compile_wraps_the_networks_and_trains(synthetic_dir, tmp_path, monkeypatch):
    """The --compile code path (torch.compile of both networks), traced without code generation."""
    from faderlib import devices

    monkeypatch.setattr(devices, "COMPILE_BACKEND", "eager")
    trainer = Trainer(tiny(synthetic_dir, steps=3, compile=True), tmp_path / "compiled", progress=False)
    assert trainer._ae_fwd is not trainer.ae_ddp and trainer._dis_fwd is not trainer.dis_ddp
    trainer.train()
    state = torch.load(tmp_path / "compiled" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 3 and not any(k.startswith("_orig_mod") for k in state["autoencoder"])
