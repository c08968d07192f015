"""Training throughput on CPU (images/s, both steps of an iteration counted).

Measures :class:`faderlib.train.Trainer` itself, on a few hundred synthetic faces prepared
at 64, 128 and 256 px (the ``official`` preset, three attributes, batch 32), every
configuration of a size alternated with the others in the same run, twice, the best kept
(timings on a shared machine drift by 20 % and more between runs):

* each memory layout (contiguous NCHW and channels-last) in float32, with the fused Adam;
* bf16 autocast, channels-last (what ``precision="auto"`` picks on a CPU with native bf16);
* the prefetch thread on (``prefetch=2``; the CPU default is off);
* the plainest configuration: NCHW, float32, PyTorch's default per-parameter Adam loop;
* the default (``precision="auto"``, ``channels_last="auto"``) against the plainest, as a ratio.

Run ``python benchmarks/bench_train.py`` (or ``make bench``). About ten minutes on 2 cores.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from faderlib.devices import choose_precision, use_channels_last
from faderlib.synth import ensure_synthetic
from faderlib.train import TrainConfig, Trainer

from common import steps_only  # benchmarks/common.py (python benchmarks/X.py and run.py put benchmarks/ first on sys.path)

ATTRIBUTES = ("Smiling", "Eyeglasses", "Male")
BATCH = 32
ITERATIONS = {64: 20, 128: 6, 256: 2}
ROUNDS = 2

#: name -> (TrainConfig settings, fused Adam)
CONFIGS = {
    "NCHW, fp32": (dict(channels_last=False, precision="fp32"), True),
    "channels-last, fp32": (dict(channels_last=True, precision="fp32"), True),
    "channels-last, bf16": (dict(channels_last=True, precision="bf16"), True),
    "channels-last, fp32, prefetch 2": (dict(channels_last=True, precision="fp32", prefetch=2), True),
    "plainest (NCHW, fp32, per-parameter Adam)": (dict(channels_last=False, precision="fp32"), False),
}


def _plain_adam(trainer: Trainer) -> None:
    """Swap the trainer's optimisers for PyTorch's defaults (per-parameter loop on CPU)."""
    for name, net in (("opt_ae", trainer.ae), ("opt_dis", trainer.dis)):
        old = getattr(trainer, name)
        setattr(trainer, name, torch.optim.Adam(net.parameters(), **{k: old.defaults[k] for k in ("lr", "betas")}))


def make_trainer(data_dir: Path, work: Path, size: int, name: str) -> Trainer:
    settings, fused = CONFIGS[name]
    config = TrainConfig(data_dir=str(data_dir), attributes=ATTRIBUTES, image_size=size, preset="official",
                         batch_size=BATCH, steps=10**6, lambda_e=1e-4, lambda_ramp=10, checkpoint_every=10**6,
                         eval_every=10**6, log_every=10**6, device="cpu", **settings)
    # the iterations alone: without the validation and checkpoint each timed train() call ends with
    trainer = steps_only(Trainer)(config, work / f"{size}-{len(list(work.iterdir()))}", progress=False)
    if not fused:
        _plain_adam(trainer)
    trainer.train(1)  # warm-up: first calls choose their kernels
    return trainer


def timed(trainer: Trainer, iterations: int) -> float:
    t = time.perf_counter()
    trainer.train(trainer.step + iterations)
    return 2 * BATCH * iterations / (time.perf_counter() - t)


def run() -> list[dict]:
    rows = []
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = ensure_synthetic(tmp / "faces", n=300, seed=0, progress=False)
        work = tmp / "runs"
        work.mkdir()
        for size, n in ITERATIONS.items():
            trainers = {name: make_trainer(data, work, size, name) for name in CONFIGS}
            best = {name: 0.0 for name in CONFIGS}
            for r in range(ROUNDS):
                for name in (CONFIGS if r % 2 == 0 else reversed(CONFIGS)):
                    best[name] = max(best[name], timed(trainers[name], n))
            layout = "channels-last" if use_channels_last("auto", cpu) else "NCHW"
            precision = choose_precision("auto", cpu, size)
            default = f"{layout}, {precision}"
            for name, value in best.items():
                rows.append({"benchmark": "train", "unit": "images/s", "value": round(value, 1),
                             "setting": f"{size} px, {name}" + (" (default)" if name == default else "")})
            plain = best["plainest (NCHW, fp32, per-parameter Adam)"]
            rows.append({"benchmark": "train", "setting": f"{size} px, default ({default}) / plainest",
                         "value": round(best[default] / plain, 2), "unit": "x"})
            rows.append({"benchmark": "train", "setting": f"{size} px, bf16 / fp32 (channels-last)",
                         "value": round(best["channels-last, bf16"] / best["channels-last, fp32"], 2), "unit": "x"})
            del trainers
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r['setting']:<62} {r['value']:>10} {r['unit']}")
