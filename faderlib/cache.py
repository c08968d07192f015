"""Decode CelebA once into a memory-mappable cache of small images.

Decoding 202,599 JPEGs every epoch is slow, and holding them all in RAM (as the
reference code did) needs 39.8 GB at 256 px. :func:`prepare` decodes each image
once, crops rows 20..197 (a 178 x 178 square, as the reference did), resizes it to
``size`` x ``size`` (area filter when shrinking) and writes all images to one
uint8 ``.npy`` file that training reads through a memory map::

    <data_dir>/fader_cache/64/
        images.npy      (N, 3, S, S) uint8, row i = image i
        attributes.csv  image_id, then one column per attribute (0/1 or 0..K-1)
        split.npy       (N,) int8: 0 train, 1 valid, 2 test
        meta.json       fingerprint of the source, size, crop, counts, skipped files, checksums

The folder is built as ``fader_cache/.64.tmp-<pid>`` and renamed only when complete,
so an interrupted preparation is never used. :func:`load_prepared` opens a cache,
:func:`prepared` does everything in one call.

A cache proves what it holds. ``meta.json`` records the SHA-256 of ``attributes.csv`` and
``split.npy`` and of every 4 MiB chunk of ``images.npy``. Opening a cache checks the tables in
full (their values too: each attribute within the range it was built with, each split value
0..2, no split empty) and a few chunks of the images (the first, the last and two drawn at
random; all of them when ``images.npy`` was modified since it was built), once per process;
``prepare(..., verify=True)`` (``fader prepare --verify``) checks every chunk. The source's
fingerprint includes the size and modification time of every image (one ``os.scandir`` pass),
so replacing JPEGs rebuilds the cache. A damaged cache is rebuilt by :func:`prepare`, which says
why, and refused by :func:`load_prepared` with the command that rebuilds it. The checks themselves
are in :mod:`faderlib.cache_check`.

The images are written with ordinary file writes into a file whose space is reserved up front
(``posix_fallocate``), so a full disk is an error with a message, never a crash of a memory map.
"""

from __future__ import annotations

import hashlib
import errno
import json
import math
import mmap
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import UnidentifiedImageError

from . import cache_check, synth
from .celeba import CelebA, default_data_dir, read_celeba, resolve_data_dir
from .celeba_facts import CROP_BOTTOM, CROP_TOP, IMAGE_HEIGHT, SPLIT_NAMES
from .errors import DataError, FolderInUseError
from .files import FolderLock, atomic_write_text, free_bytes, is_disk_full
from .images import decode_image
from .progress import progress_bar

__all__ = ["prepare", "load_prepared", "prepared", "Prepared", "cache_path", "split_code", "FORMAT_VERSION"]

#: Version of the cache layout; a cache of another version is rebuilt (2: checksums, image stamps).
FORMAT_VERSION = 2
#: Free space asked for on top of the images (tables, file system slack).
DISK_MARGIN_BYTES = 64 * 2**20
#: Resident pages of the memory map are given back once about this many bytes may be mapped.
RELEASE_EVERY_BYTES = 8 * 2**20
#: On a page fault Linux maps up to 64 kB of neighbouring cached pages ("fault-around"),
#: so reading one row can make up to its size + 2 x 64 kB resident.
_FAULT_AROUND_BYTES = 64 * 1024
#: Temporary folders older than this are stale even when their process id is in use.
STALE_SECONDS = 2 * 24 * 3600

#: Workers write the decoded rows in blocks of about this many bytes.
WRITE_BYTES = 8 * 2**20


# --------------------------------------------------------------------------- decoding


def _decode_chunk(npy_path: str, offset: int, start: int, paths: list[str], size: int, crop, skip_bad: bool):
    """Worker: decode ``paths`` into rows ``start...`` of ``npy_path`` (its data begin at byte ``offset``).

    The rows are written with ordinary file writes (a full disk raises OSError ENOSPC here,
    where a memory map would die of SIGBUS). Returns the skipped rows as ``[(row, file name, reason), ...]``.
    """
    row_bytes = 3 * size * size
    group = max(1, WRITE_BYTES // row_bytes)
    skipped = []
    fd = os.open(npy_path, os.O_WRONLY)
    try:
        for g in range(0, len(paths), group):
            part = paths[g:g + group]
            rows = np.zeros((len(part), 3, size, size), np.uint8)
            for k, path in enumerate(part):
                row = start + g + k
                try:
                    rows[k] = decode_image(path, size, crop)
                except DataError as e:  # a wrong image size: skipped only with skip_bad, like any bad image
                    if not skip_bad:
                        raise
                    skipped.append((row, os.path.basename(path), f"wrong size: {e}"))
                except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
                    reason = f"{type(e).__name__}: {e}"
                    if not skip_bad:
                        missing = isinstance(e, FileNotFoundError)
                        what = "not found" if missing else "cannot be decoded (unreadable or truncated)"
                        raise DataError(
                            f"{path}: image {what} ({reason}). "
                            + ("Check that the image zip was fully extracted. " if missing else
                               "Re-download or re-extract it. ")
                            + "Or pass --skip-bad (skip_bad=True in Python) to leave such "
                            "images out and count them.") from None
                    skipped.append((row, os.path.basename(path), reason))
            _write_at(fd, rows, offset + (start + g) * row_bytes)
    finally:
        os.close(fd)
    return skipped


def _write_at(fd: int, array: np.ndarray, position: int) -> None:
    """Write all bytes of ``array`` at ``position`` of the open file ``fd`` (OSError ENOSPC if the disk is full)."""
    view = memoryview(np.ascontiguousarray(array)).cast("B")
    while len(view):
        if hasattr(os, "pwrite"):
            written = os.pwrite(fd, view, position)
        else:  # Windows
            os.lseek(fd, position, os.SEEK_SET)
            written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, "No space left on device (a write wrote nothing)")
        view, position = view[written:], position + written


def _create_npy(path: Path, shape: tuple[int, ...]) -> int:
    """Write the header of a uint8 ``.npy`` of ``shape`` and reserve the space of its data; return
    where the data begin. The space is allocated up front (``posix_fallocate``), so a disk without
    room fails here, at once, with ENOSPC, before anything is decoded."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
        offset = f.tell()
        f.flush()
        _allocate(f.fileno(), offset + math.prod(shape))
    return offset


def _allocate(fd: int, length: int) -> None:
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, length)
            return
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
    # no preallocation here (a file system without it, or not Linux): a sparse file, and a full
    # disk shows up as ENOSPC on the workers' writes instead
    os.ftruncate(fd, length)


# --------------------------------------------------------------------------- fingerprint


def _file_stamp(path: Path | None) -> dict | None:
    if path is None:
        return None
    st = path.stat()
    return {"name": path.name, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _image_stamps(celeba: CelebA) -> dict:
    """The size and modification time of every image of the table, in one ``os.scandir`` pass over
    the image folder (a name not found there, e.g. in a subfolder, is stat-ed on its own), summed
    up as one SHA-256: replacing, editing, adding or removing an image changes it."""
    wanted = set(celeba.filenames)
    stats: dict[str, tuple[int, int]] = {}
    try:
        with os.scandir(celeba.image_dir) as entries:
            for entry in entries:
                if entry.name in wanted:
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    stats[entry.name] = (st.st_size, st.st_mtime_ns)
    except OSError:
        pass
    lines = []
    for name in celeba.filenames:
        stat = stats.get(name)
        if stat is None:
            try:
                st = os.stat(celeba.image_path(name))
                stats[name] = stat = (st.st_size, st.st_mtime_ns)
            except OSError:
                pass
        lines.append(f"{name}\tmissing" if stat is None else f"{name}\t{stat[0]}\t{stat[1]}")
    return {"found": len(stats), "bytes": sum(size for size, _ in stats.values()),
            "stat_sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest()}


def _fingerprint(celeba: CelebA, size: int, crop) -> dict:
    names = "\n".join(celeba.filenames).encode()
    return {
        "format_version": FORMAT_VERSION,
        "size": int(size),
        "crop": None if crop is None else [int(crop[0]), int(crop[1])],
        "attribute_file": _file_stamp(celeba.attribute_file),
        "partition_file": _file_stamp(celeba.partition_file),
        "image_dir": os.path.relpath(celeba.image_dir, celeba.root),
        "image_count": len(celeba),
        "filenames_sha1": hashlib.sha1(names).hexdigest(),
        "images": _image_stamps(celeba),
    }


def _describe_change(old: dict, new: dict) -> str:
    """Why a cache of fingerprint ``old`` is not one of ``new`` (the same kind of source and settings)."""
    reasons = []
    if old.get("size") != new["size"] or old.get("crop") != new["crop"]:
        reasons.append(f"it was made with size {old.get('size')} and crop {old.get('crop')}, "
                       f"now size {new['size']} and crop {new['crop']}")
    for key in ("attribute_file", "partition_file"):
        if old.get(key) != new[key]:
            what = (new[key] or old.get(key) or {}).get("name", key)
            reasons.append(f"{what} changed (its size or modification time)" if old.get(key) and new[key]
                           else f"{what} was {'added' if new[key] else 'removed'}")
    if old.get("image_count") != new["image_count"] or old.get("filenames_sha1") != new["filenames_sha1"]:
        reasons.append(f"the list of images changed ({old.get('image_count')} images, now {new['image_count']})")
    elif old.get("images") != new["images"]:
        reasons.append("the source images changed (the size or modification time of some differ from when the "
                       "cache was built: images were replaced, edited, added or removed)")
    if old.get("image_dir") != new["image_dir"]:
        reasons.append(f"the images are now in {new['image_dir']}, were in {old.get('image_dir')}")
    return "; ".join(reasons) or "its source or settings changed"


def _read_meta(path: Path) -> dict | None:
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _is_complete(path: Path, meta: dict | None) -> str | None:
    """None if ``path`` holds a complete cache, else the reason it does not."""
    if meta is None:
        if not path.is_dir():
            return "the folder does not exist"
        if not (path / "meta.json").is_file():
            return "it has no meta.json (an unfinished or foreign folder)"
        return "its meta.json is unreadable or truncated (an interrupted write)"
    if not meta.get("complete"):
        return "meta.json does not mark it complete"
    if meta.get("format_version") != FORMAT_VERSION:
        return (f"it has format version {meta.get('format_version')}, this faderlib reads {FORMAT_VERSION} "
                "(a cache made by another version of faderlib)")
    if not isinstance(meta.get("checksums"), dict) or not isinstance(meta.get("attribute_counts"), dict):
        return "its meta.json records no checksums"
    for name in cache_check.FILES:
        if not (path / name).is_file():
            return f"{name} is missing"
    n, s = meta.get("count"), meta.get("size")
    expected = (n or 0) * 3 * (s or 0) ** 2
    if (path / "images.npy").stat().st_size < expected:
        return "images.npy is shorter than meta.json says (truncated)"
    return None


# --------------------------------------------------------------------------- helpers


#: The environment variable that says where caches go (what ``--cache-dir`` sets for a command).
CACHE_ENV_VAR = "FADER_CACHE"


def cache_path(data_dir: str | os.PathLike | None, size: int,
               cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder :func:`prepare` uses: ``<base>/<size>``, where the base is ``cache_dir`` if
    given, else ``$FADER_CACHE`` if set (``--cache-dir`` sets it for a command), else
    ``<data_dir>/fader_cache``. One base per data set: a cache of another data set there is rebuilt."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV_VAR) or None
    if cache_dir is None:
        base = resolve_data_dir(data_dir) / "fader_cache"
    else:
        base = Path(cache_dir).expanduser()
    return base / str(int(size))


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _check_disk_space(base: Path, n: int, size: int) -> None:
    need = n * 3 * size * size + DISK_MARGIN_BYTES
    free = free_bytes(base)
    if free < need:
        smaller = [s for s in (128, 64, 32) if s < size and n * 3 * s * s + DISK_MARGIN_BYTES <= free]
        hint = (f"choose a smaller size (size={smaller[0]} needs {_gb(n * 3 * smaller[0] ** 2)})"
                if smaller else "choose a smaller size")
        raise DataError(
            f"Not enough free disk space for the {size} px cache in {base}: it needs {_gb(need)} "
            f"({n:,} images x 3 x {size} x {size} bytes, plus a margin), but only {_gb(free)} is free. "
            f"Free some space, {hint}, or put the cache on another disk with --cache-dir DIR (or "
            f"FADER_CACHE=DIR; cache_dir=... in Python).")


def _disk_full(base: Path, n: int, size: int) -> DataError:
    """The message for a disk that filled while the cache was written (its partial folder already removed)."""
    need = n * 3 * size * size + DISK_MARGIN_BYTES
    return DataError(
        f"not enough disk space: need {_gb(need)}, free {_gb(free_bytes(base))} at {base}; free some space, or put "
        "the cache on another disk with --cache-dir DIR (FADER_CACHE=DIR; cache_dir=... in Python). The partial "
        "cache was removed: run the same command again once there is room.")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a folder of ours left by an earlier, failed call
    if os.name == "nt":  # os.kill(pid, 0) would kill on Windows; rely on age only
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(base: Path, name: str) -> None:
    """Remove temporary folders of interrupted preparations (dead process or very old)."""
    for tmp in list(base.glob(f".{name}.tmp-*")) + list(base.glob(f".{name}.old-*")):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
            old = time.time() - tmp.stat().st_mtime > STALE_SECONDS
        except (ValueError, OSError):
            continue
        if old or not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _chunks(n: int, workers: int) -> list[tuple[int, int]]:
    step = max(16, min(512, math.ceil(n / (workers * 8))))
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _pool_context():
    # Linux: fork (no re-import of the caller's script, works without a __main__ guard).
    # Elsewhere: the platform default (spawn), which needs the usual __main__ guard in scripts.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return None


def _decode_all(npy: Path, offset: int, paths: list[str], size: int, crop, skip_bad: bool, workers: int,
                progress: bool) -> list:
    chunks = _chunks(len(paths), workers)
    bar = progress_bar(len(paths), f"prepare {size}px", "img", progress)
    skipped = []

    def inline(todo):
        for a, b in todo:
            skipped.extend(_decode_chunk(str(npy), offset, a, paths[a:b], size, crop, skip_bad))
            bar.update(b - a)

    try:
        if workers <= 1 or len(chunks) <= 1:
            inline(chunks)
        else:
            done = set()
            try:
                with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
                    futures = {pool.submit(_decode_chunk, str(npy), offset, a, paths[a:b], size, crop,
                                           skip_bad): (a, b) for a, b in chunks}
                    try:
                        for future in as_completed(futures):
                            skipped.extend(future.result())
                            done.add(futures[future])
                            bar.update(futures[future][1] - futures[future][0])
                    except BaseException:
                        for future in futures:
                            future.cancel()
                        raise
            except BrokenProcessPool as e:
                why = ("a worker was killed (out of memory, or by a signal)" if _pool_context() is not None else
                       "in a script, put the call under `if __name__ == \"__main__\":`")
                warnings.warn(
                    f"The worker processes stopped ({e}); decoding the remaining images in this "
                    f"process instead (slower). Likely cause: {why}; pass workers=1 to skip the pool.",
                    RuntimeWarning, stacklevel=3)
                inline([c for c in chunks if c not in done])
    finally:
        bar.close()
    return sorted(skipped)


def _compact(tmp: Path, keep: np.ndarray, size: int) -> int:
    """Rewrite images.npy without the skipped rows; return where its data begin."""
    full = np.load(tmp / "images.npy", mmap_mode="r")
    rows = np.flatnonzero(keep)
    offset = _create_npy(tmp / "images.compact.npy", (len(rows), 3, size, size))
    row_bytes = 3 * size * size
    fd = os.open(tmp / "images.compact.npy", os.O_WRONLY)
    try:
        step = max(1, WRITE_BYTES // row_bytes)
        for a in range(0, len(rows), step):
            _write_at(fd, full[rows[a:a + step]], offset + a * row_bytes)
    finally:
        os.close(fd)
    del full
    os.replace(tmp / "images.compact.npy", tmp / "images.npy")
    return offset


# --------------------------------------------------------------------------- prepare


def prepare(data_dir: str | os.PathLike | None, size: int, *, cache_dir: str | os.PathLike | None = None,
            workers: int | None = None, skip_bad: bool = False, progress: bool = True,
            crop: tuple[int, int] | None = (CROP_TOP, CROP_BOTTOM), force: bool = False,
            verify: bool = False) -> Path:
    """Decode every image of ``data_dir`` once into ``<cache_dir>/<size>/``; return that folder.

    size: output side S (images are S x S). cache_dir: default ``<data_dir>/fader_cache``
    (nothing else is ever written in the data folder). workers: processes (default:
    all cores). skip_bad: leave unreadable or truncated images out (counted in
    meta.json, with a warning) instead of raising. crop: rows kept before resizing
    (default 20..197, the reference crop; None keeps the whole image).
    force: rebuild even if up to date. verify: check every byte of an existing cache against
    its checksums (``fader prepare --verify``), not only the tables and a few chunks.

    An up-to-date cache (same source files, image list, image sizes and modification times,
    size and crop) that matches its checksums is returned at once; otherwise it is rebuilt in a
    temporary folder and renamed when complete, and a message says why. A data set that leaves
    a split (train, valid, test) without images is refused before anything is decoded.
    """
    size = int(size)
    if size < 1:
        raise DataError(f"size must be a positive number of pixels, got {size}.")
    if crop is not None:
        top, bottom = (int(v) for v in crop)
        if not 0 <= top < bottom <= IMAGE_HEIGHT:
            raise DataError(f"crop=(top, bottom) must satisfy 0 <= top < bottom <= {IMAGE_HEIGHT}, "
                            f"got {tuple(crop)}. The reference crop is ({CROP_TOP}, {CROP_BOTTOM}).")
        crop = (top, bottom)
    root = resolve_data_dir(data_dir)
    celeba = read_celeba(root)
    target = cache_path(root, size, cache_dir)
    base = target.parent
    cache_check.check_source_splits(celeba)
    fingerprint = _fingerprint(celeba, size, crop)

    meta = _read_meta(target)
    reason = "--force (force=True) was given" if force else _why_rebuild(target, meta, fingerprint, celeba, verify)
    if reason is None:
        if verify:
            info = meta["checksums"]["images.npy"]
            print(f"verified {target}: its tables and all {len(info['chunks'])} chunks of images.npy "
                  f"({_gb(info['bytes'])}) match the checksums recorded when it was built", flush=True)
        _record_image_stamp(target, meta)
        return target
    if meta is not None or target.exists():
        print(f"rebuilding the cache {target}: {reason}", flush=True)

    n = len(celeba)
    if n == 0:
        raise DataError(f"{celeba.attribute_file} lists no images; nothing to prepare.")
    paths = [str(celeba.image_path(f)) for f in celeba.filenames]
    if not skip_bad:
        for p in (paths[0], paths[-1]):
            if not os.path.isfile(p):
                raise DataError(
                    f"Image not found: {p} (named in {celeba.attribute_file.name}). Extract "
                    f"img_align_celeba.zip so that the JPEGs lie in {celeba.image_dir}, or "
                    "pass --skip-bad (skip_bad=True in Python) to leave missing images out.")
    _check_disk_space(base, n, size)
    try:
        base.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(base, f"building the {size} px cache of {root}")
        lock.acquire(wait=True, on_wait=lambda holder: print(f"waiting for {holder}, which is building a cache in "
                                                             f"{base} (the work is not done twice)", flush=True))
    except OSError as e:
        if is_disk_full(e):
            raise _disk_full(base, n, size) from None
        raise DataError(f"Cannot create the cache folder {base} ({e}): is the data folder read-only? Put the "
                        "cache somewhere writable with --cache-dir DIR (or FADER_CACHE=DIR; cache_dir=... in "
                        "Python), for every command that reads the data.") from None
    try:
        fresh = _read_meta(target)
        if not force and fresh != meta and _why_rebuild(target, fresh, fingerprint, celeba, verify) is None:
            lock.release()
            return target  # built by the process we waited for
        built = _build(celeba, root, target, fingerprint, paths, size, crop, skip_bad, workers, progress)
    except BaseException:
        lock.discard()  # leave the cache folder as it was (a waiting process then builds it afresh)
        raise
    lock.release()
    return built


def _why_rebuild(target: Path, meta: dict | None, fingerprint: dict, celeba: CelebA, full: bool) -> str | None:
    """None if the cache in ``target`` is complete, of the same source and settings, no skipped image
    changed since (fixed or replaced) and it matches its checksums (all of images.npy with ``full``);
    else why it must be rebuilt."""
    reason = _is_complete(target, meta)
    if reason is not None:
        return reason
    if meta.get("fingerprint") != fingerprint:
        return _describe_change(meta.get("fingerprint") or {}, fingerprint)
    if not all(_file_stamp_or_none(celeba.image_path(s["file"])) == s.get("stamp") for s in meta.get("skipped", [])):
        return "an image left out when it was built (unreadable then) has changed since"
    problem = cache_check.problem(target, meta, full)
    return None if problem is None else f"it is damaged: {problem}"


def _record_image_stamp(target: Path, meta: dict) -> None:
    """images.npy was modified (or copied) since it was built, and every chunk of it was then found
    intact (that change triggers a full check): record its new modification time, so that later opens
    check a sample again. Skipped when the folder is busy or cannot be written."""
    info = meta["checksums"]["images.npy"]
    try:
        mtime = (target / "images.npy").stat().st_mtime_ns
        if mtime == info["mtime_ns"] or cache_check.stamps(target) not in cache_check.CHECKED:
            return
        lock = FolderLock(target.parent, f"recording the check of the {target.name} px cache").acquire()
    except (OSError, FolderInUseError):
        return
    try:
        fresh = _read_meta(target)
        if fresh == meta and (target / "images.npy").stat().st_mtime_ns == mtime:
            fresh["checksums"]["images.npy"]["mtime_ns"] = mtime
            atomic_write_text(target / "meta.json", json.dumps(fresh, indent=1))
    except OSError:
        pass
    finally:
        lock.release()


def _file_stamp_or_none(path: Path) -> dict | None:
    try:
        return _file_stamp(path)
    except OSError:
        return None


def _build(celeba: CelebA, root: Path, target: Path, fingerprint: dict, paths: list[str], size: int, crop,
           skip_bad: bool, workers: int | None, progress: bool) -> Path:
    """Decode every image into a temporary folder beside ``target``, then rename it (the lock held)."""
    base, n = target.parent, len(paths)
    _clean_stale(base, target.name)

    tmp = base / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    started = time.time()
    try:
        offset = _create_npy(tmp / "images.npy", (n, 3, size, size))  # its space reserved: ENOSPC now, not later
        workers = max(1, int(workers or os.cpu_count() or 1))
        skipped = _decode_all(tmp / "images.npy", offset, paths, size, crop, skip_bad, workers, progress)

        keep = np.ones(n, bool)
        keep[[row for row, _, _ in skipped]] = False
        if not keep.any():
            raise DataError(f"None of the {n} images in {celeba.image_dir} could be read (first: "
                            f"{skipped[0][1]}: {skipped[0][2]}). Re-extract or re-download them.")
        split = celeba.split.to_numpy(np.int8)[keep]
        empty = cache_check.empty_splits(cache_check.split_counts(split))
        if empty and skipped:  # (a split empty in the source was refused before decoding)
            raise DataError(
                f"Without the {len(skipped)} unreadable image(s) left out (first: {skipped[0][1]}), no image is "
                f"left in the {' and '.join(empty)} split. Re-extract or re-download the images (the cache "
                "was not written).")
        if skipped:
            offset = _compact(tmp, keep, size)
        table = celeba.attributes.loc[keep]
        table.to_csv(tmp / "attributes.csv")
        np.save(tmp / "split.npy", split)
        meta = {
            "complete": True,
            "format_version": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "size": size,
            "crop": fingerprint["crop"],
            "count": int(keep.sum()),
            "source_count": n,
            "skipped_count": len(skipped),
            "skipped": [{"file": name, "reason": reason, "stamp": _file_stamp_or_none(celeba.image_path(name))}
                        for _, name, reason in skipped],
            "attributes": list(table.columns),
            # per attribute, the number of images of each class 0..K-1: the range its values must keep
            "attribute_counts": {str(c): np.bincount(table[c].to_numpy(np.int64), minlength=2).tolist()
                                 for c in table.columns},
            "split_counts": dict(zip(SPLIT_NAMES, cache_check.split_counts(split))),
            "checksums": cache_check.checksums(tmp, offset, workers),
            "partition_file": None if celeba.partition_file is None else str(celeba.partition_file.resolve()),
            "root": str(root.resolve()),
            "layout": celeba.layout,
            "image_dir": str(celeba.image_dir.resolve()),
            "split_source": celeba.split_source,
            "seconds": round(time.time() - started, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        # meta.json is written last, then the whole folder is renamed at once.
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=1))
        _publish(tmp, target)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(e):
            raise _disk_full(base, n, size) from None
        raise
    if skipped:
        warnings.warn(
            f"Skipped {len(skipped)} unreadable image(s) out of {n} (first: {skipped[0][1]}: "
            f"{skipped[0][2]}); the cache {target} has {n - len(skipped)} rows and lists them in "
            "meta.json.", UserWarning, stacklevel=2)
    return target


def _publish(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` folder to ``target``, replacing an old cache."""
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        # another process published first: keep its complete cache
        if _is_complete(target, _read_meta(target)) is not None:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- loading


@dataclass(eq=False)
class Prepared:
    """A prepared cache, opened.

    ``images``: read-only memory map (N, 3, S, S) uint8, opened lazily in each
    process (so objects holding it pickle small and work in DataLoader workers);
    ``attributes``: DataFrame, index = file names, same row order; ``split``: int8
    (N,) 0/1/2; ``filenames``; ``size``; ``root``: the source data folder.
    """

    path: Path
    attributes: pd.DataFrame
    split: np.ndarray
    filenames: list[str]
    size: int
    root: Path
    meta: dict = field(repr=False)
    _images: np.memmap | None = field(default=None, init=False, repr=False)
    _pid: int | None = field(default=None, init=False, repr=False)
    _unreleased: int = field(default=0, init=False, repr=False)

    @property
    def images(self) -> np.memmap:
        """The (N, 3, S, S) uint8 images, memory-mapped read-only (never loaded whole)."""
        if self._images is None or self._pid != os.getpid():
            self._images = np.load(self.path / "images.npy", mmap_mode="r")
            self._pid, self._unreleased = os.getpid(), 0
        return self._images

    @property
    def image_dir(self) -> Path:
        """The folder of the source images (JPEGs): in :attr:`root`, where the cache's fingerprint
        says (meta.json's absolute ``image_dir`` is where they were when the cache was built)."""
        relative = (self.meta.get("fingerprint") or {}).get("image_dir")
        return self.root / relative if relative else Path(self.meta["image_dir"])

    def __len__(self) -> int:
        return len(self.filenames)

    def __repr__(self) -> str:
        counts = "/".join(str(int((self.split == k).sum())) for k in range(3))
        return (f"Prepared({len(self)} images (N, 3, {self.size}, {self.size}) uint8, "
                f"{self.attributes.shape[1]} attributes, train/valid/test {counts}, path={str(self.path)!r})")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_images=None, _pid=None, _unreleased=0)
        return state

    def indices(self, split: str | int | None = "train") -> np.ndarray:
        """Row numbers of a split: ``"train"``/0, ``"valid"``/1, ``"test"``/2, or ``"all"``/None."""
        if split is None or split == "all":
            return np.arange(len(self), dtype=np.int64)
        code = split_code(split)
        return np.flatnonzero(self.split == code).astype(np.int64)

    def read(self, rows, out: np.ndarray | None = None) -> np.ndarray:
        """Copy rows (any order, repeats allowed) out of the memory map as one (B, 3, S, S) array,
        into ``out`` if given (a uint8 array of that shape, e.g. a pinned buffer).

        Reads in sorted order for locality, then restores the order asked for. The
        mapped pages are given back to the OS every few MB read, so resident memory
        stays flat however large the data set is (the OS page cache still keeps them,
        so reading them again is fast).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        order = np.argsort(rows, kind="stable")
        shape = (len(rows), 3, self.size, self.size)
        if out is None:
            out = np.empty(shape, np.uint8)
        elif out.shape != shape or out.dtype != np.uint8:
            raise ValueError(f"out must be a uint8 array of shape {shape}, got {out.dtype} {out.shape}")
        out[order] = self.images[rows[order]]
        self._unreleased += len(rows) * (3 * self.size**2 + 2 * _FAULT_AROUND_BYTES)
        if self._unreleased >= RELEASE_EVERY_BYTES:
            self.release_memory()
        return out

    def release_memory(self) -> None:
        """Drop this process's resident pages of the memory map (they stay in the page cache)."""
        self._unreleased = 0
        mm = getattr(self._images, "_mmap", None)
        if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            mm.madvise(mmap.MADV_DONTNEED)


def split_code(split: str | int) -> int:
    """0, 1 or 2 for a split named ``"train"``, ``"valid"`` (``"val"``, ``"validation"``) or ``"test"``, or given as 0/1/2."""
    aliases = {"train": 0, "valid": 1, "val": 1, "validation": 1, "test": 2}
    if isinstance(split, str) and split.lower() in aliases:
        return aliases[split.lower()]
    if isinstance(split, (int, np.integer)) and not isinstance(split, bool) and int(split) in (0, 1, 2):
        return int(split)
    raise DataError(f"Unknown split {split!r}: use 'train' (0), 'valid' (1), 'test' (2) or 'all'.")


def load_prepared(cache_path: str | os.PathLike, verify: bool = False) -> Prepared:
    """Open a cache folder written by :func:`prepare` (e.g. ``data/synthetic/fader_cache/64``).

    Refuses, with :class:`DataError`, a folder that is not a complete cache (an interrupted
    preparation, a missing or truncated file, another format version), a table value out of its
    range (named: the file, line, image, column and value), a split without images, and files that
    do not match the checksums recorded when it was built: the tables wholly, images.npy in a few
    chunks (all of them with ``verify``, or when it was modified since it was built). The message
    says the command that rebuilds it. A cache found intact is not checked again in this process.
    """
    path = Path(cache_path).expanduser()
    meta = _read_meta(path)
    reason = _is_complete(path, meta)
    if reason is not None:
        raise DataError(
            f"{path} is not a complete faderlib cache: {reason}. Rebuild it: "
            f"{cache_check.rebuild_command(path, meta or {})} (prepare(data_dir, size) in Python); folders named "
            ".<size>.tmp-<pid> are interrupted preparations and are never used.")
    n, size = int(meta["count"]), int(meta["size"])
    header = np.load(path / "images.npy", mmap_mode="r")
    if header.shape != (n, 3, size, size) or header.dtype != np.uint8:
        raise cache_check.damaged(path, meta, f"images.npy holds {header.dtype} {header.shape}, meta.json "
                                              f"says uint8 {(n, 3, size, size)}")
    del header
    try:
        attributes = cache_check.read_attributes(path, meta)
        split = cache_check.read_split(path, meta, attributes.index)
    except cache_check.Damage as e:
        raise cache_check.damaged(path, meta, str(e)) from None
    problem = cache_check.problem(path, meta, full=verify)
    if problem is not None:
        raise cache_check.damaged(path, meta, problem)
    cache_check.check_cache_splits(path, meta, split)
    return Prepared(path=path, attributes=attributes, split=split,
                    filenames=[str(f) for f in attributes.index.to_numpy(dtype=object)], size=size,
                    root=Path(meta.get("root", path.parent.parent)), meta=meta)


def prepared(data_dir: str | os.PathLike | None = None, size: int = 64, **kwargs) -> Prepared:
    """:func:`prepare` (if needed) and :func:`load_prepared` in one call.

    ``data_dir=None`` uses ``$FADER_DATA`` or the synthetic set (see ``resolve_data_dir``);
    the synthetic set is drawn on first use when its default folder is still empty, so
    everything works on a fresh machine with nothing downloaded.
    """
    folder = resolve_data_dir(data_dir)
    if folder == default_data_dir() and not (folder.is_dir() and any(folder.iterdir())):
        synth.generate(folder, progress=kwargs.get("progress", True))
    data = load_prepared(prepare(folder, size, **kwargs))
    # prepare() checked the cache against this folder's tables: its source is this folder, wherever the
    # cache was built (a data folder copied or moved with its cache keeps the old path in meta.json)
    data.root = folder.resolve()
    return data

