"""``make bench``: run every ``benchmarks/bench_*.py``, print one table, write results.md."""

from __future__ import annotations

import importlib.util
import platform
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    rows = []
    for path in sorted(HERE.glob("bench_*.py")):
        if names and path.stem.removeprefix("bench_") not in names:
            continue
        print(f"running {path.name} ...", flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # importable by name: worker processes unpickle its functions
        spec.loader.exec_module(module)
        t = time.perf_counter()
        rows += module.run()
        print(f"  {time.perf_counter() - t:.0f} s", flush=True)
    header = (f"Benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    lines = [header, "", "| benchmark | setting | value | unit |", "|---|---|---:|---|"]
    lines += [f"| {r['benchmark']} | {r['setting']} | {r['value']} | {r['unit']} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    (HERE / "results.md").write_text(text)
    print(f"written to {HERE / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
