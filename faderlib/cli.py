"""The ``fader`` command line. Each sub-command is a thin wrapper over a library function,
so everything it does can also be done from a notebook."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback


def _add_model_args(p: argparse.ArgumentParser, size_default: int = 256, attrs_default: str = "Male") -> None:
    p.add_argument("--preset", default="official", help="network preset: 'official' (reference code) or 'paper'")
    p.add_argument("--size", type=int, default=size_default, help="image size: 32, 64, 128 or 256")
    p.add_argument("--attrs", default=attrs_default,
                   help="comma-separated attributes in the order you want, e.g. Smiling,Eyeglasses or Hair.3")


def cmd_summary(args) -> int:
    from .config import ModelConfig
    from .summary import format_table, parameter_counts

    config = ModelConfig.from_preset(args.preset, args.size, args.attrs)
    if args.json:
        print(json.dumps(parameter_counts(config), indent=2))
    else:
        print(format_table(config))
    return 0


def cmd_synth(args) -> int:
    from .celeba import default_data_dir
    from .synth import generate

    out = generate(args.out_dir or default_data_dir(), n=args.n, seed=args.seed, workers=args.workers)
    print(f"synthetic faces written to {out}")
    return 0


def cmd_prepare(args) -> int:
    from .cache import prepare
    from .celeba import resolve_data_dir

    path = prepare(resolve_data_dir(args.data_dir), args.size, cache_dir=args.cache_dir,
                   workers=args.workers, skip_bad=args.skip_bad, force=args.force)
    print(f"cache ready: {path}")
    return 0


def _train_config(args):
    from .train import TrainConfig

    model = {}
    if args.init_fm is not None:
        model["init_fm"] = args.init_fm
    if args.n_layers is not None:
        model["n_layers"] = args.n_layers
    cl = {"auto": "auto", "on": True, "off": False}[args.channels_last]
    return TrainConfig(
        data_dir=args.data, attributes=args.attrs, image_size=args.size, preset=args.preset, model=model,
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, lambda_e=args.lambda_e,
        lambda_ramp=args.lambda_ramp, flip=not args.no_flip, balance=args.balance, seed=args.seed,
        checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, device=args.device,
        bf16=args.bf16, channels_last=cl,
    )


def cmd_train(args) -> int:
    from .train import Trainer

    trainer = Trainer(_train_config(args), args.out, progress=not args.quiet)
    if trainer.step:
        print(f"resuming {args.out} from step {trainer.step}")
    trainer.train()
    if trainer.dist.main:
        print(f"done: {trainer.step} steps; checkpoints in {trainer.checkpoint_dir}")
    trainer.close()
    return 0


def cmd_train_classifier(args) -> int:
    from .classifier import ClassifierConfig, train_classifier

    config = ClassifierConfig(data_dir=args.data, image_size=args.size, preset=args.preset,
                              attributes=tuple(args.attrs.split(",")) if args.attrs else None,
                              steps=args.steps, batch_size=args.batch_size, seed=args.seed, device=args.device)
    record = train_classifier(config, args.out, progress=not args.quiet)
    print(json.dumps(record["test_accuracy"], indent=2))
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate, format_report

    result = evaluate(args.run_dir, args.classifier, checkpoint=args.checkpoint, max_images=args.max_images,
                      strength=args.strength, device=args.device)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(out=args.out, quick=args.quick)
    return 0


def cmd_grid(args) -> int:
    from .interpolate import interpolation_grid, interpolation_grid_2d, parse_alphas, save_grid
    from .runs import load_run

    run = load_run(args.run_dir, args.checkpoint)
    alphas = parse_alphas(args.alphas)
    if args.attr2:
        alphas2 = parse_alphas(args.alphas2) if args.alphas2 else None
        grid = interpolation_grid_2d(run, args.attr, args.attr2, alphas, alphas2, index=args.index)
    else:
        grid = interpolation_grid(run, attribute=args.attr, alphas=alphas, n=args.n, start=args.index)
    print(f"grid written to {save_grid(grid, args.out)} ({grid.width}x{grid.height})")
    return 0


def cmd_edit(args) -> int:
    import warnings

    from .edit import EditNote, edit_image, parse_changes
    from .interpolate import save_grid

    changes = parse_changes(args.set or [])
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", EditNote)
        image = edit_image(args.run_dir, args.image, changes, crop=args.crop, compare=args.compare,
                           classifier=args.classifier, checkpoint=args.checkpoint)
    for note in notes:
        print(f"note: {note.message}")
    print(f"edited image written to {save_grid(image, args.out)} ({image.width}x{image.height})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fader",
        description="Fader Networks (Lample et al., NIPS 2017): a teaching kit. "
                    "Each command has its own --help.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("summary", help="layer-by-layer table of a configuration and its parameter counts")
    _add_model_args(p)
    p.add_argument("--json", action="store_true", help="print the parameter counts as a JSON object")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("synth", help="write the built-in synthetic faces in CelebA's file layout")
    p.add_argument("out_dir", nargs="?", default=None,
                   help="folder to create, empty or absent (default: data/synthetic, the kit's default data set)")
    p.add_argument("--n", type=int, default=20000, help="number of faces (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same faces)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("prepare", help="crop, resize and cache a data set as one memory-mapped array")
    p.add_argument("data_dir", nargs="?", default=None,
                   help="CelebA or synthetic data folder (default: $FADER_DATA, else data/synthetic)")
    p.add_argument("--size", type=int, default=64, help="image size: 32, 64, 128 or 256 (default 64)")
    p.add_argument("--cache-dir", default=None, help="where to write the cache (default DATA_DIR/fader_cache)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images (counted) instead of stopping")
    p.add_argument("--force", action="store_true", help="rebuild the cache even if it looks up to date")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a Fader network (resumes when --out holds the same run)")
    p.add_argument("--data", default=None, help="data folder (default: $FADER_DATA, else data/synthetic)")
    p.add_argument("--attrs", default="Smiling", help="comma-separated attributes, e.g. Smiling,Eyeglasses,Male")
    p.add_argument("--size", type=int, default=64, help="image size: 32, 64, 128 or 256 (default 64)")
    p.add_argument("--preset", default="official", help="'official' (reference code) or 'paper'")
    p.add_argument("--init-fm", type=int, default=None, help="filters of the first layer (preset's by default)")
    p.add_argument("--n-layers", type=int, default=None, help="encoder layers (preset's by default)")
    p.add_argument("--steps", type=int, default=10000, help="iterations in all (each: one step of each network)")
    p.add_argument("--out", required=True, help="run folder (created; an existing run of the same command resumes)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (default 2e-4)")
    p.add_argument("--lambda-e", type=float, default=1e-4, help="weight of the adversarial term after the ramp")
    p.add_argument("--lambda-ramp", type=int, default=500000, help="steps over which lambda_E grows from 0")
    p.add_argument("--balance", default=None, help="draw this attribute's classes equally often (rare ones)")
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints (default 1000)")
    p.add_argument("--eval-every", type=int, default=500, help="steps between validations and sample grids")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="memory layout (auto: the one measured faster for the device and size)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-classifier", help="train the attribute classifier used to evaluate swaps")
    p.add_argument("--data", default=None, help="data folder (default: $FADER_DATA, else data/synthetic)")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--preset", default="official")
    p.add_argument("--attrs", default=None, help="attributes (default: every attribute of the data set)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="folder for classifier.pt and config.json")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train_classifier)

    p = sub.add_parser("evaluate", help="reconstruction, discriminator, swap and counterfactual scores of a run")
    p.add_argument("run_dir")
    p.add_argument("--classifier", default=None, help="folder of a classifier from train-classifier")
    p.add_argument("--checkpoint", default="last.pt", help="last.pt (default) or best.pt")
    p.add_argument("--max-images", type=int, default=None, help="evaluate on the first N test images only")
    p.add_argument("--strength", type=float, default=1.0,
                   help="edit strength of the swaps: 1 = set to 0/1 (paper), 1.5 = alpha 1.5 / -0.5")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("grid", help="interpolation grid: one attribute swept beyond [0, 1] (or two, on two axes)")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--attr", default=None, help="binary attribute to sweep (default: the run's first)")
    p.add_argument("--alphas", default="-1,0,0.5,1,2",
                   help="comma-separated alphas; the decoder gets [1 - alpha, alpha] (default -1,0,0.5,1,2)")
    p.add_argument("--n", type=int, default=6, help="number of test images, one per row (default 6)")
    p.add_argument("--index", type=int, default=0, help="first test image (default 0)")
    p.add_argument("--attr2", default=None, help="a second attribute, swept down the rows, for one image (2-D grid)")
    p.add_argument("--alphas2", default=None, help="alphas of --attr2 (default: those of --alphas)")
    p.add_argument("--checkpoint", default="last.pt", help="last.pt (default) or best.pt")
    # let `--alphas -1,0,2` through: argparse takes only -1 or -0.5 alone for a negative number
    p._negative_number_matcher = re.compile(r"^-[\d.,]+$")
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("edit", help="edit any photo: fader edit RUN_DIR IMAGE --set Smiling=1.5 --out out.png")
    p.add_argument("run_dir")
    p.add_argument("image", help="a JPEG or PNG of any size")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="attribute value, repeatable: binary alpha (0 absent, 1 present, beyond exaggerates), "
                        "categorical class index; attributes not set are 0 (or the --classifier's reading)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--crop", choices=["auto", "celeba", "center"], default="auto",
                   help="celeba: rows 20..197 of an aligned 178x218 image; center: centred square; "
                        "auto (default): celeba for 178x218 images, else center")
    p.add_argument("--compare", action="store_true", help="write the cropped input and the edit side by side")
    p.add_argument("--classifier", default=None, help="classifier folder: start from the attributes it reads")
    p.add_argument("--checkpoint", default="last.pt", help="last.pt (default) or best.pt")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("demo", help="the whole pipeline on the synthetic faces, on CPU (what `make demo` runs)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--quick", action="store_true", help="a tiny version for tests (minutes become seconds)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, OSError) as exc:
        # Errors of ours carry a message written for the user; a traceback would hide it.
        if os.environ.get("FADER_DEBUG"):
            traceback.print_exc()
        print(f"fader {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fader {args.command}: interrupted", file=sys.stderr)
        return 130
