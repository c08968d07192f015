"""Interpolation grids: one attribute swept beyond [0, 1]
(docs/paper_notes.md, 'Interpolation beyond [0, 1]').

z = E(x) is computed once per image; the decoder then gets, for each alpha, the code
``[1 - alpha, alpha]`` for the swept attribute and the image's true values for the
others: ``D(z, y_alpha)``. alpha = 0 removes the attribute, 1 adds it, and values beyond
exaggerate it (the reference used alpha up to 2 for glasses and gender, 10 for age).

* :func:`interpolation_grid`: one row per image, original, reconstruction, then the sweep;
* :func:`interpolation_grid_2d`: one image, two attributes swept on the two axes.

Both return a :class:`~faderlib.visual.Picture`, an image with the alphas written above the
columns (and beside the rows): saved, its pixels are the decoder's; a notebook shows it
enlarged (pixels repeated) so that each face is at least 256 px on screen. Images come from
the run's test split unless given.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .errors import ImageRangeError
from .images import save_image
from .models import AutoEncoder, check_changes, code_for
from .runs import Run, load_run
from .visual import LINE, Picture, evaluating, tile, write

#: The default sweep: below 0, the two training values, between, and beyond 1.
DEFAULT_ALPHAS = (-1.0, 0.0, 0.5, 1.0, 2.0)

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


def _autoencoder_and_run(model, checkpoint: str = "last.pt"):
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


def check_image_range(run: Run, n: int, start: int, names: tuple[str, str] = ("n", "start"),
                      split: str = "test") -> None:
    """Raise :class:`~faderlib.errors.ImageRangeError` unless images ``start..start+n-1`` are all in
    ``split`` of ``run``: n at least 1, start in range, and n no more than the images from start.
    ``names`` name the two values in the message (``("--n", "--index")`` for ``fader grid``)."""
    n_name, start_name = names
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ImageRangeError(f"{n_name} {n!r} is not a number of images: give a whole number of 1 or more "
                              f"(one row per image)")
    size = len(run.dataset(split))
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < size:
        raise ImageRangeError(f"{start_name} {start!r} is out of range: the {split} split has {size} images, "
                              f"so {start_name} goes from 0 to {size - 1}")
    if n > size - start:
        raise ImageRangeError(f"{n_name} {n} is too many: the {split} split has {size - start} images from "
                              f"{start_name} {start} ({start}..{size - 1}); give {n_name} {size - start} or fewer, "
                              f"or a smaller {start_name}")


def _images(ae, run, x, y, n: int, start: int):
    if x is None:
        if run is None:
            raise ValueError("give images x and attributes y, or a run (or run folder) to take them from "
                             "its test split")
        check_image_range(run, n, start)
        return run.images(n, start)
    x = x if x.dim() == 4 else x[None]
    if y is None:
        raise ValueError("with images x, give their attributes y (batch, n_attr) too")
    y = torch.as_tensor(y)
    y = y if y.dim() == 2 else y[None]
    return x, y


def _scale(size: int, scale: int | None) -> int:
    return max(1, MIN_CELL // size) if scale is None else int(scale)


@torch.inference_mode()
def interpolation_grid(model, x: torch.Tensor | None = None, y: torch.Tensor | None = None,
                       attribute: str | None = None, alphas: Sequence[float] = DEFAULT_ALPHAS, *,
                       n: int = 6, start: int = 0, pad: int = 2, scale: int | None = None,
                       checkpoint: str = "last.pt") -> Picture:
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
    cell = x.shape[-1] * k
    out = tile([[c[i] for c in columns] for i in range(x.shape[0])], pad, scale=k, top=2 * LINE)
    first = pad + 2 * (cell + pad)
    write(out, f"{name}, alpha =", (first, 0, out.width - pad, LINE))
    labels = ["original", "reconstr."] + [f"{a:g}" for a in alphas]
    for c, text in enumerate(labels):
        left = pad + c * (cell + pad)
        write(out, text, (left, LINE, left + cell, 2 * LINE))
    return out


@torch.inference_mode()
def interpolation_grid_2d(model, attribute: str, attribute2: str, alphas: Sequence[float] = DEFAULT_ALPHAS,
                          alphas2: Sequence[float] | None = None, x: torch.Tensor | None = None,
                          y: torch.Tensor | None = None, *, index: int = 0, pad: int = 2,
                          scale: int | None = None, checkpoint: str = "last.pt") -> Picture:
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
    cell = x.shape[-1] * k
    n_cols = len(alphas)
    left0 = cell + pad  # a column of row labels, one cell wide
    out = tile([list(grid[r * n_cols:(r + 1) * n_cols]) for r in range(len(alphas2))], pad, scale=k,
               top=2 * LINE, left=left0)
    write(out, f"{names[j1]}, alpha =", (left0 + pad, 0, out.width - pad, LINE))
    write(out, f"{names[j2]} =", (pad, LINE, left0, 2 * LINE))
    for c, a in enumerate(alphas):
        left = left0 + pad + c * (cell + pad)
        write(out, f"{a:g}", (left, LINE, left + cell, 2 * LINE))
    for r, a in enumerate(alphas2):
        top = 2 * LINE + pad + r * (cell + pad)
        write(out, f"{a:g}", (pad, top, left0, top + cell))
    return out


def save_grid(image: Image.Image, path: str | os.PathLike, force: bool = False) -> str:
    """Save a grid (:func:`faderlib.images.save_image`): PNG for ``.png`` (lossless: the cells are the
    decoder's pixels), JPEG for ``.jpg``; an existing file only with ``force``."""
    return str(save_image(image, path, force=force))
