"""Which adversary empties z? A sweep of the adversarial objectives and their strength.

For each objective (``flip``: the paper's; ``uniform``: maximise the discriminator's entropy;
``reverse``: gradient reversal), each strength (lambda_E, discriminator steps per autoencoder step)
and each seed, one training of the course recipe on the synthetic faces, then ``evaluate`` with the
demo's classifier: the latent probe (a fresh logistic regression on the frozen z, balanced accuracy,
0.5: z says nothing a line can read), the jointly trained discriminator, the swaps at strength 1 and
1.5, the reconstruction PSNR and the counterfactual gains, and the training time. Rows go to
``OUT/sweep.jsonl`` (a rerun skips the rows already there, and a training already done is reused),
the table to ``OUT/sweep.md`` and the lesson, probe against reconstruction, one line per objective,
to ``OUT/probe_vs_psnr.png``.

Trainings run two at a time, one thread each (2 cores). At the course recipe's steps a training takes
15 to 25 minutes on 2 cores; ``--steps`` shortens every run (the same for all, so that they compare).

    python benchmarks/sweep_adversary.py --out runs/sweep --steps 2000 --seeds 0 1
    python benchmarks/sweep_adversary.py --out runs/sweep --grid quick   # flip and uniform, lambda_E 0.02
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path

#: name -> list of (objective, lambda_E, discriminator steps); ``lambda_e=0`` is the ablation.
GRIDS = {
    "quick": [("flip", 0.02, 1), ("uniform", 0.02, 1)],
    "full": [("flip", 0.0, 1)]
    + [(a, lam, 1) for a in ("flip", "uniform", "reverse") for lam in (0.01, 0.02, 0.05)]
    + [(a, 0.02, n) for a in ("flip", "uniform") for n in (2, 4)],
    # what fits in one session on 2 cores (with --steps 3000): the paper's target, its strength, the
    # uniform target at three strengths and with more discriminator steps, gradient reversal
    "strength": [("flip", 0.0, 1), ("flip", 0.02, 1), ("uniform", 0.02, 1), ("uniform", 0.1, 1),
                 ("uniform", 0.1, 4), ("flip", 0.02, 4), ("uniform", 0.5, 1), ("reverse", 0.02, 1),
                 ("flip", 0.1, 1)],
}


def _name(adversary: str, lambda_e: float, dis_steps: int, seed: int, steps: int, dis_lr_scale: float = 1.0) -> str:
    dlr = f"_dlr{dis_lr_scale:g}" if dis_lr_scale != 1 else ""
    return f"{adversary}_lam{lambda_e:g}_dis{dis_steps}{dlr}_seed{seed}_steps{steps}"


def _train_one(job: tuple) -> dict:
    adversary, lambda_e, dis_steps, seed, steps, data_dir, out, dis_lr_scale = job
    import torch

    torch.set_num_threads(1)
    from faderlib.train import TrainConfig, Trainer

    config = TrainConfig.from_recipe("course", data_dir=data_dir, adversary=adversary, lambda_e=lambda_e,
                                     dis_steps=dis_steps, dis_lr_scale=dis_lr_scale, seed=seed, steps=steps)
    run_dir = Path(out) / _name(adversary, lambda_e, dis_steps, seed, steps, dis_lr_scale)
    t = time.perf_counter()
    try:
        trainer = Trainer(config, run_dir, progress=False, sigterm=False)
    except Exception as e:  # e.g. a folder left half-written by a killed sweep: said, and the others go on
        return {"run_dir": str(run_dir), "error": str(e)}
    trainer.train()
    trainer.close()
    return {"run_dir": str(run_dir), "train_s": round(time.perf_counter() - t, 1)}


def _row(job: tuple, trained: dict, classifier: Path, test_images: int | None) -> dict:
    from faderlib.evaluate import evaluate
    from faderlib.reports import swap_values

    adversary, lambda_e, dis_steps, seed, steps, _, _, dis_lr_scale = job
    r = evaluate(trained["run_dir"], classifier, max_images=test_images, counterfactual_images=100,
                 also_strengths=(1.5,))
    names = list(r["latent_probe"])
    swaps, swaps15 = swap_values(r["swap_accuracy"]), swap_values(r["swap_accuracy_at"]["1.5"])
    return {"adversary": adversary, "lambda_e": lambda_e, "dis_steps": dis_steps, "dis_lr_scale": dis_lr_scale,
            "seed": seed, "steps": steps,
            "probe_mean": sum(r["latent_probe"][k]["balanced_accuracy"] for k in names) / len(names),
            "probe": {k: r["latent_probe"][k]["balanced_accuracy"] for k in names},
            "probe_floor_mean": (sum(r["probe_floor"][k]["balanced_accuracy"] for k in names) / len(names)
                                 if "probe_floor" in r else None),
            "discriminator": {k: r["latent_discriminator"][k]["balanced_accuracy"] for k in names},
            "min_swap": min(swaps), "min_swap_1.5": min(swaps15), "psnr": r["reconstruction"]["psnr"],
            "gain": r.get("counterfactual_gain", {}), **trained}


def _table(rows: list[dict]) -> str:
    lines = ["| adversary | lambda_E | dis steps (lr x) | seed | probe (mean) | probe per attribute | discriminator | "
             "min swap @1 / @1.5 | PSNR dB | gains dB | train s |", "|---|---:|---:|---:|---:|---|---|---|---:|---|---:|"]
    for r in sorted(rows, key=lambda r: (r["adversary"], r["lambda_e"], r["dis_steps"], r["seed"])):
        fmt = lambda d, f="{:.2f}": " / ".join(f.format(v) for v in d.values())  # noqa: E731
        dlr = f" ({r['dis_lr_scale']:g})" if r.get("dis_lr_scale", 1.0) != 1 else ""
        lines.append(f"| {r['adversary']} | {r['lambda_e']:g} | {r['dis_steps']}{dlr} | {r['seed']} | {r['probe_mean']:.3f} | "
                     f"{fmt(r['probe'])} | {fmt(r['discriminator'])} | {r['min_swap']:.3f} / {r['min_swap_1.5']:.3f} | "
                     f"{r['psnr']:.2f} | {fmt(r['gain'], '{:+.2f}')} | {r['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path, floor: float | None) -> None:
    from faderlib.plots import plot_adversaries

    plot_adversaries(rows, floor).savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/sweep")
    parser.add_argument("--grid", choices=list(GRIDS), default="full")
    parser.add_argument("--configs", nargs="+", default=None, metavar="ADVERSARY:LAMBDA_E:DIS_STEPS[:SEED]",
                        help="these settings instead of a grid, in this order (e.g. flip:0.02:1 uniform:0.1:4; a 4th field: that seed only, e.g. uniform:0.1:4:1)")
    parser.add_argument("--steps", type=int, default=None, help="steps of every run (default: the course recipe's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--data", default=None, help="default: the synthetic faces of make demo")
    parser.add_argument("--classifier", default="runs/demo/classifier", help="trained by make demo")
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dis-lr-scale", type=float, default=1.0,
                        help="every run's latent-discriminator learning rate as a multiple of the recipe's")
    args = parser.parse_args(argv)

    from faderlib.celeba import default_data_dir
    from faderlib.train import RECIPES

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    classifier = Path(args.classifier)
    if not (classifier / "classifier.pt").is_file():
        print(f"no classifier in {classifier}: run `make demo` first (it trains one), or pass --classifier")
        return 1
    data_dir = str(args.data or default_data_dir())
    steps = args.steps or RECIPES["course"]["steps"]
    table = out / "sweep.jsonl"
    rows = [json.loads(line) for line in table.read_text().splitlines()] if table.exists() else []
    done = {_name(r["adversary"], r["lambda_e"], r["dis_steps"], r["seed"], r["steps"], r.get("dis_lr_scale", 1.0))
            for r in rows}
    grid = [(a, lam, n, None) for a, lam, n in GRIDS[args.grid]]
    if args.configs:
        try:
            grid = [(c[0], float(c[1]), int(c[2]), int(c[3]) if len(c) > 3 else None)
                    for c in (c.split(":") for c in args.configs) if len(c) in (3, 4)]
        except ValueError:
            grid = []
        if len(grid) != len(args.configs):
            parser.error(f"--configs {' '.join(args.configs)}: write each as ADVERSARY:LAMBDA_E:DIS_STEPS[:SEED], "
                         "e.g. flip:0.02:1 or uniform:0.1:4:1")
    if any(own is not None for *_, own in grid):   # the order given, each config at its own seed or at --seeds
        runs = [(a, lam, n, seed) for a, lam, n, own in grid for seed in ([own] if own is not None else args.seeds)]
    else:                                          # seed by seed: every config's first seed comes first
        runs = [(a, lam, n, seed) for seed in args.seeds for a, lam, n, _ in grid]
    jobs = [(a, lam, n, seed, steps, data_dir, str(out), args.dis_lr_scale) for a, lam, n, seed in runs]
    jobs = [j for j in jobs if _name(*j[:5], j[7]) not in done]
    print(f"{len(jobs)} trainings to run ({len(done)} already in {table}), {args.workers} at a time")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for job, trained in zip(jobs, pool.imap(_train_one, jobs)):
            if "error" in trained:
                print(f"{_name(*job[:5], job[7])}: not trained: {trained['error']}", flush=True)
                continue
            row = _row(job, trained, classifier, args.test_images)
            rows.append(row)
            with table.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{_name(*job[:5], job[7])}: probe {row['probe_mean']:.3f}, PSNR {row['psnr']:.2f} dB, "
                  f"min swap {row['min_swap']:.3f}", flush=True)
    (out / "sweep.md").write_text(_table(rows))
    floors = [r["probe_floor_mean"] for r in rows if r.get("probe_floor_mean") is not None]
    _plot(rows, out / "probe_vs_psnr.png", floors[0] if floors else None)
    print(f"table: {out / 'sweep.md'}; picture: {out / 'probe_vs_psnr.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
