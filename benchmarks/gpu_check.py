"""The lab-GPU check: one script a person with a GPU runs once, nothing downloaded.

    PYTHONPATH=. python benchmarks/gpu_check.py --out gpu_check.json   # a CUDA GPU: 6 minutes at most
    PYTHONPATH=. python benchmarks/gpu_check.py --device cpu --quick    # the same script on a CPU, about a minute

It draws its own synthetic faces, prepares them at the sizes it needs, and measures, with
the kit's own Trainer (official preset, batch 32, both steps of each iteration):

1. **speed**: at 128 and 256 px (quick: 32 px), for fp32 and bf16, channels-last on and off,
   batches fed from the host (pinned uint8) and from the data set on the device: iterations/s
   and images/s over the training iterations alone (warm-up iterations first; no validation,
   sample grid or checkpoint inside the timed window), peak memory, and the share of the time
   the GPU was busy: the kernel time ``torch.profiler`` records over a few more iterations,
   against the time those iterations take unprofiled (null on a CPU);
2. **the class lab**: 4 trainings started at once on one GPU at 64 px (aggregate images/s,
   and that all of them finish);
3. **a real run**: 200 steps at 64 px: finite losses, a checkpoint and a sample grid written;
   then whether a resumed run is bitwise equal to an uninterrupted one, with PyTorch's
   defaults and with deterministic algorithms;
4. **torchrun**: ``python -m torch.distributed.run --standalone`` (this interpreter's torch)
   with 2 processes where 2 GPUs exist; on one GPU (or a CPU), one process that still joins a
   process group (``FADER_DISTRIBUTED=1``), so that NCCL (gloo), the process group and DDP run;
5. **compile**: ``torch.compile`` for the fastest configuration at 128 px, in a process of its
   own (a cold compile); skipped, with a note, when it would not fit in the time left.

``--minutes`` (default 6) is a hard deadline: the time left is shared among the sections still
to run, a section is stopped at the end of its share (its child processes killed), and the
sections after a deadline are reported as skipped. The JSON file (``--out``, default
``gpu_check.json`` in the current directory) is written after every row and every section, so
that a run cut short keeps what it measured; a configuration that fails (out of memory, no C
compiler for Inductor) is recorded with its error, and the others go on.

Needs only torch, numpy, pandas, pillow, matplotlib and tqdm (no Jupyter).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from faderlib import train as train_module  # noqa: E402
from faderlib.cache import prepared  # noqa: E402
from faderlib.synth import generate  # noqa: E402
from faderlib.train import TrainConfig, Trainer  # noqa: E402

ATTRIBUTES = ("Smiling", "Eyeglasses", "Male")
BATCH = 32
SECTIONS = ("speed", "class_lab", "real_run", "torchrun", "compile")
#: How the time left is shared among the sections still to run (the last one takes what is left).
WEIGHTS = {"speed": 0.45, "class_lab": 0.12, "real_run": 0.2, "torchrun": 0.1, "compile": 0.13}
#: Seconds a cold torch.compile of the two networks is budgeted (a fresh process: imports, CUDA,
#: Inductor's compilation, warm-up and the timed iterations); not started with less time left.
COMPILE_BUDGET_S = 120
#: Share of --minutes kept at the end for the table and the last write.
MARGIN = 0.03


class Deadline(Exception):
    """The current section reached the end of its time."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str):
    """Raise :class:`Deadline` in the block after ``seconds`` (SIGALRM; main thread)."""
    if seconds <= 0:
        raise Deadline(f"no time left for {what}")

    def alarm(signum, frame):
        raise Deadline(f"{what} stopped at its deadline ({seconds:.0f} s)")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------------------- child processes
CHILDREN: set[subprocess.Popen] = set()


def child_env(**extra) -> dict:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def start(cmd: list[str], env: dict | None = None) -> subprocess.Popen:
    """A child in a process group of its own (so that killing it kills what it started)."""
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env or child_env(), start_new_session=True)
    CHILDREN.add(p)
    return p


def kill(p: subprocess.Popen) -> None:
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        p.communicate(timeout=10)
    CHILDREN.discard(p)


def kill_children() -> None:
    for p in list(CHILDREN):
        kill(p)


def finish(procs: list[subprocess.Popen], deadline: float) -> tuple[list, bool]:
    """Wait for ``procs`` until ``deadline`` (perf_counter); kill the process groups of those
    still running then. Returns [(exit code or None, stdout, stderr)] and whether time ran out."""
    results, late = [], False
    try:
        for p in procs:
            try:
                out, err = p.communicate(timeout=max(deadline - time.perf_counter(), 0.01))
                results.append((p.returncode, out, err))
                CHILDREN.discard(p)
            except subprocess.TimeoutExpired:
                late = True
                kill(p)
                results.append((None, "", "killed at the section's deadline"))
    finally:  # a Deadline (or Ctrl-C) while waiting: nothing is left running
        for p in procs:
            kill(p)
    return results, late


# ----------------------------------------------------------------------------- speed rows
def config(data_dir, size, device, **kw) -> TrainConfig:
    """A configuration whose periodic work (log, validation, checkpoint) never falls in a measurement."""
    values = dict(data_dir=str(data_dir), attributes=ATTRIBUTES, image_size=size, preset="official",
                  batch_size=BATCH, steps=10**7, lambda_e=1e-4, lambda_ramp=500_000, checkpoint_every=10**7,
                  eval_every=10**7, log_every=10**7, device=device)
    values.update(kw)
    return TrainConfig(**values)


def iterate(trainer: Trainer, feed, n: int) -> None:
    """``n`` training iterations: the body of :meth:`Trainer.train`'s loop without its periodic
    log, validation and checkpoint (the discriminator step, then the autoencoder step, each on
    a batch of its own)."""
    for _ in range(n):
        trainer._set_lr()
        batch = feed.next()
        d = trainer.discriminator_step(batch.x, batch.y)
        batch = feed.next()
        a = trainer.autoencoder_step(batch.x, batch.y)
        trainer.window.add(trainer.step + 1, [d["dis_loss"], d["dis_accuracy"], a["rec_loss"], a["adv_loss"]],
                           a["lambda_e"])
        trainer.step += 1


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def kernel_seconds(trainer: Trainer, feed, n: int) -> dict:
    """GPU time of ``n`` iterations from ``torch.profiler``: the kernels' own durations summed,
    and the time any GPU activity (kernels, copies) was under way (overlaps counted once)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    synchronize(trainer.device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        iterate(trainer, feed, n)
        synchronize(trainer.device)
    spans, kernels = [], 0.0
    for e in prof.events():
        if e.device_type != DeviceType.CUDA:
            continue
        start, end = e.time_range.start, e.time_range.end
        spans.append((start, end))
        if not any(word in e.name.lower() for word in ("memcpy", "memset")):
            kernels += end - start
    if not spans:
        raise RuntimeError("the profiler recorded no GPU activity")
    busy, last = 0.0, None
    for s, e in sorted(spans):
        if last is None or s > last:
            busy += e - s
            last = e
        elif e > last:
            busy += e - last
            last = e
    return {"kernel_s": kernels / 1e6, "busy_s": busy / 1e6}


def measure(data_dir, work: Path, size: int, device: str, warmup: int, iterations: int, profiled: int = 5,
            **kw) -> dict:
    """Speed of one configuration, over training iterations alone."""
    row = {"size": size, "precision": kw.get("precision"), "channels_last": kw.get("channels_last"),
           "data_on_device": kw.get("data_on_device"), "compile": kw.get("compile", False)}
    name = "-".join(f"{k}={v}" for k, v in kw.items())
    folder = work / f"speed-{size}-{name}"
    trainer = Trainer(config(data_dir, size, device, **kw), folder, progress=False)
    feed = trainer.data.feed(trainer.generator)  # the resident split is uploaded here, before any timing
    try:
        cuda = trainer.device.type == "cuda"
        t = time.perf_counter()
        iterate(trainer, feed, warmup)
        synchronize(trainer.device)
        row["warmup_s"] = time.perf_counter() - t
        if cuda:
            torch.cuda.reset_peak_memory_stats(trainer.device)
        t = time.perf_counter()
        iterate(trainer, feed, iterations)
        synchronize(trainer.device)
        wall = time.perf_counter() - t
        row.update(precision_used=trainer.precision, data_on_device_used=trainer.data.on_device,
                   feed=feed.mode, warmup=warmup, iterations=iterations, timed_s=wall,
                   iterations_per_s=iterations / wall, images_per_s=2 * BATCH * iterations / wall,
                   peak_memory_gib=torch.cuda.max_memory_allocated(trainer.device) / 2**30 if cuda else None,
                   gpu_busy_share=None, gpu_kernel_ms_per_iteration=None)
        if cuda:
            try:
                gpu = kernel_seconds(trainer, feed, profiled)
                row["gpu_kernel_ms_per_iteration"] = 1e3 * gpu["kernel_s"] / profiled
                row["gpu_busy_share"] = (gpu["busy_s"] / profiled) / (wall / iterations)
            except Exception as e:  # the profiler is no reason to lose the row
                row["gpu_busy_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    finally:
        feed.close()
        trainer.close()
    # what the timed window must not contain: a validation (sample grid) or a checkpoint
    row["end_of_run_work"] = {"checkpoints": len(list((folder / "checkpoints").glob("*.pt"))),
                              "sample_grids": len(list((folder / "samples").glob("*.png")))}
    del trainer, feed
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return row


def error_text(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:400] if text else ''}"


# ----------------------------------------------------------------------------- the sections
def section_environment(device: str) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "device": device,
            "c_compiler": shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")}
    try:
        import triton
        info["triton"] = triton.__version__
    except Exception:
        info["triton"] = None
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), gpu_count=torch.cuda.device_count(),
                    bf16_supported=torch.cuda.is_bf16_supported())
        with contextlib.suppress(Exception):
            info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        if shutil.which("nvidia-smi"):
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True)
            info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None
    return info


def speed_configurations(sizes) -> list[dict]:
    return [{"size": s, "precision": p, "channels_last": c, "data_on_device": d}
            for s in sizes for p in ("fp32", "bf16") for c in (True, False) for d in (False, True)]


def section_speed(rows: list, save, data_dir, work, device, sizes, warmup, iterations, inject: dict) -> list:
    """One row per configuration, appended to ``rows`` and saved as soon as measured; a failing
    configuration is recorded with its error; at the deadline the row under way is recorded as
    stopped and those not started as skipped."""
    todo = speed_configurations(sizes)
    stopped = None
    for cfg in todo:
        if stopped is not None:
            rows.append({**cfg, "skipped": stopped})
            continue
        label = (f"  {cfg['size']} px {cfg['precision']} {'channels-last' if cfg['channels_last'] else 'NCHW'} "
                 f"{'resident' if cfg['data_on_device'] else 'host-fed'}")
        t = time.perf_counter()
        try:
            if inject and all(str(cfg.get(k)) == v for k, v in inject.items()):
                raise RuntimeError("a failure injected by --inject-failure (the script's own test)")
            kw = {k: v for k, v in cfg.items() if k != "size"}
            row = measure(data_dir, work, cfg["size"], device, warmup, iterations, **kw)
            print(f"{label}: {row['iterations_per_s']:.1f} it/s, {row['images_per_s']:.0f} images/s"
                  + (f", GPU busy {100 * row['gpu_busy_share']:.0f} %" if row.get("gpu_busy_share") else ""),
                  flush=True)
        except Deadline as e:
            row, stopped = {**cfg, "error": str(e)}, "the speed section's time was spent"
            print(f"{label}: {e}", flush=True)
        except Exception as e:  # out of memory, a missing compiler: this row only
            row = {**cfg, "error": error_text(e)}
            print(f"{label}: failed: {row['error']}", flush=True)
            gc.collect()
            if device == "cuda":
                torch.cuda.empty_cache()
        row["seconds"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        save()
    return rows


def section_compile(data_dir, work, device, speed_rows, size, warmup, iterations, seconds_left: float) -> dict:
    """torch.compile on the fastest eager configuration at ``size``, in a fresh process (a cold compile)."""
    eager = [r for r in speed_rows if r.get("size") == size and "iterations_per_s" in r]
    if not eager:
        return {"skipped": f"no eager configuration at {size} px was measured"}
    if seconds_left < COMPILE_BUDGET_S:
        return {"skipped": f"a cold torch.compile is budgeted {COMPILE_BUDGET_S} s; {seconds_left:.0f} s were left"}
    best = max(eager, key=lambda r: r["iterations_per_s"])
    cfg = {"size": size, "precision": best["precision"], "channels_last": best["channels_last"],
           "data_on_device": best["data_on_device"], "compile": True}
    p = start([sys.executable, str(Path(__file__).resolve()), "--row", json.dumps(cfg), "--device", device,
               "--data", str(data_dir), "--work", str(work), "--warmup", str(warmup),
               "--iterations", str(iterations)])
    t = time.perf_counter()
    [(code, out, err)], late = finish([p], t + seconds_left)
    wall = time.perf_counter() - t
    if late:
        return {**cfg, "error": f"the cold compile did not finish in the {seconds_left:.0f} s left (killed)",
                "seconds": wall}
    if code != 0:
        return {**cfg, "error": (err or out)[-800:], "seconds": wall}
    row = json.loads(out.strip().splitlines()[-1])
    row["eager_iterations_per_s"] = best["iterations_per_s"]
    row["process_seconds"] = wall
    return row


def section_class_lab(data_dir, work, device, size, steps, n_runs, seconds: float) -> dict:
    """n trainings started at once on one device, as a class sharing a GPU would."""
    t = time.perf_counter()
    procs = []
    for i in range(n_runs):
        args = ["train", "--recipe", "course", "--data", str(data_dir), "--size", str(size), "--steps", str(steps),
                "--seed", str(i), "--device", device, "--quiet", "--out", str(work / f"lab-{i}")]
        procs.append(start([sys.executable, "-m", "faderlib", *args], child_env(OMP_NUM_THREADS="1")))
    results, late = finish(procs, t + seconds)
    wall = time.perf_counter() - t
    codes = [code for code, _, _ in results]
    return {"runs": n_runs, "size": size, "steps": steps, "wall_s": wall, "exit_codes": codes,
            "all_finished": all(c == 0 for c in codes), "stopped_at_deadline": late,
            "pids": [p.pid for p in procs],
            "aggregate_images_per_s": n_runs * steps * 2 * BATCH / wall if not late else None,
            "errors": [(err or out)[-500:] for code, out, err in results if code != 0]}


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
    t.close()
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


def section_real_run(data_dir, work, device, size, steps, seconds: float) -> dict:
    out, end = {}, time.perf_counter() + seconds
    for i, deterministic in enumerate(("0", "1")):
        key = "deterministic" if deterministic == "1" else "defaults"
        folder = work / f"resume-{deterministic}"
        folder.mkdir()
        env = child_env(REPO=str(REPO))
        if deterministic == "1":
            env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        p = start([sys.executable, "-c", _RESUME, str(data_dir), str(folder), device, str(size), str(steps),
                   deterministic], env)
        share = (end - time.perf_counter()) / (2 - i)  # half of the time left, then the rest
        [(code, stdout, err)], late = finish([p], time.perf_counter() + share)
        if late:
            out[key] = {"error": f"stopped at the section's deadline ({share:.0f} s); killed"}
        elif code != 0:
            out[key] = {"error": err[-800:]}
        else:
            out[key] = json.loads(stdout.strip().splitlines()[-1])
    return out


_TORCHRUN_WORKER = r"""
import json, os, sys
sys.path.insert(0, os.environ["REPO"])
import torch
import torch.distributed as dist
from faderlib.train import TrainConfig, Trainer
data, out, device, size, steps, report = sys.argv[1:7]
cfg = TrainConfig(data_dir=data, attributes=("Smiling", "Eyeglasses", "Male"), image_size=int(size),
                  preset="paper", steps=int(steps), batch_size=32, lambda_e=0.02, lambda_ramp=10, device=device,
                  checkpoint_every=int(steps), eval_every=int(steps), eval_images=64)
trainer = Trainer(cfg, out, progress=False)
trainer.train()
info = {"world": dist.get_world_size() if dist.is_initialized() else 1,
        "process_group": dist.is_initialized(), "backend": dist.get_backend() if dist.is_initialized() else None,
        "ddp": isinstance(trainer.ae_ddp, torch.nn.parallel.DistributedDataParallel), "device": str(trainer.device),
        "step": trainer.step}
gathered = trainer.dist.gather(info)
trainer.close()
if trainer.dist.group and dist.is_initialized():  # a group of one: Trainer.close leaves it open
    trainer.ae_ddp = trainer.dis_ddp = None
    trainer.dist.close()
if trainer.dist.main:
    json.dump(gathered, open(report, "w"))
"""


def section_torchrun(data_dir, work, device, size, steps, seconds: float) -> dict:
    n = min(2, torch.cuda.device_count()) if device == "cuda" else 1
    worker, report = work / "torchrun_worker.py", work / "torchrun.json"
    worker.write_text(_TORCHRUN_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", str(worker),
           str(data_dir), str(work / "torchrun"), device, str(size), str(steps), str(report)]
    env = child_env(REPO=str(REPO), OMP_NUM_THREADS="1", **({"FADER_DISTRIBUTED": "1"} if n == 1 else {}))
    t = time.perf_counter()
    [(code, out, err)], late = finish([start(cmd, env)], t + seconds)
    ranks = json.loads(report.read_text()) if report.exists() else None
    ok = (code == 0 and ranks is not None and len(ranks) == n
          and all(r["process_group"] and r["ddp"] and r["step"] == steps for r in ranks))
    return {"processes": n, "forced_group_of_one": n == 1, "exit_code": code, "ok": ok, "ranks": ranks,
            "wall_s": time.perf_counter() - t, "stopped_at_deadline": late,
            "error": None if ok else (err or out)[-800:] or "no report"}


# ----------------------------------------------------------------------------- main
def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps: the script's own test")
    parser.add_argument("--out", default=None, help="the JSON file to write (default: ./gpu_check.json)")
    parser.add_argument("--minutes", type=float, default=6.0,
                        help="hard deadline for the whole check, shared among the sections (default 6)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"which to run (default: {','.join(SECTIONS)})")
    # for the script's own use: one configuration in a fresh process, and a failure to inject in tests
    for name in ("--row", "--data", "--work", "--inject-failure", "--plan-override"):
        parser.add_argument(name, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--iterations", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose among {', '.join(SECTIONS)}")
    return args


def row_main(args) -> int:
    """``--row``: measure one configuration here and print it as JSON (the compile section's process)."""
    cfg = json.loads(args.row)
    if args.device == "cpu" and cfg.get("compile"):
        train_module.COMPILE_BACKEND = "eager"  # no Inductor code generation on a CPU check
    size = cfg.pop("size")
    row = measure(args.data, Path(args.work), size, args.device, args.warmup, args.iterations, **cfg)
    print(json.dumps(row))
    return 0


def main(argv=None) -> int:
    args = parse(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU visible to PyTorch here; run with --device cpu --quick to check the script")
        return 2
    if args.row:
        return row_main(args)
    quick, device = args.quick, args.device
    chosen = [s for s in SECTIONS if s in args.sections.split(",")]
    sizes = (32,) if quick else (128, 256)
    plan = {"speed_warmup": 1 if quick else 10, "speed_iterations": 2 if quick else 40,
            "lab": (2, 32, 10) if quick else (4, 64, 300), "run": (32, 20) if quick else (64, 200),
            "torchrun": (32, 6) if quick else (64, 50), "compile_size": sizes[0]}
    plan.update(json.loads(args.plan_override) if args.plan_override else {})
    inject = dict(kv.split("=", 1) for kv in args.inject_failure.split(",")) if args.inject_failure else {}
    t_start = time.perf_counter()
    budget = 60 * args.minutes
    end = t_start + budget * (1 - MARGIN)
    out_path = Path(args.out) if args.out else Path.cwd() / "gpu_check.json"
    result: dict = {"quick": quick, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "minutes": args.minutes,
                    "plan": plan, "sections": chosen}

    def save():
        result["seconds"] = round(time.perf_counter() - t_start, 1)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(out_path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, out_path)

    def share(name) -> float:
        """This section's share of the time left (the last section: all of it)."""
        left = [s for s in chosen if s not in result]
        return max(end - time.perf_counter(), 0.0) * WEIGHTS[name] / sum(WEIGHTS[s] for s in left)

    def section(name, fn):
        if name not in chosen:
            return
        seconds = share(name)
        if time.perf_counter() >= end:
            result[name] = {"skipped": f"the {args.minutes:g}-minute deadline was reached"}
            save()
            return
        print(f"[{name}] ({seconds:.0f} s at most)", flush=True)
        t = time.perf_counter()
        grace = min(5.0, 0.1 * seconds)  # the section stops its children itself; the alarm is the backstop
        try:
            with time_limit(seconds, f"the {name} section"):
                result[name] = fn(seconds - grace)
        except Deadline as e:
            result.setdefault(name, {"error": str(e)})
            print(f"  {e}", flush=True)
        except Exception as e:  # one failed section must not lose the others
            import traceback
            result[name] = {"error": error_text(e), "traceback": traceback.format_exc()[-2000:]}
            print(f"  failed: {error_text(e)}", flush=True)
        finally:
            kill_children()
        result.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t, 1)
        save()

    result["environment"] = section_environment(device)
    save()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            try:
                with time_limit(end - time.perf_counter(), "preparing the data"):
                    t = time.perf_counter()
                    data_dir = generate(work / "faces", n=300 if quick else 1200, seed=0, progress=False)
                    for size in sorted({*sizes, plan["lab"][1], plan["run"][0], plan["torchrun"][0]}):
                        prepared(data_dir, size, progress=False)
                    result["setup_seconds"] = round(time.perf_counter() - t, 1)
            except Deadline as e:
                for name in chosen:
                    result[name] = {"skipped": str(e)}
                save()
                return 1
            speed_rows: list = []
            if "speed" in chosen:
                result["speed"] = speed_rows  # filled row by row (and saved after each)
                chosen_speed = [s for s in chosen if s != "speed"]
                seconds = max(end - time.perf_counter(), 0.0) * WEIGHTS["speed"] / sum(
                    WEIGHTS[s] for s in ["speed", *chosen_speed])
                print(f"[speed] ({seconds:.0f} s at most)", flush=True)
                t = time.perf_counter()
                try:
                    with time_limit(seconds, "the speed section"):
                        section_speed(speed_rows, save, data_dir, work, device, sizes, plan["speed_warmup"],
                                      plan["speed_iterations"], inject)
                except Deadline as e:  # between rows: what is not measured is marked
                    done = {(r["size"], r["precision"], r["channels_last"], r["data_on_device"]) for r in speed_rows}
                    speed_rows.extend({**c, "skipped": str(e)} for c in speed_configurations(sizes)
                                      if tuple(c.values()) not in done)
                result.setdefault("section_seconds", {})["speed"] = round(time.perf_counter() - t, 1)
                save()
            section("class_lab", lambda s: section_class_lab(data_dir, work, device, plan["lab"][1], plan["lab"][2],
                                                             plan["lab"][0], s))
            section("real_run", lambda s: section_real_run(data_dir, work, device, *plan["run"], s))
            section("torchrun", lambda s: section_torchrun(data_dir, work, device, *plan["torchrun"], s))
            if "compile" in chosen:
                if quick:
                    result["compile"] = {"skipped": "--quick: torch.compile is measured on a GPU run only"}
                    save()
                else:
                    section("compile", lambda s: section_compile(data_dir, work, device, speed_rows,
                                                                 plan["compile_size"], plan["speed_warmup"] + 20,
                                                                 plan["speed_iterations"], s))
    finally:
        kill_children()
        save()
    print_table(result)
    print(f"\nwritten to {out_path} ({result['seconds']:.0f} s)")
    return 0


def print_table(result: dict) -> None:
    env = result.get("environment", {})
    print(f"\n{env.get('gpu', env.get('cpu'))}, torch {env.get('torch')}, driver {env.get('driver')}")
    speed = result.get("speed")
    if isinstance(speed, list):
        print(f"{'size':>5} {'prec':>5} {'layout':>13} {'feed':>9} {'it/s':>8} {'images/s':>9} "
              f"{'peak GiB':>9} {'GPU busy':>9}")
        for r in speed:
            head = (f"{r['size']:>5} {r['precision']:>5} {'channels-last' if r['channels_last'] else 'NCHW':>13} "
                    f"{'resident' if r['data_on_device'] else 'host':>9}")
            if "iterations_per_s" not in r:
                print(f"{head} {r.get('error') or r.get('skipped')}")
                continue
            busy = f"{100 * r['gpu_busy_share']:.0f} %" if r.get("gpu_busy_share") is not None else "-"
            peak = f"{r['peak_memory_gib']:.2f}" if r.get("peak_memory_gib") is not None else "-"
            print(f"{head} {r['iterations_per_s']:>8.1f} {r['images_per_s']:>9.0f} {peak:>9} {busy:>9}")
    for name in ("class_lab", "real_run", "torchrun", "compile"):
        if name in result:
            print(f"{name}: {json.dumps(result.get(name))[:400]}")


if __name__ == "__main__":
    raise SystemExit(main())
