"""benchmarks/gpu_check.py, the script a person with a GPU runs once: its quick mode on the CPU,
so that the script cannot rot between the rare sessions that have a GPU."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"

#: Imported first by every Python process started with this folder on PYTHONPATH: Jupyter's
#: packages cannot be imported there, as on the lab's GPU machine, which has none.
NO_JUPYTER = '''
import importlib.abc, sys
BLOCKED = {"IPython", "ipywidgets", "ipykernel", "jupyter_client", "jupyter_core", "nbformat", "nbclient",
           "papermill", "voila", "notebook", "jupyterlab", "comm", "matplotlib_inline"}
class NoJupyter(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name}: no Jupyter on this machine (tests/test_gpu_check.py)")
        return None
sys.meta_path.insert(0, NoJupyter())
'''


def _env(tmp_path) -> dict:
    site = tmp_path / "no_jupyter"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(NO_JUPYTER)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def _run(tmp_path, *args, timeout=900, watch=None):
    """Run the script; with ``watch`` (a list), record every distinct state of its JSON file while it runs."""
    p = subprocess.Popen([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", *args], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    out_path = Path(args[args.index("--out") + 1])
    stop = threading.Event()

    def poll():
        last = None
        while not stop.is_set():
            try:
                text = out_path.read_text()
            except OSError:
                text = None
            if text and text != last:
                last = text
                watch.append(json.loads(text))
            time.sleep(0.1)

    thread = threading.Thread(target=poll, daemon=True) if watch is not None else None
    if thread:
        thread.start()
    try:
        stdout, stderr = p.communicate(timeout=timeout)
    finally:
        stop.set()
        if p.poll() is None:
            p.kill()
    return p.returncode, stdout, stderr


def test_jupyter_is_blocked_in_the_check_s_processes(tmp_path):
    p = subprocess.run([sys.executable, "-c", "import IPython"], capture_output=True, text=True, env=_env(tmp_path))
    assert p.returncode != 0 and "no Jupyter on this machine" in p.stderr


@pytest.mark.slow
def test_gpu_check_runs_every_section_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    seen: list[dict] = []
    failing = "precision=bf16,channels_last=True,data_on_device=True"
    code, stdout, stderr = _run(tmp_path, "--out", str(out), "--minutes", "12", "--inject-failure", failing,
                                watch=seen)
    assert code == 0, stdout[-2000:] + stderr[-2000:]
    r = json.loads(out.read_text())
    for name in ("environment", "speed", "class_lab", "real_run", "torchrun", "compile"):
        assert name in r and not (isinstance(r[name], dict) and r[name].get("error")), (name, r.get(name))
    assert r["environment"]["torch"] and r["environment"]["device"] == "cpu"

    # the speed rows: every configuration, timed over training iterations alone
    speed = r["speed"]
    assert len(speed) == 8  # fp32 / bf16 x channels-last on / off x host-fed / resident
    assert {(s["precision"], s["channels_last"], s["data_on_device"]) for s in speed} == \
        {(p, c, d) for p in ("fp32", "bf16") for c in (True, False) for d in (True, False)}
    failed = [s for s in speed if "error" in s]
    assert len(failed) == 1 and "injected" in failed[0]["error"]  # recorded, and the others went on
    assert (failed[0]["precision"], failed[0]["channels_last"], failed[0]["data_on_device"]) == ("bf16", True, True)
    for s in speed:
        if s is failed[0]:
            continue
        assert s["images_per_s"] > 0 and s["precision_used"] == s["precision"] and s["iterations"] == 2
        assert s["end_of_run_work"] == {"checkpoints": 0, "sample_grids": 0}  # no validation or checkpoint timed
        assert s["gpu_busy_share"] is None and s["peak_memory_gib"] is None  # null on a CPU

    # written row by row and section by section, not only at the end
    rows = [len(s.get("speed", [])) for s in seen]
    assert any(0 < n < 8 for n in rows), rows
    assert rows == sorted(rows)
    assert any("speed" in s and "class_lab" not in s for s in seen)
    assert any("class_lab" in s and "torchrun" not in s for s in seen)

    assert r["class_lab"]["all_finished"] and r["class_lab"]["aggregate_images_per_s"] > 0
    for mode in ("defaults", "deterministic"):
        run = r["real_run"][mode]
        assert run["finite_losses"] and run["checkpoint"] and run["samples"] > 0
        assert run["bitwise_equal"]  # on a CPU, a resumed run is bitwise the uninterrupted one
    torchrun = r["torchrun"]
    assert torchrun["ok"] and torchrun["processes"] == 1 and torchrun["forced_group_of_one"], torchrun
    assert torchrun["ranks"][0]["process_group"] and torchrun["ranks"][0]["ddp"]
    assert torchrun["ranks"][0]["backend"] == "gloo"
    assert "skipped" in r["compile"]
    assert "images/s" in stdout and "written to" in stdout


@pytest.mark.slow
def test_the_deadline_stops_the_check_and_its_children(tmp_path):
    """Sections far longer than --minutes: the row under way is stopped, the rest marked, the
    class lab's processes killed, and the report written, all by the deadline."""
    out = tmp_path / "gpu_check.json"
    plan = json.dumps({"speed_iterations": 10**6, "lab": [2, 32, 10**6]})
    t = time.perf_counter()
    code, stdout, stderr = _run(tmp_path, "--out", str(out), "--minutes", "0.75", "--sections", "speed,class_lab",
                                "--plan-override", plan, timeout=300)
    wall = time.perf_counter() - t
    assert code == 0, stdout[-2000:] + stderr[-2000:]
    assert wall < 45 + 30, wall  # the deadline, and the start of Python and torch
    r = json.loads(out.read_text())
    speed = r["speed"]
    assert len(speed) == 8
    assert "stopped at its deadline" in speed[0]["error"]
    assert all("skipped" in s for s in speed[1:])
    lab = r["class_lab"]
    assert lab["stopped_at_deadline"] and not lab["all_finished"]
    for pid in lab["pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed, and reaped
    assert "real_run" not in r and r["sections"] == ["speed", "class_lab"]
