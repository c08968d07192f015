"""What the benchmark scripts share: the tests' CelebA-format fixture writer, and a ``main`` that
prints a benchmark's rows as a table (or JSON)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def celeba_fixture():
    """The module ``tests/celeba_fixture.py`` (its ``write_celeba_fixture`` writes CelebA's layout)."""
    spec = importlib.util.spec_from_file_location("celeba_fixture", HERE.parent / "tests" / "celeba_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def print_rows_main(run, description: str, argv=None, name_width: int = 24, value_format: str = ".1f") -> None:
    """Parse ``--json``, call ``run()``, print its rows (benchmark, setting, value, unit) and the time taken."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    t = time.perf_counter()
    rows = run()
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    width = max(len(r["setting"]) for r in rows)
    for r in rows:
        print(f"{r['benchmark']:<{name_width}} {r['setting']:<{width}} {r['value']:>10{value_format}} {r['unit']}")
    print(f"({time.perf_counter() - t:.0f} s in all)")


def steps_only(trainer_class):
    """A subclass of :class:`faderlib.train.Trainer` whose ``train(n)`` times the iterations alone: the
    validation and the checkpoint a call to ``train`` ends with are skipped (they are not part of a
    step; they cost one to three iterations' time at the end of every timed call)."""

    class StepsOnly(trainer_class):
        def validate(self):
            return {"phase": "valid", "step": self.step}

        def save_checkpoint(self, name="last.pt"):
            return None

    return StepsOnly
