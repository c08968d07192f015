"""Turning tensors into pictures: image conversion and the sample grids of training runs."""

from __future__ import annotations

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


@torch.no_grad()
def edit_grid(ae: AutoEncoder, x: torch.Tensor, y: torch.Tensor) -> Image.Image:
    """One row per image: original, reconstruction, then the image with each attribute
    flipped in turn (binary: 1 - y; categorical: the next value)."""
    was_training = ae.training
    ae.eval()
    z = ae.encode(x)
    columns = [x, ae.decode(z, y)]
    for j, attr in enumerate(ae.config.attributes):
        y2 = y.clone()
        y2[:, j] = (y2[:, j] + 1) % attr.n_values
        columns.append(ae.decode(z, y2))
    ae.train(was_training)
    return tile([[c[i] for c in columns] for i in range(x.shape[0])])


def _label_strip(labels: list[str], cell: int, pad: int, height: int = 14) -> Image.Image:
    from PIL import ImageDraw

    strip = Image.new("RGB", (len(labels) * (cell + pad) + pad, height), "white")
    draw = ImageDraw.Draw(strip)
    for j, text in enumerate(labels):
        left = pad + j * (cell + pad)
        w = draw.textlength(text)
        draw.text((left + (cell - w) / 2, 1), text, fill="black")
    return strip


@torch.no_grad()
def interpolation_grid(ae: AutoEncoder, x: torch.Tensor, y: torch.Tensor, attribute: str,
                       alphas=(-0.5, 0.0, 0.5, 1.0, 1.5), pad: int = 2) -> Image.Image:
    """For one binary attribute: one row per image with the original, the reconstruction,
    then the attribute swept over ``alphas`` (the decoder gets ``[1 - alpha, alpha]``,
    so values beyond [0, 1] exaggerate it). The top strip labels the columns."""
    names = ae.config.attribute_names
    if attribute not in names:
        raise ValueError(f"this model has no attribute {attribute!r}; it knows {names}")
    j = names.index(attribute)
    if not ae.config.attributes[j].is_binary:
        raise ValueError(f"{attribute!r} is categorical; sweeps are for binary attributes")
    was_training = ae.training
    ae.eval()
    z = ae.encode(x)
    base = y.float()
    columns = [x, ae.decode(z, y)]
    for a in alphas:
        v = base.clone()
        v[:, j] = a
        columns.append(ae.decode(z, v))
    ae.train(was_training)
    body = tile([[c[i] for c in columns] for i in range(x.shape[0])], pad=pad)
    labels = ["original", "reconstr."] + [f"{attribute[:10]}={a:g}" for a in alphas]
    strip = _label_strip(labels, x.shape[-1], pad)
    out = Image.new("RGB", (body.width, body.height + strip.height), "white")
    out.paste(strip, (0, 0))
    out.paste(body, (0, strip.height))
    return out
