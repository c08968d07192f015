"""Look at CelebA's attributes before training: how frequent, how correlated.

A Fader Network learns to remove an attribute y from the latent code z = E(x). How
well that works depends on the data: a rare attribute (Eyeglasses, 6.5 %) gives few
examples of one class, and a correlated pair (Male and No_Beard) means that
removing one removes part of the other. These functions return pandas objects and
matplotlib figures (built with ``matplotlib.figure.Figure``, so they work headless);
they never print.

Every function takes a :class:`~faderlib.celeba.CelebA` or a
:class:`~faderlib.cache.Prepared` (anything with ``attributes`` and ``split``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from faderlib.celeba import check_attributes
from faderlib.celeba_facts import SPLIT_NAMES

__all__ = ["positive_rates", "correlation", "cooccurrence", "plot_frequencies", "plot_correlation"]


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
