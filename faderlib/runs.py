"""Loading a trained run for evaluation, grids, edits and sliders."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint as ckpt
from .config import ModelConfig
from .models import AutoEncoder, LatentDiscriminator


@dataclass
class Run:
    """A trained Fader network, ready to encode and decode (eval mode)."""

    run_dir: Path
    model_config: ModelConfig
    train_config: dict
    data_dir: str
    step: int
    autoencoder: AutoEncoder
    discriminator: LatentDiscriminator | None = None


def load_run(run_dir: str | os.PathLike, checkpoint: str = "last.pt", device: str | torch.device = "cpu",
             with_discriminator: bool = False) -> Run:
    """Load ``RUN_DIR/checkpoints/<checkpoint>`` (``last.pt`` or ``best.pt``) in eval mode."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(
            f"{run_dir} is not a training run (no config.json); train one with "
            f"`fader train --out {run_dir}` or open runs/demo after `make demo`"
        )
    record = json.loads(cfg_path.read_text())
    state = ckpt.load(run_dir / "checkpoints" / checkpoint, map_location=device)
    config = ModelConfig.from_dict(state["model_config"])
    ae = AutoEncoder(config).to(device)
    ae.load_state_dict(state["autoencoder"])
    dis = None
    if with_discriminator:
        dis = LatentDiscriminator(config).to(device)
        dis.load_state_dict(state["latent_discriminator"])
        dis.eval()
    return Run(run_dir, config, state["train_config"], record["data_root"], int(state["step"]), ae.eval(), dis)
