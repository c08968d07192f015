"""The kit's errors, and the hint they share: every message says what was expected, what was
found and what to do next, so that a user mistake reads as one clear line, never a traceback
(``fader`` prints these and exits with status 2).

* :class:`ConfigError`: a setting the networks or the training cannot use;
* :class:`DataError`: a data set, table or cache that is missing or malformed;
* :class:`AttributeNameError`: an attribute name that is malformed, repeated or unknown. It is
  both of the above: a setting that does not fit the data;
* :class:`ImageRangeError`: a number of images or an image index that the split does not have;
* :class:`TrainingError`: training cannot go on (a non-finite loss, a run folder of another
  configuration); :class:`CheckpointError`, one of them: a checkpoint that is not what it claims;
* :class:`FolderInUseError`: another process is writing the same folder (a run, a cache);
* :class:`DiskFullError`: not enough free space for a file about to be written.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class ConfigError(ValueError):
    """A setting that the networks or the training cannot be built with; the message says what is allowed."""


class DataError(ValueError):
    """A data set, table or cache is missing or malformed; the message says what to do."""


class AttributeNameError(ConfigError, DataError):
    """An attribute name that is malformed, listed twice, or not in the data set."""


class ImageRangeError(ConfigError, IndexError):
    """A number of images or an image index outside the split it picks from (an ``IndexError`` too)."""


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a run directory of another configuration)."""


class TrainingStopped(TrainingError):
    """Training was asked to stop by a signal (SIGTERM: a job scheduler's notice) and stopped at a step
    boundary, its checkpoint saved: rerunning the same command resumes it. ``signal`` names the
    signal, ``step`` the step reached, ``checkpoint`` the file saved."""

    def __init__(self, message: str, signal: str = "SIGTERM", step: int = 0, checkpoint=None):
        super().__init__(message)
        self.signal, self.step, self.checkpoint = signal, step, checkpoint


class CheckpointError(TrainingError):
    """A checkpoint that cannot be used: empty, truncated, damaged, foreign or not a checkpoint."""


class FolderInUseError(RuntimeError):
    """Another process holds the lock of a folder it is writing (a run, a cache, a classifier)."""


class DiskFullError(OSError):
    """Not enough free disk space for what is about to be written; the message says how much is needed."""


def did_you_mean(name: str, choices: Iterable[str], cutoff: float = 0.5) -> str:
    """``" Did you mean 'Smiling'?"`` for the choice closest to ``name``, or ``""`` if none is close.

    A choice equal to ``name`` but for upper and lower case wins; otherwise the closest by
    :func:`difflib.get_close_matches` (case ignored) at similarity ``cutoff`` or more.
    """
    by_lower = {str(c).lower(): str(c) for c in choices}
    key = str(name).lower()
    if key in by_lower:
        return f" Did you mean {by_lower[key]!r}?"
    close = difflib.get_close_matches(key, list(by_lower), n=1, cutoff=cutoff)
    return f" Did you mean {by_lower[close[0]]!r}?" if close else ""
