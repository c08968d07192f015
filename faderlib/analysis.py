"""Look at the data before training: how frequent and how correlated the attributes are,
what the faces look like with and without each one, and what the preprocessing does.

A Fader Network learns to remove an attribute y from the latent code z = E(x). How
well that works depends on the data: a rare attribute (Eyeglasses, 6.5 %) gives few
examples of one class, and a correlated pair (Male and No_Beard) means that
removing one removes part of the other. These functions return pandas objects and
matplotlib figures (built with ``matplotlib.figure.Figure``, so they work headless);
they never print (but for :func:`toggle_figure`, which says why it has nothing to show
for photographs).

Every function about attributes takes a :class:`~faderlib.celeba.CelebA` or a
:class:`~faderlib.cache.Prepared` (anything with ``attributes`` and ``split``).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter
from PIL import Image

from .celeba_facts import CROP_BOTTOM, CROP_TOP, SPLIT_NAMES
from .config import check_attributes
from .data import balanced_weights, minority_shares
from .images import crop_and_resize
from .synth import ATTRIBUTES as SYNTH_ATTRIBUTES
from .synth import counterfactual, is_synthetic, load_ground_truth
from .visual import FaceFigure, face_inches, tile

__all__ = ["positive_rates", "correlation", "cooccurrence", "plot_frequencies", "plot_correlation",
           "imbalance_table", "rarest_attribute", "sampling_table", "sample_grid", "crop_figure", "toggle_figure"]


def _table(data, attributes: Sequence[str] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The 0/1 table (1 = positive; non-zero for a categorical column) and the split codes."""
    table = data.attributes
    if attributes is not None:
        table = table[check_attributes(attributes, table.columns)]
    split = np.asarray(data.split, dtype=np.int8)
    return (table > 0).astype(np.int8), split


def positive_rates(data, attributes: Sequence[str] | None = None) -> pd.DataFrame:
    """Share of positive images per attribute (rows) in train, valid, test and all (columns), 0..1.

    An empty split gives NaN.
    """
    table, split = _table(data, attributes)
    rates = {name: table.loc[split == code].mean() if (split == code).any()
             else pd.Series(np.nan, index=table.columns)
             for code, name in enumerate(SPLIT_NAMES)}
    rates["all"] = table.mean()
    out = pd.DataFrame(rates)
    out.index.name = "attribute"
    return out


def correlation(data, attributes: Sequence[str] | None = None) -> pd.DataFrame:
    """Pearson correlation between attributes over all images (the phi coefficient for 0/1).

    +1: always together, -1: never together, 0: independent; NaN for a constant attribute.
    """
    table, _ = _table(data, attributes)
    return table.astype(np.float64).corr()


def cooccurrence(data, attributes: Sequence[str] | None = None) -> pd.DataFrame:
    """P(column = 1 | row = 1): among images with the row attribute, the share that also have the column one.

    Not symmetric: P(No_Beard | Wearing_Lipstick) is not P(Wearing_Lipstick | No_Beard).
    NaN for a row attribute that is never positive; the diagonal is 1.
    """
    table, _ = _table(data, attributes)
    x = table.to_numpy(np.float64)
    both = x.T @ x  # both[r, c] = #images with r and c
    count = np.diag(both).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out = both / count[:, None]
    out[count == 0] = np.nan
    return pd.DataFrame(out, index=table.columns, columns=table.columns)


def plot_frequencies(data, splits: Sequence[str] = ("train", "valid", "test"),
                     attributes: Sequence[str] | None = None) -> Figure:
    """Grouped horizontal bars: the share of positives of each attribute in each split.

    Attributes are sorted by their overall frequency (most frequent at the top);
    one bar per split, the x axis in %.
    """
    rates = positive_rates(data, attributes)
    unknown = [s for s in splits if s not in rates.columns]
    if unknown:
        raise ValueError(f"Unknown split(s) {unknown}: choose among {list(rates.columns)}.")
    rates = rates.sort_values("all", ascending=True)  # barh draws bottom-up: most frequent on top
    n, k = len(rates), len(splits)
    fig = Figure(figsize=(7.5, 1.2 + 0.28 * n * max(1, k) ** 0.5), layout="constrained")
    ax = fig.add_subplot()
    height = 0.8 / max(k, 1)
    y = np.arange(n)
    for j, name in enumerate(splits):  # the first split on top within each group, as in the legend
        ax.barh(y + ((k - 1) / 2 - j) * height, rates[name].fillna(0).to_numpy(), height=height,
                label=name)
    ax.set_yticks(y, labels=list(rates.index))
    ax.set_ylim(-0.6, n - 0.4)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, 1)
    ax.set_xlabel("images with the attribute")
    ax.set_title("Attribute frequency per split")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def plot_correlation(data, attributes: Sequence[str] | None = None) -> Figure:
    """Heatmap of :func:`correlation` (red: together, blue: apart), labelled, with a colorbar."""
    corr = correlation(data, attributes)
    n = len(corr)
    side = 2.5 + 0.22 * n
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ticks = np.arange(n)
    ax.set_xticks(ticks, labels=list(corr.columns), rotation=90, fontsize=7 if n > 15 else 9)
    ax.set_yticks(ticks, labels=list(corr.index), fontsize=7 if n > 15 else 9)
    ax.set_title("Correlation between attributes (phi)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="Pearson correlation")
    return fig


# ----------------------------------------------------------------------------- imbalance
def imbalance_table(data, attributes: Sequence[str] | None = None, split: str = "train") -> pd.DataFrame:
    """Why a rare attribute is hard, one row per attribute (rarest first): its share of
    positives, the accuracy of a classifier that always answers "no" (1 - share), and the
    *balanced* accuracy of any constant answer (0.5), which is why evaluations report it."""
    rates = positive_rates(data, attributes)[split]
    table = pd.DataFrame({
        "positives": rates,
        'accuracy of always "no"': 1 - rates,
        "majority accuracy": np.maximum(rates, 1 - rates),
        "balanced accuracy of a constant": 0.5,
    }).sort_values("positives")
    table.index.name = "attribute"
    return table


def rarest_attribute(data, attributes: Sequence[str], split: str = "train") -> str:
    """The attribute of ``attributes`` whose less frequent class is the rarest in ``split``
    (:func:`faderlib.data.minority_shares`)."""
    return str(minority_shares(data, list(attributes), split).idxmin())


def sampling_table(dataset, attribute: str, batches: int = 1000, batch_size: int = 32,
                   seed: int = 0) -> pd.DataFrame:
    """Uniform against class-balanced sampling (:func:`faderlib.data.balanced_weights`) of a
    training split: the share of positives drawn, positives per batch, and how many times each
    positive image is drawn per epoch (one epoch: as many draws as the split has images). Under
    uniform sampling that is 1; balancing raises it, which is its price: rare images repeat.

    Only indices are drawn (no image is read), as ``dataset.sample`` would draw them.
    """
    labels = torch.from_numpy(dataset.prepared.attributes[attribute].to_numpy(np.int64)[dataset.rows] > 0)
    n_pos = int(labels.sum())
    g = torch.Generator().manual_seed(seed)
    draws = batches * batch_size
    epochs = draws / len(dataset)
    rows = {}
    for name, idx in (("uniform", torch.randint(len(dataset), (draws,), generator=g)),
                      (f"balanced on {attribute}",
                       torch.multinomial(balanced_weights(dataset, attribute), draws, replacement=True, generator=g))):
        pos = labels[idx]
        rows[name] = {
            f"share of {attribute}": float(pos.float().mean()),
            f"positives per batch of {batch_size}": float(pos.float().mean()) * batch_size,
            "draws of each positive image per epoch": float(pos.sum()) / max(n_pos, 1) / epochs,
        }
    table = pd.DataFrame(rows).T.round(3)
    table.index.name = f"{len(dataset)} images, {n_pos} positive"
    return table


# ----------------------------------------------------------------------------- faces
def sample_grid(data, attributes: Sequence[str], n: int = 6, split: str = "train", seed: int = 0) -> FaceFigure:
    """Faces with and without each attribute: one row per attribute, ``n`` faces with it on
    the left, ``n`` without it on the right, each side in lines of at most 3 faces (so that
    the faces are 256 px on screen without a figure 12 faces wide).

    data: a :class:`~faderlib.cache.Prepared` cache (``faderlib.cache.prepared(DATA_DIR, 64)``).
    A class with fewer than ``n`` faces in the split shows the ones it has.
    """
    attributes = check_attributes(list(attributes), data.attributes.columns)
    if int(n) < 1:
        raise ValueError(f"n={n}: show at least 1 face per side")
    rng = np.random.default_rng(seed)
    rows = data.indices(split)
    per_line = -(-n // -(-n // 3))   # 6 -> 3 + 3, 4 -> 2 + 2, 5 -> 3 + 2
    lines = -(-n // per_line)
    size = int(data.size)
    pad = 2
    side_w = (per_line * (size + pad) + pad) / size * face_inches()
    side_h = (lines * (size + pad) + pad) / size * face_inches()
    fig = FaceFigure(figsize=(2 * (side_w + 0.2) + 0.2, len(attributes) * (side_h + 0.45) + 0.2), layout="constrained")
    axes = fig.subplots(len(attributes), 2, squeeze=False)
    for i, name in enumerate(attributes):
        values = data.attributes[name].to_numpy()[rows]
        for j, (label, mask) in enumerate(((f"with {name}", values > 0), (f"without {name}", values == 0))):
            ax = axes[i, j]
            pool = rows[mask]
            ax.set_axis_off()
            share = mask.mean() if len(mask) else float("nan")
            ax.set_title(f"{label} ({share:.1%} of {split})", fontsize=9)
            if len(pool) == 0:
                ax.text(0.5, 0.5, "none in this split", ha="center", va="center", transform=ax.transAxes)
                continue
            chosen = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
            faces = list(data.read(chosen))
            fig.show_face(ax, tile([faces[k:k + per_line] for k in range(0, n, per_line)], pad, cols=per_line),
                          axis=True)  # the axes are off already, the title set
    return fig


def crop_figure(image_path: str | os.PathLike, sizes: Sequence[int] = (64, 32)) -> FaceFigure:
    """What the preprocessing does to one aligned CelebA image (docs/paper_notes.md, 'CelebA'): the
    178x218 original with the kept rows 20..197 framed, the 178x178 crop, then the crop
    resized to each of ``sizes`` (area filter), all drawn at the same size on screen so the
    loss of detail shows."""
    with Image.open(image_path) as im:
        original = im.convert("RGB")
    w, h = original.size
    cropped = original.crop((0, CROP_TOP, w, CROP_BOTTOM))
    panels = [(np.asarray(original), f"original {w}x{h}"),
              (np.asarray(cropped), f"rows {CROP_TOP}..{CROP_BOTTOM - 1}: {cropped.width}x{cropped.height}")]
    for s in sizes:
        panels.append((crop_and_resize(original, s).transpose(1, 2, 0), f"resized to {s}x{s}"))
    face = face_inches()
    fig = FaceFigure(figsize=(len(panels) * (face + 0.2) + 0.5, face * h / w + 0.7), layout="constrained")
    axes = fig.subplots(1, len(panels))
    for ax, (pixels, title) in zip(axes, panels):
        fig.show_face(ax, pixels, title, face_px=pixels.shape[1], fontsize=9, axis=True)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].add_patch(Rectangle((0, CROP_TOP - 0.5), w - 1, CROP_BOTTOM - CROP_TOP, fill=False, ec="red", lw=1.5))
    axes[0].set_ylabel("the red frame is kept", fontsize=8)
    return fig


def toggle_figure(data_dir: str | os.PathLike, face: int | str, attributes: Sequence[str],
                  size: int = 64) -> FaceFigure | None:
    """A synthetic face and the same face re-rendered with each attribute flipped: the
    ground truth (a counterfactual) that an edit by a Fader network should approach.

    CelebA has no such truth (nobody photographed each celebrity with and without glasses):
    for a folder that is not a synthetic set this prints why and returns None.
    """
    if not is_synthetic(data_dir):
        print(f"{data_dir} holds photographs: there is no ground truth of the same face with an attribute "
              "changed. The synthetic faces have one (faderlib.synth.counterfactual).")
        return None
    truth = load_ground_truth(data_dir)
    i = truth.index(face)
    names = [a for a in attributes if a in SYNTH_ATTRIBUTES]
    panels = [(crop_and_resize(counterfactual(data_dir, i), size), "as drawn")]
    for name in names:
        value = truth.attributes[i][name]
        panels.append((crop_and_resize(counterfactual(data_dir, i, {name: 1 - value}), size),
                       f"{name} {value} -> {1 - value}"))
    face = face_inches()
    fig = FaceFigure(figsize=(len(panels) * (face + 0.2) + 0.2, face + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (pixels, title) in zip(axes, panels):
        fig.show_face(ax, pixels.transpose(1, 2, 0), title, fontsize=9)
    fig.suptitle(f"face {truth.filenames[i]}, re-rendered with one attribute changed", fontsize=10)
    return fig
