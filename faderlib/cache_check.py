"""What a cache proves about itself: checksums of its tables and image chunks, values and splits checked by name.

When :func:`faderlib.cache.prepare` builds a cache, :func:`checksums` records in ``meta.json`` the
SHA-256 of ``attributes.csv`` and ``split.npy`` and of every ``CHUNK_BYTES`` (4 MiB) chunk of
``images.npy``. When a cache is opened, :func:`read_attributes` and :func:`read_split` check every
value of the tables (each attribute within the range it was built with: 0..K-1, a binary one 0/1;
each split value 0, 1 or 2) and name the line or row, the image, the column and the value of the
first one out of range; :func:`problem` compares the tables and the image chunks with their
checksums and says what differs (for a table, what changed in its counts per column or per split;
for the images, which bytes and image rows); :func:`check_cache_splits` refuses a cache that
leaves a split without images, and :func:`check_source_splits` a source that would, before
anything is decoded. :func:`damaged` is the error for a damaged cache, with the command that
rebuilds it (:func:`rebuild_command`).

It stays cheap: the tables are small and checked whole, but of ``images.npy`` only the first and
the last chunk and ``SAMPLED_CHUNKS`` (2) drawn at random are hashed, all of them only when the
file was modified since it was built or with ``full`` (``fader prepare --verify``), and then in
threads (hashlib releases the GIL); and a cache found intact is remembered in
``CHECKED`` by its files' (inode, size, mtime), so it is checked once per process, and again as
soon as one of its files changes.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from .celeba import CelebA
from .celeba_facts import SPLIT_NAMES
from .errors import DataError

__all__ = ["Damage", "checksums", "read_attributes", "read_split", "split_counts", "empty_splits", "stamps",
           "problem", "check_cache_splits", "rebuild_command", "damaged", "check_source_splits",
           "CHUNK_BYTES", "SAMPLED_CHUNKS", "FILES", "CHECKED"]

#: images.npy is checksummed in chunks of this many bytes (one SHA-256 each, listed in meta.json).
CHUNK_BYTES = 4 * 2**20
#: Besides the first and the last chunk, this many chunks drawn at random are checked when a cache is opened.
SAMPLED_CHUNKS = 2

#: The files of a cache; their (inode, size, mtime) identify a cache that was checked.
FILES = ("images.npy", "attributes.csv", "split.npy", "meta.json")

#: The caches this process has checked, by their files' (inode, size, mtime): a cache is checked
#: once per process, and again as soon as one of its files changes.
CHECKED: set = set()


class Damage(Exception):
    """A cache file that does not hold what its meta.json says; the message says what differs."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def _chunk_digests(path: Path, indices, chunk_bytes: int, threads: int = 1) -> list[str]:
    """The SHA-256 of chunks ``indices`` of ``path`` (hashlib releases the GIL: threads hash in parallel)."""
    def one(i: int) -> str:
        with open(path, "rb") as f:
            f.seek(i * chunk_bytes)
            return hashlib.sha256(f.read(chunk_bytes)).hexdigest()

    indices = list(indices)
    if threads <= 1 or len(indices) <= 1:
        return [one(i) for i in indices]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, indices))


def checksums(path: Path, data_offset: int, threads: int) -> dict:
    """What meta.json records to prove the cache in ``path``: SHA-256 of the tables and of each chunk of images.npy."""
    images = path / "images.npy"
    n_chunks = math.ceil(images.stat().st_size / CHUNK_BYTES)
    chunks = _chunk_digests(images, range(n_chunks), CHUNK_BYTES, threads)
    st = images.stat()
    return {"algorithm": "sha256",
            "attributes.csv": _sha256_file(path / "attributes.csv"),
            "split.npy": _sha256_file(path / "split.npy"),
            "images.npy": {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "data_offset": data_offset,
                           "chunk_bytes": CHUNK_BYTES, "chunks": chunks}}


def _value(v) -> str:
    return repr(v.item() if isinstance(v, np.generic) else v)


def read_attributes(path: Path, meta: dict) -> pd.DataFrame:
    """attributes.csv as int8, every value checked against the range of its column (0..K-1, K the
    classes it had when built; 0..1 for a binary attribute). Raises Damage naming the line, the
    image, the column and the value."""
    try:
        raw = pd.read_csv(path / "attributes.csv", index_col=0, dtype={"image_id": str})
    except (ValueError, UnicodeDecodeError) as e:  # pandas' parser and empty-file errors are ValueErrors
        raise Damage(f"attributes.csv cannot be read as a table ({type(e).__name__}: {e})") from None
    names, n = [str(c) for c in meta.get("attributes", [])], int(meta["count"])
    if [str(c) for c in raw.columns] != names:
        raise Damage(f"attributes.csv has the columns {list(raw.columns)}, meta.json lists {names}")
    if len(raw) != n:
        raise Damage(f"attributes.csv has {len(raw)} rows, images.npy has {n}")
    counts = meta["attribute_counts"]
    top = np.array([max(2, len(counts.get(name) or ())) - 1 for name in names], np.int64)
    if all(pd.api.types.is_integer_dtype(t) for t in raw.dtypes):  # the usual case: one vectorised pass
        values = raw.to_numpy(np.int64)
        if not ((values < 0) | (values > top)).any():
            return raw.astype(np.int8)
    for j, name in enumerate(names):
        column = raw[name]
        k = int(top[j]) + 1
        values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        ok = ~bad
        bad[ok] = (values[ok] != np.round(values[ok])) | (values[ok] < 0) | (values[ok] > k - 1)
        if bad.any():
            i = int(np.argmax(bad))
            more = int(bad.sum()) - 1
            raise Damage(
                f"attributes.csv, line {i + 2} (image {raw.index[i]}): attribute {name!r} has the value "
                f"{_value(column.iloc[i])}, outside its range 0..{k - 1}"
                + (" (the cache stores a binary attribute as 0/1, not -1/1)" if k == 2 else "")
                + (f"; {more} more value(s) of that column are outside it" if more else ""))
    return raw.astype(np.int8)


def read_split(path: Path, meta: dict, filenames) -> np.ndarray:
    """split.npy as int8, every value checked to be 0, 1 or 2 (raises Damage naming the row and image)."""
    n = int(meta["count"])
    try:
        split = np.load(path / "split.npy", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise Damage(f"split.npy cannot be read ({e})") from None
    if split.ndim != 1 or len(split) != n or not np.issubdtype(split.dtype, np.integer):
        raise Damage(f"split.npy holds {split.dtype} of shape {split.shape}, expected {n} values 0/1/2")
    bad = (split < 0) | (split > 2)
    if bad.any():
        i = int(np.argmax(bad))
        raise Damage(f"split.npy, row {i} (image {filenames[i]}): the split value {int(split[i])} is not "
                     f"0 (train), 1 (valid) or 2 (test)" + (f"; {int(bad.sum()) - 1} more such value(s)"
                                                           if bad.sum() > 1 else ""))
    return split.astype(np.int8)


def split_counts(split) -> list[int]:
    return np.bincount(np.asarray(split, np.int64), minlength=3)[:3].tolist()


def empty_splits(counts) -> list[str]:
    return [f"{name} ({code})" for code, (name, c) in enumerate(zip(SPLIT_NAMES, counts)) if c == 0]


def _table_difference(path: Path, meta: dict, name: str) -> str:
    """What changed in table ``name``, whose checksum differs from the one recorded when it was built."""
    diffs = []
    try:
        table = read_attributes(path, meta)
        if name == "attributes.csv":
            for column, built in meta["attribute_counts"].items():
                now = np.bincount(table[column].to_numpy(np.int64), minlength=len(built)).tolist()
                if now == built:
                    continue
                if len(now) == 2:
                    diffs.append(f"{column!r} has {now[1]:,} positive of {len(table):,} now, {built[1]:,} when built")
                else:
                    diffs.append(f"{column!r} counts {now} per class now, {built} when built")
            if len(diffs) > 3:
                diffs[3:] = [f"and {len(diffs) - 3} more column(s)"]
        else:
            counts = split_counts(read_split(path, meta, table.index))
            built = [meta["split_counts"].get(k) for k in SPLIT_NAMES]
            empty = empty_splits(counts)
            if empty:
                diffs.append(f"it puts no image in the {' and '.join(empty)} split")
            if counts != built:
                diffs.append(f"train/valid/test {'/'.join(map(str, counts))} now, {'/'.join(map(str, built))} "
                             "when built")
    except Damage as e:
        return str(e)
    changed = f"{name} differs from the checksum recorded when the cache was built"
    if not diffs:
        return f"{changed} (the same counts: some values, or only the layout, changed)"
    return f"{changed}: {'; '.join(diffs)}"


def _images_problem(path: Path, meta: dict, full: bool) -> str | None:
    """None if the chunks of images.npy checked match their checksums, else what differs. Checked: all
    of them with ``full`` or when the file was modified since it was built, else the first, the last
    and SAMPLED_CHUNKS drawn at random."""
    info = meta["checksums"]["images.npy"]
    images = path / "images.npy"
    st = images.stat()
    if st.st_size != info["bytes"]:
        return f"images.npy has {st.st_size:,} bytes, {info['bytes']:,} when it was built"
    digests, chunk = info["chunks"], int(info["chunk_bytes"])
    n = len(digests)
    modified = st.st_mtime_ns != info["mtime_ns"]
    if full or modified or n <= 2 + SAMPLED_CHUNKS:
        todo = list(range(n))
    else:
        todo = sorted({0, n - 1, *random.sample(range(1, n - 1), SAMPLED_CHUNKS)})
    found = _chunk_digests(images, todo, chunk, threads=min(4, os.cpu_count() or 1) if len(todo) > 4 else 1)
    bad = [i for i, digest in zip(todo, found) if digest != digests[i]]
    if not bad:
        return None
    first, row_bytes, offset = bad[0], 3 * int(meta["size"]) ** 2, int(info["data_offset"])
    a, b = first * chunk, min((first + 1) * chunk, info["bytes"]) - 1
    rows = f"image rows {max(0, a - offset) // row_bytes}..{max(0, b - offset) // row_bytes}"
    return (f"{len(bad)} of the {len(todo)} checked chunks of images.npy (of {n}, {chunk:,} bytes each) differ from "
            f"the checksums recorded when it was built (first: bytes {a:,}..{b:,}, {rows})"
            + ("; the file was modified after it was built" if modified else ""))


def stamps(path: Path) -> tuple | None:
    try:
        return (os.path.realpath(path),) + tuple(
            (st.st_ino, st.st_size, st.st_mtime_ns) for st in (os.stat(path / name) for name in FILES))
    except OSError:
        return None


def problem(path: Path, meta: dict, full: bool = False) -> str | None:
    """None if the complete cache in ``path`` matches the checksums of its meta.json (the tables
    wholly, images.npy in sampled chunks, or wholly with ``full``), else what differs. A cache found
    intact is not checked again in this process until one of its files changes (see CHECKED)."""
    key = stamps(path)
    if not full and key is not None and key in CHECKED:
        return None
    try:
        sums = meta["checksums"]
        problem = next((_table_difference(path, meta, name) for name in ("attributes.csv", "split.npy")
                        if _sha256_file(path / name) != sums.get(name)), None)
        problem = problem or _images_problem(path, meta, full)
    except OSError as e:
        problem = f"its files cannot be read ({e})"
    except (KeyError, TypeError, ValueError) as e:
        problem = f"its meta.json is malformed ({type(e).__name__}: {e})"
    if problem is None and key is not None:
        CHECKED.add(key)
    return problem


def check_cache_splits(path: Path, meta: dict, split: np.ndarray) -> None:
    """Refuse a cache (whose checksums match: its source was so) that leaves a split without images."""
    empty = empty_splits(split_counts(split))
    if empty:
        source = meta.get("partition_file") or f"the default 80/10/10 split of {meta.get('root')}"
        raise DataError(
            f"The cache {path} has no image in the {' and '.join(empty)} split (from {source}); training checks "
            "itself on the validation images, `fader evaluate` and `fader grid` use the test images. Give every "
            f"split images in the partition file, then run {rebuild_command(path, meta)}.")


def rebuild_command(path: Path, meta: dict) -> str:
    """The command that rebuilds the cache in ``path`` from its source."""
    root = str(meta.get("root") or path.parent.parent)
    command = f"fader prepare {shlex.quote(root)} --size {meta.get('size', path.name)} --force"
    if os.path.realpath(path.parent) != os.path.realpath(Path(root) / "fader_cache"):
        command += f" --cache-dir {shlex.quote(str(path.parent))}"
    return command


def damaged(path: Path, meta: dict, reason: str) -> DataError:
    return DataError(
        f"The cache {path} cannot be used: {reason}. It was changed after it was built (edited by hand, or "
        f"damaged on disk), so it is refused rather than trained on. Rebuild it from the source images: "
        f"{rebuild_command(path, meta)} (prepare(data_dir, size, force=True) in Python).")


def check_source_splits(celeba: CelebA) -> None:
    """Refuse a data set that leaves a split without images, before anything is decoded."""
    counts = celeba.split_counts().tolist()
    empty = empty_splits(counts)
    if not empty:
        return
    found = f"train {counts[0]:,}, valid {counts[1]:,}, test {counts[2]:,}"
    needed = ("Every split is needed: training checks itself on the validation images, `fader evaluate` and "
              "`fader grid` use the test images.")
    if celeba.partition_file is not None:
        raise DataError(
            f"{celeba.partition_file} puts no image in the {' and '.join(empty)} split ({found}). {needed} Fix it "
            "so that every split has images (0 train, 1 valid, 2 test; CelebA's own list_eval_partition.txt has "
            f"162,770 / 19,867 / 19,962), or move it out of {celeba.root} to use a default 80/10/10 split; then "
            "run the command again.")
    raise DataError(
        f"The default 80/10/10 split of the {len(celeba)} images of {celeba.attribute_file} (there is no partition "
        f"file) leaves the {' and '.join(empty)} split empty ({found}). {needed} Use at least 10 images, or add a "
        f"partition file list_eval_partition.txt (one 'filename 0|1|2' line per image) to {celeba.root}.")
