"""Checkpoints that survive a lab: plain state_dicts, atomic writes, weights-only loading.

A checkpoint holds only tensors and plain Python data (dicts, lists, numbers, strings), so
it loads with ``torch.load(path, weights_only=True)`` on any later PyTorch; no pickled
module or class is ever stored (the reference's pickled models no longer load anywhere).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .files import atomic_writer


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, flushed to disk, then renamed
    (:func:`faderlib.files.atomic_writer`): a process killed at any moment leaves either the
    previous checkpoint or the new one, never half of one."""
    with atomic_writer(path, "wb", sync=True) as f:
        torch.save(obj, f)
    return Path(path)


def load(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by faderlib, weights only (no code runs on load)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train first (fader train ... --out RUN_DIR)")
    return torch.load(path, map_location=map_location, weights_only=True)


def rng_state(**generator_states: torch.Tensor) -> dict:
    """Every random state that training consumes: torch's CPU (and CUDA) generators, and the
    given states of named ``torch.Generator`` objects (``generator=g.get_state()``)."""
    state = {"torch": torch.get_rng_state(), **generator_states}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, **generators: torch.Generator) -> None:
    """Restore what :func:`rng_state` saved; a named generator the state lacks (a checkpoint of
    an earlier version) keeps its seed."""
    torch.set_rng_state(state["torch"])
    for name, generator in generators.items():
        if name in state:
            generator.set_state(state[name])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
