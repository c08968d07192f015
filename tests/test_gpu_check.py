"""benchmarks/gpu_check.py, the script a person with a GPU runs once: its quick mode on the CPU,
so that the script cannot rot between the rare sessions that have a GPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_runs_every_section_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
                        "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    r = json.loads(out.read_text())
    for name in ("environment", "speed", "class_lab", "real_run", "torchrun"):
        assert name in r and not (isinstance(r[name], dict) and r[name].get("error")), (name, r.get(name))
    assert r["environment"]["torch"] and r["environment"]["device"] == "cpu"
    speed = r["speed"]
    assert len(speed) == 8  # fp32 / bf16 x channels-last on / off x host-fed / resident
    assert {(s["precision"], s["channels_last"], s["data_on_device"]) for s in speed} == \
        {(p, c, d) for p in ("fp32", "bf16") for c in (True, False) for d in (True, False)}
    assert all(s["images_per_s"] > 0 and s["precision_used"] == s["precision"] for s in speed)
    assert r["class_lab"]["all_finished"] and r["class_lab"]["aggregate_images_per_s"] > 0
    for mode in ("defaults", "deterministic"):
        run = r["real_run"][mode]
        assert run["finite_losses"] and run["checkpoint"] and run["samples"] > 0
        assert run["bitwise_equal"]  # on a CPU, a resumed run is bitwise the uninterrupted one
    assert r["torchrun"]["ok"], r["torchrun"]
    assert "images/s" in p.stdout and "written to" in p.stdout
