"""Where a training iteration's CPU time goes: the top operators of ``torch.profiler``.

Profiles :class:`faderlib.train.Trainer` (both steps of an iteration, batch 32, float32) over a few
iterations after a warm-up, with the small convolutions plain and on the matrix-product path
(:mod:`faderlib.fastconv`), and prints each profile's top operators by self CPU time with the
calls and input shapes of the slowest ones. Not part of ``make bench`` (it prints tables, not
rows); run it when a change is meant to save time, before and after::

    python benchmarks/profile_step.py --size 64 --recipe course --threads 1
    python benchmarks/profile_step.py --size 256 --preset official --threads 2 --iterations 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from faderlib.synth import ensure_synthetic
from faderlib.train import TrainConfig, Trainer

from common import steps_only  # benchmarks/common.py (python benchmarks/X.py puts benchmarks/ first on sys.path)


def profile_trainer(data: Path, work: Path, args, fast: bool, top: int) -> None:
    settings = dict(image_size=args.size, batch_size=32, steps=10**6, checkpoint_every=10**6, eval_every=10**6,
                    log_every=10**6, device="cpu", precision="fp32", fast_convs=fast, lambda_ramp=0,
                    lambda_e=1e-4, data_dir=str(data))
    if args.preset:
        settings["preset"] = args.preset
    config = TrainConfig.from_recipe(args.recipe, **settings)
    trainer = steps_only(Trainer)(config, work / f"{'fast' if fast else 'plain'}", progress=False)
    trainer.train(2)  # warm-up: first calls choose their kernels
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        trainer.train(trainer.step + args.iterations)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / args.iterations / 1000
    print(f"\n== {args.size} px, {config.preset} preset, fast_convs={fast}: {total:.1f} ms of CPU time per iteration "
          f"({torch.get_num_threads()} threads) ==")
    print(events.table(sort_by="self_cpu_time_total", row_limit=top))
    print("slowest operator calls by input shape:")
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=8,
                                                              max_name_column_width=30))
    trainer.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--recipe", default="course")
    parser.add_argument("--preset", default=None, help="the recipe's preset by default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--only", choices=["plain", "fast"], default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = ensure_synthetic(tmp / "faces", n=300, seed=0, progress=False)
        (tmp / "runs").mkdir()
        for fast in (False, True):
            if args.only in (None, "fast" if fast else "plain"):
                profile_trainer(data, tmp / "runs", args, fast, args.top)


if __name__ == "__main__":
    main()
