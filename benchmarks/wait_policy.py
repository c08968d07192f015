"""Training speed with another process busy on the machine: PyTorch's OpenMP threads waiting
passively (``OMP_WAIT_POLICY=PASSIVE``) against spinning (libgomp's default), and where the
kit sets the passive policy.

libgomp reads ``OMP_WAIT_POLICY`` once, when torch loads it, so the policy is set where work
starts, before torch is imported: the ``fader`` command (``faderlib.__main__.main``, also
``python -m faderlib``), ``tools/lab.py`` (the Jupyter server of ``make lab``, and so its
kernels), the Makefile (every target) and the tests' ``conftest.py``. Not ``import faderlib``.

Each case is a ``fader train`` of the course recipe at 64 px (batch 32, CPU) in a fresh
subprocess, a busy loop holding one core meanwhile; the cases are alternated, twice each.
Images/s are the training's own (``metrics.jsonl``, after the first ``LOG_EVERY`` steps):

* ``python -m faderlib train ...``, OMP_WAIT_POLICY unset: the entry point sets PASSIVE;
* ``faderlib.cli.main`` called from Python, OMP_WAIT_POLICY unset: libgomp's default;
* ``faderlib.cli.main`` called from Python, OMP_WAIT_POLICY=PASSIVE in the environment.

Run ``python benchmarks/wait_policy.py`` (not part of ``make bench``: it measures a setting, not the kit).
A few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = 30
LOG_EVERY = 10
ROUNDS = 2

CASES = {
    "fader entry point (python -m faderlib), OMP_WAIT_POLICY unset": (["-m", "faderlib"], None),
    "cli.main from Python, OMP_WAIT_POLICY unset (libgomp's default)": (
        ["-c", "import sys; from faderlib.cli import main; sys.exit(main())"], None),
    "cli.main from Python, OMP_WAIT_POLICY=PASSIVE": (
        ["-c", "import sys; from faderlib.cli import main; sys.exit(main())"], "PASSIVE"),
}


def _train(prefix: list[str], policy: str | None, data: Path, out: Path) -> float:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, *prefix, "train", "--recipe", "course", "--size", "64", "--steps", str(STEPS),
           "--log-every", str(LOG_EVERY), "--eval-every", "1000", "--checkpoint-every", "1000", "--device", "cpu",
           "--data", str(data), "--out", str(out), "--quiet"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["images_per_s"] for r in rows if "images_per_s" in r and r.get("step", 0) > LOG_EVERY]
    return sum(speeds) / len(speeds)


def run() -> list[dict]:
    from faderlib.cache import prepare
    from faderlib.synth import ensure_synthetic

    rows = []
    with tempfile.TemporaryDirectory(prefix="fader-bench-wait-") as tmp:
        tmp = Path(tmp)
        data = ensure_synthetic(tmp / "faces", n=300, seed=0, progress=False)
        prepare(data, 64, progress=False)
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            speeds = {name: [] for name in CASES}
            for r in range(ROUNDS):
                for name in (CASES if r % 2 == 0 else reversed(CASES)):
                    prefix, policy = CASES[name]
                    speeds[name].append(_train(prefix, policy, data, tmp / f"run-{len(list(tmp.iterdir()))}"))
        finally:
            busy.kill()
            busy.wait()
    for name, values in speeds.items():
        rows.append({"benchmark": "train with a busy core", "setting": f"64 px course recipe, {name}",
                     "value": round(max(values), 1), "unit": "images/s"})
        rows.append({"benchmark": "train with a busy core", "setting": f"  each run: {name}",
                     "value": " / ".join(f"{v:.1f}" for v in values), "unit": "images/s"})
    return rows


if __name__ == "__main__":
    t = time.perf_counter()
    for r in run():
        print(f"{r['setting']:<100} {r['value']:>12} {r['unit']}")
    print(f"({time.perf_counter() - t:.0f} s in all)")
