"""The ``fader`` command line. Each sub-command is a thin wrapper over a library function,
so everything it does can also be done from a notebook.

The options of ``fader train`` and ``fader train-classifier`` are the fields of
:class:`~faderlib.train.TrainConfig` and :class:`~faderlib.classifier.ClassifierConfig`, one
flag per field; a flag not given keeps the value of the recipe (``--recipe``, by default ``paper``:
TrainConfig's defaults, the reference code's settings), so that no default is written twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import traceback
import warnings

from .cache import CACHE_ENV_VAR, prepare
from .celeba import default_data_dir, resolve_data_dir
from .classifier import ClassifierConfig, train_classifier
from .config import ModelConfig
from .demo import run_demo
from .edit import EditNote, edit_image, parse_changes
from .evaluate import evaluate
from .images import check_output, save_image
from .interpolate import (DEFAULT_ALPHAS, check_image_range, interpolation_grid, interpolation_grid_2d, parse_alphas,
                          save_grid)
from .reports import format_report
from .runs import load_run
from .summary import format_table, parameter_counts
from .synth import generate
from .train import RECIPES, TrainConfig, Trainer
from .errors import TrainingStopped

#: One flag per setting: field -> (flag, type, help). The type is what argparse converts the
#: text to (``str`` for the settings given as words or lists, checked by the dataclass). Defaults
#: are not here: they come from the dataclass (and the recipe), and the help text shows them.
TRAIN_FLAGS = {
    "data_dir": ("--data", str, "data folder (default: $FADER_DATA, else data/synthetic)"),
    "attributes": ("--attrs", str,
                   "comma-separated attributes in the order you want, e.g. Smiling,Eyeglasses or Hair.3"),
    "image_size": ("--size", int, "image size: 32, 64, 128 or 256"),
    "preset": ("--preset", str, "network preset: 'official' (reference code) or 'paper'"),
    "steps": ("--steps", int, "iterations in all (each: one step of each network)"),
    "batch_size": ("--batch-size", int, "images per batch"),
    "lr": ("--lr", float, "Adam learning rate"),
    "beta1": ("--beta1", float, "Adam beta1"),
    "beta2": ("--beta2", float, "Adam beta2"),
    "clip_grad_norm": ("--clip-grad-norm", float, "gradient norm clipped at, per network"),
    "lambda_e": ("--lambda-e", float, "weight lambda_E of the adversarial term after the ramp"),
    "lambda_ramp": ("--lambda-ramp", int, "steps over which lambda_E grows from 0"),
    "lr_decay": ("--lr-decay", float, "share of the last steps over which the learning rate falls linearly to 0 "
                                      "(0: constant, as the paper)"),
    "patch_weight": ("--patch-weight", float, "weight of an image-space patch discriminator (the reference code's "
                                              "option; 0: none, the paper's method)"),
    "adversary": ("--adversary", str, "the encoder's target for the latent discriminator: flip (the paper's: make it "
                                      "predict the flipped attributes), uniform (make its prediction uniform) or "
                                      "reverse (gradient reversal: maximise its loss)"),
    "dis_steps": ("--dis-steps", int, "latent-discriminator steps per autoencoder step, each on its own batch "
                                      "(the reference code's n_lat_dis)"),
    "dis_lr_scale": ("--dis-lr-scale", float, "the latent discriminator's learning rate as a multiple of --lr (above "
                                              "1: it learns faster than the encoder hides, a two time-scale rule)"),
    "balance": ("--balance", str, "draw this attribute's classes equally often (rare ones); 'auto': the rarest if "
                                  "under 15 %%; 'none': no balancing"),
    "seed": ("--seed", int, "random seed (same seed, same run)"),
    "checkpoint_every": ("--checkpoint-every", int, "steps between checkpoints (default: a quarter of the steps, "
                                                    "100 to 1000)"),
    "eval_every": ("--eval-every", int, "steps between validations and sample grids (default: a sixth of the "
                                        "steps, 50 to 1000)"),
    "eval_images": ("--eval-images", int, "validation images per validation"),
    "probe_images": ("--probe-images", int, "validation images of the latent probe refitted at each validation "
                                            "(two thirds to fit, one to score; 0: none)"),
    "log_every": ("--log-every", int, "steps between rows of metrics.jsonl (default: a tenth of the steps, 1 to 25)"),
    "device": ("--device", str, "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps"),
    "precision": ("--precision", str, "fp32, bf16 (autocast) or auto: bf16 on a CUDA GPU, and on a CPU with native "
                                      "bf16 at 128 and 256 px (measured faster), fp32 elsewhere"),
    "prefetch": ("--prefetch", str, "training batches read ahead by a background thread (0: none; auto: 2 on CUDA, "
                                    "0 on a CPU)"),
}
CLASSIFIER_FLAGS = {
    "data_dir": TRAIN_FLAGS["data_dir"],
    "image_size": TRAIN_FLAGS["image_size"],
    "attributes": ("--attrs", str, "comma-separated attributes (default: every attribute of the data set)"),
    "preset": TRAIN_FLAGS["preset"],
    "steps": ("--steps", int, "training steps"),
    "batch_size": TRAIN_FLAGS["batch_size"],
    "lr": TRAIN_FLAGS["lr"],
    "seed": TRAIN_FLAGS["seed"],
    "device": TRAIN_FLAGS["device"],
}


def _field_defaults(cls) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _show(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


def _add_settings(p: argparse.ArgumentParser, cls, flags: dict, recipes: dict | None = None) -> None:
    """One option per field of ``cls`` named in ``flags``; defaults shown, never copied:
    a flag left out is absent from the parsed arguments (``argparse.SUPPRESS``)."""
    defaults = _field_defaults(cls)
    for name, (flag, kind, text) in flags.items():
        default = defaults[name]
        shown = [] if "(default" in text else [f"default {_show(default)}"]
        for recipe, values in (recipes or {}).items():
            if name in values and recipe != "paper":
                shown.append(f"{recipe}: {_show(values[name])}")
        help_text = text + (f" ({'; '.join(shown)})" if shown else "")
        p.add_argument(flag, dest=name, type=kind, default=argparse.SUPPRESS, help=help_text)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """--preset, --size, --attrs of `fader summary`, defaults from ModelConfig."""
    defaults = _field_defaults(ModelConfig)
    p.add_argument("--preset", default=defaults["preset"], help=f"{TRAIN_FLAGS['preset'][2]} (default %(default)s)")
    p.add_argument("--size", type=int, default=defaults["image_size"],
                   help=f"{TRAIN_FLAGS['image_size'][2]} (default %(default)s)")
    p.add_argument("--attrs", default=_show([a.spec for a in defaults["attributes"]]),
                   help=f"{TRAIN_FLAGS['attributes'][2]} (default %(default)s)")


def _settings(args, flags: dict) -> dict:
    """The settings given on the command line, as dataclass fields."""
    given = {name: getattr(args, name) for name in flags if hasattr(args, name)}
    if isinstance(given.get("balance"), str) and given["balance"].lower() == "none":
        given["balance"] = None
    model = {k: getattr(args, k) for k in ("init_fm", "n_layers") if getattr(args, k, None) is not None}
    if model:
        given["model"] = model
    for name in ("flip", "compile"):
        if getattr(args, name, None) is not None:
            given[name] = getattr(args, name)
    if getattr(args, "bf16", None):
        given["precision"] = "bf16"
    if isinstance(given.get("prefetch"), str) and given["prefetch"] != "auto":
        try:
            given["prefetch"] = int(given["prefetch"])
        except ValueError:
            raise ValueError(f"--prefetch {given['prefetch']!r}: a number of batches (0: none) or auto") from None
    for name in ("channels_last", "data_on_device", "fast_convs"):
        if getattr(args, name, None) is not None:
            given[name] = {"auto": "auto", "on": True, "off": False}[getattr(args, name)]
    return given


def cmd_summary(args) -> int:
    config = ModelConfig.from_preset(args.preset, args.size, args.attrs)
    if args.json:
        print(json.dumps(parameter_counts(config), indent=2))
    else:
        print(format_table(config))
    return 0


def cmd_synth(args) -> int:
    out = generate(args.out_dir or default_data_dir(), n=args.n, seed=args.seed, workers=args.workers, force=args.force)
    print(f"synthetic faces written to {out}")
    return 0


def cmd_prepare(args) -> int:
    path = prepare(resolve_data_dir(args.data_dir), args.size, cache_dir=args.cache_dir,
                   workers=args.workers, skip_bad=args.skip_bad, force=args.force, verify=args.verify)
    print(f"cache ready: {path}")
    return 0


def train_config(args) -> TrainConfig:
    """The :class:`TrainConfig` of a ``fader train`` command line."""
    return TrainConfig.from_recipe(args.recipe, **_settings(args, TRAIN_FLAGS))


#: exit status of `fader train` stopped by SIGTERM, its checkpoint saved: 128 + 15, as a shell reports it
SIGTERM_EXIT = 143


def cmd_train(args) -> int:
    """Train, or resume, a run. SIGTERM (a job scheduler's notice) saves last.pt at the next step and
    exits with 143 (128 + SIGTERM), saying so: rerunning the same command resumes the run."""
    trainer = Trainer(train_config(args), args.out, progress=not args.quiet, resume_from=args.resume_from)
    try:
        if trainer.step >= trainer.config.steps:
            print(f"nothing to train: the run is already at step {trainer.step} (>= --steps {trainer.config.steps})"
                  + ("; its config.json is unchanged" if trainer.step else "; no checkpoint was written"))
            return 0
        if trainer.step:
            print(f"resuming {args.out} from step {trainer.step}")
        try:
            trainer.train()
        except TrainingStopped as stop:
            if trainer.dist.main:
                print(f"fader train: {stop}", file=sys.stderr)
            return SIGTERM_EXIT
        if trainer.dist.main:
            print(f"done: {trainer.step} steps; checkpoints in {trainer.checkpoint_dir}")
    finally:
        trainer.close()
    return 0


def cmd_train_classifier(args) -> int:
    config = ClassifierConfig(**_settings(args, CLASSIFIER_FLAGS))
    record = train_classifier(config, args.out, progress=not args.quiet)
    print(json.dumps(record["test_accuracy"], indent=2))
    return 0


def cmd_evaluate(args) -> int:
    result = evaluate(args.run_dir, args.classifier, checkpoint=args.checkpoint, max_images=args.max_images,
                      strength=args.strength, device=args.device)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def cmd_demo(args) -> int:
    run_demo(out=args.out, quick=args.quick, other_adversary=args.other_adversary)
    return 0


def cmd_grid(args) -> int:
    run = load_run(args.run_dir, args.checkpoint)
    alphas = parse_alphas(args.alphas)
    check_image_range(run, 1 if args.attr2 else args.n, args.index, names=("--n", "--index"))
    if args.attr2:
        alphas2 = parse_alphas(args.alphas2) if args.alphas2 else None
        grid = interpolation_grid_2d(run, args.attr, args.attr2, alphas, alphas2, index=args.index)
    else:
        grid = interpolation_grid(run, attribute=args.attr, alphas=alphas, n=args.n, start=args.index)
    print(f"grid written to {save_grid(grid, args.out, force=args.force)} ({grid.width}x{grid.height})")
    return 0


def cmd_edit(args) -> int:
    changes = parse_changes(args.set or [])
    check_output(args.out, args.force, protect=(args.image,))  # before any work: a refusal costs nothing
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always", EditNote)
        image = edit_image(args.run_dir, args.image, changes, crop=args.crop, compare=args.compare,
                           classifier=None if args.classifier == "none" else args.classifier,
                           checkpoint=args.checkpoint)
    for note in notes:
        print(f"note: {note.message}")
    out = save_image(image, args.out, force=args.force, protect=(args.image,))
    print(f"edited image written to {out} ({image.width}x{image.height})")
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
    p.add_argument("--force", action="store_true",
                   help="replace a complete synthetic set made with other settings (runs and caches made from it "
                        "then no longer match)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("prepare", help="crop, resize and cache a data set as one memory-mapped array")
    p.add_argument("data_dir", nargs="?", default=None,
                   help="CelebA or synthetic data folder (default: $FADER_DATA, else data/synthetic)")
    p.add_argument("--size", type=int, default=_field_defaults(TrainConfig)["image_size"],
                   help=f"{TRAIN_FLAGS['image_size'][2]} (default %(default)s, the training default)")
    p.add_argument("--cache-dir", default=None,
                   help="where to write the cache (default: $FADER_CACHE, else DATA_DIR/fader_cache)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images (counted) instead of stopping")
    p.add_argument("--force", action="store_true", help="rebuild the cache even if it looks up to date")
    p.add_argument("--verify", action="store_true", help="check every byte of the cache against its checksums "
                   "(opening checks the tables and a few chunks); a damaged cache is rebuilt")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a Fader network (resumes when --out holds the same run)")
    p.add_argument("--out", required=True, help="run folder (created; an existing run of the same command resumes)")
    p.add_argument("--recipe", choices=list(RECIPES), default="paper",
                   help="the settings to start from: paper (default), course (what the demo and the notebooks "
                        "train), tiny (seconds); every flag below overrides one")
    _add_settings(p, TrainConfig, TRAIN_FLAGS, RECIPES)
    p.add_argument("--init-fm", type=int, default=None, help="filters of the first layer (the preset's by default)")
    p.add_argument("--n-layers", type=int, default=None, help="encoder layers (the preset's by default)")
    p.add_argument("--no-flip", dest="flip", action="store_const", const=False, default=None,
                   help="no random horizontal flips")
    p.add_argument("--bf16", action="store_const", const=True, default=None,
                   help="bf16 autocast, the same as --precision bf16")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default=None,
                   help="memory layout (default auto: the one measured faster for the device)")
    p.add_argument("--compile", action="store_const", const=True, default=None,
                   help="torch.compile the two networks (CUDA; the first steps take a minute longer)")
    p.add_argument("--fast-convs", choices=["auto", "on", "off"], default=None,
                   help="compute the small convolutions (2x2, 4x4 images) as one matrix product, the same numbers "
                        "faster (default auto: on a CPU, where it was measured faster; faderlib/fastconv.py)")
    p.add_argument("--data-on-device", choices=["auto", "on", "off"], default=None,
                   help="upload the training split to the GPU once as uint8 (default auto: when it fits "
                        "with room to spare)")
    p.add_argument("--resume-from", choices=["last.pt", "best.pt"], default="last.pt",
                   help="the checkpoint of --out to resume from (best.pt: when last.pt is damaged)")
    _add_cache_dir(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-classifier", help="train the attribute classifier used to evaluate swaps")
    p.add_argument("--out", required=True, help="folder for classifier.pt and config.json")
    _add_settings(p, ClassifierConfig, CLASSIFIER_FLAGS)
    p.add_argument("--init-fm", type=int, default=None, help="filters of the first layer (the preset's by default)")
    _add_cache_dir(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
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
    _add_cache_dir(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("grid", help="interpolation grid: one attribute swept beyond [0, 1] (or two, on two axes)")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True, help="image file to write: .png (lossless) or .jpg")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    _add_cache_dir(p)
    p.add_argument("--attr", default=None, help="binary attribute to sweep (default: the run's first)")
    p.add_argument("--alphas", default=",".join(f"{a:g}" for a in DEFAULT_ALPHAS),
                   help="comma-separated alphas; the decoder gets [1 - alpha, alpha] (default %(default)s)")
    p.add_argument("--n", type=int, default=6, help="number of test images, one per row (default 6)")
    p.add_argument("--index", type=int, default=0, help="first test image (default 0)")
    p.add_argument("--attr2", default=None, help="a second attribute, swept down the rows, for one image (2-D grid)")
    p.add_argument("--alphas2", default=None, help="alphas of --attr2 (default: those of --alphas)")
    p.add_argument("--checkpoint", default="last.pt", help="last.pt (default) or best.pt")
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("edit", help="edit any photo: fader edit RUN_DIR IMAGE --set Smiling=1.5 --out out.png")
    p.add_argument("run_dir")
    p.add_argument("image", help="a JPEG or PNG of any size")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="attribute value, repeatable: binary alpha (0 absent, 1 present, beyond exaggerates), "
                        "categorical class index; attributes not set keep what --classifier reads from the photo")
    p.add_argument("--out", required=True,
                   help="image file to write: .png (lossless) or .jpg (quality 95); never the input photo")
    p.add_argument("--force", action="store_true", help="replace --out if it exists (never the input photo)")
    p.add_argument("--crop", choices=["auto", "celeba", "center"], default="auto",
                   help="celeba: rows 20..197 of an aligned 178x218 image; center: centred square; "
                        "auto (default): celeba for 178x218 images, else center")
    p.add_argument("--compare", action="store_true", help="write the cropped input and the edit side by side")
    p.add_argument("--classifier", default="auto",
                   help="the attribute classifier whose reading of the photo sets the attributes not given with "
                        "--set: auto (default: the one kept with the run, as the slider app), a folder, or none "
                        "(they are 0)")
    p.add_argument("--checkpoint", default="last.pt", help="last.pt (default) or best.pt")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("demo", help="the whole pipeline on the synthetic faces, on CPU (what `make demo` runs)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    _add_cache_dir(p)
    p.add_argument("--quick", action="store_true", help="a tiny version for tests (minutes become seconds)")
    p.add_argument("--other-adversary", action="store_true",
                   help="also train the recipe with the other adversarial setting, for notebook 05 (what `make "
                        "demo-adversary` runs; what is already trained in --out is reused)")
    p.set_defaults(func=cmd_demo)
    return parser


def _add_cache_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", default=None,
                   help=f"where the data's caches are, or go (default: ${CACHE_ENV_VAR}, else DATA_DIR/fader_cache): "
                        "for a data folder on a read-only share, or a faster disk")


#: Options whose value may be a list starting with a negative number: ``--alphas -1,0,2``.
NEGATIVE_LIST_FLAGS = ("--alphas", "--alphas2")


def attach_negative_lists(argv: list[str]) -> list[str]:
    """``--alphas -1,0,2`` as ``--alphas=-1,0,2``. argparse reads a word that starts with '-' as
    an option unless it is one number (-1, -0.5), so it would refuse the list; attached with
    '=', it is the option's value. Any other word is left as it is."""
    out = []
    for arg in argv:
        if out and out[-1] in NEGATIVE_LIST_FLAGS and re.fullmatch(r"-[\d.,]+", arg):
            out[-1] += "=" + arg
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(attach_negative_lists(sys.argv[1:] if argv is None else argv))
    before = os.environ.get(CACHE_ENV_VAR)
    if getattr(args, "cache_dir", None):
        os.environ[CACHE_ENV_VAR] = args.cache_dir  # for every cache this command opens, in this process and its children
    try:
        return _run(args)
    finally:  # called from Python (a notebook, a test), the next command starts as this one did
        if before is None:
            os.environ.pop(CACHE_ENV_VAR, None)
        else:
            os.environ[CACHE_ENV_VAR] = before


def _run(args) -> int:
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
