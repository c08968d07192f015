"""Interpolation grids: one attribute swept beyond [0, 1] (REFERENCE.md section 4).

z = E(x) is computed once per image; the decoder then gets, for each alpha, the code
``[1 - alpha, alpha]`` for the swept attribute and the image's true values for the
others: ``D(z, y_alpha)``. alpha = 0 removes the attribute, 1 adds it, and values beyond
exaggerate it (the reference used alpha up to 2 for glasses and gender, 10 for age).

* :func:`interpolation_grid`: one row per image, original, reconstruction, then the sweep;
* :func:`interpolation_grid_2d`: one image, two attributes swept on the two axes.

Both return a PIL image (shown inline by Jupyter) with the alphas written above the
columns (and beside the rows). Images come from the run's test split unless given.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .data import to_uint8
from .edit import check_changes, code_for
from .models import AutoEncoder
from .visual import evaluating

#: The default sweep: below 0, the two training values, between, and beyond 1.
DEFAULT_ALPHAS = (-1.0, 0.0, 0.5, 1.0, 2.0)

#: Height of one line of labels, in pixels.
LINE = 14

#: Cells smaller than this are enlarged (nearest neighbour) so that their labels fit.
MIN_CELL = 64


def reference_alphas(alpha_min: float = 1.0, alpha_max: float = 2.0, n: int = 10) -> list[float]:
    """The reference's sweep ``linspace(1 - alpha_min, alpha_max, n)`` (alpha_min=2 starts at -1)."""
    return [float(a) for a in np.linspace(1 - alpha_min, alpha_max, n)]


def parse_alphas(text: str) -> list[float]:
    """``"-1,0,0.5,1,2"`` -> ``[-1.0, 0.0, 0.5, 1.0, 2.0]`` (the CLI's ``--alphas``)."""
    try:
        alphas = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--alphas {text!r}: expected comma-separated numbers, e.g. -1,0,0.5,1,2") from None
    if not alphas:
        raise ValueError("--alphas: give at least one value, e.g. -1,0,0.5,1,2")
    return alphas


def split_images(run, n: int = 6, start: int = 0, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``start..start+n-1`` of a split of the run's data set (no flips):
    x (n, 3, S, S) in [-1, 1], y (n, n_attr) class indices."""
    from .cache import prepared
    from .data import FaderDataset

    config = run.model_config
    try:
        data = prepared(run.data_dir, config.image_size, progress=False)
    except Exception as e:
        raise FileNotFoundError(
            f"cannot read the run's data set {run.data_dir!r} at {config.image_size} px ({e}); "
            "pass the images yourself (x=..., y=...), or recreate the data (`fader synth DIR`)") from None
    test = FaderDataset(data, split, config.attribute_names, flip=False)
    if not 0 <= start < len(test):
        raise IndexError(f"image index {start} is out of range: the {split} split has {len(test)} images "
                         f"(0..{len(test) - 1})")
    return test.batch(torch.arange(start, min(start + n, len(test))))


def _autoencoder_and_run(model, checkpoint: str = "last.pt"):
    from .runs import Run, load_run

    if isinstance(model, AutoEncoder):
        return model, None
    run = model if isinstance(model, Run) else load_run(model, checkpoint)
    return run.autoencoder, run


def _resolve_attribute(ae: AutoEncoder, attribute: str | None) -> int:
    config = ae.config
    if attribute is None:
        binary = [a.name for a in config.attributes if a.is_binary]
        if not binary:
            raise ValueError("this model has no binary attribute to sweep; sweeps feed [1 - alpha, alpha]")
        attribute = binary[0]
    check_changes(config, {attribute: 0.0})  # unknown name: error with the closest match
    j = config.attribute_names.index(attribute)
    if not config.attributes[j].is_binary:
        raise ValueError(f"{attribute!r} is categorical ({config.attributes[j].n_values} values); "
                         "sweeps are for binary attributes, whose code [1 - alpha, alpha] takes any alpha")
    return j


def _check_alphas(config, name: str, alphas: Sequence[float]) -> list[float]:
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ValueError("give at least one alpha, e.g. alphas=(-1, 0, 0.5, 1, 2)")
    for a in alphas:
        check_changes(config, {name: a})  # |alpha| <= 10
    return alphas


def _images(ae, run, x, y, n: int, start: int):
    if x is None:
        if run is None:
            raise ValueError("give images x and attributes y, or a run (or run folder) to take them from "
                             "its test split")
        return split_images(run, n, start)
    x = x if x.dim() == 4 else x[None]
    if y is None:
        raise ValueError("with images x, give their attributes y (batch, n_attr) too")
    y = torch.as_tensor(y)
    y = y if y.dim() == 2 else y[None]
    return x, y


def _font(size: int):
    return ImageFont.load_default(size=size)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int):
    """A font small enough for ``text`` to fit ``width`` (down to 7 px), else the text cut short."""
    for size in (11, 10, 9, 8, 7):
        font = _font(size)
        if draw.textlength(text, font=font) <= width - 2:
            return text, font
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width - 2:
        text = text[:-1]
    return text + "…", font


def _write(draw, text: str, box: tuple[int, int, int, int]) -> None:
    """``text`` centred in ``box`` (left, top, right, bottom)."""
    left, top, right, bottom = box
    text, font = _fit(draw, text, right - left)
    w = draw.textlength(text, font=font)
    draw.text(((left + right - w) / 2, (top + bottom) / 2), text, fill="black", font=font, anchor="lm")


def _cells(images: torch.Tensor, scale: int) -> np.ndarray:
    """(B, 3, S, S) in [-1, 1] -> (B, S*scale, S*scale, 3) uint8, enlarged by pixel repetition."""
    a = to_uint8(images)
    return a.repeat(scale, axis=1).repeat(scale, axis=2) if scale > 1 else a


def _scale(size: int, scale: int | None) -> int:
    return max(1, MIN_CELL // size) if scale is None else int(scale)


@torch.inference_mode()
def interpolation_grid(model, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
                       attribute: str | None = None, alphas: Sequence[float] = DEFAULT_ALPHAS, *,
                       n: int = 6, start: int = 0, pad: int = 2, scale: int | None = None,
                       checkpoint: str = "last.pt") -> Image.Image:
    """One row per image: original x, reconstruction D(z, y), then D(z, y_alpha) for each alpha.

    model: an :class:`~faderlib.models.AutoEncoder`, a :class:`~faderlib.runs.Run` or a run
    folder. x, y: images (B, 3, S, S) in [-1, 1] and their attributes (B, n_attr) class
    indices; by default test images ``start..start+n-1`` of the run's data set. attribute:
    the binary attribute to sweep (default: the first binary one); the others keep their
    values in y. Cells smaller than 64 px are enlarged ``scale`` times (default: to 64 px).

    Size: width ``(2 + len(alphas)) * (cell + pad) + pad``, height
    ``2 * LINE + rows * (cell + pad) + pad`` with ``cell = S * scale``.
    """
    ae, run = _autoencoder_and_run(model, checkpoint)
    config = ae.config
    j = _resolve_attribute(ae, attribute)
    name = config.attribute_names[j]
    alphas = _check_alphas(config, name, alphas)
    x, y = _images(ae, run, x, y, n, start)
    with evaluating(ae) as device:
        x, y = x.to(device), y.to(device)
        z = ae.encode(x)
        columns = [x, ae.decoder(z, code_for(config, y).to(device))]
        columns += [ae.decoder(z, code_for(config, y, {j: a}).to(device)) for a in alphas]
    k = _scale(x.shape[-1], scale)
    cells = [_cells(c, k) for c in columns]
    cell = cells[0].shape[1]
    rows, cols = x.shape[0], len(columns)
    header = 2 * LINE
    canvas = np.full((header + rows * (cell + pad) + pad, cols * (cell + pad) + pad, 3), 255, np.uint8)
    for i in range(rows):
        for c in range(cols):
            top, left = header + pad + i * (cell + pad), pad + c * (cell + pad)
            canvas[top:top + cell, left:left + cell] = cells[c][i]
    out = Image.fromarray(canvas)
    draw = ImageDraw.Draw(out)
    first = pad + 2 * (cell + pad)
    _write(draw, f"{name}, alpha =", (first, 0, out.width - pad, LINE))
    labels = ["original", "reconstr."] + [f"{a:g}" for a in alphas]
    for c, text in enumerate(labels):
        left = pad + c * (cell + pad)
        _write(draw, text, (left, LINE, left + cell, 2 * LINE))
    return out


@torch.inference_mode()
def interpolation_grid_2d(model, attribute: str, attribute2: str, alphas: Sequence[float] = DEFAULT_ALPHAS,
                          alphas2: Sequence[float] | None = None, x: torch.Tensor | None = None,
                          y: torch.Tensor | None = None, *, index: int = 0, pad: int = 2,
                          scale: int | None = None, checkpoint: str = "last.pt") -> Image.Image:
    """One image, two binary attributes swept together: ``D(z, y)`` with ``attribute = alphas[c]``
    along the columns and ``attribute2 = alphas2[r]`` down the rows (other attributes keep
    their values in y).

    x, y: one image (3, S, S) or (1, 3, S, S) and its attributes; by default test image
    ``index`` of the run. Size: width ``cell + pad + len(alphas) * (cell + pad) + pad``
    (a column of row labels, one cell wide), height ``2 * LINE + len(alphas2) * (cell + pad) + pad``.
    """
    ae, run = _autoencoder_and_run(model, checkpoint)
    config = ae.config
    j1, j2 = _resolve_attribute(ae, attribute), _resolve_attribute(ae, attribute2)
    if j1 == j2:
        raise ValueError(f"sweep two different attributes (got {attribute!r} twice); for one, use interpolation_grid")
    names = config.attribute_names
    alphas = _check_alphas(config, names[j1], alphas)
    alphas2 = _check_alphas(config, names[j2], alphas if alphas2 is None else alphas2)
    x, y = _images(ae, run, x, y, 1, index)
    x, y = x[:1], y[:1]
    with evaluating(ae) as device:
        x, y = x.to(device), y.to(device)
        z = ae.encode(x)
        codes = torch.cat([code_for(config, y, {j1: a1, j2: a2}) for a2 in alphas2 for a1 in alphas]).to(device)
        grid = ae.decoder(z.expand(len(codes), -1, -1, -1), codes)
    k = _scale(x.shape[-1], scale)
    cells = _cells(grid, k)
    cell = cells.shape[1]
    header, left0 = 2 * LINE, cell + pad
    n_rows, n_cols = len(alphas2), len(alphas)
    canvas = np.full((header + n_rows * (cell + pad) + pad, left0 + n_cols * (cell + pad) + pad, 3), 255, np.uint8)
    for r in range(n_rows):
        for c in range(n_cols):
            top, left = header + pad + r * (cell + pad), left0 + pad + c * (cell + pad)
            canvas[top:top + cell, left:left + cell] = cells[r * n_cols + c]
    out = Image.fromarray(canvas)
    draw = ImageDraw.Draw(out)
    _write(draw, f"{names[j1]}, alpha =", (left0 + pad, 0, out.width - pad, LINE))
    _write(draw, f"{names[j2]} =", (pad, LINE, left0, 2 * LINE))
    for c, a in enumerate(alphas):
        left = left0 + pad + c * (cell + pad)
        _write(draw, f"{a:g}", (left, LINE, left + cell, 2 * LINE))
    for r, a in enumerate(alphas2):
        top = header + pad + r * (cell + pad)
        _write(draw, f"{a:g}", (pad, top, left0, top + cell))
    return out


def save_grid(image: Image.Image, path: str | os.PathLike) -> str:
    """Save a grid as PNG (lossless: the cells are the decoder's pixels)."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    image.save(path, format="PNG")
    return path
