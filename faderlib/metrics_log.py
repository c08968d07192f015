"""A run's metrics log, ``RUN/metrics.jsonl``: one JSON row per logged step (``phase: "train"``,
the averages since the previous row) and per validation (``phase: "valid"``).

:class:`LogWindow` gathers the training rows where the losses are computed (the host never waits
for the device inside a step); :func:`append_metrics` writes a row, :func:`truncate_metrics` drops
the rows a resumed run will write again, :func:`read_metrics` reads the log as a table (the
notebooks' plots), and :func:`speed_report` says what the logged speed means on this machine.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pandas as pd
import torch

from .files import atomic_write_text
from .runs import run_record


class LogWindow:
    """The running window of a run's metrics log: each iteration's losses added where they were
    computed (on the device: the host does not wait), averaged into one row per log step, with
    the images per second trained since the previous row.

    The sums are float64, so that a row's averages are exactly Python's sums of the same numbers
    (float32 on Apple MPS, which has no float64). The window also remembers the first step whose
    losses were not finite, with its values, for the checks that stop a run. :meth:`state` and
    :meth:`load` carry it through a checkpoint, so that a resumed run logs what an uninterrupted one does.
    """

    KEYS = ("dis_loss", "dis_accuracy", "rec_loss", "adv_loss")  # all but the accuracy are losses

    def __init__(self, device: torch.device):
        self.device = device
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.reset()
        self.start_clock()

    def start_clock(self) -> None:
        """Start timing the training images of the next row (:meth:`row`'s ``images_per_s``)."""
        self._images, self._t0 = 0, time.perf_counter()

    def reset(self) -> None:
        self.sums: torch.Tensor | None = None
        self.lambdas: list[float] = []
        self._first_bad = self._bad_values = None

    def add(self, step: int, values: list[torch.Tensor], lambda_e: float, images: int = 0) -> None:
        """One iteration (``step``, 1-based): its :attr:`KEYS` values as 0-dim tensors, lambda_E, and
        the images it trained on."""
        self._images += images
        v = torch.stack(values).to(self.dtype)
        if self.sums is None:
            self.sums = torch.zeros_like(v)
            self._first_bad = torch.full((), math.inf, dtype=self.dtype, device=v.device)
            self._bad_values = torch.zeros_like(v)
        self.sums += v
        new = ~torch.isfinite(v).all() & torch.isinf(self._first_bad)  # (the accuracy is always finite)
        self._bad_values = torch.where(new, v, self._bad_values)
        self._first_bad = torch.where(new, float(step), self._first_bad)
        self.lambdas.append(lambda_e)

    def first_bad(self) -> tuple[int, dict] | None:
        """The first step since the last row whose losses were not finite, and its values (a read of the device)."""
        if self._first_bad is None or not math.isfinite(float(self._first_bad)):
            return None
        return int(self._first_bad), dict(zip(self.KEYS, self._bad_values.tolist()))

    @staticmethod
    def describe_bad(found: tuple[int, dict] | None, step: int) -> str:
        """What :meth:`first_bad` found (None: nothing here, so a loss on another rank), in words, for
        the error that stops a run at the check of ``step``."""
        first, bad = found if found is not None else (None, {})
        what = ", ".join(f"{k} = {v}" for k, v in bad.items() if k.endswith("loss") and not math.isfinite(v))
        where = f"step {first}" if first is not None else f"a step up to {step}"
        return f"{where}: {what or 'a loss on another rank'} is not finite (found at the check of step {step})"

    def row(self, step: int, world: int = 1) -> dict:
        """The averages since the last row, as the train row of ``step`` (one read of the device), with
        the images per second since the last row (or :meth:`start_clock`) of ``world`` processes
        alike; then a new window."""
        n = len(self.lambdas)
        row = {"phase": "train", "step": step, **{k: v / n for k, v in zip(self.KEYS, self.sums.tolist())},
               "lambda_e": sum(self.lambdas) / n}
        row["images_per_s"] = self._images * world / max(time.perf_counter() - self._t0, 1e-9)
        self.reset()
        self.start_clock()
        return row

    def state(self) -> dict:
        return {"sums": self.sums.tolist() if self.sums is not None else [], "lambdas": list(self.lambdas)}

    def load(self, state: dict | None) -> None:
        self.reset()
        if state and state["lambdas"]:
            self.sums = torch.tensor(state["sums"], dtype=self.dtype, device=self.device)
            self._first_bad = torch.full((), math.inf, dtype=self.dtype, device=self.device)
            self._bad_values = torch.zeros_like(self.sums)
            self.lambdas = list(state["lambdas"])


def append_metrics(run_dir: str | os.PathLike, row: dict) -> None:
    """Add one row to the run's ``metrics.jsonl``."""
    with open(Path(run_dir) / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def truncate_metrics(run_dir: str | os.PathLike, step: int) -> None:
    """On resume, drop the log rows written after the checkpoint's ``step``: those steps run again."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if json.loads(r)["step"] <= step]
    if len(kept) != len(rows):
        atomic_write_text(path, "".join(r + "\n" for r in kept))


def read_metrics(run_dir: str | os.PathLike) -> pd.DataFrame:
    """The metrics log of a run as a pandas DataFrame (one row per logged step and phase)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no metrics log at {path}; has this run been trained?")
    return pd.read_json(path, lines=True)


def speed_report(run_dir: str | os.PathLike, epoch_images: int = 50_000) -> str:
    """The speed a run measured on this machine (median images per second of its logged
    rows, both networks' batches counted) and what it means: seconds per step, minutes per
    reference "epoch" of ``epoch_images`` images, i.e. ``epoch_images / batch`` steps."""
    m = read_metrics(run_dir)
    train = m[m["phase"] == "train"]
    if train.empty or "images_per_s" not in train:
        return f"{run_dir}: no training rows logged yet"
    record = run_record(run_dir)["train"]
    ips = float(train["images_per_s"].median())
    batch = int(record["batch_size"])
    step_s = 2 * batch / ips
    epoch_steps = epoch_images / batch
    return (f"{ips:,.0f} images/s ({step_s * 1e3:.0f} ms per step of two batches of {batch}, "
            f"{record['image_size']} px): an epoch of {epoch_images:,} images ({epoch_steps:,.0f} steps) "
            f"takes {epoch_steps * step_s / 60:.1f} min here")
