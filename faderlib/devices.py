"""Where the networks run: picking a device, its memory layout and threads, and training on
several processes under ``torchrun``.

Nothing here is about Fader Networks; it is what lets the same :class:`~faderlib.train.Trainer`
run on a laptop CPU, one GPU, or several (one process each, gradients averaged by
``DistributedDataParallel``). A training run makes these choices once, in a :class:`Placement`.
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from .fastconv import choose_fast_convs, use_gemm


def pick_device(name: str = "auto") -> torch.device:
    """CUDA if present, else Apple MPS, else CPU; or the device named ("cpu", "cuda", "cuda:1", "mps")."""
    if name != "auto":
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but torch.cuda.is_available() is False: PyTorch sees no "
                             "CUDA GPU here (none, no driver, or a CPU-only build of torch); use --device cpu or auto")
        if dev.type == "mps" and not _mps_available():
            raise ValueError(f"device {name!r} asked for, but Apple MPS is not available; use --device cpu or auto")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def describe_device() -> str:
    """One line on what ``device="auto"`` will use here, for the notebooks' environment check."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        gib = torch.cuda.get_device_properties(0).total_memory / 2**30
        return f"cuda ({name}, {gib:.0f} GiB): notebook 03 trains a larger model"
    if _mps_available():
        return "mps (Apple GPU): training runs there, sized as on a CPU"
    return (f"cpu ({os.cpu_count()} cores, no CUDA GPU or Apple MPS found): the notebooks train "
            "small models, a few minutes each")


def use_channels_last(setting: str | bool, device: torch.device) -> bool:
    """Channels-last memory layout. ``"auto"``: on for CUDA and CPU, off elsewhere (MPS).

    On CPU the faster layout was measured, not assumed (``make bench``, 2 cores, torch 2.14,
    the Trainer at the ``official`` preset): channels-last ran 327 / 82 / 15.2 images/s at
    64 / 128 / 256 px against 315 / 75 / 13.7 for NCHW, and an earlier run agreed at every
    size. (A 3x slowdown at 128 px had been reported on an older set-up; if ``make bench``
    shows it on your machine, pass ``channels_last=False`` / ``--channels-last off``.)
    """
    if isinstance(setting, bool):
        return setting
    if setting != "auto":
        raise ValueError(f"channels_last must be true, false or 'auto', got {setting!r}")
    return device.type in ("cuda", "cpu")


def describe_cpu() -> str:
    """One line on the CPU that made a timing: its model, cores, the widest vector instructions
    PyTorch uses on it, native bf16 or not, and torch's version (timings are only comparable
    with this line beside them)."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "?")()
    return (f"{model}, {os.cpu_count()} cores, {capability}, "
            f"{'native bf16' if cpu_has_native_bf16() else 'no bf16 instructions'}, torch {torch.__version__}")


# ----------------------------------------------------------------------------- precision
#: Precisions a run can train in: float32 everywhere, or bf16 autocast (matrix products and
#: convolutions in bfloat16; weights, BatchNorm statistics and losses in float32).
PRECISIONS = ("auto", "fp32", "bf16")

#: Image sizes at which ``precision="auto"`` trains in bf16 on a CPU with native bf16 instructions.
#: Measured (the same run alternating the two, batch 32), AMD EPYC Zen 5 (AVX512-BF16), 2 threads,
#: official preset, autoencoder step: 64 px 1.54x, 128 px 1.74x, 256 px 1.83x faster in bf16;
#: an Intel Xeon with AMX gave 1.15x / 1.26x / 1.65x for the whole iteration at 64 / 128 / 256 px.
#: At 64 px, where the course and the demo train, the gain is the smallest (the demo's networks,
#: 1 thread: 114 -> 92 ms per iteration, and the whole demo 7.8 -> 5.2 minutes) and the demo's
#: figures moved: its swaps stayed at 0.942 and above, but its discriminator check ended at 0.050,
#: past its target of 0.05, in the one bf16 run made. So at 64 px and below ``auto`` keeps float32,
#: the same on every CPU; ``precision="bf16"`` is one setting away.
CPU_BF16_SIZES = (128, 256)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (x86 flags ``avx512_bf16`` or ``amx_bf16``, read
    from /proc/cpuinfo; False where that file does not exist)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_precision(setting: str, device: torch.device, image_size: int) -> str:
    """``"fp32"`` or ``"bf16"`` for a run: the setting itself, or for ``"auto"``: bf16 on a CUDA
    GPU that supports it; on a CPU, bf16 where it has native bf16 instructions and the size is
    one of :data:`CPU_BF16_SIZES` (128 and 256 px: measured much faster); float32 elsewhere
    (Apple MPS included)."""
    if setting not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {setting!r}")
    if setting == "bf16" and device.type == "mps":
        raise ValueError("bf16 autocast is not supported on Apple MPS here; use precision 'fp32' or 'auto'")
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu" and image_size in CPU_BF16_SIZES and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    """The autocast context of a precision: bf16 autocast on CUDA or CPU, or nothing (float32)."""
    return torch.autocast(device.type if device.type in ("cuda", "cpu") else "cpu", dtype=torch.bfloat16,
                          enabled=precision == "bf16")


def fits_on_device(n_bytes: int, device: torch.device) -> bool:
    """Whether ``n_bytes`` of data fit in the device's free memory with room to spare for
    training: at least 4 GiB or a quarter of the card, whichever is larger, stays free.
    Only CUDA devices qualify (on a CPU the memory map already is the data's home)."""
    if device.type != "cuda":
        return False
    free, total = torch.cuda.mem_get_info(device)
    return n_bytes <= free - max(4 * 2**30, total // 4)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` intra-op threads (None: leave as is), then restore."""
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ----------------------------------------------------------------------------- several processes
@dataclass
class Dist:
    """This process's place in a distributed run (rank 0 of 1 when alone), and the few
    collective operations training needs. Alone, every operation is the identity."""

    rank: int = 0
    world: int = 1
    group: bool = False  # a process group was joined: always when world > 1; a forced group of one too

    def __post_init__(self):
        self.group = self.group or self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and draws the progress bar."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.group:
            dist.barrier()

    def broadcast(self, obj):
        """Rank 0's ``obj`` (any picklable value), on every rank."""
        if not self.group:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def main_first(self, make: Callable):
        """``make()`` on rank 0 first, then on the other ranks, which find what it built (a data cache)."""
        if not self.main:
            self.barrier()
        result = make()
        if self.main:
            self.barrier()
        return result

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.group:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if ``flag`` is true on any rank."""
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        if self.group:
            dist.all_reduce(t)
        return bool(t.item() > 0)

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` wrapped in DistributedDataParallel (gradients averaged across ranks), or itself alone."""
        if not self.group:
            return module
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def close(self) -> None:
        """Leave the process group. Call it after dropping every DDP wrapper: left to the
        interpreter's exit, gloo's threads were seen to abort a rank now and then (about 1
        run in 20), after all the work was done."""
        if not self.group or not dist.is_initialized():
            return
        gc.collect()
        dist.destroy_process_group()


#: Set to 1, a process alone (or torchrun's one process) still joins a process group of one:
#: the multi-process code path (the group, DDP and its NCCL or gloo collectives) runs on one device.
FORCE_GROUP_VARIABLE = "FADER_DISTRIBUTED"


def init_distributed(device_name: str, force: bool | None = None) -> tuple[Dist, str]:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPU); alone, do nothing,
    unless ``force`` (None: the environment variable ``FADER_DISTRIBUTED=1``), which joins a
    group of one: the code path of several processes, checked on one GPU or CPU.

    Returns this process's :class:`Dist` and the device it should use (``cuda:LOCAL_RANK``
    on a machine with GPUs).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if force is None:
        force = os.environ.get(FORCE_GROUP_VARIABLE, "") == "1"
    if world <= 1 and not force:
        return Dist(), device_name
    rank = int(os.environ["RANK"]) if world > 1 else 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local)
        device_name = f"cuda:{local}"
    elif device_name == "auto":
        device_name = "cpu"
    if not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        if world > 1 or "MASTER_ADDR" in os.environ:  # torchrun's rendezvous
            dist.init_process_group(backend=backend)
        else:  # a forced group of one, without torchrun
            dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0, world_size=1)
    return Dist(rank, world, group=True), device_name


# ----------------------------------------------------------------------------- a training run's placement
#: torch.compile's backend for ``compile=True`` ("eager" traces without generating code: tests use it).
COMPILE_BACKEND = "inductor"


@dataclass
class Placement:
    """Where a training run computes and how, decided once when it starts: this process's place
    among several (:class:`Dist`), the device, the precision and the memory layout. Its methods put
    the networks there and say how batches reach them; the learning algorithm never asks again."""

    dist: Dist
    device: torch.device
    precision: str       # "fp32" or "bf16"
    channels_last: bool
    fast_convs: bool = False  # small convolutions as one matrix product (faderlib/fastconv.py)

    @classmethod
    def choose(cls, device: str = "auto", precision: str = "auto", channels_last: str | bool = "auto",
               image_size: int = 64, fast_convs: str | bool = "auto") -> "Placement":
        """Join the run's processes under torchrun (:func:`init_distributed`), then pick the device
        (:func:`pick_device`), the precision (:func:`choose_precision`), the layout
        (:func:`use_channels_last`) and the convolutions' code path
        (:func:`faderlib.fastconv.choose_fast_convs`) from a run's settings."""
        dist, name = init_distributed(device)
        dev = pick_device(name)
        return cls(dist, dev, choose_precision(precision, dev, image_size), use_channels_last(channels_last, dev),
                   choose_fast_convs(fast_convs, dev))

    def put(self, module: nn.Module) -> nn.Module:
        """``module`` moved to the device, in the channels-last layout if chosen, its small
        convolutions on the matrix-product path if chosen (:func:`faderlib.fastconv.use_gemm`)."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return use_gemm(module, self.fast_convs)

    def wrap(self, module: nn.Module, compile: bool = False) -> tuple[nn.Module, Callable]:
        """``module`` as training calls it: wrapped in DistributedDataParallel when there are several
        processes (:meth:`Dist.wrap`), and that wrapper compiled with :data:`COMPILE_BACKEND` if
        ``compile``. Returns ``(wrapper, forward)``; the weights stay in ``module``."""
        wrapper = self.dist.wrap(module, self.device)
        return wrapper, (torch.compile(wrapper, backend=COMPILE_BACKEND) if compile else wrapper)

    def adam(self, params, **settings) -> torch.optim.Adam:
        """An Adam optimiser of ``params``, with PyTorch's fused kernel where the device has one: one
        pass over all parameters; on 2 CPU cores it takes 4 ms per iteration where the default
        per-parameter loop takes 10-15 ms (benchmarks/bench_train.py)."""
        return torch.optim.Adam(params, fused=True if self.device.type in ("cpu", "cuda") else None, **settings)

    def autocast(self):
        """The autocast context of the run's precision (:func:`autocast`)."""
        return autocast(self.device, self.precision)

    def feed_plan(self, data_on_device: str | bool, prefetch: int | str, split_bytes: int) -> tuple[bool, int]:
        """How training batches reach the device (:mod:`faderlib.feed`): whether the training split
        (``split_bytes``) is uploaded once (``"auto"``: on a GPU where it fits, :func:`fits_on_device`),
        and how many batches a thread reads ahead (``"auto"``: 2 on CUDA when the data is not
        there already, else 0)."""
        on_device = fits_on_device(split_bytes, self.device) if data_on_device == "auto" else bool(data_on_device)
        if prefetch == "auto":
            prefetch = 2 if self.device.type == "cuda" and not on_device else 0
        return on_device, prefetch
