"""Where a run's data set is: what identifies it, where a run folder records it, and how it is
found again when the run folder was copied to another checkout or machine (a teacher handing
``runs/demo`` to a class).

A run folder's ``config.json`` (:mod:`faderlib.runs`) records its data set three ways: its
absolute path (``data_root``), its path relative to the run folder when it lies near it
(``data_relative``, e.g. ``../../../data/synthetic``), and what identifies it (``data_identity``:
the size and SHA-1 of its tables, :func:`data_identity`). :func:`resolve_run_data` finds it again
from those; a resumed run may then read the same data from another place
(:func:`same_data_moved`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

from . import synth
from .celeba import DATA_ENV_VAR, default_data_dir, table_files
from .errors import DataError


def read_record(run_dir: str | os.PathLike) -> dict:
    """A run folder's ``config.json`` as it was written (where its data was, among the rest)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a training run (no config.json); train one with "
            f"`fader train --out {run_dir}` (or notebook 03), or open runs/demo after `make demo`")
    return json.loads(path.read_text())


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
    record = read_record(run_dir) if record is None else record
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


def same_data_moved(run_dir: Path, old: dict, record: dict) -> tuple[bool, str]:
    """Whether a run's recorded data (``old``, its config.json) and the data a resumed run reads
    (``record``) are the same data set in two places (a run folder copied with its data); else why
    not, as a note for the error that refuses the resumption."""
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
