"""Write tiny CelebA-format data sets for tests, in the original or the Kaggle layout.

``write_celeba_fixture(tmp_path)`` writes ``n`` random-colour 178 x 218 JPEGs and the
tables with the real files' quirks:

* original: ``list_attr_celeba.txt`` with the count on line 1, the names on line 2
  with a trailing space, rows ``000001.jpg -1  1 ...`` (values right-aligned in two
  characters, so one or two spaces between them; every 5th row has extra spaces
  after the file name), and ``list_eval_partition.txt`` (``000001.jpg 0``);
* kaggle: ``list_attr_celeba.csv`` (``image_id,...``), ``list_eval_partition.csv``
  (``image_id,partition``), images under ``img_align_celeba/img_align_celeba/``.

The values written are those of :func:`fixture_tables` (or the ``values`` given), so
tests can compare what the readers return with what was written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from faderlib.celeba_facts import CELEBA_ATTRIBUTES, IMAGE_HEIGHT, IMAGE_WIDTH

__all__ = ["write_celeba_fixture", "fixture_tables", "fixture_image", "filenames"]


def filenames(n: int) -> list[str]:
    """CelebA's names: 000001.jpg, 000002.jpg, ..."""
    return [f"{i + 1:06d}.jpg" for i in range(n)]


def fixture_tables(n: int = 24, attributes: Sequence[str] = CELEBA_ATTRIBUTES,
                   seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """The 0/1 attributes (int8) and the split (int8) that the fixture writes by default.

    Each attribute has its own positive rate in [0.1, 0.9]; the split is contiguous,
    70 % train, 15 % valid, the rest test (deliberately not the default 80/10/10).
    """
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.1, 0.9, size=len(attributes))
    values = (rng.random((n, len(attributes))) < rates).astype(np.int8)
    index = pd.Index(filenames(n), name="image_id")
    table = pd.DataFrame(values, index=index, columns=list(attributes))
    n_train, n_valid = int(0.7 * n), int(0.15 * n)
    split = np.full(n, 2, np.int8)
    split[:n_train], split[n_train:n_train + n_valid] = 0, 1
    return table, pd.Series(split, index=index, name="split")


def fixture_image(i: int, seed: int = 0, noise: float = 4.0) -> Image.Image:
    """A 178 x 218 RGB test face: a left-to-right colour gradient (so a flip shows), an
    off-centre ellipse, and solid bands in the rows the reference crop removes
    (0..19 and 198..217)."""
    rng = np.random.default_rng([seed, i])
    c1, c2, band, face = rng.integers(0, 256, size=(4, 3))
    t = np.linspace(0.0, 1.0, IMAGE_WIDTH, dtype=np.float32)[None, :, None]
    pixels = np.broadcast_to((1 - t) * c1 + t * c2, (IMAGE_HEIGHT, IMAGE_WIDTH, 3)).copy()
    pixels[:20] = band
    pixels[198:] = 255 - band
    if noise:
        pixels += rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(noise)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    x0, y0 = int(rng.integers(20, 70)), int(rng.integers(50, 90))
    ImageDraw.Draw(image).ellipse((x0, y0, x0 + 60, y0 + 80), fill=tuple(int(v) for v in face))
    return image


def _format_original_row(name: str, values: np.ndarray, row: int) -> str:
    gap = "  " if row % 5 == 4 else ""  # some rows have more spaces
    return name + gap + "".join(f" {int(v):2d}" for v in values)


def write_celeba_fixture(root: str | Path, n: int = 24, layout: str = "original",
                         attributes: Sequence[str] = CELEBA_ATTRIBUTES, nested: bool = True,
                         seed: int = 0, *, values: np.ndarray | None = None,
                         split: Sequence[int] | None = None, partition: bool = True,
                         images: bool = True, noise: float = 4.0, quality: int = 90) -> Path:
    """Write a tiny CelebA in ``root`` and return ``root``.

    layout: ``"original"`` or ``"kaggle"``. nested: Kaggle only, images under
    ``img_align_celeba/img_align_celeba/`` as in the mirror's zip. values: an (n, K)
    array to write instead of :func:`fixture_tables`' random 0/1 (columns with only
    0/1 are written as -1/1, other columns as they are). split: n values 0/1/2 instead
    of the default. partition=False writes no partition file; images=False no JPEGs.
    """
    if layout not in ("original", "kaggle"):
        raise ValueError(f"layout must be 'original' or 'kaggle', got {layout!r}")
    root = Path(root)
    attributes = list(attributes)
    table, default = fixture_tables(n, attributes, seed)
    data = table.to_numpy() if values is None else np.asarray(values)
    if data.shape != (n, len(attributes)):
        raise ValueError(f"values must have shape {(n, len(attributes))}, got {data.shape}")
    parts = default.to_numpy() if split is None else np.asarray(split)
    written = data.astype(np.int64).copy()
    for j in range(written.shape[1]):
        if set(np.unique(written[:, j]).tolist()) <= {0, 1}:
            written[:, j] = 2 * written[:, j] - 1  # 0/1 -> -1/1, as in CelebA
    names = filenames(n)

    image_dir = root / "img_align_celeba"
    if layout == "kaggle" and nested:
        image_dir = image_dir / "img_align_celeba"
    image_dir.mkdir(parents=True, exist_ok=True)
    if images:
        for i, name in enumerate(names):
            fixture_image(i, seed, noise).save(image_dir / name, quality=quality)

    if layout == "original":
        lines = [str(n), " ".join(attributes) + " "]  # trailing space, as in CelebA
        lines += [_format_original_row(name, written[i], i) for i, name in enumerate(names)]
        (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
        if partition:
            (root / "list_eval_partition.txt").write_text(
                "".join(f"{name} {int(k)}\n" for name, k in zip(names, parts)))
    else:
        lines = [",".join(["image_id", *attributes])]
        lines += [",".join([name, *map(str, written[i])]) for i, name in enumerate(names)]
        (root / "list_attr_celeba.csv").write_text("\n".join(lines) + "\n")
        if partition:
            (root / "list_eval_partition.csv").write_text(
                "image_id,partition\n" + "".join(f"{name},{int(k)}\n" for name, k in zip(names, parts)))
    return root
