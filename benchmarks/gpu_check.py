"""The lab-GPU check: one script a person with a GPU runs once, nothing downloaded.

    PYTHONPATH=. python benchmarks/gpu_check.py                   # a CUDA GPU, about 6-8 minutes
    PYTHONPATH=. python benchmarks/gpu_check.py --device cpu --quick   # the same script on a CPU, about a minute

It draws its own synthetic faces, prepares them at the sizes it needs, and measures, with
the kit's own Trainer (official preset, batch 32, both steps of each iteration):

1. **speed**: at 128 and 256 px (quick: 32 px), for fp32 and bf16, channels-last on and off,
   batches fed from the host (pinned uint8) and from the data set on the device:
   iterations/s, images/s, peak memory, and the share of the wall time the GPU was busy
   (CUDA events around each iteration's two steps against the wall time); then
   torch.compile on and off for the fastest configuration;
2. **the class lab**: 4 trainings started at once on one GPU at 64 px (aggregate images/s,
   and that all of them finish);
3. **a real run**: 300 steps on the device at 64 px: finite losses, a checkpoint and a sample
   grid written; then whether a resumed run is bitwise equal to an uninterrupted one, with
   PyTorch's defaults and with deterministic algorithms;
4. **torchrun**: ``torchrun --nproc_per_node=1 -m faderlib train``, the multi-GPU code path.

It prints a table and writes everything to one JSON file (``--out``, default
``benchmarks/gpu_check.json``), section by section, so that a run cut short keeps what it
measured. Needs only torch, numpy, pandas, pillow, matplotlib and tqdm (no Jupyter).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from faderlib.cache import prepared  # noqa: E402
from faderlib.synth import generate  # noqa: E402
from faderlib.train import TrainConfig, Trainer  # noqa: E402

ATTRIBUTES = ("Smiling", "Eyeglasses", "Male")


class TimedTrainer(Trainer):
    """A Trainer that records CUDA events around each of its steps: the time the GPU spends in
    them, against the wall time, is its busy share (the rest it waited for the host: data, Python)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events: list[tuple] = []

    def _timed(self, step, x, y):
        if self.device.type != "cuda":
            return step(x, y)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = step(x, y)
        end.record()
        self.events.append((start, end))
        return out

    def discriminator_step(self, x, y):
        return self._timed(super().discriminator_step, x, y)

    def autoencoder_step(self, x, y):
        return self._timed(super().autoencoder_step, x, y)


def config(data_dir, size, device, **kw) -> TrainConfig:
    values = dict(data_dir=str(data_dir), attributes=ATTRIBUTES, image_size=size, preset="official", batch_size=32,
                  steps=10**7, lambda_e=1e-4, lambda_ramp=500_000, checkpoint_every=10**7, eval_every=10**7,
                  log_every=10**7, device=device)
    values.update(kw)
    return TrainConfig(**values)


def measure(data_dir, work: Path, size: int, device: str, warmup: int, iterations: int, **kw) -> dict:
    """Speed of one configuration: iterations/s, images/s, peak memory, GPU busy share."""
    cfg = config(data_dir, size, device, **kw)
    name = "-".join(f"{k}={v}" for k, v in kw.items())
    trainer = TimedTrainer(cfg, work / f"speed-{size}-{name}", progress=False)
    trainer.train(warmup)
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    trainer.events.clear()
    t = time.perf_counter()
    trainer.train(warmup + iterations)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    busy = sum(s.elapsed_time(e) for s, e in trainer.events) / 1e3 if cuda else None
    row = {"size": size, **{k: v for k, v in kw.items()}, "precision_used": trainer.precision,
           "data_on_device_used": trainer.data.on_device, "iterations_per_s": iterations / wall,
           "images_per_s": 2 * 32 * iterations / wall,
           "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
           "gpu_busy_share": busy / wall if busy is not None else None}
    del trainer
    if cuda:
        torch.cuda.empty_cache()
    return row


def run_cli(args: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faderlib", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=timeout)


# ----------------------------------------------------------------------------- the sections
def section_environment(device: str) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "device": device}
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), gpu_count=torch.cuda.device_count(),
                    bf16_supported=torch.cuda.is_bf16_supported())
        if shutil.which("nvidia-smi"):
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True)
            info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None
    return info


def section_speed(data_dir, work, device, sizes, warmup, iterations, compile_too: bool,
                  deadline: float = float("inf")) -> list[dict]:
    rows = []
    for size in sizes:
        for precision in ("fp32", "bf16"):
            for channels_last in (True, False):
                for on_device in (False, True):
                    row = measure(data_dir, work, size, device, warmup, iterations, precision=precision,
                                  channels_last=channels_last, data_on_device=on_device)
                    rows.append(row)
                    print(f"  {size} px {precision} {'channels-last' if channels_last else 'NCHW'} "
                          f"{'resident' if on_device else 'host-fed'}: {row['iterations_per_s']:.1f} it/s, "
                          f"{row['images_per_s']:.0f} images/s"
                          + (f", GPU busy {100 * row['gpu_busy_share']:.0f} %" if row["gpu_busy_share"] else ""),
                          flush=True)
        best = max((r for r in rows if r["size"] == size), key=lambda r: r["iterations_per_s"])
        if compile_too and time.perf_counter() > deadline:
            print(f"  {size} px: compile skipped, the time budget is spent", flush=True)
        elif compile_too:
            for compiled in (True, False):
                row = measure(data_dir, work, size, device, warmup + 20, iterations, precision=best["precision"],
                              channels_last=best["channels_last"], data_on_device=best["data_on_device"],
                              compile=compiled)
                rows.append(row)
                print(f"  {size} px fastest configuration, compile={compiled}: {row['iterations_per_s']:.1f} it/s",
                      flush=True)
    return rows


def section_class_lab(data_dir, work, device, size, steps, n_runs) -> dict:
    """n trainings started at once on one device, as a class sharing a GPU would."""
    procs, t = [], time.perf_counter()
    for i in range(n_runs):
        args = ["train", "--recipe", "course", "--data", str(data_dir), "--size", str(size), "--steps", str(steps),
                "--seed", str(i), "--device", device, "--quiet", "--out", str(work / f"lab-{i}")]
        procs.append(subprocess.Popen([sys.executable, "-m", "faderlib", *args], cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True,
                                      env={**os.environ, "PYTHONPATH": str(REPO)}))
    outs = [p.communicate(timeout=900)[0] for p in procs]
    wall = time.perf_counter() - t
    codes = [p.returncode for p in procs]
    return {"runs": n_runs, "size": size, "steps": steps, "wall_s": wall, "exit_codes": codes,
            "all_finished": all(c == 0 for c in codes),
            "aggregate_images_per_s": n_runs * steps * 2 * 32 / wall,
            "errors": [o[-500:] for o, c in zip(outs, codes) if c != 0]}


_RESUME = r"""
import json, os, sys, torch
sys.path.insert(0, os.environ["REPO"])
from faderlib.train import TrainConfig, Trainer
data, out, device, size, steps, deterministic = sys.argv[1:7]
if deterministic == "1":
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
cfg = TrainConfig(data_dir=data, attributes=("Smiling", "Eyeglasses", "Male"), image_size=int(size), preset="paper",
                  steps=int(steps), lr=5e-4, lambda_e=0.02, lambda_ramp=100, balance="Eyeglasses", device=device,
                  checkpoint_every=max(int(steps) // 2, 1))
def run(folder, stop=None):
    t = Trainer(cfg, folder, progress=False)
    t.train(stop)
    return t
straight = run(out + "/straight")
run(out + "/resumed", int(steps) // 2)
resumed = run(out + "/resumed")
same = all(torch.equal(a, b) for a, b in zip(straight.ae.state_dict().values(), resumed.ae.state_dict().values()))
rows = [json.loads(l) for l in open(out + "/straight/metrics.jsonl")]
finite = all(all(v == v and abs(v) != float("inf") for k, v in r.items() if k.endswith("loss")) for r in rows)
print(json.dumps({"bitwise_equal": same, "finite_losses": finite, "step": straight.step,
                  "checkpoint": os.path.exists(out + "/straight/checkpoints/last.pt"),
                  "samples": len(os.listdir(out + "/straight/samples")), "precision": straight.precision}))
"""


def section_real_run(data_dir, work, device, size, steps) -> dict:
    out = {}
    for deterministic in ("0", "1"):
        folder = work / f"resume-{deterministic}"
        folder.mkdir()
        env = {**os.environ, "REPO": str(REPO), "PYTHONPATH": str(REPO)}
        if deterministic == "1":
            env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        p = subprocess.run([sys.executable, "-c", _RESUME, str(data_dir), str(folder), device, str(size), str(steps),
                            deterministic], capture_output=True, text=True, env=env, timeout=900)
        key = "deterministic" if deterministic == "1" else "defaults"
        out[key] = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {"error": p.stderr[-800:]}
    return out


def section_torchrun(data_dir, work, device, size, steps) -> dict:
    torchrun = shutil.which("torchrun")
    cmd = ([torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]) + [
        "--nproc_per_node=1", "-m", "faderlib", "train", "--recipe", "course", "--data", str(data_dir), "--size",
        str(size), "--steps", str(steps), "--device", device, "--quiet", "--out", str(work / "torchrun")]
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    last = work / "torchrun" / "checkpoints" / "last.pt"
    step = torch.load(last, weights_only=True)["step"] if last.exists() else None
    return {"exit_code": p.returncode, "step": step, "ok": p.returncode == 0 and step == steps,
            "wall_s": time.perf_counter() - t, "error": p.stderr[-800:] if p.returncode else None}


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps: the script's own test")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "gpu_check.json"))
    parser.add_argument("--minutes", type=float, default=8.0, help="skip the sections that would start after this")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to PyTorch here; run with --device cpu --quick to check the script")
        return 2
    quick, device = args.quick, args.device
    sizes = (32,) if quick else (128, 256)
    plan = {"speed_warmup": 2 if quick else 10, "speed_iterations": 3 if quick else 50,
            "lab": (2, 32, 10) if quick else (4, 64, 300), "run": (32, 20) if quick else (64, 300),
            "torchrun": (32, 6) if quick else (64, 50)}
    result: dict = {"quick": quick, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    t_start = time.perf_counter()
    out_path = Path(args.out)

    def save():
        result["seconds"] = round(time.perf_counter() - t_start, 1)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2))

    def section(name, fn):
        if time.perf_counter() - t_start > 60 * args.minutes:
            result[name] = {"skipped": f"over the {args.minutes:g}-minute budget"}
            save()
            return
        print(f"[{name}]", flush=True)
        t = time.perf_counter()
        try:
            result[name] = fn()
        except Exception as e:  # one failed section must not lose the others
            result[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
            print(f"  failed: {type(e).__name__}: {e}", flush=True)
        result.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t, 1)
        save()

    section("environment", lambda: section_environment(device))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        n_faces = 300 if quick else 2000
        data_dir = generate(work / "faces", n=n_faces, seed=0, progress=False)
        for size in sorted({*sizes, plan["lab"][1], plan["run"][0]}):
            prepared(data_dir, size, progress=False)
        section("speed", lambda: section_speed(data_dir, work, device, sizes, plan["speed_warmup"],
                                               plan["speed_iterations"], compile_too=not quick,
                                               deadline=t_start + 0.5 * 60 * args.minutes))
        section("class_lab", lambda: section_class_lab(data_dir, work, device, plan["lab"][1], plan["lab"][2],
                                                       plan["lab"][0]))
        section("real_run", lambda: section_real_run(data_dir, work, device, *plan["run"]))
        section("torchrun", lambda: section_torchrun(data_dir, work, device, *plan["torchrun"]))
    print_table(result)
    print(f"\nwritten to {out_path} ({result['seconds']:.0f} s)")
    return 0


def print_table(result: dict) -> None:
    env = result.get("environment", {})
    print(f"\n{env.get('gpu', env.get('cpu'))}, torch {env.get('torch')}, driver {env.get('driver')}")
    speed = result.get("speed")
    if isinstance(speed, list):
        print(f"{'size':>5} {'prec':>5} {'layout':>13} {'feed':>9} {'compile':>8} {'it/s':>8} {'images/s':>9} "
              f"{'peak GiB':>9} {'GPU busy':>9}")
        for r in speed:
            busy = f"{100 * r['gpu_busy_share']:.0f} %" if r.get("gpu_busy_share") is not None else "-"
            peak = f"{r['peak_memory_gib']:.2f}" if r.get("peak_memory_gib") is not None else "-"
            print(f"{r['size']:>5} {r['precision']:>5} {'channels-last' if r['channels_last'] else 'NCHW':>13} "
                  f"{'resident' if r['data_on_device'] else 'host':>9} {str(r.get('compile', False)):>8} "
                  f"{r['iterations_per_s']:>8.1f} {r['images_per_s']:>9.0f} {peak:>9} {busy:>9}")
    for name in ("class_lab", "real_run", "torchrun"):
        print(f"{name}: {json.dumps(result.get(name))[:400]}")


if __name__ == "__main__":
    raise SystemExit(main())
