"""The folder a training run keeps: :class:`RunFolder`, the one object through which the
:class:`~faderlib.train.Trainer` touches the disk.

It locks the folder while the run lives (a second process on it is refused), makes it this run's
or refuses it (:func:`faderlib.runs.claim_run_dir`: another run, another format), removes what a
killed save left behind, finds and checks the checkpoint to resume from, drops the log rows that a
resumed run writes again, and writes checkpoints, log rows and sample grids. A checkpoint holds
what the :class:`~faderlib.train.Trainer` needs to go on as if never stopped (its networks,
optimisers, position, random streams and log window: :meth:`RunFolder.save_checkpoint` and
:meth:`RunFolder.resume` read and restore them), and whose it is (the run's settings, their
fingerprint, the format); it is written whole or not at all.

Under ``torchrun``, rank 0 alone locks, inspects and writes the folder; the other ranks take part
in what needs them all (the decision to go on, every rank's random state for a checkpoint).
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .devices import Dist
from .errors import CheckpointError, FolderInUseError, TrainingError
from .files import FolderLock, check_free_space, remove_temporary_files
from .metrics_log import append_metrics, truncate_metrics
from .runs import FORMAT_VERSION, check_checkpoint_belongs, claim_run_dir, resume_advice, settings_fingerprint


class RunFolder:
    """The run folder ``run_dir`` of a run with settings ``train`` (``TrainConfig.to_dict()``) and
    ``model`` (``ModelConfig.to_dict()``), trained on the data in ``data_root``; ``runtime_keys``
    are the settings that may change when it is resumed. Nothing is touched until :meth:`claim`.

    >>> folder = RunFolder("runs/try", config.to_dict(), model_config.to_dict(), data_root,  # doctest: +SKIP
    ...                    TrainConfig.RUNTIME_KEYS, Dist())
    """

    def __init__(self, run_dir: str | os.PathLike, train: dict, model: dict, data_root: str,
                 runtime_keys: tuple[str, ...], dist: Dist):
        self.path = Path(run_dir)
        self.checkpoint_dir = self.path / "checkpoints"
        self.train, self.model, self.data_root = train, model, data_root
        self.runtime_keys, self.dist = tuple(runtime_keys), dist
        #: what makes this run this run: its settings but those that may change on resume
        self.fingerprint = settings_fingerprint(train, model, self.runtime_keys)
        self._lock = FolderLock(self.path, "training") if dist.main else None

    # ------------------------------------------------------------------ opening
    def claim(self, resume: bool, resume_from: str = "last.pt") -> None:
        """Lock the folder and make it this run's (:func:`~faderlib.runs.claim_run_dir`), or raise
        (:class:`TrainingError`, :class:`FolderInUseError`) on every rank, changing nothing: also
        where the folder or its ``checkpoints/`` cannot be written (:func:`check_writable`), before
        any training is spent.

        Rank 0 alone locks, inspects and writes the folder, then tells the others what it decided:
        a rank checking while rank 0 is half-way through creating it would see a foreign folder."""
        error = None
        if self.dist.main:
            record = {"format_version": FORMAT_VERSION, "train": self.train, "model": self.model,
                      "data_root": self.data_root}
            try:
                for folder in (self.path, self.checkpoint_dir):
                    if folder.is_dir():
                        check_writable(folder)
                self._lock.acquire()
                claim_run_dir(self.path, record, self.runtime_keys, resume, resume_from,
                              done_at=self._done_at(resume, resume_from))
                if not self.checkpoint_dir.is_dir():
                    self.checkpoint_dir.mkdir()
                    check_writable(self.checkpoint_dir)
                for name in ("last.pt", "best.pt"):  # what saves killed half-way left behind
                    remove_temporary_files(self.checkpoint_dir, name)
                for name in ("config.json", "metrics.jsonl"):
                    remove_temporary_files(self.path, name)
            except (TrainingError, FolderInUseError) as exc:
                self._lock.discard()
                error = (type(exc).__name__, str(exc))
        error = self.dist.broadcast(error)
        if error is not None:
            raise (FolderInUseError if error[0] == "FolderInUseError" else TrainingError)(error[1])

    def _done_at(self, resume: bool, resume_from: str) -> int | None:
        """The step of the checkpoint to resume from if it is at or past this run's steps (nothing to
        train: config.json then keeps the steps it records), else None."""
        path = self.checkpoint_dir / resume_from
        if not resume or not path.is_file():
            return None
        try:
            step = int(ckpt.load(path)["step"])
        except (CheckpointError, KeyError, ValueError, TypeError):
            return None  # resume() says what is wrong with it
        return step if step >= self.train.get("steps", 0) else None

    def open(self, trainer, resume: bool = True, resume_from: str = "last.pt") -> None:
        """:meth:`claim` the folder, then :meth:`resume` ``trainer`` from it; if that fails, close the
        trainer (:meth:`~faderlib.train.Trainer.close`: the folder is freed) and raise."""
        self.claim(resume, resume_from)
        try:
            self.resume(trainer, resume, resume_from)
        except BaseException:
            trainer.close()
            raise

    def resume(self, trainer, resume: bool = True, resume_from: str = "last.pt") -> None:
        """Restore ``trainer`` (a :class:`~faderlib.train.Trainer`) from ``checkpoints/<resume_from>``
        (``last.pt`` or ``best.pt``), as if it had never stopped: networks, optimisers, position,
        every random stream and the log's running window; then drop the log rows written after that
        step, which run again (all of them for a fresh start: ``resume=False``, or no ``last.pt`` yet).

        Refuses, naming the file and the reason, a checkpoint that is damaged, of another format or
        of another run, and says then whether ``best.pt`` can be resumed from instead."""
        path = self.checkpoint_dir / resume_from
        if resume and (path.exists() or resume_from != "last.pt"):
            try:
                state = ckpt.load(path)  # to the CPU; load_state_dict copies each tensor where it belongs
                self._check_belongs(path, state)
            except (CheckpointError, FileNotFoundError) as exc:
                raise CheckpointError(f"{exc}. {resume_advice(self.checkpoint_dir, path, self._check_belongs)}") \
                    from None
            for key, part in _parts(trainer).items():
                part.load_state_dict(state[key])
            trainer.step, trainer.best_valid = int(state["step"]), float(state["best_valid"])
            ckpt.set_rng_state(state["rng"][self.dist.rank], device=trainer.device, generator=trainer.generator,
                               flip_generator=trainer.flip_generator)
            trainer.stream_state = trainer.generator.get_state()
            trainer.window.load(state["window"])
        if self.dist.main:
            truncate_metrics(self.path, trainer.step)

    def _check_belongs(self, path: Path, state: dict) -> None:
        check_checkpoint_belongs(path, state, self.fingerprint, self.train, self.model, self.runtime_keys)

    def close(self) -> None:
        """Free the folder for another process (the lock also goes with this process, even killed)."""
        if self._lock is not None:
            self._lock.release()

    # ------------------------------------------------------------------ writing
    def save_checkpoint(self, trainer, name: str = "last.pt") -> Path | None:
        """Write everything :meth:`resume` restores of ``trainer`` as ``checkpoints/<name>``, with what
        says whose it is (the format, the fingerprint, the settings) and every rank's random state
        (call it on every rank; rank 0 writes), whole or not at all (:func:`faderlib.checkpoint.atomic_save`).
        The batch stream is saved where the last full iteration left it (a prefetch thread may have
        drawn further)."""
        rng = ckpt.rng_state(device=trainer.device, generator=trainer.stream_state, flip_generator=trainer.flip_generator.get_state())
        states = self.dist.gather(rng)
        if not self.dist.main:
            return None
        state = {"format_version": FORMAT_VERSION, "fingerprint": self.fingerprint, "step": trainer.step,
                 "best_valid": trainer.best_valid, "window": trainer.window.state(), "model_config": self.model,
                 "train_config": self.train, **{key: part.state_dict() for key, part in _parts(trainer).items()},
                 "rng": [{k: (v.cpu() if torch.is_tensor(v) else [t.cpu() for t in v]) for k, v in s.items()}
                         for s in states]}
        return ckpt.atomic_save(state, self.checkpoint_dir / name)

    def last_saved_step(self) -> int | str:
        """The step of ``last.pt`` (0 if there is none yet), for a message."""
        path = self.checkpoint_dir / "last.pt"
        try:
            return int(ckpt.load(path)["step"]) if path.exists() else 0
        except CheckpointError:
            return "unreadable"

    def log(self, row: dict) -> None:
        """Add a row to the metrics log (:mod:`faderlib.metrics_log`); rank 0 writes."""
        if self.dist.main:
            append_metrics(self.path, row)

    def save_sample(self, grid, step: int) -> None:
        """Write a sample grid (a PIL image) as ``samples/step_<step>.png``."""
        check_free_space(self.path / "samples", 3 * grid.width * grid.height, "a sample grid")  # PNG, at most raw
        grid.save(self.path / "samples" / f"step_{step:07d}.png")


def check_writable(folder: Path) -> None:
    """Refuse (:class:`TrainingError`) a folder this process cannot write in, found by creating and
    removing a file there (:func:`_probe_writable`): said before training, not at the first save."""
    problem = _probe_writable(folder)
    if problem is not None:
        raise TrainingError(
            f"{folder} is not writable ({problem}): the run could not save its checkpoints there. Nothing was "
            "changed. Make it writable for this user (ls -ld shows its owner and mode; chmod u+w), or train "
            "into a folder of your own (another --out).")


def _probe_writable(folder: Path) -> str | None:
    """Why ``folder`` cannot be written in, or None if a file can be created and removed there."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "no write permission for this user"
    probe = folder / f".fader-write-test.{os.getpid()}.tmp"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _parts(trainer) -> dict:
    """The networks and optimisers of a Trainer, by the names a checkpoint holds them under."""
    parts = {"autoencoder": trainer.ae, "latent_discriminator": trainer.dis, "opt_autoencoder": trainer.opt_ae,
             "opt_latent_discriminator": trainer.opt_dis}
    if trainer.ptc is not None:
        parts.update(patch_discriminator=trainer.ptc, opt_patch_discriminator=trainer.opt_ptc)
    return parts


class StopRequest:
    """SIGTERM, what a lab's job scheduler sends before it kills a job, turned into a request to stop
    at the next step boundary, where the :class:`~faderlib.train.Trainer` saves ``last.pt`` and
    stops (measured: 1.6 s from the signal to the exit at 64 px on a CPU).

    :meth:`install` replaces the handler while training runs (in the main thread only: Python runs
    signal handlers there alone), :meth:`remove` restores the previous one. Under ``torchrun`` the
    ranks agree at log rows only (every ``log_every`` steps): a collective in every step would make
    each step wait for the device.
    """

    def __init__(self, dist: Dist, device: torch.device):
        self.dist, self.device = dist, device
        self.signal: str | None = None  # the name of the signal received, if any
        self._previous = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._ask)

    def _ask(self, signum, frame) -> None:
        self.signal = signal.Signals(signum).name

    def remove(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def asked(self, step: int, log_every: int) -> bool:
        """Whether to stop after ``step``: asked here, or (several processes, at a log row) on any rank."""
        if self.dist.world == 1:
            return self.signal is not None
        return step % log_every == 0 and self.dist.any(self.signal is not None, self.device)
