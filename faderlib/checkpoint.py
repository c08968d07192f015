"""Checkpoints that survive a lab: plain state_dicts, atomic writes, weights-only loading.

A checkpoint holds only tensors and plain Python data (dicts, lists, numbers, strings), so
it loads with ``torch.load(path, weights_only=True)`` on any later PyTorch; no pickled
module or class is ever stored (the reference's pickled models no longer load anywhere).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, flush it to disk, then rename.

    A rename within one folder is atomic, so a process killed at any moment leaves either
    the previous file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by faderlib, weights only (no code runs on load)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train first (fader train ... --out RUN_DIR)")
    return torch.load(path, map_location=map_location, weights_only=True)


def rng_state(generator: torch.Generator) -> dict:
    """Every random state that training consumes: torch's CPU and CUDA generators and ours."""
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
