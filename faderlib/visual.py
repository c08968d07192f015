"""Pictures of images: grids with white gutters and labels, and the sample grid of a run.

:func:`tile` lays out every grid of the kit (samples of the data set, training samples,
interpolation grids); :func:`write` puts a label in a box of a grid. Cells are the images'
own pixels, enlarged by repeating pixels (never smoothed: what the network drew is what is
shown). Matplotlib figures are in :mod:`faderlib.plots`; interpolation grids in
:mod:`faderlib.interpolate`.
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .images import to_uint8
from .models import AutoEncoder, toggle_attribute


def pixels(image: torch.Tensor | np.ndarray, scale: int = 1) -> np.ndarray:
    """One image as (H * scale, W * scale, 3) uint8: a tensor (3, H, W) in [-1, 1] or a uint8
    array (3, H, W) as the cache stores it; enlarged by pixel repetition."""
    a = np.asarray(image).transpose(1, 2, 0) if isinstance(image, np.ndarray) else to_uint8(image)
    return a.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else a


def tile(rows: Sequence[Sequence[torch.Tensor | np.ndarray]], pad: int = 2, fill: int = 255, *, scale: int = 1,
         cols: int | None = None, top: int = 0, left: int = 0) -> Image.Image:
    """A grid of equally sized images, one list per row, with ``pad`` pixels of gutter.

    Each image is a tensor (3, H, W) in [-1, 1] or a uint8 array (3, H, W), enlarged ``scale``
    times. ``cols``: columns of the canvas (default: the longest row); ``top`` and ``left``:
    blank margins above and to the left of the cells, for labels (:func:`write`).
    Size: ``left + cols * (cell + pad) + pad`` by ``top + len(rows) * (cell + pad) + pad``.
    """
    first = pixels(rows[0][0], scale)
    h, w = first.shape[:2]
    n_cols = cols if cols is not None else max(len(r) for r in rows)
    canvas = np.full((top + len(rows) * (h + pad) + pad, left + n_cols * (w + pad) + pad, 3), fill, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            y0, x0 = top + pad + i * (h + pad), left + pad + j * (w + pad)
            canvas[y0:y0 + h, x0:x0 + w] = pixels(image, scale)
    return Image.fromarray(canvas)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int):
    """A font small enough for ``text`` to fit ``width`` (down to 7 px), else the text cut short."""
    for size in (11, 10, 9, 8, 7):
        font = ImageFont.load_default(size=size)
        if draw.textlength(text, font=font) <= width - 2:
            return text, font
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width - 2:
        text = text[:-1]
    return text + "…", font


def write(image: Image.Image, text: str, box: tuple[int, int, int, int]) -> None:
    """Write ``text`` in black, centred in ``box`` (left, top, right, bottom) of ``image``,
    in the largest font that fits (down to 7 px), else cut short with an ellipsis."""
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    text, font = _fit(draw, text, x1 - x0)
    w = draw.textlength(text, font=font)
    draw.text(((x0 + x1 - w) / 2, (y0 + y1) / 2), text, fill="black", font=font, anchor="lm")


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
    changed in turn (:func:`~faderlib.models.toggle_attribute`: binary 1 - y, categorical the next value)."""
    with evaluating(ae):
        z = ae.encode(x)
        columns = [x, ae.decode(z, y)]
        columns += [ae.decode(z, toggle_attribute(y, j, ae.config)) for j in range(len(ae.config.attributes))]
    return tile([[c[i] for c in columns] for i in range(x.shape[0])])
