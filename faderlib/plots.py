"""Figures (matplotlib): training curves, a live one for notebooks, the lambda_E schedule, and
the pictures of an evaluation (edits against the truth, failure cases).

Every function returns a ``matplotlib.figure.Figure`` (made without pyplot, so it works
headless), which Jupyter shows when it ends a cell. Grids of the network's pixels, as PIL
images, are in :mod:`faderlib.visual`.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .evaluate import counterfactual_edits, swap_failures
from .images import to_uint8
from .losses import lambda_e
from .runs import Run
from .train import RECIPES


def plot_training(metrics, majority_rates: dict[str, float] | None = None, title: str = "") -> Figure:
    """Four panels from a metrics log (:func:`faderlib.runs.read_metrics`): the
    reconstruction loss (train and validation), the discriminator's loss, its accuracy
    (with the majority rate it should fall to), and the schedule of lambda_E."""
    train = metrics[metrics["phase"] == "train"]
    valid = metrics[metrics["phase"] == "valid"]
    fig = Figure(figsize=(12, 3.2), layout="constrained")
    ax = fig.subplots(1, 4)
    ax[0].plot(train["step"], train["rec_loss"], label="train")
    if len(valid):
        ax[0].plot(valid["step"], valid["rec_loss"], "o-", label="validation")
    ax[0].set(title="reconstruction MSE", xlabel="step", yscale="log")
    ax[0].legend()
    ax[1].plot(train["step"], train["dis_loss"], color="C2")
    ax[1].set(title="discriminator loss (eq. 1)", xlabel="step")
    ax[2].plot(train["step"], train["dis_accuracy"], color="C3", label="train batches")
    for col in (c for c in valid.columns if c.startswith("dis_accuracy/")):
        ax[2].plot(valid["step"], valid[col], "o-", ms=3, label=col.split("/", 1)[1] + " (valid)")
    for name, rate in (majority_rates or {}).items():
        ax[2].axhline(rate, ls="--", lw=1, color="grey")
        ax[2].annotate(f"majority {name}", (0, rate), fontsize=7, color="grey", va="bottom")
    ax[2].set(title="discriminator accuracy", xlabel="step", ylim=(0, 1.02))
    ax[2].legend(fontsize=7)
    ax[3].plot(train["step"], train["lambda_e"], color="C4")
    ax[3].set(title="lambda_E", xlabel="step")
    if title:
        fig.suptitle(title)
    return fig


class LiveLossPlot:
    """A training callback that redraws :func:`plot_training` in a notebook cell every
    ``every`` logged rows (pass it in ``Trainer(..., callbacks=[LiveLossPlot()])``)."""

    def __init__(self, every: int = 4):
        self.every = every
        self.rows: list[dict] = []
        self.handle = None

    def __call__(self, trainer, row: dict) -> None:
        from IPython.display import display  # Jupyter: only a notebook uses this callback

        self.rows.append(row)
        if len(self.rows) % self.every:
            return
        fig = plot_training(pd.DataFrame(self.rows))
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)


def plot_lambda_schedule(lambda_max: float = RECIPES["course"]["lambda_e"],
                         ramp_steps: int = RECIPES["course"]["lambda_ramp"], total_steps: int = 3000) -> Figure:
    """lambda_E against the autoencoder step: the paper's schedule (0 to 1e-4 over 500,000
    steps) on the left, the one given (the course's by default) on the right."""
    fig = Figure(figsize=(10, 3), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (lam, ramp, total, title) in zip(axes, (
            (1e-4, 500_000, 1_000_000, "paper: 0 -> 1e-4 over 500,000 steps"),
            (lambda_max, ramp_steps, max(total_steps, 1), f"this run: 0 -> {lambda_max:g} over {ramp_steps:,} steps"))):
        steps = np.linspace(0, total, 400).astype(int)
        ax.plot(steps, [lambda_e(int(s), lam, ramp) for s in steps])
        ax.set(title=title, xlabel="autoencoder step", ylabel=r"$\lambda_E$")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax.grid(alpha=0.3)
    return fig


def side_by_side(images: Mapping[str, object], width: float = 6.0) -> Figure:
    """PIL images (e.g. two interpolation grids) next to each other, titled by their keys."""
    fig = Figure(figsize=(width * len(images), width * 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(images)))
    for ax, (title, image) in zip(axes, images.items()):
        ax.imshow(np.asarray(image), interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    return fig


def _show(ax, x: torch.Tensor, title: str) -> None:
    ax.imshow(to_uint8(x), interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def counterfactual_figure(run: Run, attribute: str, n: int = 4, start: int = 0) -> Figure | None:
    """Edits against the truth, for synthetic faces (:func:`faderlib.evaluate.counterfactual_edits`):
    per test image, the original x, the reconstruction D(z, y), the edit D(z, y') with
    ``attribute`` flipped, and the same face re-rendered with it flipped, with the PSNR of the
    reconstruction and of the edit against that truth. For photographs prints why and returns None."""
    cf = counterfactual_edits(run, attribute, n, start)
    if cf is None:
        print("this run was trained on photographs: no ground truth exists for an edited face, so the "
              "comparison needs the synthetic faces (DATA_DIR = None)")
        return None
    fig = Figure(figsize=(7.2, 1.9 * len(cf.x) + 0.4), layout="constrained")
    axes = fig.subplots(len(cf.x), 4, squeeze=False)
    for r in range(len(cf.x)):
        _show(axes[r, 0], cf.x[r], f"original x, {attribute}={int(cf.y[r])}")
        _show(axes[r, 1], cf.reconstruction[r], f"reconstruction D(z, y)\n{cf.psnr_reconstruction[r]:.1f} dB from the truth")
        _show(axes[r, 2], cf.edit[r], f"edit, {attribute}={int(cf.y_edit[r])}\n{cf.psnr_edit[r]:.1f} dB from the truth")
        _show(axes[r, 3], cf.truth[r], "truth: re-rendered")
    fig.suptitle(f"{attribute}: the edit against the true counterfactual (PSNR, higher is closer)", fontsize=10)
    return fig


def failure_figure(run: Run, classifier_dir: str | os.PathLike, attribute: str, target: int = 1, n: int = 6,
                   max_images: int = 512) -> Figure:
    """Failure cases (:func:`faderlib.evaluate.swap_failures`): test images whose edit to
    ``target`` the classifier does not read as ``target``, worst first, each shown as the
    original and the edit with the classifier's probability of ``target``. The title counts
    the failures among the images tried."""
    f = swap_failures(run, classifier_dir, attribute, target, n, max_images)
    cols = max(len(f.x), 1)
    fig = Figure(figsize=(1.7 * cols + 0.4, 4.0), layout="constrained")
    axes = fig.subplots(2, cols, squeeze=False)
    if len(f.x) == 0:
        for ax in axes.flat:
            ax.set_axis_off()
        axes[0, 0].text(0.5, 0.5, "no failure", ha="center", va="center", transform=axes[0, 0].transAxes)
    for c in range(len(f.x)):
        _show(axes[0, c], f.x[c], "original")
        _show(axes[1, c], f.edits[c], f"edit: p({target}) = {f.probability[c]:.2f}")
    fig.suptitle(f"{attribute} -> {target}: {f.failed} of {f.tried} edits not read as {target} by the classifier",
                 fontsize=10)
    return fig
