"""Run folders: what a training run leaves on disk, and how it is found and opened again.

A run folder, written by :class:`~faderlib.train.Trainer` (``fader train --out RUN``)::

    RUN/config.json             the settings (training, networks, data folder): who this run is
    RUN/metrics.jsonl           one JSON row per logged step and validation
    RUN/checkpoints/last.pt     the latest state (resume from here)
    RUN/checkpoints/best.pt     the best validation reconstruction so far
    RUN/samples/step_*.png      sample grids of the validation images

The course keeps a run with its companions in one folder, the layout ``fader demo`` writes
in ``runs/demo`` (``RUN_DIR`` in the notebooks)::

    RUN_DIR/fader/              the Fader network (notebook 03)
    RUN_DIR/ablation_lambda0/   the same network trained with lambda_E = 0 (notebook 03)
    RUN_DIR/classifier/         the attribute classifier that judges swaps (notebooks 03, 05)
    RUN_DIR/unbalanced/         the run again with the other class-balancing choice (notebook 05)
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from . import checkpoint as ckpt
from .cache import prepared
from .config import ModelConfig, jsonable
from .data import FaderDataset
from .errors import CheckpointError, TrainingError
from .files import LOCK_NAME, atomic_write_text
from .models import AutoEncoder, LatentDiscriminator

#: Version of the run folder's files (config.json and checkpoints).
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------- a trained run
@dataclass
class Run:
    """A trained Fader network, ready to encode and decode (eval mode)."""

    run_dir: Path
    model_config: ModelConfig
    train_config: dict
    data_dir: str
    step: int
    autoencoder: AutoEncoder
    discriminator: LatentDiscriminator | None = None
    _datasets: dict = field(default_factory=dict, repr=False)

    def dataset(self, split: str = "test", otherwise: str = "pass images of your own") -> FaderDataset:
        """A split of the run's data set at its image size, with its attributes, never flipped.

        Raises ``FileNotFoundError`` naming the data folder when it cannot be opened (moved,
        deleted, another machine), suggesting ``otherwise`` or to recreate the data.
        """
        if split not in self._datasets:
            size = self.model_config.image_size
            try:
                data = prepared(self.data_dir, size, progress=False)
            except Exception as e:
                raise FileNotFoundError(
                    f"cannot open the run's data set {self.data_dir!r} at {size} px ({e}); {otherwise}, "
                    "or recreate the data (`fader synth DIR`)") from None
            self._datasets[split] = FaderDataset(data, split, self.model_config.attribute_names, flip=False)
        return self._datasets[split]

    def images(self, n: int = 6, start: int = 0, split: str = "test",
               otherwise: str = "pass the images yourself (x=..., y=...)") -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``start..start+n-1`` of a split: x (n, 3, S, S) in [-1, 1], y (n, n_attr) class indices."""
        data = self.dataset(split, otherwise)
        if not 0 <= start < len(data):
            raise IndexError(f"image index {start} is out of range: the {split} split has {len(data)} images "
                             f"(0..{len(data) - 1})")
        return data.batch(torch.arange(start, min(start + n, len(data))))


def load_run(run_dir: str | os.PathLike, checkpoint: str = "last.pt", device: str | torch.device = "cpu",
             with_discriminator: bool = False) -> Run:
    """Load ``RUN_DIR/checkpoints/<checkpoint>`` (``last.pt`` or ``best.pt``) in eval mode."""
    run_dir = Path(run_dir)
    record = run_record(run_dir)
    state = ckpt.load(run_dir / "checkpoints" / checkpoint, map_location=device)
    config = ModelConfig.from_dict(state["model_config"])
    ae = AutoEncoder(config).to(device)
    ae.load_state_dict(state["autoencoder"])
    dis = None
    if with_discriminator:
        dis = LatentDiscriminator(config).to(device)
        dis.load_state_dict(state["latent_discriminator"])
        dis.eval()
    return Run(run_dir, config, state["train_config"], record["data_root"], int(state["step"]), ae.eval(), dis)


def holds_run(path: str | os.PathLike) -> bool:
    """True if ``path`` is a trained run folder (its config and a last checkpoint)."""
    path = Path(path)
    return (path / "config.json").is_file() and (path / "checkpoints" / "last.pt").is_file()


def run_record(run_dir: str | os.PathLike) -> dict:
    """A run's ``config.json``: ``train`` and ``model`` settings and ``data_root``."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a training run (no config.json); train one with "
            f"`fader train --out {run_dir}` (or notebook 03), or open runs/demo after `make demo`")
    return json.loads(path.read_text())


def sample_photo(run: Run, out_path: str | os.PathLike, index: int = 0) -> Path:
    """Copy the original file (a 178x218 JPEG, as CelebA ships them) of test image ``index``
    of the run's data set to ``out_path``: a photo to edit when you have none of your own."""
    test = run.dataset("test")
    source = Path(test.prepared.meta["image_dir"]) / test.prepared.filenames[test.rows[index]]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out)
    return out


# ----------------------------------------------------------------------------- writing a run
def claim_run_dir(run_dir: str | os.PathLike, record: dict, runtime_keys: tuple[str, ...], resume: bool) -> None:
    """Make ``run_dir`` this run's folder: refuse one that holds something else, else create
    it with ``samples/`` and write ``record`` as its ``config.json``.

    A folder with a ``config.json`` of other settings (other than ``runtime_keys``, which may
    change on resume) is refused, as is a non-empty folder with none: nothing is changed.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    last = run_dir / "checkpoints" / "last.pt"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        diffs = settings_differences(old.get("train", {}), old.get("model"), record["train"], record["model"],
                                     runtime_keys)
        if diffs:
            raise TrainingError(
                f"{run_dir} holds a run of another configuration (differs in: {', '.join(diffs)}). "
                "Nothing was changed. Use a new --out folder, or rerun with the settings of "
                f"{cfg_path} to resume it.")
        if not resume and last.exists():
            raise TrainingError(f"{run_dir} already holds a run; resume it or choose a new folder")
    elif run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise TrainingError(
            f"{run_dir} is not empty and holds no faderlib run (no config.json); "
            "choose a new or empty --out folder, nothing was changed")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    atomic_write_text(cfg_path, json.dumps(record, indent=2))


def settings_differences(old_train: dict, old_model: dict | None, train: dict, model: dict,
                         runtime_keys: tuple[str, ...]) -> list[str]:
    """The settings in which two runs differ (``"model"`` for the networks), ``runtime_keys`` aside."""
    old_train, train = jsonable(old_train), jsonable(train)
    keys = (set(old_train) | set(train)) - set(runtime_keys)
    diffs = sorted(k for k in keys if old_train.get(k) != train.get(k))
    if jsonable(old_model) != jsonable(model):
        diffs.append("model")
    return diffs


def check_checkpoint_belongs(path: Path, state: dict, fingerprint: str, train: dict, model: dict,
                             runtime_keys: tuple[str, ...]) -> None:
    """Refuse (:class:`CheckpointError`) a checkpoint of another run, copied from a neighbour's folder, say:
    its fingerprint, or for a checkpoint of an earlier version its settings, are not the run's."""
    if state.get("fingerprint", fingerprint) == fingerprint and state.get("model_config", model) == model:
        return
    diffs = settings_differences(state.get("train_config", {}), state.get("model_config"), train, model, runtime_keys)
    raise CheckpointError(f"{path} belongs to another run: it was trained with other settings (differs in: "
                          f"{', '.join(diffs) or 'its fingerprint'}); it was not loaded")


def resume_advice(checkpoint_dir: Path, bad: Path, check) -> str:
    """What to do when ``bad`` cannot be resumed from: is ``best.pt`` there and sound? ``check(path, state)``
    raises if a checkpoint is not this run's."""
    best = checkpoint_dir / "best.pt"
    if bad.name == "best.pt" or not best.exists():
        return ("No other checkpoint of this run can be resumed from: start it again in a new folder "
                "(another --out), or delete this folder")
    try:
        state = ckpt.load(best)
        check(best, state)
    except (CheckpointError, FileNotFoundError) as exc:
        return f"best.pt cannot be used either ({exc}): start the run again in a new folder (another --out)"
    return (f"{best} is intact (step {state['step']}): resume from it with the same command and "
            "--resume-from best.pt (in Python: Trainer(..., resume_from='best.pt'))")


class LogWindow:
    """The running window of a run's metrics log: each iteration's losses added where they were
    computed (on the device: the host does not wait), averaged into one row per log step.

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

    def reset(self) -> None:
        self.sums: torch.Tensor | None = None
        self.lambdas: list[float] = []
        self._first_bad = self._bad_values = None

    def add(self, step: int, values: list[torch.Tensor], lambda_e: float) -> None:
        """One iteration (``step``, 1-based): its :attr:`KEYS` values as 0-dim tensors, and lambda_E."""
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

    def row(self, step: int) -> dict:
        """The averages since the last row, as the train row of ``step`` (one read of the device); then a new window."""
        n = len(self.lambdas)
        row = {"phase": "train", "step": step, **{k: v / n for k, v in zip(self.KEYS, self.sums.tolist())},
               "lambda_e": sum(self.lambdas) / n}
        self.reset()
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


# ----------------------------------------------------------------------------- the course's layout
@dataclass
class CourseRuns:
    """Where the course's runs are: the Fader network to use, and where its companions
    (classifier, lambda_E = 0 ablation, the other balancing choice) are or will be written."""

    fader: Path
    classifier: Path
    ablation: Path
    unbalanced: Path
    source: str

    def __str__(self) -> str:
        return f"Fader network: {self.fader} ({self.source})"


def course_runs(run_dir: str | os.PathLike) -> CourseRuns:
    """The layout of the course folder ``run_dir`` (see the module docstring). A folder
    that is itself a run (made by ``fader train --out``) keeps its companions beside it,
    named ``<run>_classifier`` and so on."""
    root = Path(run_dir)
    if holds_run(root) or ((root / "config.json").is_file() and not (root / "fader").exists()):
        return CourseRuns(root, root.with_name(root.name + "_classifier"), root.with_name(root.name + "_lambda0"),
                          root.with_name(root.name + "_unbalanced"), "a run folder")
    return CourseRuns(root / "fader", root / "classifier", root / "ablation_lambda0", root / "unbalanced",
                      "the course folder")


def find_run(run_dir: str | os.PathLike, demo_dir: str | os.PathLike | None = None) -> CourseRuns | None:
    """The trained run to use: in ``run_dir`` (a course folder or a run folder), else in
    ``demo_dir`` (``runs/demo`` after ``make demo``), else None. Companions that the run's
    folder lacks are placed in ``run_dir``."""
    mine = course_runs(run_dir)
    if holds_run(mine.fader):
        return CourseRuns(mine.fader, mine.classifier, mine.ablation, mine.unbalanced, f"trained in {run_dir}")
    if demo_dir is not None:
        demo = course_runs(demo_dir)
        if holds_run(demo.fader):
            def pick(theirs: Path, ours: Path) -> Path:
                return theirs if theirs.exists() else ours

            return CourseRuns(demo.fader, pick(demo.classifier, mine.classifier), pick(demo.ablation, mine.ablation),
                              mine.unbalanced, f"the demo's run in {demo_dir}")
    return None
