import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def test_two_cpu_processes_keep_identical_weights(synthetic_dir, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
    assert torchrun, "torchrun comes with PyTorch; it should be beside the Python interpreter"
    report = tmp_path / "report.json"
    worker = Path(__file__).with_name("ddp_worker.py")
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", str(worker), str(synthetic_dir),
         str(tmp_path / "run"), str(report)],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    # show every rank's error line first: the tail alone holds only torchrun's summary
    errors = [line for line in result.stderr.splitlines() if "Error" in line and "[rank" in line]
    assert result.returncode == 0, "\n".join(errors[:20]) + "\n...\n" + result.stderr[-2000:]
    r = json.loads(report.read_text())
    assert r["world"] == 2 and r["step"] == 6
    assert r["batches_differ"]  # each rank saw its own data ...
    assert r["max_diff"] == 0.0  # ... yet the weights stayed identical
    # rank 0 wrote the run; its checkpoint resumes like any other
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 6 and len(state["rng"]) == 2
