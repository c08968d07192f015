"""Training a Fader Network (paper section 3.3; REFERENCE.md section 2).

Each iteration takes one latent-discriminator step, then one autoencoder step, each on its
own random batch (drawn with replacement, as the reference code did):

1. discriminator step, equation (1): z = E(x) is computed without gradient (encoder in
   eval mode); P learns to predict the TRUE attributes y from z;
2. autoencoder step, equation (3): ``||D(E(x), y) - x||^2 + lambda_E * CE(P(E(x)), 1 - y)``;
   only E and D are stepped: the encoder learns to make P predict the flipped attributes,
   i.e. to leave no trace of y in z.

The same :class:`Trainer` runs from ``fader train``, from a notebook and under ``torchrun``.
A run directory holds ``config.json``, ``metrics.jsonl``, ``checkpoints/last.pt`` (always
the latest), ``checkpoints/best.pt`` (best validation reconstruction) and ``samples/``.
Rerunning the same command on a run directory resumes it exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed
from torch import nn

from . import checkpoint as ckpt
from .config import ModelConfig, from_settings, jsonable, parse_attributes
from .losses import adversarial_loss, correct_counts, discriminator_loss, lambda_e, reconstruction_loss
from .models import AutoEncoder, LatentDiscriminator

FORMAT_VERSION = 1


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a run directory of another configuration)."""


@dataclass
class TrainConfig:
    """Every setting of a training run. Defaults are the paper's (REFERENCE.md section 2),
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
    flip: bool = True                    # random horizontal flips
    balance: str | None = None           # attribute whose classes are drawn equally often
    seed: int = 0
    checkpoint_every: int = 1000
    eval_every: int = 500
    eval_images: int = 256
    log_every: int = 25
    device: str = "auto"                 # "auto", "cpu", "cuda", "cuda:1", "mps"
    bf16: bool = False                   # bf16 autocast, CUDA only
    channels_last: str | bool = "auto"   # "auto": the layout measured faster (see `make bench`)

    #: Settings that may change when a run is resumed: they do not change the weights.
    RUNTIME_KEYS = ("steps", "checkpoint_every", "eval_every", "eval_images", "log_every", "device",
                    "bf16", "channels_last")

    def __post_init__(self):
        self.attributes = tuple(a.spec for a in parse_attributes(self.attributes))
        for name in ("steps", "batch_size", "checkpoint_every", "eval_every", "log_every", "eval_images"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < (0 if name == "steps" else 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.lambda_e < 0 or self.lambda_ramp < 0:
            raise ValueError(f"lambda_e and lambda_ramp must be >= 0, got {self.lambda_e}, {self.lambda_ramp}")

    def model_config(self) -> ModelConfig:
        return ModelConfig.from_preset(self.preset, self.image_size, list(self.attributes), **self.model)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return from_settings(cls, d, "training")


# ----------------------------------------------------------------------------- devices
def pick_device(name: str = "auto") -> torch.device:
    """CUDA if present, else Apple MPS, else CPU; or the device named."""
    if name != "auto":
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but PyTorch sees no CUDA GPU here; use --device cpu or auto")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device {name!r} asked for, but Apple MPS is not available; use --device cpu or auto")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def use_channels_last(setting: str | bool, device: torch.device) -> bool:
    """Channels-last memory layout. ``"auto"``: on for CUDA and CPU, off elsewhere (MPS).

    On CPU the faster layout was measured, not assumed (``make bench``, 2 cores, torch 2.14,
    the Trainer at the ``official`` preset): channels-last ran 327 / 82 / 15.2 images/s at
    64 / 128 / 256 px against 315 / 75 / 13.7 for NCHW, and an earlier run agreed at every
    size. (A 3x slowdown at 128 px had been reported on an older set-up; if ``make bench``
    shows it on your machine, pass ``channels_last=False`` / ``--channels-last off``.)
    """
    if isinstance(setting, bool):
        return setting
    if setting != "auto":
        raise ValueError(f"channels_last must be true, false or 'auto', got {setting!r}")
    return device.type in ("cuda", "cpu")


# ----------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str) -> tuple[_Dist, str]:
    """Join the process group torchrun set up (NCCL on GPUs, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), device_name
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local)
        device_name = f"cuda:{local}"
    elif device_name == "auto":
        device_name = "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(rank, world), device_name


# ----------------------------------------------------------------------------- the trainer
class Trainer:
    """Trains an autoencoder against a latent discriminator; resumable and observable.

    >>> trainer = Trainer(TrainConfig(attributes=["Smiling"], steps=200), "runs/try")  # doctest: +SKIP
    >>> trainer.train()                                                                 # doctest: +SKIP
    """

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike, *, progress: bool = True,
                 callbacks: Sequence[Callable[["Trainer", dict], None]] = (), resume: bool = True,
                 progress_label: str = "training", progress_line: int | None = None):
        from .cache import prepared
        from .data import FaderDataset, balanced_weights

        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.progress_label, self.progress_line = progress_label, progress_line  # tqdm's desc and position
        self.callbacks = list(callbacks)
        self.dist, device_name = _init_distributed(config.device)
        self.device = pick_device(device_name)
        self.model_config = config.model_config()
        if config.bf16 and self.device.type != "cuda":
            warnings.warn(f"bf16 autocast is for CUDA GPUs; training in float32 on {self.device}")
        self.bf16 = config.bf16 and self.device.type == "cuda"
        self.channels_last = use_channels_last(config.channels_last, self.device)

        # data: one memory-mapped cache, read batch by batch
        if self.dist.world > 1 and not self.dist.main:
            torch.distributed.barrier()  # rank 0 builds the cache first; the others then reuse it
        data = prepared(config.data_dir, config.image_size, progress=progress and self.dist.main)
        if self.dist.world > 1 and self.dist.main:
            torch.distributed.barrier()
        self.data_root = str(data.root)
        self.train_set = FaderDataset(data, "train", self.model_config.attribute_names, flip=config.flip)
        self.valid_set = FaderDataset(data, "valid", self.model_config.attribute_names, flip=False)
        # class-balanced draws (config.balance) for both steps. Tried: the discriminator on natural
        # draws. Its prior then says "no glasses", the flipped target of the adversarial loss can no
        # longer be met by an attribute-blind z, and the encoder learns to write anti-glasses into z:
        # 4 dB worse reconstruction at 3,000 demo steps.
        self.weights = balanced_weights(self.train_set, config.balance) if config.balance else None

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
        self.ae_ddp, self.dis_ddp = self.ae, self.dis
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ae_ddp, self.dis_ddp = DDP(self.ae, device_ids=ids), DDP(self.dis, device_ids=ids)
        # each rank draws its own batches and dropout masks
        torch.manual_seed(config.seed + 1000 * self.dist.rank)
        self.generator = torch.Generator().manual_seed(config.seed + 1000 * self.dist.rank)

        self.step = 0
        self.best_valid = math.inf
        self._prepare_run_dir(resume)

    def close(self) -> None:
        """End a run of several processes cleanly: wait for every rank, release the DDP
        wrappers, then the process group. (Left to the interpreter's exit, gloo's threads were
        seen to abort a rank now and then, after all the work was done.) Nothing to do alone."""
        import gc

        import torch.distributed as dist

        if self.dist.world <= 1 or not dist.is_initialized():
            return
        dist.barrier()
        self.ae_ddp, self.dis_ddp = self.ae, self.dis
        gc.collect()
        dist.destroy_process_group()

    # ------------------------------------------------------------------ run directory
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def _config_record(self) -> dict:
        return {"format_version": FORMAT_VERSION, "train": self.config.to_dict(),
                "model": self.model_config.to_dict(), "data_root": self.data_root}

    def _prepare_run_dir(self, resume: bool) -> None:
        # Rank 0 alone inspects and writes the folder, then tells the others what it decided:
        # a rank checking while rank 0 is half-way through creating it would see a foreign folder.
        error = None
        if self.dist.main:
            try:
                self._claim_run_dir(resume)
            except TrainingError as exc:
                error = str(exc)
        if self.dist.world > 1:
            import torch.distributed as dist

            message = [error]
            dist.broadcast_object_list(message, src=0)
            error = message[0]
        if error is not None:
            raise TrainingError(error)
        last = self.checkpoint_dir / "last.pt"
        if resume and last.exists():
            self.load_checkpoint(last)
        elif self.dist.main:
            _truncate_metrics(self.run_dir / "metrics.jsonl", 0)  # killed before its first checkpoint

    def _claim_run_dir(self, resume: bool) -> None:
        """Refuse a folder holding something else; otherwise create it and write config.json."""
        cfg_path = self.run_dir / "config.json"
        last = self.checkpoint_dir / "last.pt"
        if cfg_path.exists():
            old = json.loads(cfg_path.read_text())
            diffs = _config_differences(old.get("train", {}), jsonable(self.config.to_dict()))
            if old.get("model") != self.model_config.to_dict():
                diffs.append("model")
            if diffs:
                raise TrainingError(
                    f"{self.run_dir} holds a run of another configuration (differs in: {', '.join(diffs)}). "
                    "Nothing was changed. Use a new --out folder, or rerun with the settings of "
                    f"{cfg_path} to resume it."
                )
            if not resume and last.exists():
                raise TrainingError(f"{self.run_dir} already holds a run; resume it or choose a new folder")
        elif self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise TrainingError(
                f"{self.run_dir} is not empty and holds no faderlib run (no config.json); "
                "choose a new or empty --out folder, nothing was changed"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "samples").mkdir(exist_ok=True)
        _atomic_write_text(cfg_path, json.dumps(self._config_record(), indent=2))

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore model, optimisers, schedule position, data order and every RNG state."""
        state = ckpt.load(path, map_location=self.device)
        self.ae.load_state_dict(state["autoencoder"])
        self.dis.load_state_dict(state["latent_discriminator"])
        self.opt_ae.load_state_dict(state["opt_autoencoder"])
        self.opt_dis.load_state_dict(state["opt_latent_discriminator"])
        self.step = int(state["step"])
        self.best_valid = float(state["best_valid"])
        ckpt.set_rng_state(state["rng"][self.dist.rank], self.generator)
        if self.dist.main:
            _truncate_metrics(self.run_dir / "metrics.jsonl", self.step)

    def save_checkpoint(self, name: str = "last.pt") -> Path | None:
        states = [ckpt.rng_state(self.generator)]
        if self.dist.world > 1:
            import torch.distributed as dist

            states = [None] * self.dist.world
            dist.all_gather_object(states, ckpt.rng_state(self.generator))
        if not self.dist.main:
            return None
        state = {
            "format_version": FORMAT_VERSION,
            "step": self.step,
            "best_valid": self.best_valid,
            "model_config": self.model_config.to_dict(),
            "train_config": self.config.to_dict(),
            "autoencoder": self.ae.state_dict(),
            "latent_discriminator": self.dis.state_dict(),
            "opt_autoencoder": self.opt_ae.state_dict(),
            "opt_latent_discriminator": self.opt_dis.state_dict(),
            "rng": [{k: (v.cpu() if torch.is_tensor(v) else [t.cpu() for t in v]) for k, v in s.items()}
                    for s in states],
        }
        return ckpt.atomic_save(state, self.checkpoint_dir / name)

    # ------------------------------------------------------------------ batches
    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch, with replacement, from our generator (so a resumed run draws the same)."""
        x, y = self.train_set.sample(self.config.batch_size, self.generator, self.weights)
        return self._to_device(x), y.to(self.device)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16)

    # ------------------------------------------------------------------ the two steps
    def discriminator_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """Equation (1): P learns y from z = E(x); E is in eval mode and gets no gradient."""
        self.ae.eval()
        self.dis_ddp.train()
        with torch.no_grad(), self._autocast():
            z = self.ae.encode(x)
        with self._autocast():
            logits = self.dis_ddp(z)
            loss = discriminator_loss(logits.float(), y, self.model_config)
        self.opt_dis.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.dis.parameters(), self.config.clip_grad_norm)
        self.opt_dis.step()
        return {"dis_loss": loss.detach(), "dis_accuracy": _accuracy(logits.detach(), y, self.model_config)}

    def autoencoder_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """Equation (3): reconstruct x from (E(x), y) and fool P; only E and D are stepped."""
        lam = lambda_e(self.step, self.config.lambda_e, self.config.lambda_ramp)
        self.ae_ddp.train()
        self.dis.eval()
        self.dis.requires_grad_(False)
        try:
            with self._autocast():
                z, x_hat = self.ae_ddp(x, y)
                rec = reconstruction_loss(x_hat.float(), x)
                adv = adversarial_loss(self.dis(z).float(), y, self.model_config, self.generator) if lam > 0 \
                    else rec.new_zeros(())
                loss = rec + lam * adv
            self.opt_ae.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            self.dis.requires_grad_(True)
        nn.utils.clip_grad_norm_(self.ae.parameters(), self.config.clip_grad_norm)
        self.opt_ae.step()
        return {"rec_loss": rec.detach(), "adv_loss": adv.detach(), "lambda_e": lam}

    # ------------------------------------------------------------------ the loop
    def train(self, steps: int | None = None) -> list[dict]:
        """Train up to ``steps`` iterations in all (default: the configured number).

        Writes a checkpoint every ``checkpoint_every`` steps and at the end; stops with a
        :class:`TrainingError` naming the step at the first non-finite loss, keeping the
        last good checkpoint. Returns the rows logged by this call.
        """
        from tqdm.auto import tqdm

        total = self.config.steps if steps is None else steps
        logged: list[dict] = []
        window: dict[str, list[float]] = {}
        bar = tqdm(total=total, initial=self.step, desc=self.progress_label, unit="step", dynamic_ncols=True,
                   position=self.progress_line, disable=not (self.progress and self.dist.main))
        t0, images = time.perf_counter(), 0
        try:
            while self.step < total:
                x, y = self._draw()
                d = self.discriminator_step(x, y)
                x, y = self._draw()
                a = self.autoencoder_step(x, y)
                self._check_finite({**d, **a})
                self.step += 1
                images += 2 * x.shape[0]
                for k, v in {**d, **a}.items():
                    window.setdefault(k, []).append(float(v))
                if self.step % self.config.log_every == 0 or self.step == total:
                    elapsed = time.perf_counter() - t0
                    row = {"phase": "train", "step": self.step,
                           **{k: sum(v) / len(v) for k, v in window.items()},
                           "images_per_s": images * self.dist.world / max(elapsed, 1e-9)}
                    window, images, t0 = {}, 0, time.perf_counter()
                    self._log(row, logged)
                    bar.set_postfix(rec=f"{row['rec_loss']:.4f}", dis=f"{row['dis_loss']:.3f}",
                                    acc=f"{row['dis_accuracy']:.2f}", lam=f"{row['lambda_e']:.1e}")
                if self.step % self.config.eval_every == 0 or self.step == total:
                    self._log(self.validate(), logged)
                if self.step % self.config.checkpoint_every == 0 or self.step == total:
                    self.save_checkpoint("last.pt")
                bar.update(1)
        finally:
            bar.close()
        return logged

    def _check_finite(self, values: dict) -> None:
        bad = {k: float(v) for k, v in values.items() if k.endswith("loss") and not math.isfinite(float(v))}
        flag = torch.tensor([1.0 if bad else 0.0], device=self.device)
        if self.dist.world > 1:
            import torch.distributed as dist

            dist.all_reduce(flag)
        if flag.item() > 0:
            what = ", ".join(f"{k} = {v}" for k, v in bad.items()) or "a loss on another rank"
            raise TrainingError(
                f"step {self.step + 1}: {what} is not finite; training stopped. The last good checkpoint "
                f"({self.checkpoint_dir / 'last.pt'}, step {self._last_saved_step()}) is kept. "
                "Try a smaller learning rate or lambda_E."
            )

    def _last_saved_step(self) -> int:
        path = self.checkpoint_dir / "last.pt"
        return int(ckpt.load(path)["step"]) if path.exists() else 0

    def _log(self, row: dict, logged: list[dict]) -> None:
        logged.append(row)
        if not self.dist.main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
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
            x, y = self._to_device(x), y.to(self.device)
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
        if self._agreed(row["rec_loss"] < self.best_valid):
            self.best_valid = row["rec_loss"]
            self.save_checkpoint("best.pt")
        if self.dist.main:
            self._save_samples()
        return row

    def _agreed(self, decision: bool) -> bool:
        """Rank 0's decision, on every rank (their BatchNorm statistics differ slightly)."""
        if self.dist.world == 1:
            return decision
        import torch.distributed as dist

        flag = torch.tensor([float(decision)], device=self.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def _save_samples(self, n: int = 8) -> None:
        from .visual import edit_grid

        x, y = self.valid_set.batch(torch.arange(min(n, len(self.valid_set))))
        grid = edit_grid(self.ae, x.to(self.device), y.to(self.device))
        grid.save(self.run_dir / "samples" / f"step_{self.step:07d}.png")


# ----------------------------------------------------------------------------- helpers
def _accuracy(logits: torch.Tensor, y: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Mean over attributes of the share of right predictions in a batch."""
    return correct_counts(logits, y, config).mean() / y.shape[0]


def _config_differences(old: dict, new: dict) -> list[str]:
    keys = (set(old) | set(new)) - set(TrainConfig.RUNTIME_KEYS)
    return sorted(k for k in keys if old.get(k) != new.get(k))


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop the log rows written after the checkpoint: those steps run again."""
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [r for r in rows if json.loads(r)["step"] <= step]
    if len(kept) != len(rows):
        _atomic_write_text(path, "".join(r + "\n" for r in kept))


def read_metrics(run_dir: str | os.PathLike):
    """The metrics log of a run as a pandas DataFrame (one row per logged step and phase)."""
    import pandas as pd

    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no metrics log at {path}; has this run been trained?")
    return pd.read_json(path, lines=True)
