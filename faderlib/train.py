"""Training a Fader Network: the learning algorithm of the paper, section 3 (docs/paper_notes.md,
'The method and its losses' and 'Training').

Notation (docs/paper_notes.md, 'The method and its losses'): an image x in [-1, 1] with
attributes y; the encoder E gives the latent code z = E(x); the decoder D rebuilds
x_hat = D(z, y); the latent discriminator P sees z alone and predicts y, p_P(y | z); lambda_E
weights the adversarial term. Each iteration takes one latent-discriminator step (``dis_steps`` of
them if asked, the reference code's ``n_lat_dis``), then one autoencoder step, each on its own
random batch of m pairs (drawn with replacement, as the reference code did):

1. :meth:`Trainer.discriminator_step` (:func:`discriminator_update`), loss (1), over P only::

       L_dis = -1/m sum log p_P(y | E(x))

   z = E(x) is computed without gradient (E in eval mode): P learns the TRUE attributes y from z;
2. :meth:`Trainer.autoencoder_step` (:func:`autoencoder_update`), loss (3), over E and D only::

       L_adv = 1/m sum ||D(E(x), y) - x||^2 - lambda_E log p_P(y' | E(x))

   with y' the flipped attributes (1 - y): the encoder learns to make P predict y' (meant to
   leave no trace of y in z; a fresh probe may still read y: see :meth:`Trainer.probe`), while D
   learns to read the attributes from y. (``adversary`` chooses another
   target for this term: the uniform distribution, or P's own loss reversed:
   :func:`faderlib.losses.adversarial_loss`.) lambda_E grows from 0 over
   the first steps (:func:`faderlib.losses.lambda_e`), the learning rate may fall to 0 over the
   last ones (:func:`faderlib.losses.learning_rate`), P's may be ``dis_lr_scale`` times E's and
   D's. Changing y at test time then changes the image.

(The loss numbers are the kit's, used throughout the code and the notebooks; docs/paper_notes.md,
'Equation numbers', says how they relate to the paper's.) An optional patch discriminator on
images (:meth:`Trainer.patch_step`, ``patch_weight > 0``; the reference code has one, the method the
paper describes does not) adds a realism term; measured, it cost reconstruction (docs/results.md).
Each validation also refits a fresh linear probe on the frozen z (:meth:`Trainer.probe`): whether
a classifier the encoder was not trained to fool still reads y from z.

The same :class:`Trainer` runs from ``fader train``, from a notebook and under ``torchrun``: where it
computes is decided once (:class:`faderlib.devices.Placement`), and everything it keeps on disk goes
through its :class:`~faderlib.runfolder.RunFolder`: ``config.json``, ``metrics.jsonl``,
``checkpoints/last.pt`` (always the latest), ``checkpoints/best.pt`` (best validation
reconstruction) and ``samples/`` (:mod:`faderlib.runs`). Rerunning the same command on a run folder
resumes it exactly.

:class:`TrainConfig` holds every setting, with the reference code's defaults (its ``train.py``:
Adam lr 2e-4, where the paper's text says 0.002); :data:`RECIPES` names the other recipes the kit
uses (``TrainConfig.from_recipe("course", ...)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .config import ModelConfig, from_settings, parse_attributes
from .data import choose_balance
from .devices import PRECISIONS, Placement, pick_device
from .errors import ConfigError, TrainingError, TrainingStopped, did_you_mean
from .feed import TrainingData, place
from .evaluate import encode_split, probe_scores
from .losses import (ADVERSARIES, adversarial_loss, discriminator_loss, lambda_e, learning_rate, patch_loss,
                     reconstruction_loss)
from .metrics import accuracy, correct_counts
from .metrics_log import LogWindow
from .runfolder import StopRequest
from .models import AutoEncoder, LatentDiscriminator, PatchDiscriminator
from .progress import Progress
from .runfolder import RunFolder
from .visual import edit_grid

#: Named training recipes: what each changes from TrainConfig's defaults (the reference code's settings).
#:
#: * ``paper``: the defaults as they are: the reference code's settings (its ``train.py``: the
#:   ``official`` preset, Adam lr 2e-4, where the paper's text says 0.002; lambda_E ramped to 1e-4
#:   over 500,000 iterations), sized for a GPU;
#: * ``course``: what the demo and the notebooks train in 9,000 iterations of 16 faces at 64 px on a
#:   CPU, with swaps the classifier reads as asked (docs/results.md): the paper's preset (a 2x2 latent,
#:   so that z has little room and y must carry the attributes; the reference code's 4x4 latent gave
#:   weaker swaps, :mod:`faderlib.demo`), lr 5e-4 falling linearly to 0 over the second half
#:   (``lr_decay=0.5``), lambda_E 0.02 after a 1,000-step ramp, and the rare attribute drawn
#:   class-balanced (``balance="auto"``). Batches of 16 for more steps, in the CPU time 4,000 steps of
#:   32 took before the small convolutions became matrix products (docs/speed.md): measured (seed 0),
#:   10,000 x 16 gave 26.8 dB and 6,000 x 32 26.6 dB where 4,000 x 32 gave 26.1. Measured
#:   alternatives are in :mod:`faderlib.demo` and docs/results.md;
#: * ``tiny``: the course's recipe at 32 px for 30 steps: the same code path in seconds (tests).
RECIPES: dict[str, dict] = {
    "paper": {},
    "course": {"attributes": ("Smiling", "Eyeglasses", "Male"), "preset": "paper", "steps": 9000, "batch_size": 16,
               "lr": 5e-4, "lr_decay": 0.5, "lambda_e": 0.02, "lambda_ramp": 1000, "balance": "auto"},
}
RECIPES["tiny"] = {**RECIPES["course"], "image_size": 32, "steps": 30, "lambda_ramp": 10}

#: Steps of a recipe when ``steps=None`` on a CUDA GPU (the recipe's own steps elsewhere).
GPU_STEPS = {"course": 20_000}

#: Full-batch steps of each fit of the in-training latent probe (:meth:`Trainer.probe`). Measured on
#: three 64 px course runs of the adversary sweep (1,307 codes to fit, 654 to score): the balanced
#: accuracies at 100 steps are within 0.02 of those at 300 (the evaluation's,
#: :func:`faderlib.evaluate.latent_probe`) but one (0.60 against 0.70), in a third of the time.
#:
#: How many images the probe sees matters more (``TrainConfig.probe_images``): a weak witness says
#: "nothing to read" where a stronger one reads. On the same z (flip target, 4 discriminator steps),
#: 341 codes to fit read the rare Eyeglasses (6.5 % of the faces, some twenty positives) at 0.52,
#: 1,307 at 0.89. Hence 2,000 validation images by default (the synthetic faces have 1,961): about
#: 7 s per validation on one slow core, some 40 s of a 25-minute course run.
PROBE_STEPS = 100


@dataclass
class TrainConfig:
    """Every setting of a training run. Defaults are the reference code's (its ``train.py``; the
    paper's text gives Adam lr 0.002 where the code has 2e-4: docs/paper_notes.md, 'Training'),
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
    patch_weight: float = 0.0            # weight of the image-space patch discriminator (0: none, as in the paper)
    adversary: str = "flip"              # the encoder's target for P: "flip" (the paper's), "uniform", "reverse"
    dis_steps: int = 1                   # latent-discriminator steps per autoencoder step (the reference n_lat_dis)
    dis_lr_scale: float = 1.0            # the latent discriminator's learning rate, as a multiple of lr
    flip: bool = True                    # random horizontal flips
    balance: str | None = None           # attribute whose classes are drawn equally often; "auto": see for_data
    seed: int = 0
    checkpoint_every: int | None = None  # None: a quarter of the steps, 100 to 1,000
    eval_every: int | None = None        # None: a sixth of the steps, 50 to 1,000
    eval_images: int = 256               # validation images per validation
    probe_images: int = 2000             # validation images of the in-training latent probe (0: none)
    log_every: int | None = None         # None: a tenth of the steps, 1 to 25
    device: str = "auto"                 # "auto", "cpu", "cuda", "cuda:1", "mps"
    precision: str = "auto"              # "fp32", "bf16" (autocast), "auto": devices.choose_precision
    channels_last: str | bool = "auto"   # "auto": the layout measured faster (see `make bench`)
    compile: bool = False                # torch.compile the two networks (pays on CUDA, if anywhere)
    fast_convs: str | bool = "auto"      # small convolutions as one matrix product; "auto": on a CPU (fastconv.py)
    prefetch: int | str = "auto"         # batches read ahead by a thread; "auto": 2 on CUDA, 0 on CPU
    data_on_device: str | bool = "auto"  # the training split uploaded once; "auto": on a GPU where it fits

    #: Settings that may change when a run is resumed: they change how fast, not what is learnt.
    RUNTIME_KEYS = ("steps", "checkpoint_every", "eval_every", "eval_images", "probe_images", "log_every", "device",
                    "precision", "channels_last", "compile", "fast_convs", "prefetch", "data_on_device")

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
        for name in ("steps", "batch_size", "checkpoint_every", "eval_every", "log_every", "eval_images", "dis_steps",
                     "probe_images"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name in ("steps", "probe_images") else 1):
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.adversary not in ADVERSARIES:
            raise ConfigError(f"unknown adversary {self.adversary!r}; choose one of {', '.join(ADVERSARIES)}."
                              f"{did_you_mean(str(self.adversary), ADVERSARIES)}")
        if not (isinstance(self.dis_lr_scale, (int, float)) and not isinstance(self.dis_lr_scale, bool)
                and 0 < self.dis_lr_scale < float("inf")):
            raise ConfigError(f"dis_lr_scale multiplies the learning rate of the latent discriminator (1: the same as "
                              f"the autoencoder's); it must be a positive number, got {self.dis_lr_scale!r}")
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
        if self.fast_convs not in ("auto", True, False):
            raise ConfigError(f"fast_convs must be true, false or 'auto', got {self.fast_convs!r}")
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
        (:func:`faderlib.data.choose_balance`; Eyeglasses, 6.5 % in CelebA), else no balancing.

        Both steps draw class-balanced batches. Tried: the discriminator on natural draws. Its prior
        then says "no glasses", the flipped target of the adversarial loss can no longer be met by an
        attribute-blind z, and the encoder learns to write anti-glasses into z: 4 dB worse
        reconstruction at 3,000 demo steps."""
        if self.balance != "auto":
            return self
        return dataclasses.replace(self, balance=choose_balance(data, self.attributes))

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_preset(self.preset, self.image_size, list(self.attributes), **self.model)

    def to_dict(self) -> dict:
        """Every setting, as a run folder records it (``config.json``'s ``train``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The configuration a run folder recorded (``config.json``'s ``train``)."""
        return from_settings(cls, dict(d), "training")


# ----------------------------------------------------------------------------- the two steps
def discriminator_update(ae: nn.Module, dis: nn.Module, opt_dis: torch.optim.Optimizer, x: torch.Tensor,
                         y: torch.Tensor, config: ModelConfig, clip_grad_norm: float = 5.0, *,
                         forward: Callable | None = None, autocast: Callable = contextlib.nullcontext) -> dict:
    """One step of the latent discriminator P, loss (1), on a batch ``x`` with its TRUE attributes ``y``
    (what :meth:`Trainer.discriminator_step` runs):

    1. z = E(x) with E (``ae``) in eval mode and without gradient: this step must not teach E anything;
    2. P (``dis``, in train mode) reads z: ``L_dis = -1/m sum log p_P(y | z)`` (:func:`discriminator_loss`);
    3. ``opt_dis`` alone steps, after its gradients are cleared and their norm clipped at ``clip_grad_norm``.

    ``forward`` calls P (default: ``dis`` itself; the Trainer's may be compiled), ``autocast`` gives the
    precision's context. Returns the loss and P's accuracy on the batch, as tensors (nothing waits for
    the device)."""
    ae.eval()
    dis.train()
    with torch.no_grad(), autocast():
        z = ae.encode(x)
    with autocast():
        logits = (dis if forward is None else forward)(z)
        loss = discriminator_loss(logits.float(), y, config)
    opt_dis.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(dis.parameters(), clip_grad_norm)
    opt_dis.step()
    return {"dis_loss": loss.detach(), "dis_accuracy": accuracy(logits.detach(), y, config)}


def autoencoder_update(ae: nn.Module, dis: nn.Module, opt_ae: torch.optim.Optimizer, x: torch.Tensor,
                       y: torch.Tensor, config: ModelConfig, lam: float, clip_grad_norm: float = 5.0, *,
                       adversary: str = "flip", flip_generator: torch.Generator | None = None,
                       patch: nn.Module | None = None, patch_weight: float = 0.0, forward: Callable | None = None,
                       autocast: Callable = contextlib.nullcontext) -> dict:
    """One step of the autoencoder E, D, loss (3), on a batch ``x`` with its attributes ``y`` (what
    :meth:`Trainer.autoencoder_step` runs, ``lam`` being lambda_E at the step):

    1. with E and D (``ae``) in train mode, z = E(x) and x_hat = D(z, y);
    2. ``L = ||x_hat - x||^2 + lam * L_adv``, the adversarial term of P's prediction on z against the
       target ``adversary`` (:func:`faderlib.losses.adversarial_loss`; the paper's: the flipped
       attributes 1 - y), with P (``dis``) in eval mode and frozen: its gradient is not even computed;
       not computed at all when ``lam`` is 0. With a ``patch`` discriminator, ``patch_weight`` times
       its "real" loss on x_hat is added;
    3. ``opt_ae`` alone steps (E and D), after its gradients are cleared and their norm clipped.

    ``forward`` calls the autoencoder, (z, x_hat) = forward(x, y) (default: ``ae`` itself); ``autocast``
    gives the precision's context. Returns the two losses as tensors, and ``lam``."""
    ae.train()
    dis.eval()
    dis.requires_grad_(False)
    try:
        with autocast():
            z, x_hat = (ae if forward is None else forward)(x, y)
            rec = reconstruction_loss(x_hat.float(), x)
            adv = (adversarial_loss(dis(z).float(), y, config, flip_generator, adversary) if lam > 0 else
                   rec.new_zeros(()))
            loss = rec + lam * adv
            if patch is not None:
                patch.eval()
                patch.requires_grad_(False)
                loss = loss + patch_weight * patch_loss(patch(x_hat).float(), True)
        opt_ae.zero_grad(set_to_none=True)
        loss.backward()
    finally:
        dis.requires_grad_(True)
        if patch is not None:
            patch.requires_grad_(True)
    nn.utils.clip_grad_norm_(ae.parameters(), clip_grad_norm)
    opt_ae.step()
    return {"rec_loss": rec.detach(), "adv_loss": adv.detach(), "lambda_e": lam}


class Trainer:
    """Trains an autoencoder against a latent discriminator; resumable and observable.

    ``progress``: True (a bar labelled "training"), False, or a :class:`~faderlib.progress.Progress`
    (a label and a line, for runs side by side). ``callbacks``: functions ``(trainer, row)``
    called with every logged row (a live plot, an early stop). ``resume_from``: the checkpoint
    of the run folder to resume from, ``last.pt`` or ``best.pt`` (when last.pt is damaged).
    ``sigterm``: save and stop on SIGTERM (False in a pool's worker, which its owner terminates). The run
    folder is locked while the Trainer lives (:class:`~faderlib.runfolder.RunFolder`): a second
    process on it is refused; :meth:`close` (or dropping the Trainer) frees it.

    >>> trainer = Trainer(TrainConfig(attributes=["Smiling"], steps=200), "runs/try")  # doctest: +SKIP
    >>> trainer.train()                                                                 # doctest: +SKIP
    """

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike, *, progress: bool | Progress = True,
                 callbacks: Sequence[Callable[["Trainer", dict], None]] = (), resume: bool = True,
                 resume_from: str = "last.pt", sigterm: bool = True):
        self.progress, self.callbacks, self.sigterm = Progress.of(progress, "training"), list(callbacks), sigterm
        # where: one process or one of several under torchrun; the device, precision and layout (devices.py)
        self.placement = p = Placement.choose(config.device, config.precision, config.channels_last, config.image_size,
                                              config.fast_convs)
        self.dist, self.device, self.precision, self.channels_last = p.dist, p.device, p.precision, p.channels_last
        self.data = TrainingData(config, p, progress=self.progress.enabled)  # the cache, the splits, the batches
        self.config = config = self.data.config                             # balance="auto" decided on the data
        self.model_config, self.train_set, self.valid_set = config.model_config(), self.data.train, self.data.valid
        self._build_networks()                                              # E, D, P and their optimisers
        # each rank draws its own batches and dropout masks; the flipped values of K-valued
        # attributes have a stream of their own, so that batches can be drawn ahead of the steps
        rank_seed = config.seed + 1000 * self.dist.rank
        torch.manual_seed(rank_seed)
        self.generator = torch.Generator().manual_seed(rank_seed)
        self.flip_generator = torch.Generator().manual_seed(rank_seed + 500)
        self.stream_state = self.generator.get_state()  # the batch stream after the last full iteration
        self.window = LogWindow(self.device)            # the metrics log's running averages, on the device
        self.step, self.best_valid = 0, math.inf
        # the run folder: locked while the Trainer lives, made this run's, resumed from (runfolder.py)
        self.folder = RunFolder(run_dir, config.to_dict(), self.model_config.to_dict(), self.data.root,
                                TrainConfig.RUNTIME_KEYS, self.dist)
        self.run_dir, self.checkpoint_dir = self.folder.path, self.folder.checkpoint_dir
        self.folder.open(self, resume, resume_from)

    # ------------------------------------------------------------------ the two steps
    def discriminator_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """Loss (1): P learns y from z = E(x); E is in eval mode and gets no gradient
        (:func:`discriminator_update`, on this run's networks, optimiser and precision)."""
        return discriminator_update(self.ae, self.dis_ddp, self.opt_dis, x, y, self.model_config,
                                    self.config.clip_grad_norm, forward=self._dis_fwd, autocast=self.placement.autocast)

    def autoencoder_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """Loss (3): reconstruct x from (E(x), y) and fool P (the target ``config.adversary``:
        :func:`faderlib.losses.adversarial_loss`); only E and D are stepped (:func:`autoencoder_update`,
        with lambda_E at this step of the schedule)."""
        lam = lambda_e(self.step, self.config.lambda_e, self.config.lambda_ramp)
        return autoencoder_update(self.ae_ddp, self.dis, self.opt_ae, x, y, self.model_config, lam,
                                  self.config.clip_grad_norm, adversary=self.config.adversary,
                                  flip_generator=self.flip_generator, patch=self.ptc,
                                  patch_weight=self.config.patch_weight, forward=self._ae_fwd,
                                  autocast=self.placement.autocast)

    def patch_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The optional patch discriminator learns real faces x -> 1, their reconstructions -> 0."""
        self.ae.eval()
        self.ptc.train()
        with torch.no_grad(), self.placement.autocast():
            x_hat = self.ae(x, y)[1]
        with self.placement.autocast():
            loss = patch_loss(self.ptc(x).float(), True) + patch_loss(self.ptc(x_hat).float(), False)
        self.opt_ptc.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.ptc.parameters(), self.config.clip_grad_norm)
        self.opt_ptc.step()

    # ------------------------------------------------------------------ the loop
    def train(self, steps: int | None = None) -> list[dict]:
        """Train up to ``steps`` iterations in all (default: the configured number).

        Writes a checkpoint every ``checkpoint_every`` steps and at the end. Nothing inside a
        step waits for the device: losses accumulate where they are computed and are read at
        each log row; a non-finite loss is looked for then and before every validation and
        checkpoint, and stops training with a :class:`TrainingError` naming its step, before
        anything is written from the bad state (the last good checkpoint is kept). Returns the
        rows logged by this call (none, and a word, when the run is already at ``steps``). SIGTERM
        saves ``last.pt`` at the next step boundary and raises :class:`~faderlib.errors.TrainingStopped`
        (:class:`~faderlib.runfolder.StopRequest`).
        """
        total = self.config.steps if steps is None else steps
        logged: list[dict] = []
        if self.step >= total:
            if self.progress.enabled and self.dist.main:
                print(f"nothing to train: the run is already at step {self.step} (>= steps {total})")
            return logged
        bar = self.progress.bar(total, unit="step", initial=self.step, enabled=self.dist.main)
        feed = self.data.feed(self.generator)
        self.window.start_clock()
        self.stop_request = StopRequest(self.dist, self.device)
        if self.sigterm:
            self.stop_request.install()
        try:
            while self.step < total:
                self._set_lr()
                d = self._discriminator_steps(feed)  # dis_steps batches; the last one is returned
                if self.ptc is not None:
                    self.patch_step(d["x"], d["y"])
                batch = feed.next()
                a = self.autoencoder_step(batch.x, batch.y)
                self.stream_state = batch.rng_state
                self.window.add(self.step + 1, [d["dis_loss"], d["dis_accuracy"], a["rec_loss"], a["adv_loss"]],
                                a["lambda_e"], images=2 * batch.x.shape[0])
                self.step += 1
                if self.step % self.config.log_every == 0 or self.step == total:
                    self._check_finite()
                    row = self.window.row(self.step, self.dist.world)  # the one read of the device per row
                    self._log(row, logged)
                    bar.set_postfix(rec=f"{row['rec_loss']:.4f}", dis=f"{row['dis_loss']:.3f}",
                                    acc=f"{row['dis_accuracy']:.2f}", lam=f"{row['lambda_e']:.1e}", refresh=False)
                if self.step % self.config.eval_every == 0 or self.step == total:
                    self._check_finite()
                    self._log(self.validate(), logged)
                if self.step % self.config.checkpoint_every == 0 or self.step == total:
                    self._check_finite()
                    self.save_checkpoint("last.pt")
                bar.update(1)
                if self.stop_request.asked(self.step, self.config.log_every):
                    self._stop(total)
        finally:
            self.stop_request.remove()
            feed.close()
            self.generator.set_state(self.stream_state)  # where the last full iteration left the stream
            bar.close()
        return logged

    def _discriminator_steps(self, feed) -> dict:
        """``dis_steps`` discriminator steps (the reference code's ``n_lat_dis``), each on a fresh batch
        of ``feed``. Returns their loss and accuracy averaged over these steps, and the last batch
        (``x``, ``y``), which the optional patch discriminator also learns from."""
        results = []
        for _ in range(self.config.dis_steps):
            batch = feed.next()
            results.append(self.discriminator_step(batch.x, batch.y))
        mean = {k: torch.stack([r[k] for r in results]).mean() for k in ("dis_loss", "dis_accuracy")}
        return {**mean, "x": batch.x, "y": batch.y}

    def _stop(self, total: int) -> None:
        """Save ``last.pt`` at this step boundary (unless it was just saved) and raise TrainingStopped."""
        self._check_finite()
        last = self.checkpoint_dir / "last.pt"
        if not (self.step % self.config.checkpoint_every == 0 or self.step == total):
            self.save_checkpoint("last.pt")
        name = self.stop_request.signal or "SIGTERM"  # another rank's signal
        message = (f"stopped by {name} at step {self.step}; checkpoint saved to {last}; "
                   "rerun the same command to resume")
        raise TrainingStopped(message, name, self.step, last)

    def _set_lr(self) -> None:
        """Every optimiser at the schedule's rate for this step (:func:`faderlib.losses.learning_rate`),
        the latent discriminator's times ``dis_lr_scale``."""
        lr = learning_rate(self.step, self.config.lr, self.config.steps, self.config.lr_decay)
        for opt, scale in ((self.opt_ae, 1.0), (self.opt_dis, self.config.dis_lr_scale), (self.opt_ptc, 1.0)):
            for group in (opt.param_groups if opt is not None else ()):
                group["lr"] = lr * scale

    def _check_finite(self) -> None:
        """Stop if a loss of the steps since the last check was not finite (on any rank)."""
        found = self.window.first_bad()
        if self.dist.any(found is not None, self.device):
            raise TrainingError(
                f"{LogWindow.describe_bad(found, self.step)}; training stopped. The last good checkpoint "
                f"({self.checkpoint_dir / 'last.pt'}, step {self.folder.last_saved_step()}) is kept. "
                "Try a smaller learning rate or lambda_E.")

    def _log(self, row: dict, logged: list[dict]) -> None:
        logged.append(row)
        if self.dist.main:
            self.folder.log(row)
            for cb in self.callbacks:
                cb(self, row)

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict:
        """Reconstruction MSE and the discriminator's accuracy on a fixed slice of the
        validation split, and the in-training latent probe (:meth:`probe`, ``probe/<name>``);
        saves ``best.pt`` when the reconstruction improves and a sample grid."""
        self.ae.eval()
        self.dis.eval()
        n = min(self.config.eval_images, len(self.valid_set))
        rec_sum, correct, count = 0.0, None, 0
        for start in range(0, n, 64):
            idx = torch.arange(start, min(start + 64, n))
            x, y = self.valid_set.batch(idx)
            x, y = place(x, self.device, self.channels_last), y.to(self.device)
            with self.placement.autocast():
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
        row.update(self.probe())
        if self.dist.broadcast(row["rec_loss"] < self.best_valid):  # rank 0's decision: BatchNorm differs a little
            self.best_valid = row["rec_loss"]
            self.save_checkpoint("best.pt")
        if self.dist.main:  # the same 8 validation faces at every validation, their attributes swapped
            x, y = self.valid_set.batch(torch.arange(min(8, len(self.valid_set))))
            self.folder.save_sample(edit_grid(self.ae, x.to(self.device), y.to(self.device)), self.step)
        return row

    @torch.no_grad()
    def probe(self) -> dict:
        """The latent probe seen while training: a fresh logistic regression per attribute
        (:func:`faderlib.evaluate.probe_scores`, :data:`PROBE_STEPS` full-batch steps) fitted on the
        frozen z of the first two thirds of the first ``probe_images`` validation images, scored on
        the last third: ``{"probe/<name>": balanced accuracy}`` (0.5 for a binary attribute that z
        does not carry, however well the encoder fools its own discriminator). The same images at
        every validation; no random number is drawn, so training goes on as without it. Empty when
        ``probe_images`` is 0 (or the validation split too small)."""
        n = min(self.config.probe_images, len(self.valid_set))
        fit = 2 * n // 3
        if fit < 1 or n - fit < 1:
            return {}
        self.ae.eval()
        z, y = encode_split(self.ae, self.valid_set, n, batch_size=128, device=self.device)
        scores = probe_scores(z[:fit], y[:fit], z[fit:], y[fit:], self.model_config, PROBE_STEPS)
        return {f"probe/{name}": s["balanced_accuracy"] for name, s in scores.items()}

    # ------------------------------------------------------------------ the networks
    def _build_networks(self) -> None:
        """E and D (the autoencoder), P, the optional patch discriminator on images (patch_weight > 0:
        real faces against reconstructions) and their Adam optimisers, with the same initial weights
        on every rank; and what the two steps call: the same networks, compiled if asked."""
        config, put = self.config, self.placement.put
        torch.manual_seed(config.seed)
        self.ae, self.dis = put(AutoEncoder(self.model_config)), put(LatentDiscriminator(self.model_config))
        self.ptc = put(PatchDiscriminator(self.model_config)) if config.patch_weight > 0 else None
        def adam(net: nn.Module) -> torch.optim.Adam:  # fused where the device has the kernel (devices.py)
            return self.placement.adam(net.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))

        self.opt_ae, self.opt_dis = adam(self.ae), adam(self.dis)
        self.opt_ptc = adam(self.ptc) if self.ptc is not None else None
        self.ae_ddp, self._ae_fwd = self.placement.wrap(self.ae, config.compile)
        self.dis_ddp, self._dis_fwd = self.placement.wrap(self.dis, config.compile)

    # ------------------------------------------------------------------ the run folder
    def save_checkpoint(self, name: str = "last.pt") -> Path | None:
        """Save everything a resumed run restores as ``checkpoints/<name>`` (:meth:`RunFolder.save_checkpoint`)."""
        return self.folder.save_checkpoint(self, name)

    def close(self) -> None:
        """Free the run folder, and end a run of several processes cleanly: wait for every rank,
        release the DDP wrappers, then the process group (:meth:`faderlib.devices.Dist.close`)."""
        if self.dist.group:
            self.dist.barrier()
            self.ae_ddp, self.dis_ddp = self.ae, self.dis
            self.dist.close()
        self.folder.close()
