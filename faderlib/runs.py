"""A run and its folder: what a training run leaves on disk, how it is opened again, and the
rules that keep a folder one run's.

A run folder, written by :class:`~faderlib.train.Trainer` (``fader train --out RUN``) through
its :class:`~faderlib.runfolder.RunFolder`::

    RUN/config.json             the settings (training, networks, data folder): who this run is
    RUN/metrics.jsonl           one JSON row per logged step and validation (faderlib.metrics_log)
    RUN/checkpoints/last.pt     the latest state (resume from here)
    RUN/checkpoints/best.pt     the best validation reconstruction so far
    RUN/samples/step_*.png      sample grids of the validation images

:func:`load_run` opens a trained run (:class:`Run`); :func:`claim_run_dir` makes a folder a run's
folder, refusing one of another run or of another format (:data:`FORMAT_VERSION`), and
:func:`check_checkpoint_belongs` refuses a checkpoint of another run. A run folder can be copied
to another checkout or machine: :mod:`faderlib.run_data` finds its data set again. The course
keeps a run with its companions (classifier, ablation) in one folder: :class:`faderlib.course.CourseRuns`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .cache import prepared
from .config import ModelConfig, jsonable
from .data import FaderDataset
from .devices import pick_device
from .errors import CheckpointError, TrainingError
from .files import LOCK_NAME, atomic_write_text
from .models import AutoEncoder, LatentDiscriminator
from .run_data import RunDataNotFoundError, data_location, read_record, resolve_run_data, same_data_moved

#: Version of the run folder's files (config.json and checkpoints). Version 2 records every
#: training setting (version 1 left out those at the defaults of earlier versions); training
#: refuses a folder or checkpoint of another version (:func:`check_format`).
FORMAT_VERSION = 2

#: Training settings added since format 2, with the value every run had before they existed: a
#: config.json or checkpoint that does not record one is read as having that value (resumed, not
#: refused), and a run at that value keeps the fingerprint it had (:func:`settings_fingerprint`).
ADDED_SETTINGS = {"adversary": "flip", "dis_steps": 1, "dis_lr_scale": 1.0}


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
    #: why the run's data set was not found (:func:`~faderlib.run_data.resolve_run_data`), None if it was
    data_problem: RunDataNotFoundError | None = field(default=None, repr=False)

    def dataset(self, split: str = "test", otherwise: str = "pass images of your own") -> FaderDataset:
        """A split of the run's data set at its image size, with its attributes, never flipped.

        Raises ``FileNotFoundError`` naming the data folder when it cannot be opened (moved,
        deleted, another machine: then the places tried and what to do), suggesting ``otherwise``.
        """
        if split not in self._datasets:
            size = self.model_config.image_size
            problem = self.data_problem
            if problem is not None and str(problem.recorded) == str(self.data_dir) and not problem.redrawn_here:
                raise RunDataNotFoundError(problem.run_dir, problem.recorded, problem.tried,
                                           f"{problem.advice}; or {otherwise}")
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
             with_discriminator: bool = False, data_dir: str | os.PathLike | None = None) -> Run:
    """Load ``RUN_DIR/checkpoints/<checkpoint>`` (``last.pt`` or ``best.pt``) in eval mode.

    ``Run.data_dir`` is where the run's data set is now (:func:`~faderlib.run_data.resolve_run_data`;
    ``data_dir`` names it yourself). A run whose data cannot be found still loads (to edit photos of
    your own): :meth:`Run.dataset` then raises, saying where it looked and what to do.
    """
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    problem = None
    try:
        record["data_root"] = str(resolve_run_data(run_dir, record, data_dir))
    except RunDataNotFoundError as e:
        if data_dir is not None:
            raise  # named by hand, and no data set there: say so now
        problem = e
    device = pick_device(str(device))  # a missing GPU is named before any file is read
    state = ckpt.load(run_dir / "checkpoints" / checkpoint)
    config = ModelConfig.from_dict(state["model_config"])
    ae = AutoEncoder(config).to(device)
    ae.load_state_dict(state["autoencoder"])
    dis = None
    if with_discriminator:
        dis = LatentDiscriminator(config).to(device)
        dis.load_state_dict(state["latent_discriminator"])
        dis.eval()
    return Run(run_dir, config, state["train_config"], record["data_root"], int(state["step"]), ae.eval(), dis,
               data_problem=problem)


def holds_run(path: str | os.PathLike) -> bool:
    """True if ``path`` is a trained run folder (its config and a last checkpoint)."""
    path = Path(path)
    return (path / "config.json").is_file() and (path / "checkpoints" / "last.pt").is_file()


def run_record(run_dir: str | os.PathLike) -> dict:
    """A run's ``config.json``: ``train`` and ``model`` settings and ``data_root``, the folder of its
    data set. ``data_root`` is where that data set is now (:func:`~faderlib.run_data.resolve_run_data`),
    for a run folder copied from elsewhere; the path config.json records is then in
    ``recorded_data_root``. Where it is found nowhere, ``data_root`` stays the recorded path
    (:func:`~faderlib.run_data.resolve_run_data` says why)."""
    record = read_record(run_dir)
    try:
        found = str(resolve_run_data(run_dir, record))
    except RunDataNotFoundError:
        return record
    if found != record.get("data_root"):
        record["recorded_data_root"], record["data_root"] = record.get("data_root"), found
    return record


def sample_photo(run: Run, out_path: str | os.PathLike, index: int = 0) -> Path:
    """Copy the original file (a 178x218 JPEG, as CelebA ships them) of test image ``index``
    of the run's data set to ``out_path``: a photo to edit when you have none of your own."""
    test = run.dataset("test")
    source = test.prepared.image_dir / test.prepared.filenames[test.rows[index]]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out)
    return out


# ----------------------------------------------------------------------------- keeping a folder one run's
def check_format(found, where: Path, checkpoint: bool = False) -> None:
    """Refuse a run folder ``where`` (:class:`TrainingError`), or a checkpoint (:class:`CheckpointError`),
    whose ``format_version`` is ``found``, not :data:`FORMAT_VERSION`, saying what to do."""
    if found == FORMAT_VERSION:
        return
    error, what = (CheckpointError, "checkpoint") if checkpoint else (TrainingError, "run folder")
    raise error(
        f"{where} is a {what} of run-folder format {found if found is not None else '(none recorded)'}; this "
        f"faderlib trains and resumes format {FORMAT_VERSION} only. Nothing was changed. Train into a new "
        "folder (another --out), or resume it with the faderlib version that made it.")


def claim_run_dir(run_dir: str | os.PathLike, record: dict, runtime_keys: tuple[str, ...], resume: bool,
                  resume_from: str = "last.pt", done_at: int | None = None) -> None:
    """Make ``run_dir`` this run's folder: refuse one that holds something else, else create
    it with ``samples/`` and write ``record`` as its ``config.json``.

    A folder with a ``config.json`` of another format (:func:`check_format`) or of other settings
    (other than ``runtime_keys``, which may change on resume) is refused, as is a non-empty folder
    with none, and one whose ``best.pt`` a fresh start would overwrite (:func:`check_last_missing`):
    nothing is changed. ``done_at``: the step of the checkpoint to resume from when it is already at
    or past ``record``'s steps (nothing to train): config.json then keeps the runtime settings it
    records (the run's steps), not this command's.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    last = run_dir / "checkpoints" / "last.pt"
    if record.get("data_root") and "data_identity" not in record:
        record = {**record, **data_location(record["data_root"], run_dir)}
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        check_format(old.get("format_version"), run_dir)
        diffs = settings_differences(old.get("train", {}), old.get("model"), record["train"], record["model"],
                                     runtime_keys)
        same_dirs = [d for d in old.get("same_data_dirs", []) if d != record["train"].get("data_dir")]
        note = ""
        if "data_dir" in diffs:
            moved, note = same_data_moved(run_dir, old, record)
            if moved:  # the same data set, read from another place: a run folder copied with its data
                diffs.remove("data_dir")
                same_dirs += [d for d in (old.get("train", {}).get("data_dir"),) if d not in same_dirs]
        if diffs:
            raise TrainingError(
                f"{run_dir} holds a run of another configuration (differs in: {', '.join(diffs)}{note}). "
                "Nothing was changed. Use a new --out folder, or rerun with the settings of "
                f"{cfg_path} to resume it.")
        if same_dirs:
            record = {**record, "same_data_dirs": same_dirs}
        if not resume and last.exists():
            raise TrainingError(f"{run_dir} already holds a run; resume it or choose a new folder")
        check_last_missing(run_dir / "checkpoints", resume_from)
        if done_at is not None and done_at >= record["train"].get("steps", 0):
            old_train = old.get("train", {})
            record = {**record, "train": {**record["train"],
                                          **{k: old_train[k] for k in runtime_keys if k in old_train}}}
    elif run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise TrainingError(
            f"{run_dir} is not empty and holds no faderlib run (no config.json); "
            "choose a new or empty --out folder, nothing was changed")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    atomic_write_text(cfg_path, json.dumps(record, indent=2))


def check_last_missing(checkpoint_dir: Path, resume_from: str = "last.pt") -> None:
    """Refuse (:class:`TrainingError`) to start a run from step 0 where ``last.pt`` is missing (deleted,
    or a link to nothing) but ``best.pt`` is there: the fresh start would empty the metrics log and
    overwrite ``best.pt`` with an earlier model. Say which step best.pt holds and how to resume from it."""
    last, best = checkpoint_dir / "last.pt", checkpoint_dir / "best.pt"
    if resume_from != "last.pt" or last.exists() or not (best.exists() or best.is_symlink()):
        return
    how = (f"is a link to {os.readlink(last)}, which does not exist" if last.is_symlink() else "is missing")
    try:
        step = f"step {int(ckpt.load(best)['step'])}"
    except (CheckpointError, FileNotFoundError, KeyError, ValueError) as exc:
        step = f"unreadable: {exc}"
    raise TrainingError(
        f"{last} {how}, but {best} is there ({step}): starting again from step 0 would empty metrics.jsonl "
        "and overwrite best.pt with an earlier model. Nothing was changed. Resume from best.pt with the same "
        "command and --resume-from best.pt (in Python: Trainer(..., resume_from='best.pt')), or to start over "
        "train into a new folder (another --out).")


def settings_differences(old_train: dict, old_model: dict | None, train: dict, model: dict,
                         runtime_keys: tuple[str, ...]) -> list[str]:
    """The settings in which two runs differ (``"model"`` for the networks), ``runtime_keys`` aside; a
    setting one of them does not record has its value of before it existed (:data:`ADDED_SETTINGS`)."""
    old_train, train = {**ADDED_SETTINGS, **jsonable(old_train)}, {**ADDED_SETTINGS, **jsonable(train)}
    keys = (set(old_train) | set(train)) - set(runtime_keys)
    diffs = sorted(k for k in keys if old_train.get(k) != train.get(k))
    if jsonable(old_model) != jsonable(model):
        diffs.append("model")
    return diffs


def settings_fingerprint(train: dict, model: dict, runtime_keys: tuple[str, ...]) -> str:
    """What makes a run this run (:func:`faderlib.checkpoint.fingerprint`): its settings but those that
    may change on resume (``runtime_keys``), and but the :data:`ADDED_SETTINGS` at the value every
    run had before they existed (so that a run of before keeps its fingerprint)."""
    kept = {k: v for k, v in jsonable(train).items()
            if k not in runtime_keys and not (k in ADDED_SETTINGS and v == ADDED_SETTINGS[k])}
    return ckpt.fingerprint({"train": kept, "model": model})


def check_checkpoint_belongs(path: Path, state: dict, fingerprint: str, train: dict, model: dict,
                             runtime_keys: tuple[str, ...]) -> None:
    """Refuse (:class:`CheckpointError`) a checkpoint of another format (:func:`check_format`), or of
    another run, copied from a neighbour's folder, say: its fingerprint is not the run's."""
    check_format(state.get("format_version"), path, checkpoint=True)
    if state.get("fingerprint") == fingerprint and state.get("model_config") == model:
        return
    diffs = settings_differences(state.get("train_config", {}), state.get("model_config"), train, model, runtime_keys)
    if diffs == ["data_dir"] and _data_dir_of_this_run(path, state.get("train_config", {}).get("data_dir")):
        return  # saved before the run folder moved: the same data, read from another place now
    raise CheckpointError(f"{path} belongs to another run: it was trained with other settings (differs in: "
                          f"{', '.join(diffs) or 'its fingerprint'}); it was not loaded")


def _data_dir_of_this_run(checkpoint: Path, data_dir) -> bool:
    """True if ``data_dir`` is one the run folder of ``checkpoint`` (``RUN/checkpoints/x.pt``) read
    the same data set from before it moved (``same_data_dirs`` of its config.json, which
    :func:`claim_run_dir` checked)."""
    try:
        record = json.loads((checkpoint.parent.parent / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return jsonable(data_dir) in jsonable(record.get("same_data_dirs", []))


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
