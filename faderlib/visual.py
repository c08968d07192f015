"""Turning tensors into pictures: image conversion and the sample grids of training runs.

Interpolation grids (attributes swept beyond [0, 1]) are in :mod:`faderlib.interpolate`.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from PIL import Image

from .data import to_uint8
from .models import AutoEncoder


def to_pil(x: torch.Tensor) -> Image.Image:
    """One image in [-1, 1], shape (3, H, W), as a PIL image."""
    return Image.fromarray(to_uint8(x))


def tile(rows: list[list[torch.Tensor]], pad: int = 2, fill: int = 255) -> Image.Image:
    """A grid of equally sized images (each (3, H, W) in [-1, 1]) with white gutters."""
    h, w = rows[0][0].shape[-2:]
    n_cols = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad, 3), fill, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            canvas[top:top + h, left:left + w] = to_uint8(img)
    return Image.fromarray(canvas)


@contextlib.contextmanager
def evaluating(ae: AutoEncoder):
    """Eval mode (BatchNorm statistics, no dropout) for the block, restored after; yields the device."""
    was_training = ae.training
    ae.eval()
    try:
        yield next(ae.parameters()).device
    finally:
        ae.train(was_training)


@torch.no_grad()
def edit_grid(ae: AutoEncoder, x: torch.Tensor, y: torch.Tensor) -> Image.Image:
    """One row per image: original, reconstruction, then the image with each attribute
    flipped in turn (binary: 1 - y; categorical: the next value)."""
    with evaluating(ae):
        z = ae.encode(x)
        columns = [x, ae.decode(z, y)]
        for j, attr in enumerate(ae.config.attributes):
            y2 = y.clone()
            y2[:, j] = (y2[:, j] + 1) % attr.n_values
            columns.append(ae.decode(z, y2))
    return tile([[c[i] for c in columns] for i in range(x.shape[0])])
