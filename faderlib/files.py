"""Writing files so that a crash never leaves half of one.

Every file the kit writes and later trusts (a checkpoint, a run's ``config.json``, a cache's
``meta.json``, the synthetic set's marker) is written to a temporary file in the same folder,
flushed, then renamed over the target: a rename within one folder is atomic, so a process
killed at any moment leaves either the previous file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


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
