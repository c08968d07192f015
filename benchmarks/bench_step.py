"""One training iteration (both steps, batch 32, float32), small convolutions plain against one
matrix product (faderlib.fastconv), in milliseconds.

* the course recipe at 64 px on one thread (the demo and notebook 03 train it);
* the ``official`` preset (the reference implementation's networks) at 128 and 256 px on two
  threads (the kit's defaults on a 2-core machine).

The two variants of a setting are alternated in one run, ``ROUNDS`` times each, the best kept (a
shared machine drifts by 20 % and more between runs). ``python benchmarks/bench_step.py``: about
five minutes on 2 cores.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from faderlib.synth import ensure_synthetic
from faderlib.train import TrainConfig, Trainer

from common import steps_only

#: (label, recipe, settings, threads, iterations per timing)
SETTINGS = [
    ("course recipe, 64 px, 1 thread", "course", dict(image_size=64), 1, 12),
    ("official preset, 128 px, 2 threads", "paper", dict(image_size=128, preset="official"), 2, 4),
    ("official preset, 256 px, 2 threads", "paper", dict(image_size=256, preset="official"), 2, 2),
]
ROUNDS = 3


def make_trainer(data: Path, run_dir: Path, recipe: str, settings: dict, fast: bool) -> Trainer:
    config = TrainConfig.from_recipe(recipe, data_dir=str(data), attributes=("Smiling", "Eyeglasses", "Male"),
                                     batch_size=32, steps=10**6, checkpoint_every=10**6, eval_every=10**6,
                                     log_every=10**6, device="cpu", precision="fp32", lambda_ramp=0,
                                     fast_convs=fast, **settings)
    trainer = steps_only(Trainer)(config, run_dir, progress=False)
    trainer.train(2)  # warm-up: first calls choose their kernels
    return trainer


def ms_per_iteration(trainer: Trainer, iterations: int) -> float:
    t = time.perf_counter()
    trainer.train(trainer.step + iterations)
    return 1000 * (time.perf_counter() - t) / iterations


def run() -> list[dict]:
    rows = []
    old = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = ensure_synthetic(tmp / "faces", n=300, seed=0, progress=False)
        try:
            for label, recipe, settings, threads, n in SETTINGS:
                torch.set_num_threads(threads)
                trainers = {fast: make_trainer(data, tmp / f"{label}-{fast}", recipe, settings, fast)
                            for fast in (False, True)}
                best = {False: float("inf"), True: float("inf")}
                for r in range(ROUNDS):
                    for fast in ((False, True) if r % 2 == 0 else (True, False)):
                        best[fast] = min(best[fast], ms_per_iteration(trainers[fast], n))
                for t in trainers.values():
                    t.close()
                rows.append({"benchmark": "step", "setting": f"{label}, plain convolutions",
                             "value": round(best[False], 1), "unit": "ms"})
                rows.append({"benchmark": "step", "setting": f"{label}, small ones as one matrix product",
                             "value": round(best[True], 1), "unit": "ms"})
                rows.append({"benchmark": "step", "setting": f"{label}, speed-up",
                             "value": round(best[False] / best[True], 2), "unit": "x"})
        finally:
            torch.set_num_threads(old)
    return rows


if __name__ == "__main__":
    from common import print_rows_main  # noqa: E402

    print_rows_main(run, __doc__.splitlines()[0], name_width=6)
