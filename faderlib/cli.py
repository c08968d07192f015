"""The ``fader`` command line. Each sub-command is a thin wrapper over a library function,
so everything it does can also be done from a notebook."""

from __future__ import annotations

import argparse
import json
import os
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
    from .synth import generate

    out = generate(args.out_dir, n=args.n, seed=args.seed, workers=args.workers)
    print(f"synthetic faces written to {out}")
    return 0


def cmd_prepare(args) -> int:
    from .cache import prepare
    from .celeba import resolve_data_dir

    path = prepare(resolve_data_dir(args.data_dir), args.size, cache_dir=args.cache_dir,
                   workers=args.workers, skip_bad=args.skip_bad)
    print(f"cache ready: {path}")
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
    p.add_argument("out_dir", help="folder to create (must be empty or absent)")
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
    p.set_defaults(func=cmd_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as exc:
        # Errors of ours carry a message written for the user; a traceback would hide it.
        if os.environ.get("FADER_DEBUG"):
            traceback.print_exc()
        print(f"fader {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fader {args.command}: interrupted", file=sys.stderr)
        return 130
