"""Files in a shared lab: written whole or not at all, one writer per folder, and room checked first.

* **Atomic writes.** Every file the kit writes and later trusts (a checkpoint, a run's
  ``config.json``, a cache's ``meta.json``, the synthetic set's marker) is written to a temporary
  file in the same folder, flushed, then renamed over the target: a rename within one folder is
  atomic, so a process killed at any moment leaves either the previous file or the new one.
  Files get the permissions the user's umask allows (group-readable in a shared folder, if so).
* **One writer per folder.** :class:`FolderLock` takes an exclusive lock that the kernel holds for
  the process (``flock`` on ``.fader.lock``): a second process is refused at once, told who holds
  it; a crash never leaves a stale lock behind, since the kernel drops it with the process (the
  file may stay; it locks nothing).
* **Room first.** :func:`check_free_space` says, before a large write, how much is needed and free.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; folders are then not locked
    fcntl = None

from .errors import DiskFullError, FolderInUseError

#: The lock file a locked folder holds (besides its own files; ignored by the kit's checks).
LOCK_NAME = ".fader.lock"


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", sync: bool = False):
    """Open a temporary file beside ``path`` for writing; rename it to ``path`` when the block ends.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (bytes). ``sync`` also flushes the data to the
    disk before the rename (for large files that must survive a power cut: checkpoints).
    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer writes text ('w') or bytes ('wb'), got mode {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would: mkstemp makes it private (0600)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_writer`); return the path."""
    with atomic_writer(path, "w") as f:
        f.write(text)
    return Path(path)


# ----------------------------------------------------------------------------- free space
def human_bytes(n: float) -> str:
    """``1.2 GB``, ``38.0 MB``, ``512 kB``."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size / 10 or unit == "kB":
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def free_bytes(folder: str | os.PathLike) -> int:
    """Free bytes on the disk of ``folder`` (or of its nearest existing parent)."""
    probe = Path(folder).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_free_space(folder: str | os.PathLike, n_bytes: int, what: str, hint: str = "") -> None:
    """Raise :class:`DiskFullError` if ``folder``'s disk has less than ``n_bytes`` (plus 1 %
    and 1 MB of slack) free, saying what needs how much, what is free, and where."""
    need = int(n_bytes * 1.01) + 2**20
    free = free_bytes(folder)
    if free < need:
        raise DiskFullError(errno.ENOSPC,
                            f"not enough free disk space for {what} in {folder}: it needs about {human_bytes(need)}, "
                            f"only {human_bytes(free)} are free there. Free some space (older runs, caches in "
                            f"DATA_DIR/fader_cache){hint}, then run the same command again")


def is_disk_full(error: BaseException) -> bool:
    """Whether an error of a write means that the disk (or a quota) is full: ENOSPC or EDQUOT, or
    PyTorch's zip writer failing half-way ("unexpected pos"), which is what a full disk looks like there."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    return isinstance(error, RuntimeError) and "unexpected pos" in str(error)


def remove_temporary_files(folder: str | os.PathLike, name: str) -> list[Path]:
    """Remove what killed saves of ``name`` left in ``folder`` (``.<name>.*.tmp``, from :func:`atomic_writer`).
    Call it only while holding the folder's lock: another process's save in progress looks the same."""
    removed = []
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


# ----------------------------------------------------------------------------- one writer per folder
class FolderLock:
    """An exclusive lock on ``folder`` for what this process is doing (``purpose``).

    :meth:`acquire` creates the folder if needed and locks ``folder/.fader.lock`` with ``flock``;
    if another process holds it, it raises :class:`FolderInUseError` naming that process (pid,
    host, start time, command), or with ``wait`` waits until it is free. Within one process the
    lock is re-entrant (a notebook that builds a second Trainer on the same folder, say):
    only other processes are kept out. The kernel releases it when the process ends, however.
    """

    _held: dict[str, "FolderLock"] = {}  # this process's locks, by lock file

    def __init__(self, folder: str | os.PathLike, purpose: str):
        self.folder, self.purpose = Path(folder), purpose
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self._pid: int | None = None
        self._count = 0                              # holders in this process (on the first lock object)
        self._shared: FolderLock | None = None       # the first lock object, when this one re-entered it
        self._holding = False
        self.created_folder = False

    def acquire(self, wait: bool = False, on_wait=None) -> "FolderLock":
        """Lock the folder (see the class docstring); ``on_wait(holder)`` is called before waiting."""
        if fcntl is None:
            return self
        key = os.path.realpath(self.path)
        held = FolderLock._held.get(key)
        if self._holding:
            return self
        if held is not None and held._pid == os.getpid():
            held._count += 1
            self._shared, self._holding = held, True
            return self
        self.created_folder = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(_read_holder(fd))
                if not wait:
                    raise FolderInUseError(
                        f"{self.folder} is in use: {holder} is writing it. Two processes must not write one "
                        f"folder (their files would mix). Wait until that one ends, stop it, or use another "
                        f"folder. (The lock goes with its process, even if it crashes.)") from None
                if on_wait is not None:
                    on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                                  "command": " ".join(sys.argv)}).encode(), 0)
        self._fd, self._pid, self._count, self._shared, self._holding = fd, os.getpid(), 1, None, True
        FolderLock._held[key] = self
        return self

    def release(self) -> None:
        """Unlock (the last holder in this process removes the lock file: a folder left alone holds
        no trace of the lock; a process that waited on the old file re-checks what it waited for)."""
        if not self._holding:
            return
        self._holding = False
        owner = self._shared or self
        if owner._fd is None:
            return
        owner._count -= 1
        if owner._count == 0:
            FolderLock._held.pop(os.path.realpath(owner.path), None)
            with contextlib.suppress(OSError):
                owner.path.unlink()
            with contextlib.suppress(OSError):
                fcntl.flock(owner._fd, fcntl.LOCK_UN)
                os.close(owner._fd)
            owner._fd = None

    def discard(self) -> None:
        """Release, and remove the folder too if this lock created it and it is empty (a folder
        refused, or a build that failed, before anything of it was kept)."""
        self.release()
        with contextlib.suppress(OSError):
            if self.created_folder and not any(self.folder.iterdir()):
                self.folder.rmdir()

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.release()


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    where = f"process {holder.get('pid')} on {holder.get('host')}"
    return (f"{where} ({holder.get('purpose', 'faderlib')}, started {holder.get('started')}: "
            f"`{holder.get('command', '?')}`)")
