"""Run folders: what a training run leaves on disk, and how it is found and opened again.

A run folder, written by :class:`~faderlib.train.Trainer` (``fader train --out RUN``)::

    RUN/config.json             the settings (training, networks, data folder): who this run is
    RUN/metrics.jsonl           one JSON row per logged step and validation
    RUN/checkpoints/last.pt     the latest state (resume from here)
    RUN/checkpoints/best.pt     the best validation reconstruction so far
    RUN/samples/step_*.png      sample grids of the validation images

A run folder can be copied to another checkout or machine (a teacher handing ``runs/demo`` to
a class): ``config.json`` records its data set three ways, its absolute path (``data_root``),
its path relative to the run folder when it lies near it (``data_relative``, e.g.
``../../../data/synthetic``), and what identifies it (``data_identity``: the size and SHA-1 of
its tables). :func:`resolve_run_data` finds it again from those (see there); a resumed run
may then read the same data from another place.

The course keeps a run with its companions in one folder, the layout ``fader demo`` writes
in ``runs/demo`` (``RUN_DIR`` in the notebooks)::

    RUN_DIR/fader/              the Fader network (notebook 03)
    RUN_DIR/ablation_lambda0/   the same network trained with lambda_E = 0 (notebook 03)
    RUN_DIR/classifier/         the attribute classifier that judges swaps (notebooks 03, 05)
    RUN_DIR/unbalanced/         the run again with the other class-balancing choice (notebook 05)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from . import checkpoint as ckpt
from . import synth
from .cache import prepared
from .celeba import DATA_ENV_VAR, default_data_dir, table_files
from .config import ModelConfig, jsonable
from .data import FaderDataset
from .errors import CheckpointError, DataError, TrainingError
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
    #: why the run's data set was not found (:func:`resolve_run_data`), None if it was
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

    ``Run.data_dir`` is where the run's data set is now (:func:`resolve_run_data`; ``data_dir``
    names it yourself). A run whose data cannot be found still loads (to edit photos of your own):
    :meth:`Run.dataset` then raises, saying where it looked and what to do.
    """
    run_dir = Path(run_dir)
    record = _read_record(run_dir)
    problem = None
    try:
        record["data_root"] = str(resolve_run_data(run_dir, record, data_dir))
    except RunDataNotFoundError as e:
        if data_dir is not None:
            raise  # named by hand, and no data set there: say so now
        problem = e
    state = ckpt.load(run_dir / "checkpoints" / checkpoint, map_location=device)
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
    data set. ``data_root`` is where that data set is now (:func:`resolve_run_data`), for a run folder
    copied from elsewhere; the path config.json records is then in ``recorded_data_root``. Where it
    is found nowhere, ``data_root`` stays the recorded path (:func:`resolve_run_data` says why)."""
    record = _read_record(run_dir)
    try:
        found = str(resolve_run_data(run_dir, record))
    except RunDataNotFoundError:
        return record
    if found != record.get("data_root"):
        record["recorded_data_root"], record["data_root"] = record.get("data_root"), found
    return record


def _read_record(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a training run (no config.json); train one with "
            f"`fader train --out {run_dir}` (or notebook 03), or open runs/demo after `make demo`")
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------- where a run's data is
#: A run folder records its data's path relative to itself when the data lies at most this many
#: folders up (``runs/demo/fader`` -> ``../../../data/synthetic`` is 3): data that travels with it.
RELATIVE_DATA_UP = 4

_IDENTITY_CACHE: dict = {}


def _file_identity(path: Path | None) -> dict | None:
    if path is None:
        return None
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _IDENTITY_CACHE:
        digest = hashlib.sha1()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _IDENTITY_CACHE[key] = {"name": path.name, "bytes": st.st_size, "sha1": digest.hexdigest()}
    return dict(_IDENTITY_CACHE[key])


def data_identity(data_dir: str | os.PathLike) -> dict | None:
    """What identifies a data set, cheaply (a SHA-1 of its tables, not of its images): the folder's
    name, the name, size and SHA-1 of its attribute and partition files, and for the synthetic faces
    their ``synth_faces.json`` (version, n, seed). None if ``data_dir`` holds no data set."""
    root = Path(data_dir).expanduser()
    try:
        attributes, partition = table_files(root)
        identity = {"name": root.resolve().name, "attribute_file": _file_identity(attributes),
                    "partition_file": _file_identity(partition)}
    except (DataError, OSError):
        return None
    marker = synth.read_marker(root)
    if marker and marker.get("complete"):
        identity["synthetic"] = {k: marker.get(k) for k in ("version", "n", "seed")}
    return identity


def same_data(a: dict | None, b: dict | None) -> bool:
    """True if two :func:`data_identity` records are of the same data set (its tables, byte for
    byte; the folder's name may differ). False when either is unknown."""
    return bool(a and b) and all(a.get(k) == b.get(k) for k in ("attribute_file", "partition_file"))


def data_location(data_root: str | os.PathLike, run_dir: str | os.PathLike) -> dict:
    """What a run folder records about its data besides ``data_root``: ``data_relative``, the path from
    the run folder to the data when it lies near (:data:`RELATIVE_DATA_UP`; None otherwise), and
    ``data_identity`` (:func:`data_identity`)."""
    root, run = Path(data_root).resolve(), Path(run_dir).resolve()
    try:
        relative = os.path.relpath(root, run)
    except ValueError:  # another drive (Windows)
        relative = None
    if relative is not None:
        parts = Path(relative).parts
        if parts.count("..") > RELATIVE_DATA_UP or all(p == ".." for p in parts):
            relative = None  # far away, or a folder that holds the run folder: it does not travel with it
    return {"data_relative": None if relative is None else Path(relative).as_posix(),
            "data_identity": data_identity(root)}


class RunDataNotFoundError(FileNotFoundError):
    """A run's data set is at none of the places it could be (:func:`resolve_run_data`).

    ``run_dir``, ``recorded`` (the path config.json records), ``tried`` ([(path, why not)]) and
    ``advice`` (what to do) are attributes; the message says all of it."""

    def __init__(self, run_dir, recorded, tried: list[tuple[str, str]], advice: str, redrawn_here: bool = False):
        self.run_dir, self.recorded, self.tried, self.advice = Path(run_dir), recorded, tried, advice
        self.redrawn_here = redrawn_here  # the kit's own data folder, which prepared() draws when empty
        places = "".join(f"\n  - {path}: {why}" for path, why in tried)
        super().__init__(f"cannot find the data set of the run {self.run_dir} (config.json records {recorded}). "
                         f"Tried:{places}\n{advice}")


def _data_candidates(run_dir: Path, record: dict, data_dir) -> list[tuple[str, Path]]:
    """Where a run's data may be, in the order tried (see :func:`resolve_run_data`)."""
    recorded = record.get("data_root")
    identity = record.get("data_identity") or {}
    name = identity.get("name") or (Path(recorded).name if recorded else None)
    found = []
    if data_dir is not None:
        found.append(("given", Path(data_dir).expanduser()))
    if recorded:
        found.append(("recorded", Path(recorded)))
    if record.get("data_relative"):
        found.append(("beside the run", (run_dir.resolve() / record["data_relative"]).resolve()))
    env = os.environ.get(DATA_ENV_VAR)
    kit = default_data_dir()
    by_name = []
    if env:
        by_name += [Path(env).expanduser()] + ([Path(env).expanduser().parent / name] if name else [])
    if name:
        by_name.append(kit.parent / name)
    found += [("by name", p) for p in by_name] + [("the default", kit)]
    unique, seen = [], set()
    for how, path in found:
        key = os.path.normpath(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            unique.append((how, path))
    return unique


def _why_not(path: Path, identity: dict | None, theirs: dict | None) -> str:
    if not path.exists():
        return "does not exist"
    if theirs is None:
        return "holds no data set (no list_attr_celeba.txt or .csv)"
    mine = identity["attribute_file"]
    other = theirs["attribute_file"]
    if mine != other:
        return (f"holds another data set (its {other['name']} has {other['bytes']:,} bytes"
                + (", other contents" if mine["bytes"] == other["bytes"] else f", the run's had {mine['bytes']:,}")
                + ")")
    return "holds another data set (another partition file: other train/valid/test splits)"


def resolve_run_data(run_dir: str | os.PathLike, record: dict | None = None,
                     data_dir: str | os.PathLike | None = None) -> Path:
    """The folder of a run's data set, on this machine. Tried in this order, each taken only if it
    holds the same data set as the run was trained on (:func:`same_data`, by its ``data_identity``):

    1. ``data_dir`` if given (taken even if it differs, with a warning: your choice);
    2. the path ``config.json`` records (``data_root``);
    3. the path relative to the run folder (``data_relative``): a run copied with its data;
    4. the data set by its folder's name: ``$FADER_DATA`` itself, then ``<name>`` beside it, then
       ``data/<name>`` of this kit; then this kit's default, ``data/synthetic``.

    A run folder written before runs recorded their data's identity takes its recorded path if it
    exists, else a folder of the same name (with a warning: it cannot be checked). Raises
    :class:`RunDataNotFoundError` (a ``FileNotFoundError``) naming the run folder, the places tried
    and what to do.
    """
    run_dir = Path(run_dir)
    record = _read_record(run_dir) if record is None else record
    identity = record.get("data_identity")
    recorded = record.get("data_root")
    name = (identity or {}).get("name") or (Path(recorded).name if recorded else "")
    tried = []
    for how, path in _data_candidates(run_dir, record, data_dir):
        theirs = data_identity(path) if path.exists() else None
        if how == "given":
            if theirs is None:
                raise RunDataNotFoundError(run_dir, recorded, [(str(path), _why_not(path, identity, None))],
                                           f"pass the folder that holds the run's data set ({name})")
            if identity and not same_data(identity, theirs):
                warnings.warn(f"{path} is not the data set the run {run_dir} was trained on "
                              f"({_why_not(path, identity, theirs)}); using it as asked", UserWarning, stacklevel=3)
            return path
        if identity is None:  # a run folder of an earlier version: nothing to check against
            if theirs is not None and (how == "recorded" or path.resolve().name == name):
                if how != "recorded":
                    warnings.warn(f"the run {run_dir} reads its data from {path}: its recorded folder {recorded} "
                                  "is gone, and the run folder is too old to say which data set it was, so this "
                                  f"one (of the same name, {name}) cannot be checked", UserWarning, stacklevel=3)
                return path
            tried.append((str(path), "does not exist" if not path.exists() else
                          "holds no data set" if theirs is None else f"another name than {name}"))
            continue
        if same_data(identity, theirs):
            return path
        tried.append((str(path), _why_not(path, identity, theirs)))
    raise RunDataNotFoundError(run_dir, recorded, tried, _data_advice(run_dir, identity, name),
                               redrawn_here=_redrawn_here(recorded, identity))


def _redrawn_here(recorded, identity: dict | None) -> bool:
    """True if the recorded folder is this kit's default one, which :func:`faderlib.cache.prepared`
    draws when it is empty, and the faces drawn there would be the run's (as before runs recorded it)."""
    if not recorded or os.path.abspath(recorded) != os.path.abspath(default_data_dir()):
        return False
    syn = (identity or {}).get("synthetic")
    return identity is None or (syn is not None and (syn["n"], syn["seed"], syn["version"]) ==
                                (20000, 0, synth.FORMAT_VERSION))


def _data_advice(run_dir: Path, identity: dict | None, name: str) -> str:
    where = default_data_dir().parent / name if name else default_data_dir()
    advice = (f"Put the data set ({name or 'the one the run was trained on'}) at one of these places (copied beside "
              f"the run folder as it was, or as {where}), or say where it is: {DATA_ENV_VAR}=/path/to/{name or 'data'} "
              f"for any command, load_run({str(run_dir)!r}, data_dir=...) in Python, "
              f"`fader train --data DIR --out {run_dir} ...` to resume its training")
    syn = (identity or {}).get("synthetic")
    if syn:
        if syn.get("version") == synth.FORMAT_VERSION:
            advice += (f". These are synthetic faces: `fader synth {where} --n {syn['n']} --seed {syn['seed']}` "
                       "draws the very same set again (about a minute per 20,000 faces)")
        else:
            advice += (f". These are synthetic faces of synth format version {syn.get('version')}; this faderlib "
                       f"draws version {synth.FORMAT_VERSION}, so they cannot be drawn again: copy them")
    return advice


def sample_photo(run: Run, out_path: str | os.PathLike, index: int = 0) -> Path:
    """Copy the original file (a 178x218 JPEG, as CelebA ships them) of test image ``index``
    of the run's data set to ``out_path``: a photo to edit when you have none of your own."""
    test = run.dataset("test")
    source = test.prepared.image_dir / test.prepared.filenames[test.rows[index]]
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
    if record.get("data_root") and "data_identity" not in record:
        record = {**record, **data_location(record["data_root"], run_dir)}
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        diffs = settings_differences(old.get("train", {}), old.get("model"), record["train"], record["model"],
                                     runtime_keys)
        same_dirs = [d for d in old.get("same_data_dirs", []) if d != record["train"].get("data_dir")]
        note = ""
        if "data_dir" in diffs:
            moved, note = _same_data_moved(run_dir, old, record)
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
    elif run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise TrainingError(
            f"{run_dir} is not empty and holds no faderlib run (no config.json); "
            "choose a new or empty --out folder, nothing was changed")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    atomic_write_text(cfg_path, json.dumps(record, indent=2))


def _same_data_moved(run_dir: Path, old: dict, record: dict) -> tuple[bool, str]:
    """Whether a run's recorded data (``old``, its config.json) and the data a resumed run reads
    (``record``) are the same data set in two places; else why not, as a note for the error."""
    before = old.get("data_identity")
    if before is None and old.get("data_root") and Path(old["data_root"]).exists():
        before = data_identity(old["data_root"])  # a run folder of an earlier version, its data still there
    now = record.get("data_identity")
    if same_data(before, now):
        return True, ""
    was = old.get("train", {}).get("data_dir")
    if before is None:
        return False, (f": it was trained on {old.get('data_root') or was}, which is not here, and its config.json "
                       "is too old to say which data set that was; rerun with --data pointing there, or "
                       "train it again in a new folder")
    return False, (f": it was trained on {old.get('data_root') or was}, and {record.get('data_root')} holds another "
                   f"data set ({_why_not(Path(record['data_root']), before, now)}); pass --data with the run's data "
                   f"set ({before.get('name')})")


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
