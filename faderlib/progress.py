"""Progress bars for long work (drawing faces, building a cache, training).

One tqdm bar per job, drawn as text in a terminal and as a widget in Jupyter
(``tqdm.auto``). A :class:`Progress` says how a job shows itself, so that the code doing
the work takes one argument, ``progress``, whatever the display:

* ``progress=True`` / ``False``: a bar with the job's own label, or none;
* ``progress=Progress("fader", line=0)``: a bar with this label on line 0, so that two jobs
  running side by side (``fader demo``) draw two bars that do not overwrite each other.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tqdm.auto import tqdm

#: Seconds between two redraws of a bar written to a file or a pipe (a job's log, CI) rather
#: than a terminal or a notebook: a terminal redraws in place, a file keeps every redraw, and
#: a 1,500-step job redrawn 10 times a second wrote about 1 MB of progress.
FILE_INTERVAL_S = 30.0


def _redraw_interval() -> float:
    """tqdm's own interval (0.1 s) where a redraw replaces the last one, else :data:`FILE_INTERVAL_S`."""
    if "notebook" in tqdm.__module__:
        return 0.1
    isatty = getattr(sys.stderr, "isatty", None)
    return 0.1 if isatty is not None and isatty() else FILE_INTERVAL_S


@dataclass(frozen=True)
class Progress:
    """How a job shows its progress: ``label`` before the bar, on terminal ``line`` (None: the
    next free one), or nothing at all when not ``enabled``."""

    label: str | None = None
    line: int | None = None
    enabled: bool = True

    @classmethod
    def of(cls, progress: "bool | Progress", label: str) -> "Progress":
        """``progress`` as a :class:`Progress`: True/False become a bar labelled ``label``, or none;
        a :class:`Progress` without a label gets ``label``."""
        if isinstance(progress, Progress):
            return progress if progress.label is not None else Progress(label, progress.line, progress.enabled)
        return Progress(label, None, bool(progress))

    def __bool__(self) -> bool:
        return self.enabled

    def bar(self, total: int, unit: str = "step", initial: int = 0, enabled: bool = True) -> tqdm:
        """A tqdm bar for ``total`` units, starting at ``initial``; ``enabled=False`` hides it
        (e.g. on every process of a distributed run but the first)."""
        interval = _redraw_interval()
        return tqdm(total=total, initial=initial, desc=self.label, unit=unit, dynamic_ncols=True,
                    position=self.line, disable=not (self.enabled and enabled), mininterval=interval,
                    maxinterval=max(interval, 10.0))


def progress_bar(total: int, label: str, unit: str, progress: "bool | Progress" = True) -> tqdm:
    """A bar for ``total`` units of work labelled ``label`` (see :class:`Progress`)."""
    return Progress.of(progress, label).bar(total, unit=unit)
