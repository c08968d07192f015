"""Training a Fader Network: the learning algorithm of the paper (section 3; docs/paper_notes.md,
sections 1 and 3).

Each iteration takes one latent-discriminator step, then one autoencoder step, each on its
own random batch (drawn with replacement, as the reference code did):

1. :meth:`Trainer.discriminator_step`, loss (1): z = E(x) is computed without gradient
   (encoder in eval mode); P learns to predict the TRUE attributes y from z;
2. :meth:`Trainer.autoencoder_step`, loss (3): ``||D(E(x), y) - x||^2 + lambda_E * CE(P(E(x)), 1 - y)``;
   only E and D are stepped: the encoder learns to make P predict the flipped attributes,
   i.e. to leave no trace of y in z.

(The loss numbers are the kit's, used throughout the code and the notebooks; section 1 of
docs/paper_notes.md says how they relate to the paper's.)

The same :class:`Trainer` runs from ``fader train``, from a notebook and under ``torchrun``.
A run folder (:mod:`faderlib.runs`) holds ``config.json``, ``metrics.jsonl``,
``checkpoints/last.pt`` (always the latest), ``checkpoints/best.pt`` (best validation
reconstruction) and ``samples/``. Rerunning the same command on a run folder resumes it exactly.

:class:`TrainConfig` holds every setting, with the paper's defaults; :data:`RECIPES` names the
other recipes the kit uses (``TrainConfig.from_recipe("course", ...)``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from . import checkpoint as ckpt
from .cache import prepared
from .config import ModelConfig, from_settings, jsonable, parse_attributes
from .data import FaderDataset, balanced_weights, choose_balance
from .devices import PRECISIONS, autocast, choose_precision, fits_on_device, init_distributed, pick_device, \
    use_channels_last
from .errors import CheckpointError, ConfigError, FolderInUseError, TrainingError, did_you_mean
from .feed import BatchFeed, place, resident_split, split_bytes
from .files import FolderLock, check_free_space, remove_temporary_files
from .losses import adversarial_loss, discriminator_loss, lambda_e, learning_rate, patch_loss, reconstruction_loss
from .metrics import accuracy, correct_counts
from .models import AutoEncoder, LatentDiscriminator, PatchDiscriminator
from .progress import Progress
from .runs import (FORMAT_VERSION, LogWindow, append_metrics, check_checkpoint_belongs, claim_run_dir, resume_advice,
                   truncate_metrics)
from .visual import edit_grid

#: Named training recipes: what each changes from the paper's defaults (the fields of TrainConfig).
#:
#: * ``paper``: the paper's settings as they are (sized for 500,000 iterations on a GPU);
#: * ``course``: what the demo and the notebooks train, reaching the paper's qualitative result in
#:   4,000 iterations at 64 px on a CPU: the paper's preset (a 2x2 latent, so that z has little room
#:   and y must carry the attributes), lr 5e-4 falling linearly to 0 over the second half
#:   (``lr_decay=0.5``), lambda_E 0.02 after a 1,000-step ramp, and the rare attribute drawn
#:   class-balanced (``balance="auto"``). Measured alternatives are in :mod:`faderlib.demo`;
#: * ``tiny``: the course's recipe at 32 px for 30 steps: the same code path in seconds (tests).
RECIPES: dict[str, dict] = {
    "paper": {},
    "course": {"attributes": ("Smiling", "Eyeglasses", "Male"), "preset": "paper", "steps": 4000, "lr": 5e-4,
               "lr_decay": 0.5, "lambda_e": 0.02, "lambda_ramp": 1000, "balance": "auto"},
}
RECIPES["tiny"] = {**RECIPES["course"], "image_size": 32, "steps": 30, "lambda_ramp": 10}

#: Steps of a recipe when ``steps=None`` on a CUDA GPU (the recipe's own steps elsewhere).
GPU_STEPS = {"course": 20_000}

#: torch.compile's backend for ``compile=True`` ("eager" traces without generating code: tests use it).
COMPILE_BACKEND = "inductor"



@dataclass
class TrainConfig:
    """Every setting of a training run. Defaults are the paper's (docs/paper_notes.md, section 3),
    except the image size and the number of steps, which suit a laptop."""

    data_dir: str | None = None          # None: $FADER_DATA, else the built-in synthetic faces
    attributes: tuple[str, ...] = ("Smiling",)
    image_size: int = 64
    preset: str = "official"
    model: dict = field(default_factory=dict)  # overrides of ModelConfig fields, e.g. {"init_fm": 16}
    steps: int = 10_000
    batch_size: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    clip_grad_norm: float = 5.0
    lambda_e: float = 1e-4               # lambda_E after the ramp
    lambda_ramp: int = 500_000           # steps over which lambda_E grows from 0
    lr_decay: float = 0.0                # share of the last steps over which lr falls to 0 (0: constant)
    patch_weight: float = 0.0            # weight of the image-space patch discriminator (0: none, as the paper)
    flip: bool = True                    # random horizontal flips
    balance: str | None = None           # attribute whose classes are drawn equally often; "auto": see for_data
    seed: int = 0
    checkpoint_every: int | None = None  # None: a quarter of the steps, 100 to 1,000
    eval_every: int | None = None        # None: a sixth of the steps, 50 to 1,000
    eval_images: int = 256               # validation images per validation
    log_every: int | None = None         # None: a tenth of the steps, 1 to 25
    device: str = "auto"                 # "auto", "cpu", "cuda", "cuda:1", "mps"
    precision: str = "auto"              # "fp32", "bf16" (autocast), "auto": devices.choose_precision
    channels_last: str | bool = "auto"   # "auto": the layout measured faster (see `make bench`)
    compile: bool = False                # torch.compile the two networks (pays on CUDA, if anywhere)
    prefetch: int | str = "auto"         # batches read ahead by a thread; "auto": 2 on CUDA, 0 on CPU
    data_on_device: str | bool = "auto"  # the training split uploaded once; "auto": on a GPU where it fits

    #: Settings that may change when a run is resumed: they change how fast, not what is learnt
    #: (``bf16`` is the name ``precision`` had in run folders of earlier versions).
    RUNTIME_KEYS = ("steps", "checkpoint_every", "eval_every", "eval_images", "log_every", "device",
                    "precision", "channels_last", "compile", "prefetch", "data_on_device", "bf16")

    def __post_init__(self):
        self.attributes = tuple(a.spec for a in parse_attributes(self.attributes))
        # one rule for the intervals, whoever builds the configuration; a run always validates
        # and writes a checkpoint at its last step
        if isinstance(self.steps, int):
            if self.checkpoint_every is None:
                self.checkpoint_every = min(1000, max(self.steps // 4, 100))
            if self.eval_every is None:
                self.eval_every = min(1000, max(self.steps // 6, 50))
            if self.log_every is None:
                self.log_every = max(1, min(25, self.steps // 10))
        for name in ("steps", "batch_size", "checkpoint_every", "eval_every", "log_every", "eval_images"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "steps" else 1):
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not (isinstance(self.lr_decay, (int, float)) and 0 <= self.lr_decay <= 1):
            raise ConfigError(f"lr_decay is a share of the steps, from 0 (constant) to 1, got {self.lr_decay!r}")
        if not (isinstance(self.patch_weight, (int, float)) and self.patch_weight >= 0):
            raise ConfigError(f"patch_weight must be >= 0 (0: no patch discriminator), got {self.patch_weight!r}")
        if self.lambda_e < 0 or self.lambda_ramp < 0:
            raise ConfigError(f"lambda_e and lambda_ramp must be >= 0, got {self.lambda_e}, {self.lambda_ramp}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not (self.prefetch == "auto" or (isinstance(self.prefetch, int) and self.prefetch >= 0)):
            raise ConfigError(f"prefetch is a number of batches (0: none) or 'auto', got {self.prefetch!r}")
        if self.data_on_device not in ("auto", True, False):
            raise ConfigError(f"data_on_device must be true, false or 'auto', got {self.data_on_device!r}")

    @classmethod
    def from_recipe(cls, recipe: str = "paper", **settings) -> "TrainConfig":
        """The configuration of a named recipe (:data:`RECIPES`), with ``settings`` on top.

        ``steps=None`` means the recipe's steps (on a CUDA GPU, :data:`GPU_STEPS` where the
        recipe has them), so that a notebook's ``TRAIN_STEPS = None`` passes straight through;
        ``batch_size=None`` the recipe's batch size (the notebooks' ``BATCH_SIZE = None``).

        >>> TrainConfig.from_recipe("course", image_size=32, steps=12).lr
        0.0005
        """
        if recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}."
                              f"{did_you_mean(str(recipe), RECIPES)}")
        values = {**RECIPES[recipe], **settings}
        if values.get("batch_size", cls.batch_size) is None:
            values["batch_size"] = RECIPES[recipe].get("batch_size", cls.batch_size)
        if values.get("steps") is None:
            device = pick_device(values.get("device", "auto"))
            steps = GPU_STEPS.get(recipe) if device.type == "cuda" else None
            values["steps"] = steps or RECIPES[recipe].get("steps", cls.steps)
        return from_settings(cls, values, "training")

    def for_data(self, data) -> "TrainConfig":
        """This configuration with ``balance="auto"`` decided on ``data`` (a prepared cache):
        the rarest of the attributes if its rarer class is under 15 % of the training split
        (:func:`faderlib.data.choose_balance`; Eyeglasses, 6.5 % in CelebA), else no balancing."""
        if self.balance != "auto":
            return self
        return dataclasses.replace(self, balance=choose_balance(data, self.attributes))

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_preset(self.preset, self.image_size, list(self.attributes), **self.model)

    #: Settings added after the first runs were recorded, with the value that reproduces those
    #: runs: left out of a record while they hold it, so that an older run folder (and its
    #: checkpoints' fingerprints) stays the same run.
    LATER_DEFAULTS = {"lr_decay": 0.0, "patch_weight": 0.0}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for key, default in self.LATER_DEFAULTS.items():
            if d.get(key) == default:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The configuration a run folder recorded (``config.json``'s ``train``); a record of an
        earlier version, with ``bf16`` true or false, reads as precision ``bf16`` or ``fp32``."""
        d = dict(d)
        if "bf16" in d:
            d.setdefault("precision", "bf16" if d.pop("bf16") else "fp32")
        return from_settings(cls, d, "training")


class Trainer:
    """Trains an autoencoder against a latent discriminator; resumable and observable.

    ``progress``: True (a bar labelled "training"), False, or a :class:`~faderlib.progress.Progress`
    (a label and a line, for runs side by side). ``callbacks``: functions ``(trainer, row)``
    called with every logged row (a live plot, an early stop). ``resume_from``: the checkpoint
    of the run folder to resume from, ``last.pt`` or ``best.pt`` (when last.pt is damaged).

    The run folder is locked while the Trainer lives (:class:`faderlib.files.FolderLock`): a
    second process on the same folder is refused; :meth:`close` (or dropping the Trainer) frees it.

    >>> trainer = Trainer(TrainConfig(attributes=["Smiling"], steps=200), "runs/try")  # doctest: +SKIP
    >>> trainer.train()                                                                 # doctest: +SKIP
    """

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike, *, progress: bool | Progress = True,
                 callbacks: Sequence[Callable[["Trainer", dict], None]] = (), resume: bool = True,
                 resume_from: str = "last.pt"):
        self.run_dir = Path(run_dir)
        self.progress = Progress.of(progress, "training")
        self.callbacks = list(callbacks)

        # where: one process, or one of several under torchrun (devices.py)
        self.dist, device_name = init_distributed(config.device)
        self.device = pick_device(device_name)
        self.precision = choose_precision(config.precision, self.device, config.image_size)
        self.channels_last = use_channels_last(config.channels_last, self.device)

        # data: one memory-mapped cache, read batch by batch; rank 0 builds it, the others then reuse it
        if not self.dist.main:
            self.dist.barrier()
        data = prepared(config.data_dir, config.image_size, progress=self.progress.enabled and self.dist.main)
        if self.dist.main:
            self.dist.barrier()
        self.config = config = config.for_data(data)
        self.model_config = config.model_config()
        self.data_root = str(data.root)
        self.train_set = FaderDataset(data, "train", self.model_config.attribute_names, flip=config.flip)
        self.valid_set = FaderDataset(data, "valid", self.model_config.attribute_names, flip=False)
        # class-balanced draws (config.balance) for both steps. Tried: the discriminator on natural
        # draws. Its prior then says "no glasses", the flipped target of the adversarial loss can no
        # longer be met by an attribute-blind z, and the encoder learns to write anti-glasses into z:
        # 4 dB worse reconstruction at 3,000 demo steps.
        self.weights = balanced_weights(self.train_set, config.balance) if config.balance else None
        # how batches reach the device (faderlib.feed): the split on the device when it fits there
        on_device = config.data_on_device
        self.data_on_device = fits_on_device(split_bytes(self.train_set), self.device) if on_device == "auto" \
            else bool(on_device)
        self.prefetch = (2 if self.device.type == "cuda" and not self.data_on_device else 0) \
            if config.prefetch == "auto" else config.prefetch
        self._resident = None  # uploaded at the first train()

        # networks and optimisers; the same initial weights on every rank
        torch.manual_seed(config.seed)
        self.ae = AutoEncoder(self.model_config).to(self.device)
        self.dis = LatentDiscriminator(self.model_config).to(self.device)
        if self.channels_last:
            self.ae.to(memory_format=torch.channels_last)
            self.dis.to(memory_format=torch.channels_last)
        betas = (config.beta1, config.beta2)
        # the fused Adam kernel: one pass over all parameters; on 2 CPU cores it takes 4 ms per
        # iteration where PyTorch's default per-parameter loop takes 10-15 ms (benchmarks/bench_train.py)
        fused = True if self.device.type in ("cpu", "cuda") else None
        self.opt_ae = torch.optim.Adam(self.ae.parameters(), lr=config.lr, betas=betas, fused=fused)
        self.opt_dis = torch.optim.Adam(self.dis.parameters(), lr=config.lr, betas=betas, fused=fused)
        # the optional patch discriminator on images (patch_weight > 0): real faces against reconstructions
        self.ptc = self.opt_ptc = None
        if config.patch_weight > 0:
            self.ptc = PatchDiscriminator(self.model_config).to(self.device)
            if self.channels_last:
                self.ptc.to(memory_format=torch.channels_last)
            self.opt_ptc = torch.optim.Adam(self.ptc.parameters(), lr=config.lr, betas=betas, fused=fused)
        self.ae_ddp, self.dis_ddp = self.dist.wrap(self.ae, self.device), self.dist.wrap(self.dis, self.device)
        # what the two steps call: the same networks, compiled if asked (the weights stay in self.ae, self.dis)
        self._ae_fwd, self._dis_fwd = self.ae_ddp, self.dis_ddp
        if config.compile:
            self._ae_fwd = torch.compile(self.ae_ddp, backend=COMPILE_BACKEND)
            self._dis_fwd = torch.compile(self.dis_ddp, backend=COMPILE_BACKEND)
        # each rank draws its own batches and dropout masks; the flipped values of K-valued
        # attributes have a stream of their own, so that batches can be drawn ahead of the steps
        rank_seed = config.seed + 1000 * self.dist.rank
        torch.manual_seed(rank_seed)
        self.generator = torch.Generator().manual_seed(rank_seed)
        self.flip_generator = torch.Generator().manual_seed(rank_seed + 500)
        self._rng_next = self.generator.get_state()  # the batch stream's state after the last full iteration
        self.window = LogWindow(self.device)         # the metrics log's running averages, on the device

        self.step = 0
        self.best_valid = math.inf
        self._lock = FolderLock(self.run_dir, "training") if self.dist.main else None
        self._open_run_dir(resume, resume_from)

    def close(self) -> None:
        """Free the run folder, and end a run of several processes cleanly: wait for every rank,
        release the DDP wrappers, then the process group (:meth:`faderlib.devices.Dist.close`)."""
        if self.dist.world > 1:
            self.dist.barrier()
            self.ae_ddp, self.dis_ddp = self.ae, self.dis
            self.dist.close()
        if self._lock is not None:
            self._lock.release()

    # ------------------------------------------------------------------ run folder
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def settings_fingerprint(self) -> str:
        """What makes this run this run (its settings but those that may change on resume)."""
        train = {k: v for k, v in jsonable(self.config.to_dict()).items() if k not in TrainConfig.RUNTIME_KEYS}
        return ckpt.fingerprint({"train": train, "model": self.model_config.to_dict()})

    def _open_run_dir(self, resume: bool, resume_from: str) -> None:
        # Rank 0 alone locks, inspects and writes the folder, then tells the others what it decided:
        # a rank checking while rank 0 is half-way through creating it would see a foreign folder.
        error = None
        if self.dist.main:
            record = {"format_version": FORMAT_VERSION, "train": self.config.to_dict(),
                      "model": self.model_config.to_dict(), "data_root": self.data_root}
            try:
                self._lock.acquire()
                claim_run_dir(self.run_dir, record, TrainConfig.RUNTIME_KEYS, resume)
                for name in ("last.pt", "best.pt"):  # what saves killed half-way left behind
                    remove_temporary_files(self.checkpoint_dir, name)
                for name in ("config.json", "metrics.jsonl"):
                    remove_temporary_files(self.run_dir, name)
            except (TrainingError, FolderInUseError) as exc:
                self._lock.discard()
                error = (type(exc).__name__, str(exc))
        error = self.dist.broadcast(error)
        if error is not None:
            raise (FolderInUseError if error[0] == "FolderInUseError" else TrainingError)(error[1])
        try:
            path = self.checkpoint_dir / resume_from
            if resume and (path.exists() or resume_from != "last.pt"):
                self.load_checkpoint(path)
            elif self.dist.main:
                truncate_metrics(self.run_dir, 0)  # killed before its first checkpoint
        except BaseException:
            self.close()
            raise

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore model, optimisers, schedule position, data order, every RNG state and the
        running window of the log. Refuses, naming the file and the reason, a checkpoint that is
        damaged or of another run; says then whether ``best.pt`` can be resumed from instead."""
        path = Path(path)
        try:
            state = ckpt.load(path, map_location=self.device)
            self._check_belongs(path, state)
        except (CheckpointError, FileNotFoundError) as exc:
            raise CheckpointError(f"{exc}. {resume_advice(self.checkpoint_dir, path, self._check_belongs)}") from None
        self.ae.load_state_dict(state["autoencoder"])
        self.dis.load_state_dict(state["latent_discriminator"])
        self.opt_ae.load_state_dict(state["opt_autoencoder"])
        self.opt_dis.load_state_dict(state["opt_latent_discriminator"])
        if self.ptc is not None:
            self.ptc.load_state_dict(state["patch_discriminator"])
            self.opt_ptc.load_state_dict(state["opt_patch_discriminator"])
        self.step = int(state["step"])
        self.best_valid = float(state["best_valid"])
        ckpt.set_rng_state(state["rng"][self.dist.rank], generator=self.generator, flip_generator=self.flip_generator)
        self._rng_next = self.generator.get_state()
        self.window.load(state.get("window"))  # the log's running averages continue as if never stopped
        if self.dist.main:
            truncate_metrics(self.run_dir, self.step)

    def _check_belongs(self, path: Path, state: dict) -> None:
        check_checkpoint_belongs(path, state, self.settings_fingerprint(), self.config.to_dict(),
                                 self.model_config.to_dict(), TrainConfig.RUNTIME_KEYS)

    def save_checkpoint(self, name: str = "last.pt") -> Path | None:
        """Write everything :meth:`load_checkpoint` restores (rank 0 writes; every rank's random state).
        The batch stream is saved where the last full iteration left it (a prefetch thread may
        have drawn further)."""
        states = self.dist.gather(ckpt.rng_state(generator=self._rng_next, flip_generator=self.flip_generator.get_state()))
        if not self.dist.main:
            return None
        state = {
            "format_version": FORMAT_VERSION,
            "fingerprint": self.settings_fingerprint(),
            "step": self.step,
            "best_valid": self.best_valid,
            "window": self.window.state(),
            "model_config": self.model_config.to_dict(),
            "train_config": self.config.to_dict(),
            "autoencoder": self.ae.state_dict(),
            "latent_discriminator": self.dis.state_dict(),
            "opt_autoencoder": self.opt_ae.state_dict(),
            "opt_latent_discriminator": self.opt_dis.state_dict(),
            **({"patch_discriminator": self.ptc.state_dict(), "opt_patch_discriminator": self.opt_ptc.state_dict()}
               if self.ptc is not None else {}),
            "rng": [{k: (v.cpu() if torch.is_tensor(v) else [t.cpu() for t in v]) for k, v in s.items()}
                    for s in states],
        }
        return ckpt.atomic_save(state, self.checkpoint_dir / name)

    # ------------------------------------------------------------------ batches
    def _feed(self) -> BatchFeed:
        """The training batches, drawn with replacement from our generator (so a resumed run draws the same)."""
        if self.data_on_device and self._resident is None:
            self._resident = resident_split(self.train_set, self.device)
        return BatchFeed(self.train_set, self.config.batch_size, self.generator, self.device, weights=self.weights,
                         channels_last=self.channels_last, prefetch=self.prefetch, resident=self._resident)

    def _autocast(self):
        return autocast(self.device, self.precision)

    # ------------------------------------------------------------------ the two steps
    def discriminator_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """Loss (1): P learns y from z = E(x); E is in eval mode and gets no gradient."""
        self.ae.eval()
        self.dis_ddp.train()
        with torch.no_grad(), self._autocast():
            z = self.ae.encode(x)
        with self._autocast():
            logits = self._dis_fwd(z)
            loss = discriminator_loss(logits.float(), y, self.model_config)
        self.opt_dis.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.dis.parameters(), self.config.clip_grad_norm)
        self.opt_dis.step()
        return {"dis_loss": loss.detach(), "dis_accuracy": accuracy(logits.detach(), y, self.model_config)}

    def patch_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The optional patch discriminator learns real faces x -> 1, their reconstructions -> 0."""
        self.ae.eval()
        self.ptc.train()
        with torch.no_grad(), self._autocast():
            x_hat = self.ae(x, y)[1]
        with self._autocast():
            loss = patch_loss(self.ptc(x).float(), True) + patch_loss(self.ptc(x_hat).float(), False)
        self.opt_ptc.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.ptc.parameters(), self.config.clip_grad_norm)
        self.opt_ptc.step()

    def autoencoder_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """Loss (3): reconstruct x from (E(x), y) and fool P; only E and D are stepped."""
        lam = lambda_e(self.step, self.config.lambda_e, self.config.lambda_ramp)
        self.ae_ddp.train()
        self.dis.eval()
        self.dis.requires_grad_(False)
        try:
            with self._autocast():
                z, x_hat = self._ae_fwd(x, y)
                rec = reconstruction_loss(x_hat.float(), x)
                adv = adversarial_loss(self.dis(z).float(), y, self.model_config, self.flip_generator) if lam > 0 \
                    else rec.new_zeros(())
                loss = rec + lam * adv
                if self.ptc is not None:
                    self.ptc.eval()
                    self.ptc.requires_grad_(False)
                    loss = loss + self.config.patch_weight * patch_loss(self.ptc(x_hat).float(), True)
            self.opt_ae.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.dis.requires_grad_(True)
            if self.ptc is not None:
                self.ptc.requires_grad_(True)
        nn.utils.clip_grad_norm_(self.ae.parameters(), self.config.clip_grad_norm)
        self.opt_ae.step()
        return {"rec_loss": rec.detach(), "adv_loss": adv.detach(), "lambda_e": lam}

    # ------------------------------------------------------------------ the loop
    def train(self, steps: int | None = None) -> list[dict]:
        """Train up to ``steps`` iterations in all (default: the configured number).

        Writes a checkpoint every ``checkpoint_every`` steps and at the end. Nothing inside a
        step waits for the device: losses accumulate where they are computed and are read at
        each log row; a non-finite loss is looked for then and before every validation and
        checkpoint, and stops training with a :class:`TrainingError` naming its step, before
        anything is written from the bad state (the last good checkpoint is kept). Returns the
        rows logged by this call.
        """
        total = self.config.steps if steps is None else steps
        logged: list[dict] = []
        bar = self.progress.bar(total, unit="step", initial=self.step, enabled=self.dist.main)
        feed = self._feed()
        t0, images = time.perf_counter(), 0
        try:
            while self.step < total:
                self._set_lr()
                batch = feed.next()
                d = self.discriminator_step(batch.x, batch.y)
                if self.ptc is not None:
                    self.patch_step(batch.x, batch.y)
                batch = feed.next()
                a = self.autoencoder_step(batch.x, batch.y)
                self._rng_next = batch.rng_state
                self.window.add(self.step + 1, [d["dis_loss"], d["dis_accuracy"], a["rec_loss"], a["adv_loss"]],
                                a["lambda_e"])
                self.step += 1
                images += 2 * batch.x.shape[0]
                if self.step % self.config.log_every == 0 or self.step == total:
                    self._check_finite()
                    row = self.window.row(self.step)  # the one read of the device per row
                    elapsed = time.perf_counter() - t0
                    row["images_per_s"] = images * self.dist.world / max(elapsed, 1e-9)
                    images, t0 = 0, time.perf_counter()
                    self._log(row, logged)
                    bar.set_postfix(rec=f"{row['rec_loss']:.4f}", dis=f"{row['dis_loss']:.3f}",
                                    acc=f"{row['dis_accuracy']:.2f}", lam=f"{row['lambda_e']:.1e}")
                if self.step % self.config.eval_every == 0 or self.step == total:
                    self._check_finite()
                    self._log(self.validate(), logged)
                if self.step % self.config.checkpoint_every == 0 or self.step == total:
                    self._check_finite()
                    self.save_checkpoint("last.pt")
                bar.update(1)
        finally:
            feed.close()
            self.generator.set_state(self._rng_next)  # where the last full iteration left the stream
            bar.close()
        return logged

    def _set_lr(self) -> None:
        """Both optimisers at the schedule's rate for this step (:func:`faderlib.losses.learning_rate`)."""
        lr = learning_rate(self.step, self.config.lr, self.config.steps, self.config.lr_decay)
        for opt in (self.opt_ae, self.opt_dis, self.opt_ptc):
            if opt is None:
                continue
            for group in opt.param_groups:
                group["lr"] = lr

    def _check_finite(self) -> None:
        """Stop if a loss of the steps since the last check was not finite (on any rank)."""
        found = self.window.first_bad()
        if self.dist.any(found is not None, self.device):
            first, bad = found if found is not None else (None, {})
            what = ", ".join(f"{k} = {v}" for k, v in bad.items() if k.endswith("loss") and not math.isfinite(v))
            step = f"step {first}" if first is not None else f"a step up to {self.step}"
            raise TrainingError(
                f"{step}: {what or 'a loss on another rank'} is not finite (found at the check of step "
                f"{self.step}); training stopped. The last good checkpoint ({self.checkpoint_dir / 'last.pt'}, "
                f"step {self._last_saved_step()}) is kept. Try a smaller learning rate or lambda_E."
            )

    def _last_saved_step(self) -> int | str:
        path = self.checkpoint_dir / "last.pt"
        try:
            return int(ckpt.load(path)["step"]) if path.exists() else 0
        except CheckpointError:
            return "unreadable"

    def _log(self, row: dict, logged: list[dict]) -> None:
        logged.append(row)
        if not self.dist.main:
            return
        append_metrics(self.run_dir, row)
        for cb in self.callbacks:
            cb(self, row)

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict:
        """Reconstruction MSE and the discriminator's accuracy on a fixed slice of the
        validation split; saves ``best.pt`` when the reconstruction improves and a sample grid."""
        self.ae.eval()
        self.dis.eval()
        n = min(self.config.eval_images, len(self.valid_set))
        rec_sum, correct, count = 0.0, None, 0
        for start in range(0, n, 64):
            idx = torch.arange(start, min(start + 64, n))
            x, y = self.valid_set.batch(idx)
            x, y = place(x, self.device, self.channels_last), y.to(self.device)
            with self._autocast():
                z = self.ae.encode(x)
                x_hat = self.ae.decode(z, y)
                logits = self.dis(z)
            rec_sum += float(reconstruction_loss(x_hat.float(), x)) * len(idx)
            c = correct_counts(logits.float(), y, self.model_config)
            correct = c if correct is None else correct + c
            count += len(idx)
        row = {"phase": "valid", "step": self.step, "rec_loss": rec_sum / max(count, 1)}
        for name, c in zip(self.model_config.attribute_names, (correct / max(count, 1)).tolist()):
            row[f"dis_accuracy/{name}"] = c
        if self.dist.broadcast(row["rec_loss"] < self.best_valid):  # rank 0's decision: BatchNorm differs a little
            self.best_valid = row["rec_loss"]
            self.save_checkpoint("best.pt")
        if self.dist.main:
            self._save_samples()
        return row

    def _save_samples(self, n: int = 8) -> None:
        x, y = self.valid_set.batch(torch.arange(min(n, len(self.valid_set))))
        grid = edit_grid(self.ae, x.to(self.device), y.to(self.device))
        check_free_space(self.run_dir / "samples", 3 * grid.width * grid.height, "a sample grid")  # PNG, at most raw
        grid.save(self.run_dir / "samples" / f"step_{self.step:07d}.png")
