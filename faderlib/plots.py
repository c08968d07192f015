"""Figures (matplotlib): training curves, a live one for notebooks, the lambda_E schedule, and
the pictures of an evaluation (edits against the truth, failure cases).

Every function returns a ``matplotlib.figure.Figure`` (made without pyplot, so it works
headless), which Jupyter shows when it ends a cell; those of faces (:func:`side_by_side`, the
evaluation's) a :class:`~faderlib.visual.FaceFigure`, shown with each face at 256 px or more.
Grids of the network's pixels, as PIL images, are in :mod:`faderlib.visual`.
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
from .reports import objective_name
from .runs import Run
from .train import RECIPES
from .visual import FIGURE_DPI, FaceFigure, Picture, face_inches


def plot_training(metrics, majority_rates: dict[str, float] | None = None, title: str = "") -> Figure:
    """Four panels from a metrics log (:func:`faderlib.metrics_log.read_metrics`): the
    reconstruction loss (train and validation), the discriminator's loss, its accuracy
    (with the majority rate it should fall to), and the schedule of lambda_E. When the validation
    rows hold the in-training latent probe (``probe/<name>``: ``TrainConfig.probe_images``), a fifth
    panel beside the accuracy shows its balanced accuracy per attribute, in the same colours: a
    fresh linear classifier's reading of z, which the encoder was not trained to fool (0.5 for a
    binary attribute z says nothing about; the discriminator may be fooled while the probe is not).

    In the accuracy panel each attribute has one colour: its validation accuracy (solid, dots)
    and its majority rate (dashed) share one legend entry, and the legends sit below the
    panels, so that close rates (Smiling's and Male's, both near 0.5) never write over each other."""
    train = metrics[metrics["phase"] == "train"]
    valid = metrics[metrics["phase"] == "valid"]
    accuracy = {col.split("/", 1)[1]: col for col in valid.columns if col.startswith("dis_accuracy/")}
    probe = {col.split("/", 1)[1]: col for col in valid.columns
             if col.startswith("probe/") and valid[col].notna().any()}
    majority = dict(majority_rates or {})
    names = list(accuracy) + [n for n in majority if n not in accuracy]
    fig = Figure(figsize=(15 if probe else 12, 3.6 + 0.24 * len(names)), layout="constrained")
    ax = list(fig.subplots(1, 5 if probe else 4))
    if probe:
        ax.append(ax.pop(3))  # the probe's panel beside the accuracy, lambda_E last
    ax[0].plot(train["step"], train["rec_loss"], label="train")
    if len(valid):
        ax[0].plot(valid["step"], valid["rec_loss"], "o-", ms=3, label="validation")
    ax[0].set(title="reconstruction MSE", xlabel="step", yscale="log")
    _legend_below(ax[0], *ax[0].get_legend_handles_labels())
    ax[1].plot(train["step"], train["dis_loss"], color="C2")
    ax[1].set(title="discriminator loss (eq. 1)", xlabel="step")
    handles, labels = _accuracy_panel(ax[2], train, valid, accuracy, majority, names)
    ax[2].set(title="discriminator accuracy", xlabel="step", ylim=(0, 1.02))
    kinds = [w for w, there in (("solid: validation", accuracy), ("dashed: majority rate", majority)) if there]
    _legend_below(ax[2], handles, labels, title=", ".join(kinds) if len(names) else None)
    ax[3].plot(train["step"], train["lambda_e"], color="C4")
    ax[3].set(title="lambda_E", xlabel="step")
    if probe:
        ax[4].sharex(ax[2])  # the same steps as the discriminator's accuracy, to compare them
        _probe_panel(ax[4], valid, probe, names)
    if title:
        fig.suptitle(title)
    return fig


def _accuracy_panel(ax, train, valid, accuracy: dict[str, str], majority: dict[str, float], names: list[str]):
    """The discriminator's accuracy: all attributes on the train batches (grey), then per attribute
    (one colour each) its validation accuracy and its majority rate. Returns the legend's entries."""
    (line,) = ax.plot(train["step"], train["dis_accuracy"], color="0.45", lw=1.2)
    handles, labels = [line], ["train batches"]
    for k, name in enumerate(names):
        color, parts = f"C{k % 10}", []
        if name in accuracy:
            parts += ax.plot(valid["step"], valid[accuracy[name]], "o-", ms=3, color=color)
        if name in majority:
            parts.append(ax.axhline(majority[name], ls="--", lw=1.2, color=color))
        handles.append(tuple(parts) if len(parts) > 1 else parts[0])
        labels.append(f"{name} (majority {majority[name]:.2f})" if name in majority else name)
    return handles, labels


def _probe_panel(ax, valid, probe: dict[str, str], names: list[str]) -> None:
    """The in-training latent probe's balanced accuracy per attribute (the colours of the accuracy
    panel), and 0.5, what it reads from a z that says nothing about a binary attribute."""
    chance = ax.axhline(0.5, ls="--", lw=1.2, color="0.45")
    handles, labels = [chance], ["0.5: blind (binary)"]
    for k, name in enumerate(names + [n for n in probe if n not in names]):
        if name in probe:
            rows = valid[valid[probe[name]].notna()]
            handles += ax.plot(rows["step"], rows[probe[name]], "s-", ms=3, color=f"C{k % 10}")
            labels.append(name)
    ax.set(title="fresh probe on z (balanced acc.)", xlabel="step", ylim=(0, 1.02))
    _legend_below(ax, handles, labels)


def _legend_below(ax, handles, labels, title: str | None = None) -> None:
    """A legend under ``ax`` (outside the curves), one entry a line, in a readable size; an entry
    whose handle is a tuple shows its lines side by side (an attribute's validation and majority)."""
    if not handles:
        return
    from matplotlib.legend_handler import HandlerTuple

    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=9, frameon=False,
              title=title, title_fontsize=9, handler_map={tuple: HandlerTuple(ndivide=None, pad=0.6)},
              handlelength=4.0, borderaxespad=0.0)


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


#: :func:`side_by_side` puts its panels in one row up to this width on screen (pixels), else in rows.
ROW_PX = 2000


def side_by_side(images: Mapping[str, object], width: float = 6.0, *, columns: int | None = None,
                 face_px: int | None = None) -> FaceFigure:
    """PIL images (e.g. two interpolation grids, or edits) next to each other, titled by their
    keys, with every face at least 256 px on screen (a :class:`~faderlib.visual.FaceFigure`).

    A :class:`~faderlib.visual.Picture` (what the grids and edits of the kit return) is drawn
    as a notebook shows it, with its faces' size and its labels sharp; another image is taken
    as one face, unless ``face_px`` gives the side of its faces in pixels. ``width``: the least
    width of a panel, in inches; panels grow to show their faces at 256 px. ``columns``:
    panels per row (default: as many as fit in :data:`ROW_PX` pixels, so that wide grids go one
    under the other).
    """
    if not images:
        raise ValueError("give at least one image, e.g. side_by_side({'lambda_E = 0': grid})")
    shown = []
    for title, image in images.items():
        if isinstance(image, Picture):
            a, face = np.asarray(image.display_image()), image.face_px * image.display_scale
        else:
            a = np.asarray(image)
            face = face_px or min(a.shape[:2])
        shown.append((title, a, face))
    panel_w = max(max(width, a.shape[1] / face * face_inches()) for _, a, face in shown)
    panel_h = max(a.shape[0] / face * face_inches() for _, a, face in shown)
    n = len(shown)
    if columns is None:
        columns = max(1, min(n, int(ROW_PX // ((panel_w + 0.2) * FIGURE_DPI))))
    elif int(columns) < 1:
        raise ValueError(f"columns={columns}: give at least 1 panel per row")
    columns = min(int(columns), n)
    rows = -(-n // columns)
    fig = FaceFigure(figsize=(columns * (panel_w + 0.2) + 0.2, rows * (panel_h + 0.5) + 0.2), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (title, a, face) in zip(axes, shown):
        fig.show_face(ax, a, title, face_px=face)
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig


def _show(fig: FaceFigure, ax, x: torch.Tensor, title: str) -> None:
    fig.show_face(ax, to_uint8(x), title, fontsize=8)


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
    face = face_inches()
    fig = FaceFigure(figsize=(4 * (face + 0.2) + 0.2, len(cf.x) * (face + 0.5) + 0.5), layout="constrained")
    axes = fig.subplots(len(cf.x), 4, squeeze=False)
    for r in range(len(cf.x)):
        _show(fig, axes[r, 0], cf.x[r], f"original x, {attribute}={int(cf.y[r])}")
        _show(fig, axes[r, 1], cf.reconstruction[r],
              f"reconstruction D(z, y)\n{cf.psnr_reconstruction[r]:.1f} dB from the truth")
        _show(fig, axes[r, 2], cf.edit[r],
              f"edit, {attribute}={int(cf.y_edit[r])}\n{cf.psnr_edit[r]:.1f} dB from the truth")
        _show(fig, axes[r, 3], cf.truth[r], "truth: re-rendered")
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
    face = face_inches()
    fig = FaceFigure(figsize=(cols * (face + 0.2) + 0.4, 2 * (face + 0.35) + 0.5), layout="constrained")
    axes = fig.subplots(2, cols, squeeze=False)
    if len(f.x) == 0:
        for ax in axes.flat:
            ax.set_axis_off()
        axes[0, 0].text(0.5, 0.5, "no failure", ha="center", va="center", transform=axes[0, 0].transAxes)
    for c in range(len(f.x)):
        _show(fig, axes[0, c], f.x[c], "original")
        _show(fig, axes[1, c], f.edits[c], f"edit: p({target}) = {f.probability[c]:.2f}")
    fig.suptitle(f"{attribute} -> {target}: {f.failed} of {f.tried} edits not read as {target} by the classifier",
                 fontsize=10)
    return fig


def plot_adversaries(rows, floor: float | None = None, title: str = "") -> Figure:
    """What z still says against how well it rebuilds: the lesson of a sweep of the adversarial
    objectives (``benchmarks/sweep_adversary.py``; the kit's measured one: ``docs/adversary_sweep.jsonl``).

    ``rows``: dicts with ``adversary``, ``lambda_e``, ``dis_steps``, ``seed``, ``psnr`` (dB) and
    ``probe_mean`` (the latent probe's balanced accuracy, mean over the attributes). One line per
    objective through its settings (seeds averaged; each seed a small dot), each point labelled with
    its strength; the lambda_E = 0 ablation a black star; 0.5 (nothing read) and ``floor`` (the
    probe's floor, :func:`faderlib.evaluate.probe_floor`, what the other attributes give away; by
    default the rows' ``probe_floor_mean`` when they have one) as dashed lines. Down is a z that says less, right a better reconstruction."""
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to draw: run benchmarks/sweep_adversary.py first (it writes OUT/sweep.jsonl)")
    if floor is None:
        floor = next((r["probe_floor_mean"] for r in rows if r.get("probe_floor_mean") is not None), None)
    fig = Figure(figsize=(7, 4.6), layout="constrained")
    ax = fig.subplots()
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((objective_name(r), r["lambda_e"], r["dis_steps"]), []).append(r)
    colours = {"flip": "tab:blue", "uniform": "tab:orange", "reverse": "tab:green"}
    for adversary in sorted({k[0] for k in groups}):
        points = []
        for (a, lam, dis), rs in groups.items():
            if a != adversary:
                continue
            psnr, probe = float(np.mean([r["psnr"] for r in rs])), float(np.mean([r["probe_mean"] for r in rs]))
            points.append((psnr, probe, lam, dis))
            colour = "black" if a == "none" else colours.get(a, "tab:gray")
            ax.plot([r["psnr"] for r in rs], [r["probe_mean"] for r in rs], ".", color=colour, alpha=0.4)
            label = r"$\lambda_E$ = 0" if a == "none" else f"{lam:g}" + (f" ×{dis}" if dis > 1 else "")
            ax.annotate(label, (psnr, probe), textcoords="offset points", xytext=(4, 4), fontsize=8, color=colour)
        points.sort()
        if adversary == "none":
            ax.plot([p[0] for p in points], [p[1] for p in points], "k*", markersize=12, label=r"$\lambda_E$ = 0 (ablation)")
        else:
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color=colours.get(adversary, "tab:gray"),
                    label=adversary)
    ax.margins(x=0.12)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.text(ax.get_xlim()[0], 0.505, " 0.5: nothing to read", fontsize=8, color="grey", va="bottom")
    if floor is not None:
        ax.axhline(floor, color="tab:red", lw=0.8, ls="--")
        ax.text(ax.get_xlim()[0], floor + 0.005, " floor: what the other attributes give away", fontsize=8,
                color="tab:red", va="bottom")
    ax.set(xlabel="reconstruction PSNR (dB, test split)", ylabel="latent probe, balanced accuracy (mean)",
           title=title or "What z still says against how well it rebuilds (labels: $\\lambda_E$, ×discriminator steps)")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    return fig
