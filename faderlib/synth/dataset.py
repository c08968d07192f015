"""The synthetic data set on disk, in CelebA's exact file layout.

:func:`generate` draws ``n`` faces and writes them exactly as CelebA ships
(docs/paper_notes.md, 'CelebA')::

    out_dir/
        img_align_celeba/000001.jpg ...   178 wide x 218 high RGB JPEGs
        list_attr_celeba.txt              CelebA's text format, values -1 / 1
        list_eval_partition.txt           0 train, 1 valid, 2 test, CelebA's proportions
        synth_faces.csv                   ground truth: identity parameters of every face
        synth_faces.json                  format version, seed, n; written last (= complete)

so every loader written for CelebA reads it unchanged. Unlike CelebA, the labels are
exact and every face can be re-rendered with any attribute changed
(:func:`counterfactual`, from the ground truth of :func:`load_ground_truth`): the true
answer a Fader Network's edit should approach.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import numbers
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..files import LOCK_NAME, FolderLock, atomic_write_text, check_free_space
from ..progress import progress_bar
from .drawing import render
from .sampling import ATTRIBUTES, IDENTITY_KEYS, INT_KEYS, Attributes, face_params, split_sizes, unknown_attribute_message

__all__ = [
    "ATTR_FILE",
    "FACE_BYTES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "GROUND_TRUTH_CSV",
    "IMAGE_DIR",
    "JPEG_QUALITY",
    "MARKER_FILE",
    "PARTITION_FILE",
    "GroundTruth",
    "counterfactual",
    "ensure_synthetic",
    "generate",
    "is_synthetic",
    "load_ground_truth",
    "read_marker",
]

#: Written into ``synth_faces.json``; bump it whenever :func:`render` or the samplers
#: change what a given (seed, index) looks like, so old folders are recognised as stale.
FORMAT_VERSION = 1
FORMAT_NAME = "faderlib.synth"

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
GROUND_TRUTH_CSV = "synth_faces.csv"
MARKER_FILE = "synth_faces.json"
JPEG_QUALITY = 90
#: Disk space one face takes, with its lines in the tables, rounded up (a face's JPEG is about 7.5 kB).
FACE_BYTES = 12_000


def _filename(index: int) -> str:
    """CelebA's name for the image of 0-based ``index``: 0 -> '000001.jpg'."""
    return f"{index + 1:06d}.jpg"


def read_marker(data_dir: Path) -> dict | None:
    """The contents of ``synth_faces.json`` if ``data_dir`` holds one of ours, else None."""
    try:
        marker = json.loads((data_dir / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("format") == FORMAT_NAME else None


def _write_marker(data_dir: Path, **fields) -> None:
    """Write ``synth_faces.json`` atomically (a temp file renamed over it)."""
    marker = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **fields}
    atomic_write_text(data_dir / MARKER_FILE, json.dumps(marker, indent=2) + "\n")


def is_synthetic(data_dir: str | os.PathLike) -> bool:
    """True if ``data_dir`` holds a complete synthetic set written by :func:`generate`."""
    marker = read_marker(Path(data_dir))
    return bool(marker and marker.get("complete"))


def _render_chunk(image_dir: str, seed: int, start: int, stop: int) -> list[tuple[dict, dict]]:
    """Worker: render and save faces ``start..stop-1``; return their (identity, attributes)."""
    params = []
    for index in range(start, stop):
        identity, attributes = face_params(seed, index)
        render(identity, attributes).save(os.path.join(image_dir, _filename(index)),
                                          "JPEG", quality=JPEG_QUALITY)
        params.append((identity, attributes))
    return params


def _remove_our_files(data_dir: Path, n: int) -> None:
    """Delete the files a synthetic set of ``n`` faces consists of, and nothing else."""
    for index in range(n):
        (data_dir / IMAGE_DIR / _filename(index)).unlink(missing_ok=True)
    for name in (ATTR_FILE, PARTITION_FILE, GROUND_TRUTH_CSV):
        (data_dir / name).unlink(missing_ok=True)


def _check_writable(out: Path) -> dict | None:
    """Refuse folders holding anything but a synthetic set; return that set's marker."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; generate() needs a folder to write the "
                                 f"synthetic faces into. Pass a new or empty folder.")
    marker = read_marker(out)
    found = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME) if out.exists() else []
    if marker is None and found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise FileExistsError(
            f"Will not write synthetic faces into {out}: it is not empty (found {shown}) and "
            f"is not a synthetic set made by faderlib.synth (it has no {MARKER_FILE}). "
            f"Pass a new or empty folder, for example {out / 'synth'}.")
    return marker


def generate(out_dir: str | os.PathLike, n: int = 20000, seed: int = 0,
             workers: int | None = None, progress: bool = True, force: bool = False) -> Path:
    """Draw ``n`` synthetic faces into ``out_dir`` in CelebA's file layout; return its path.

    ``out_dir`` must be new, empty, or a synthetic set from an earlier call: a complete
    set with the same ``n`` and ``seed`` is returned as it is; one left half-written by an
    interrupted run is replaced; a complete set made with other settings is replaced only with
    ``force`` (``fader synth --force``), else refused: runs and caches were made from it.
    Anything else is refused, so a user's files are never overwritten. ``synth_faces.json`` is written last: until it
    says ``"complete": true``, the folder does not count as a data set.

    Faces are rendered by ``workers`` processes (default: all cores) in chunks; face
    ``i`` depends only on ``(seed, i)``, so the files do not depend on ``workers``.
    """
    if not (isinstance(n, numbers.Integral) and n >= 1):
        raise ValueError(f"n is the number of faces, a whole number of at least 1; got {n!r}.")
    if not (isinstance(seed, numbers.Integral) and seed >= 0):
        raise ValueError(f"seed must be a whole number of at least 0; got {seed!r}.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        _check_writable(out)  # says that it is a file
    # One writer at a time: a second `fader synth` into this folder waits for the first, then finds
    # its set complete (and returns it, or refuses other settings); never two writers mixing faces.
    lock = FolderLock(out, f"drawing {n:,} synthetic faces (seed {seed})")
    lock.acquire(wait=True, on_wait=lambda holder: print(f"waiting for {holder}, which is drawing synthetic faces "
                                                         f"into {out}", flush=True))
    try:
        return _generate_locked(out, n, seed, workers, progress, force)
    finally:
        lock.discard()  # also removes a folder it created, if nothing was kept in it


def _generate_locked(out: Path, n: int, seed: int, workers: int | None, progress: bool, force: bool) -> Path:
    """:func:`generate`, once the folder's lock is held."""
    marker = _check_writable(out)
    if marker is not None:
        same = (marker.get("complete") and marker.get("n") == n and marker.get("seed") == seed
                and marker.get("version") == FORMAT_VERSION)
        if same:
            return out
        if marker.get("complete") and not force:
            raise FileExistsError(
                f"{out} already holds a complete synthetic set made with n={marker.get('n')}, seed={marker.get('seed')} "
                f"(format version {marker.get('version')}); n={n}, seed={seed} was asked for. Runs and caches may have "
                f"been made from it: use another folder, or replace it with --force (force=True in Python)")
        _remove_our_files(out, int(marker.get("n", 0)))
    check_free_space(out, n * FACE_BYTES, f"{n:,} synthetic faces")
    image_dir = out / IMAGE_DIR
    image_dir.mkdir(parents=True, exist_ok=True)
    _write_marker(out, n=n, seed=seed, complete=False)

    workers = max(1, workers or os.cpu_count() or 1)
    chunk = max(1, min(250, -(-n // (4 * workers))))
    starts = range(0, n, chunk)
    params: list[tuple[dict, dict]] = []
    with progress_bar(n, f"synthetic faces -> {out}", "face", progress) as bar:
        if workers == 1:
            for start in starts:
                params += _render_chunk(str(image_dir), seed, start, min(n, start + chunk))
                bar.update(min(n, start + chunk) - start)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                jobs = [pool.submit(_render_chunk, str(image_dir), seed, s, min(n, s + chunk))
                        for s in starts]
                for job in jobs:      # in order, so params line up with the indices
                    params += job.result()
                    bar.update(len(params) - bar.n)

    _write_text_files(out, [a for _, a in params])
    _write_ground_truth_csv(out, params)
    _write_marker(out, n=n, seed=seed, complete=True, attributes=list(ATTRIBUTES),
                  split_sizes=list(split_sizes(n)),
                  files=[IMAGE_DIR, ATTR_FILE, PARTITION_FILE, GROUND_TRUTH_CSV])
    return out


def _write_text_files(out: Path, attributes: list[dict[str, int]]) -> None:
    """``list_attr_celeba.txt`` and ``list_eval_partition.txt``, byte for byte CelebA's style.

    Attribute lines are the file name then each value right-aligned in 3 characters
    (``'  1'``, ``' -1'``), as in CelebA; the names line ends with a space, as in CelebA.
    """
    n = len(attributes)
    lines = [f"{n}\n", " ".join(ATTRIBUTES) + " \n"]
    lines += [_filename(i) + "".join(f"{2 * a[name] - 1:3d}" for name in ATTRIBUTES) + "\n"
              for i, a in enumerate(attributes)]
    (out / ATTR_FILE).write_text("".join(lines))
    parts = [k for k, size in enumerate(split_sizes(n)) for _ in range(size)]
    (out / PARTITION_FILE).write_text("".join(f"{_filename(i)} {k}\n" for i, k in enumerate(parts)))


def _write_ground_truth_csv(out: Path, params: list[tuple[dict, dict]]) -> None:
    """One row per face: ``image_id``, the identity parameters, the attributes (0/1)."""
    with open(out / GROUND_TRUTH_CSV, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_id", *IDENTITY_KEYS, *ATTRIBUTES])
        for index, (identity, attributes) in enumerate(params):
            writer.writerow([_filename(index), *(repr(identity[k]) for k in IDENTITY_KEYS),
                             *(attributes[a] for a in ATTRIBUTES)])


@dataclass(frozen=True)
class GroundTruth:
    """What drew every face of a synthetic set: enough to re-render any of them.

    ``identities[i]`` and ``attributes[i]`` belong to the image ``filenames[i]``
    (``i`` is 0-based: ``filenames[0] == '000001.jpg'``).
    """

    data_dir: Path
    seed: int
    n: int
    version: int
    filenames: tuple[str, ...]
    identities: tuple[dict, ...]
    attributes: tuple[dict, ...]

    def index(self, face: int | str) -> int:
        """0-based index of ``face``, given as that index or as a file name ('000042.jpg')."""
        if isinstance(face, str):
            name = os.path.basename(face)
            if not (name.endswith(".jpg") and name[:-4].isdigit()):
                raise ValueError(f"Expected a CelebA file name like '000042.jpg', got {face!r}.")
            index = int(name[:-4]) - 1
        else:
            index = int(face)
        if not 0 <= index < self.n:
            raise IndexError(f"Face {face!r} is not in {self.data_dir}: it holds {self.n} faces, "
                             f"indices 0..{self.n - 1} ('000001.jpg'..'{_filename(self.n - 1)}').")
        return index


def load_ground_truth(data_dir: str | os.PathLike) -> GroundTruth:
    """Read ``synth_faces.json`` and ``synth_faces.csv`` of a set made by :func:`generate`."""
    data_dir = Path(data_dir)
    marker = read_marker(data_dir)
    if not (marker and marker.get("complete")):
        raise FileNotFoundError(
            f"{data_dir} does not hold a complete synthetic face set (no complete {MARKER_FILE}). "
            f"Make one with faderlib.synth.generate({str(data_dir)!r}).")
    if marker.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{data_dir} was made by synth format version {marker.get('version')}, this faderlib "
            f"draws version {FORMAT_VERSION}: its faces would not re-render the same. "
            f"Generate it again into a new folder.")
    return _load_ground_truth(str(data_dir.resolve()), (data_dir / MARKER_FILE).stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_ground_truth(data_dir: str, marker_mtime_ns: int) -> GroundTruth:
    """Parse the CSV once per (folder, marker version): sliders call counterfactual often."""
    marker = read_marker(Path(data_dir))
    filenames, identities, attributes = [], [], []
    with open(Path(data_dir) / GROUND_TRUTH_CSV, newline="") as f:
        for row in csv.DictReader(f):
            filenames.append(row["image_id"])
            identities.append({k: int(row[k]) if k in INT_KEYS else float(row[k])
                               for k in IDENTITY_KEYS})
            attributes.append({a: int(row[a]) for a in ATTRIBUTES})
    return GroundTruth(Path(data_dir), marker["seed"], marker["n"], marker["version"],
                       tuple(filenames), tuple(identities), tuple(attributes))


_EXCLUSIVE = {"Black_Hair": "Blond_Hair", "Blond_Hair": "Black_Hair"}


def counterfactual(data_dir: str | os.PathLike, face: int | str,
                   changes: Attributes | None = None) -> Image.Image:
    """Re-render one face of a synthetic set with some attributes changed, others kept.

    ``face`` is a file name ('000042.jpg') or a 0-based index; ``changes`` maps
    attribute names to new values (0/1, or in between for a partial edit, as on a
    Fader slider). With no change this returns exactly the pixels that were saved
    (before JPEG compression). Hair is one colour: raising Black_Hair to v lowers
    Blond_Hair to at most 1 - v (and the other way round) unless both are given.
    """
    changes = dict(changes or {})
    for name, value in changes.items():
        if name not in ATTRIBUTES:
            raise ValueError(unknown_attribute_message(name))
        if not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"The value for {name!r} must be a finite number (0 or 1, or in "
                             f"between), got {value!r}.")
    truth = load_ground_truth(data_dir)
    i = truth.index(face)
    attributes = {**truth.attributes[i], **changes}
    for name, other in _EXCLUSIVE.items():
        if name in changes and other not in changes:
            attributes[other] = min(attributes[other], 1 - changes[name])
    return render(truth.identities[i], attributes)


def ensure_synthetic(data_dir: str | os.PathLike, n: int = 20000, seed: int = 0,
                     progress: bool = True) -> Path:
    """Return ``data_dir`` holding the synthetic set (n, seed), generating it if absent.

    A complete set with other parameters is left alone and reported as an error
    (nothing is deleted): pick another folder, or delete it and call again.
    """
    data_dir = Path(data_dir)
    marker = read_marker(data_dir)
    if marker and marker.get("complete"):
        found = (marker.get("n"), marker.get("seed"), marker.get("version"))
        if found != (n, seed, FORMAT_VERSION):
            raise FileExistsError(
                f"{data_dir} already holds a synthetic set with n={found[0]}, seed={found[1]} "
                f"(format version {found[2]}), but n={n}, seed={seed} (version {FORMAT_VERSION}) "
                f"was asked for. Use another folder, or delete this one and call again.")
        return data_dir
    return generate(data_dir, n=n, seed=seed, progress=progress)
