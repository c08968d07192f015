"""Checkpoints that survive a lab: plain state_dicts, atomic writes, weights-only loading, and
proof of what they are.

A checkpoint holds only tensors and plain Python data (dicts, lists, numbers, strings), so
it loads with ``torch.load(path, weights_only=True)`` on any later PyTorch; no pickled
module or class is ever stored (the reference's pickled models no longer load anywhere),
and a file that holds one (a malicious pickle, say) is refused without running it.

Each checkpoint also carries a ``checksum`` of its contents (SHA-256 over every key, value
and tensor byte), checked at every load: bytes changed on disk (a bad copy, a damaged
disk) are found instead of loading silently. The Trainer adds the ``fingerprint`` of its
run's settings, so that a checkpoint copied in from another run is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from pathlib import Path

import torch

from .devices import pick_device
from .errors import CheckpointError, DiskFullError
from .files import atomic_writer, check_free_space, human_bytes, is_disk_full


def content_hash(obj) -> str:
    """SHA-256 of a checkpoint's contents: keys (sorted), values and every tensor's dtype,
    shape and bytes. The same for the state saved and the state loaded back."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h, obj) -> None:
    if isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=str):
            _feed(h, k)
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    else:
        h.update(repr(obj).encode())


def fingerprint(settings: dict) -> str:
    """A short hash of a run's settings (what makes it that run, not how fast it goes)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def state_bytes(obj) -> int:
    """About how many bytes ``torch.save`` writes for ``obj`` (its tensors, plus 1 MB)."""
    if isinstance(obj, dict):
        return sum(state_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(state_bytes(v) for v in obj)
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size() + 512
    return 64


def atomic_save(obj: dict, path: str | os.PathLike) -> Path:
    """Check the free space, then ``torch.save`` ``obj`` with its ``checksum`` to a temporary file
    beside ``path``, flushed to disk, then renamed (:func:`faderlib.files.atomic_writer`): a
    process killed at any moment leaves either the previous checkpoint or the new one. A disk
    that fills up during the write raises :class:`DiskFullError` (the previous file is kept)."""
    path = Path(path)
    state = {k: v for k, v in obj.items() if k != "checksum"}
    state["checksum"] = content_hash(state)
    size = state_bytes(state) + 2**20
    check_free_space(path.parent, size, f"the checkpoint {path.name} ({human_bytes(size)})")
    try:
        with atomic_writer(path, "wb", sync=True) as f:
            torch.save(state, f)
    except (OSError, RuntimeError) as e:
        if is_disk_full(e):
            raise DiskFullError(e.errno if isinstance(e, OSError) else 28,
                                f"the disk of {path.parent} filled up while {path.name} was written (about "
                                f"{human_bytes(size)} needed); the previous {path.name} is kept. Free some space, "
                                "then run the same command again") from None
        raise
    return path


def load(path: str | os.PathLike, map_location=None) -> dict:
    """Load a checkpoint written by faderlib, weights only (no code runs on load), and check it.

    Every tensor is read to the CPU, wherever the run trains: the weights and optimiser states
    reach their device through ``load_state_dict`` (which copies to each parameter's device), and
    the random states are restored on the CPU by :func:`set_rng_state`. ``map_location``, the
    device the caller will use (kept for the callers that name it), is only checked first
    (:func:`faderlib.devices.pick_device`), so that a device this machine lacks is reported as
    such (a ``ValueError``), not as a damaged file.

    Raises ``FileNotFoundError`` if there is none, and :class:`CheckpointError` naming the file
    and why for an empty, truncated, damaged or foreign file, or one holding Python objects.
    """
    if isinstance(map_location, (str, torch.device)):
        pick_device(str(map_location))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train first (fader train ... --out RUN_DIR)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): a save that never finished, or a file emptied since")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} is not a plain checkpoint: it holds Python objects that a weights-only load will not build "
            "(a file from elsewhere, or a malicious one). It was not loaded, and nothing in it ran") from None
    except (EOFError, RuntimeError, ValueError, IndexError, KeyError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path} cannot be read as a PyTorch checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:160] if str(e) else 'no detail'}): truncated, damaged, "
                              "or not a checkpoint") from None
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is a PyTorch file, but not a faderlib checkpoint (no format_version)")
    saved = state.pop("checksum", None)
    if saved is not None and content_hash(state) != saved:
        raise CheckpointError(f"{path} does not match its checksum: its bytes were changed or damaged after it "
                              "was written (a bad copy, a failing disk)")
    return state


def rng_state(*, device: str | torch.device | None = None, **generator_states: torch.Tensor) -> dict:
    """Every random state that training consumes: torch's CPU generator, the CUDA generator of the
    device the run trains on (``device``; only that one: other GPUs are neither read nor woken),
    and the given states of named ``torch.Generator`` objects (``generator=g.get_state()``).

    ``device=None``: the current CUDA device's generator if this process has used CUDA, else none."""
    state = {"torch": torch.get_rng_state(), **generator_states}
    index = _cuda_index(device)
    if index is not None:
        state["cuda"] = torch.cuda.get_rng_state(index)
    return state


def set_rng_state(state: dict, *, device: str | torch.device | None = None, **generators: torch.Generator) -> None:
    """Restore what :func:`rng_state` saved, on the CPU whatever the device the state was loaded to,
    and the CUDA generator of ``device`` alone (None: as :func:`rng_state`). A named generator
    the state lacks (a checkpoint of an earlier version) keeps its seed. Checkpoints of earlier
    versions hold one CUDA state per GPU that was visible: the one of this device is restored, and
    none if that machine had fewer GPUs."""
    torch.set_rng_state(_on_cpu(state["torch"], "torch"))
    for name, generator in generators.items():
        if name in state:
            generator.set_state(_on_cpu(state[name], name))
    saved, index = state.get("cuda"), _cuda_index(device)
    if saved is None or index is None:
        return
    if isinstance(saved, (list, tuple)):  # an earlier version's: every visible GPU's
        if index >= len(saved):
            return
        saved = saved[index]
    torch.cuda.set_rng_state(_on_cpu(saved, "cuda"), index)


def _cuda_index(device: str | torch.device | None) -> int | None:
    """The index of the CUDA device whose generator a run uses, or None: ``device`` if it is a CUDA
    device (without an index: the current one); for None, the current device if this process has
    initialised CUDA (a run on the CPU, on a machine with a GPU, never wakes it)."""
    if not torch.cuda.is_available():
        return None
    if device is None:
        return torch.cuda.current_device() if torch.cuda.is_initialized() else None
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return device.index if device.index is not None else torch.cuda.current_device()


def _on_cpu(t: torch.Tensor, name: str) -> torch.Tensor:
    """A saved random state as ``torch.set_rng_state`` takes it: a uint8 tensor on the CPU."""
    if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8:
        raise CheckpointError(f"the saved random state {name!r} is not a uint8 tensor ({type(t).__name__}"
                              f"{'' if not isinstance(t, torch.Tensor) else ' of ' + str(t.dtype)})")
    if t.device.type == "cpu":
        return t
    try:
        return t.cpu()
    except (NotImplementedError, RuntimeError) as e:
        raise CheckpointError(f"the saved random state {name!r} is on {t.device} and cannot be read back to the "
                              f"CPU ({e}); load checkpoints with faderlib.checkpoint.load, which reads them "
                              "to the CPU") from None
