"""Training throughput on CPU (images/s, both steps of an iteration counted).

Measures :class:`faderlib.train.Trainer` itself, on a few hundred synthetic faces prepared
at 64, 128 and 256 px (the ``official`` preset, three attributes, batch 32):

* each memory layout (contiguous NCHW and channels-last), with the trainer's fused Adam;
* the plainest configuration: NCHW and PyTorch's default per-parameter Adam loop;
* the default (``channels_last="auto"``, fused Adam) against the plainest, as a ratio
  measured in the same run. The faster layout depends on the size and the machine, so the
  layout rows say which one the default picked.

Run ``python benchmarks/bench_train.py`` (or ``make bench``). About six minutes on 2 cores.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from faderlib.synth import ensure_synthetic
from faderlib.devices import use_channels_last
from faderlib.train import TrainConfig, Trainer

ATTRIBUTES = ("Smiling", "Eyeglasses", "Male")
BATCH = 32
ITERATIONS = {64: 20, 128: 6, 256: 2}


def _plain_adam(trainer: Trainer) -> None:
    """Swap the trainer's optimisers for PyTorch's defaults (per-parameter loop on CPU)."""
    for name, net in (("opt_ae", trainer.ae), ("opt_dis", trainer.dis)):
        old = getattr(trainer, name)
        setattr(trainer, name, torch.optim.Adam(net.parameters(), **{k: old.defaults[k] for k in ("lr", "betas")}))


def images_per_second(data_dir: Path, work: Path, size: int, channels_last: bool, fused: bool,
                      iterations: int) -> float:
    config = TrainConfig(data_dir=str(data_dir), attributes=ATTRIBUTES, image_size=size, preset="official",
                         batch_size=BATCH, steps=10**6, lambda_e=1e-4, lambda_ramp=10, checkpoint_every=10**6,
                         eval_every=10**6, log_every=10**6, channels_last=channels_last, device="cpu")
    trainer = Trainer(config, work / f"{size}-{channels_last}-{fused}", progress=False)
    if not fused:
        _plain_adam(trainer)
    trainer.train(1)  # warm-up: first calls choose their kernels
    t = time.perf_counter()
    trainer.train(1 + iterations)
    return 2 * BATCH * iterations / (time.perf_counter() - t)


def run() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = ensure_synthetic(tmp / "faces", n=300, seed=0, progress=False)
        for size, n in ITERATIONS.items():
            speed = {cl: images_per_second(data, tmp, size, cl, True, n) for cl in (False, True)}
            plainest = images_per_second(data, tmp, size, False, False, n)
            default = use_channels_last("auto", torch.device("cpu"))
            for cl in (False, True):
                rows.append({"benchmark": "train", "unit": "images/s", "value": round(speed[cl], 1),
                             "setting": f"{size} px, {'channels-last' if cl else 'NCHW'}, fused Adam"
                             + (" (default)" if cl == default else "")})
            rows.append({"benchmark": "train", "setting": f"{size} px, plainest (NCHW, per-parameter Adam)",
                         "value": round(plainest, 1), "unit": "images/s"})
            rows.append({"benchmark": "train", "setting": f"{size} px, default / plainest",
                         "value": round(speed[default] / plainest, 2), "unit": "x"})
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r['setting']:<55} {r['value']:>10} {r['unit']}")
