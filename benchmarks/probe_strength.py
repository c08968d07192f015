"""How strong a witness is the latent probe? The same probe (``faderlib.evaluate.probe_scores``,
300 full-batch steps) fitted on more and more training codes of a trained run, scored on the same
test codes, beside its floor (the probe fitted on the other attributes of the label table,
``faderlib.evaluate.probe_floor``) fitted on the same images.

A probe fitted on few codes can miss what one fitted on many reads (a rare attribute above all), so a
probe's number is a lower bound of what z says: compare runs at one number of codes.

    python benchmarks/probe_strength.py runs/sweep/flip_lam0.02_dis4_seed0_steps3000 --fit 2000 4000 8000

About a minute per run and 8,000 codes on one slow core (the encoding of the codes is most of it).
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="trained run folders")
    parser.add_argument("--fit", type=int, nargs="+", default=[2000, 4000, 8000],
                        help="numbers of training codes to fit the probe on (default 2000 4000 8000)")
    parser.add_argument("--test-images", type=int, default=1000)
    args = parser.parse_args(argv)

    from faderlib.evaluate import encode_split, other_attributes, probe_scores
    from faderlib.runs import load_run

    most = max(args.fit)
    print("run | codes fitted | probe (balanced accuracy per attribute) | floor (the other attributes)")
    for run_dir in args.runs:
        run = load_run(run_dir)
        train, test = run.dataset("train"), run.dataset("test")
        names = run.model_config.attribute_names
        z_train, y_train = encode_split(run.autoencoder, train, most)
        z_test, y_test = encode_split(run.autoencoder, test, args.test_images)
        f_train, f_test = other_attributes(train, names, most), other_attributes(test, names, args.test_images)
        for n in sorted(args.fit):
            if n > len(z_train):
                print(f"{run_dir}: the training split has {len(z_train)} images, not {n}", file=sys.stderr)
                continue
            probe = probe_scores(z_train[:n], y_train[:n], z_test, y_test, run.model_config, 300)
            floor = (probe_scores(f_train[:n], y_train[:n], f_test, y_test, run.model_config, 300)
                     if f_train.shape[1] else {})
            fmt = lambda d: " / ".join(f"{d[k]['balanced_accuracy']:.3f}" for k in names) if d else "-"  # noqa: E731
            print(f"{run_dir} | {n} | {fmt(probe)} | {fmt(floor)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
