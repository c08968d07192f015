"""What an adversarial setting costs: one iteration of the course recipe (64 px, batch 16, one thread,
float32) with the paper's flipped target and one discriminator step, the uniform target, and 4
discriminator steps per autoencoder step (``TrainConfig.adversary``, ``dis_steps``), in milliseconds.

The variants are alternated in one run, ``ROUNDS`` times each, the best kept (a shared machine
drifts by 20 % and more). ``python benchmarks/bench_adversary.py``: about two minutes on 2 cores.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from faderlib.synth import ensure_synthetic
from faderlib.train import TrainConfig, Trainer

from bench_step import ms_per_iteration
from common import steps_only

#: label -> settings of TrainConfig
VARIANTS = {"flip, 1 discriminator step": dict(adversary="flip", dis_steps=1),
            "uniform, 1 discriminator step": dict(adversary="uniform", dis_steps=1),
            "flip, 4 discriminator steps": dict(adversary="flip", dis_steps=4)}
ROUNDS = 3
ITERATIONS = 20


def run() -> list[dict]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    best = {label: float("inf") for label in VARIANTS}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            data = ensure_synthetic(tmp / "faces", n=300, seed=0, progress=False)
            trainers = {}
            for label, settings in VARIANTS.items():
                config = TrainConfig.from_recipe("course", data_dir=str(data), steps=10**6, checkpoint_every=10**6,
                                                 eval_every=10**6, log_every=10**6, device="cpu", precision="fp32",
                                                 **settings)
                trainers[label] = steps_only(Trainer)(config, tmp / label.replace(" ", "_").replace(",", ""),
                                                      progress=False)
                trainers[label].train(2)  # warm-up
            for r in range(ROUNDS):
                for label in (list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]):
                    best[label] = min(best[label], ms_per_iteration(trainers[label], ITERATIONS))
            for t in trainers.values():
                t.close()
    finally:
        torch.set_num_threads(old)
    base = best["flip, 1 discriminator step"]
    rows = [{"benchmark": "adversary", "setting": label, "value": round(v, 1), "unit": "ms"} for label, v in best.items()]
    rows += [{"benchmark": "adversary", "setting": f"{label}, against flip 1 step", "value": round(v / base, 2),
              "unit": "x"} for label, v in best.items() if v is not base]
    return rows


if __name__ == "__main__":
    from common import print_rows_main  # noqa: E402

    print_rows_main(run, __doc__.splitlines()[0], name_width=10, value_format=".2f")
