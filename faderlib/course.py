"""What the course notebooks (``notebooks/01`` to ``05``) call that the rest of faderlib lacks.

Each notebook cell is a few lines calling faderlib; the helpers here are the pieces that
only a lesson needs: an environment check for the first cell, finding (or making) the
data and a trained run, pictures of the data set, the gradient table of a loss, and side
by side comparisons of runs. Everything returns a value (a path, a pandas table, a
matplotlib ``Figure``, a PIL image) that Jupyter shows when it ends a cell.

The course's folder of runs, ``RUN_DIR`` in the notebooks, has the layout ``fader demo``
writes in ``runs/demo``::

    RUN_DIR/fader/              the Fader network (notebook 03; Trainer's run folder)
    RUN_DIR/ablation_lambda0/   the same network trained with lambda_E = 0 (notebook 03)
    RUN_DIR/classifier/         the attribute classifier that judges swaps (notebooks 03, 05)
    RUN_DIR/unbalanced/         the run again with the other class-balancing choice (notebook 05)

so ``RUN_DIR = "../runs/demo"`` opens the demo's results in notebooks 04 and 05.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import math
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from .celeba import DATA_ENV_VAR, read_celeba, resolve_data_dir
from .config import ModelConfig
from .demo import DEMO
from .train import TrainConfig

__all__ = [
    "COURSE_FACES", "COURSE_RECIPE", "EnvironmentReport", "environment_check", "ensure_data",
    "sample_grid", "crop_figure", "toggle_figure", "imbalance_table", "sampling_table", "rarest_attribute",
    "decoder_inputs", "gradient_table", "plot_lambda_schedule", "memory_estimate", "speed_report",
    "default_steps", "model_config", "train_config", "CourseRuns", "course_runs", "find_run", "ensure_run",
    "ensure_classifier", "train_variant", "compare_results", "swap_table", "side_by_side",
    "counterfactual_figure", "swap_failures", "sample_photo", "holds_run", "slider_app",
]

#: Faces in the course's synthetic data set (the same set as ``fader demo``'s, about a minute to draw).
COURSE_FACES = DEMO["n_faces"]

#: Training settings that the notebooks' parameters (or the data) decide, not the recipe.
_NOTEBOOK_KEYS = ("data_dir", "attributes", "image_size", "steps", "batch_size", "balance", "device")

#: The course's training recipe: every training setting of the demo's (see :mod:`faderlib.demo`
#: for why it differs from the paper's schedule) that the notebooks do not set themselves, such
#: as the network preset, the learning rate and lambda_E's value and ramp.
COURSE_RECIPE = {k: v for k, v in DEMO.items()
                 if k in {f.name for f in dataclasses.fields(TrainConfig)}
                 and k not in _NOTEBOOK_KEYS and k not in TrainConfig.RUNTIME_KEYS}

#: Steps of the classifier that judges swaps, at most, and its network settings (the demo's).
CLASSIFIER_STEPS = DEMO["classifier_steps"]
CLASSIFIER_MODEL = dict(DEMO.get("classifier_model", {}))

#: Attributes rarer than this (share of positives in the training split) are drawn class-balanced.
BALANCE_BELOW = 0.15


# ============================================================================ environment

#: (import name, distribution name, minimum version) of what the notebooks import (pyproject.toml).
REQUIREMENTS = (
    ("torch", "torch", "2.4"),
    ("numpy", "numpy", "1.23"),
    ("pandas", "pandas", "1.5"),
    ("PIL", "pillow", "9.4"),
    ("matplotlib", "matplotlib", "3.6"),
    ("tqdm", "tqdm", "4.64"),
    ("ipywidgets", "ipywidgets", "8.0"),
    ("faderlib", "faderlib", None),
)


@dataclass
class EnvironmentReport:
    """What :func:`environment_check` found: one ``(ok, line)`` per check; shown as text."""

    rows: list[tuple[bool, str]]
    device: str

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.rows)

    def __str__(self) -> str:
        lines = [f"[{'OK' if ok else 'FAIL':>4}] {text}" for ok, text in self.rows]
        lines.append(f"device: {self.device}")
        if not self.ok:
            lines.append("Fix the FAIL lines first: `make install` (or `pip install -e .`) from the repository root.")
        return "\n".join(lines)

    __repr__ = __str__


def _version_tuple(text: str) -> tuple:
    try:
        from packaging.version import Version

        return (Version(text),)
    except Exception:  # no packaging, or a version it cannot parse: compare the leading numbers
        parts = []
        for piece in text.split("."):
            digits = "".join(ch for ch in piece if ch.isdigit())
            if not digits:
                break
            parts.append(int(digits))
            if not piece.isdigit():
                break
        return tuple(parts)


def environment_check(requirements: Sequence[tuple[str, str, str | None]] = REQUIREMENTS) -> EnvironmentReport:
    """Check Python and every package the notebooks import, OK or FAIL each with its version
    and the minimum needed; say which device training will use. The first cell of every notebook.

    A package counts as OK when it imports (an installed but broken package fails) and its
    version is at least the minimum.
    """
    rows: list[tuple[bool, str]] = []
    py = platform.python_version()
    rows.append((sys.version_info >= (3, 10), f"python {py} (needs >= 3.10) at {sys.executable}"))
    for module, dist, minimum in requirements:
        need = f" (needs >= {minimum})" if minimum else ""
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            spec = f'"{dist}>={minimum}"' if minimum else dist
            rows.append((False, f"{dist} is not installed{need}: pip install {spec}"))
            continue
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - any failure to import is what we report
            rows.append((False, f"{dist} {version} is installed but does not import: {type(e).__name__}: {e}"))
            continue
        ok = minimum is None or _version_tuple(version) >= _version_tuple(minimum)
        rows.append((ok, f"{dist} {version}{need}" + ("" if ok else f": upgrade with pip install -U \"{dist}>={minimum}\"")))
    return EnvironmentReport(rows, _device_line())


def _device_line() -> str:
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        gib = torch.cuda.get_device_properties(0).total_memory / 2**30
        return f"cuda ({name}, {gib:.0f} GiB): notebook 03 trains a larger model"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps (Apple GPU): training runs there, sized as on a CPU"
    return (f"cpu ({os.cpu_count()} cores, no CUDA GPU or Apple MPS found): the notebooks train "
            "small models, a few minutes each")


# ============================================================================ data


def ensure_data(data_dir: str | os.PathLike | None = None, n_faces: int = COURSE_FACES,
                progress: bool = True) -> Path:
    """The data folder the course uses, as an absolute path, made if it is the default one.

    ``data_dir=None`` (the notebooks' ``DATA_DIR = None``) means ``$FADER_DATA`` if set, else
    the built-in synthetic faces in ``data/synthetic``, drawn now if they are not there yet
    (``n_faces`` faces, about a minute for 20,000 on two cores). A folder that holds a
    synthetic set is used as it is, whatever its size. Any other folder must hold CelebA (either
    layout); if it does not, the error lists what is missing and how to get it.
    """
    from .synth import ensure_synthetic, is_synthetic

    root = resolve_data_dir(data_dir).resolve()
    if is_synthetic(root):
        return root
    if data_dir is None and not os.environ.get(DATA_ENV_VAR):
        print(f"drawing {n_faces:,} synthetic faces into {root} (once; about a minute per 20,000 on 2 cores)")
        return ensure_synthetic(root, n=n_faces, seed=0, progress=progress).resolve()
    read_celeba(root)  # raises DataError with what is missing and how to get CelebA
    return root


def _split_rows(data, split: str) -> np.ndarray:
    codes = {"train": 0, "valid": 1, "test": 2}
    if split == "all":
        return np.arange(len(data.attributes))
    return np.flatnonzero(np.asarray(data.split) == codes[split])


def _grid(images: np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """uint8 (B, 3, S, S) -> one (H, W, 3) picture, ``cols`` images a row, white gutters."""
    n, _, s, _ = images.shape
    rows = max(1, -(-n // cols))
    canvas = np.full((rows * (s + pad) + pad, cols * (s + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        canvas[pad + r * (s + pad):pad + r * (s + pad) + s, pad + c * (s + pad):pad + c * (s + pad) + s] = \
            images[i].transpose(1, 2, 0)
    return canvas


def sample_grid(data, attributes: Sequence[str], n: int = 6, split: str = "train", seed: int = 0) -> Figure:
    """Faces with and without each attribute: one row per attribute, ``n`` faces with it on
    the left, ``n`` without it on the right.

    data: a :class:`~faderlib.cache.Prepared` cache (``faderlib.cache.prepared(DATA_DIR, 64)``).
    A class with fewer than ``n`` faces in the split shows the ones it has.
    """
    from .celeba import check_attributes

    attributes = check_attributes(list(attributes), data.attributes.columns)
    rng = np.random.default_rng(seed)
    rows = _split_rows(data, split)
    fig = Figure(figsize=(1.05 * 2 * n + 1.4, 1.25 * len(attributes) + 0.5), layout="constrained")
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
            ax.imshow(_grid(data.read(chosen), cols=n), interpolation="nearest")
    return fig


def crop_figure(image_path: str | os.PathLike, sizes: Sequence[int] = (64, 32)) -> Figure:
    """What the preprocessing does to one aligned CelebA image (REFERENCE.md section 5): the
    178x218 original with the kept rows 20..197 framed, the 178x178 crop, then the crop
    resized to each of ``sizes`` (area filter), all drawn at the same size on screen so the
    loss of detail shows."""
    from PIL import Image

    from .cache import crop_and_resize
    from .celeba_facts import CROP_BOTTOM, CROP_TOP

    with Image.open(image_path) as im:
        original = im.convert("RGB")
    w, h = original.size
    cropped = original.crop((0, CROP_TOP, w, CROP_BOTTOM))
    panels = [(np.asarray(original), f"original {w}x{h}"),
              (np.asarray(cropped), f"rows {CROP_TOP}..{CROP_BOTTOM - 1}: {cropped.width}x{cropped.height}")]
    for s in sizes:
        panels.append((crop_and_resize(original, s).transpose(1, 2, 0), f"resized to {s}x{s}"))
    fig = Figure(figsize=(2.6 * len(panels), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels))
    for ax, (pixels, title) in zip(axes, panels):
        ax.imshow(pixels, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    from matplotlib.patches import Rectangle

    axes[0].add_patch(Rectangle((0, CROP_TOP - 0.5), w - 1, CROP_BOTTOM - CROP_TOP, fill=False, ec="red", lw=1.5))
    axes[0].set_ylabel("the red frame is kept", fontsize=8)
    return fig


def toggle_figure(data_dir: str | os.PathLike, face: int | str, attributes: Sequence[str],
                  size: int = 64) -> Figure | None:
    """A synthetic face and the same face re-rendered with each attribute flipped: the
    ground truth (a counterfactual) that an edit by a Fader network should approach.

    CelebA has no such truth (nobody photographed each celebrity with and without glasses):
    for a folder that is not a synthetic set this prints why and returns None.
    """
    from .cache import crop_and_resize
    from .synth import ATTRIBUTES, counterfactual, is_synthetic, load_ground_truth

    if not is_synthetic(data_dir):
        print(f"{data_dir} holds photographs: there is no ground truth of the same face with an attribute "
              "changed. The synthetic faces have one (faderlib.synth.counterfactual).")
        return None
    truth = load_ground_truth(data_dir)
    i = truth.index(face)
    names = [a for a in attributes if a in ATTRIBUTES]
    panels = [(crop_and_resize(counterfactual(data_dir, i), size), "as drawn")]
    for name in names:
        value = truth.attributes[i][name]
        panels.append((crop_and_resize(counterfactual(data_dir, i, {name: 1 - value}), size),
                       f"{name} {value} -> {1 - value}"))
    fig = Figure(figsize=(2.0 * len(panels), 2.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (pixels, title) in zip(axes, panels):
        ax.imshow(pixels.transpose(1, 2, 0), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.suptitle(f"face {truth.filenames[i]}, re-rendered with one attribute changed", fontsize=10)
    return fig


def imbalance_table(data, attributes: Sequence[str] | None = None, split: str = "train") -> pd.DataFrame:
    """Why a rare attribute is hard, one row per attribute (rarest first): its share of
    positives, the accuracy of a classifier that always answers "no" (1 - share), and the
    *balanced* accuracy of any constant answer (0.5), which is why evaluations report it."""
    from .analysis import positive_rates

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
    """The attribute of ``attributes`` whose less frequent class is the rarest in ``split``."""
    from .analysis import positive_rates

    rates = positive_rates(data, list(attributes))[split]
    minority = np.minimum(rates, 1 - rates)
    return str(minority.idxmin())


def sampling_table(dataset, attribute: str, batches: int = 1000, batch_size: int = 32,
                   seed: int = 0) -> pd.DataFrame:
    """Uniform against class-balanced sampling (:func:`faderlib.data.balanced_weights`) of a
    training split: the share of positives drawn, positives per batch, and how many times each
    positive image is drawn per epoch (one epoch: as many draws as the split has images). Under
    uniform sampling that is 1; balancing raises it, which is its price: rare images repeat.

    Only indices are drawn (no image is read), as ``dataset.sample`` would draw them.
    """
    from .data import balanced_weights

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


# ============================================================================ networks and losses


def decoder_inputs(config: ModelConfig) -> pd.DataFrame:
    """How y enters every decoder layer: for each layer, the feature channels coming from z
    (or the layer before), the attribute channels concatenated to them, their sum (the
    layer's input channels) and the output channels, with the spatial sides."""
    side = config.latent_shape[1]
    rows = []
    for k, i in enumerate(reversed(range(config.n_layers))):
        features = config.channels(i)
        out = config.img_channels if i == 0 else config.channels(i - 1)
        rows.append({
            "layer": f"layers.{k}",
            "input side": f"{side}x{side}",
            "features": features,
            "attribute code": config.n_attr_channels,
            "input channels": features + config.n_attr_channels,
            "output channels": out,
            "output side": f"{2 * side}x{2 * side}",
        })
        side *= 2
    return pd.DataFrame(rows).set_index("layer")


def gradient_table(loss: torch.Tensor, modules: Mapping[str, nn.Module], retain_graph: bool = True) -> pd.DataFrame:
    """Which networks a loss's gradient reaches: backpropagate ``loss`` alone and count, per
    module, the parameter tensors that got a non-zero gradient, and the gradient's norm.

    Gradients are cleared before and after (``.grad = None``), so the table shows this loss
    only and nothing leaks into a later optimiser step. ``retain_graph`` keeps the graph,
    so several losses of one forward pass can be examined in turn.
    """
    params = {name: [p for p in m.parameters()] for name, m in modules.items()}
    for ps in params.values():
        for p in ps:
            p.grad = None
    loss.backward(retain_graph=retain_graph)
    rows = {}
    for name, ps in params.items():
        grads = [p.grad for p in ps if p.grad is not None]
        reached = sum(1 for g in grads if bool(g.abs().sum() > 0))
        norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads)) if grads else 0.0
        rows[name] = {"parameter tensors": len(ps), "reached by the gradient": reached, "gradient norm": norm}
        for p in ps:
            p.grad = None
    table = pd.DataFrame(rows).T.astype({"parameter tensors": int, "reached by the gradient": int})
    table.index.name = "network"
    return table


def plot_lambda_schedule(lambda_max: float = COURSE_RECIPE["lambda_e"], ramp_steps: int = COURSE_RECIPE["lambda_ramp"],
                         total_steps: int = 3000) -> Figure:
    """lambda_E against the autoencoder step: the paper's schedule (0 to 1e-4 over 500,000
    steps) on the left, the one given (the course's by default) on the right."""
    from .losses import lambda_e

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


def memory_estimate(config: ModelConfig, batch_size: int = 32) -> pd.DataFrame:
    """A rough GPU memory budget of training, in MiB (an estimate, not a measurement).

    * parameters: weights, gradients and Adam's two moments, 4 float32 copies, for the
      autoencoder and the latent discriminator;
    * activations: autograd keeps about three tensors per layer (the convolution's output,
      the normalised one, the activation) for the batch of the autoencoder step, which runs
      E, D and P; the discriminator step's are smaller (P only).

    CUDA's context (300-500 MiB) and the allocator's slack come on top.
    """
    from .summary import layer_table, parameter_counts

    counts = parameter_counts(config)
    rows = layer_table(config)
    per_image = sum(int(np.prod(r["output"])) for r in rows if r["network"] in ("encoder", "decoder",
                                                                                  "latent_discriminator"))
    mib = 2 ** 20
    params = counts["autoencoder"] + counts["latent_discriminator"]
    table = pd.DataFrame({
        "parameters": {"autoencoder + latent discriminator": params},
        "weights, gradients, Adam (MiB)": {"autoencoder + latent discriminator": 16 * params / mib},
        f"activations, batch {batch_size} (MiB)": {"autoencoder + latent discriminator":
                                                   3 * 4 * per_image * batch_size / mib},
    })
    table["total, rough (MiB)"] = table.iloc[:, 1] + table.iloc[:, 2]
    return table.round(1)


def speed_report(run_dir: str | os.PathLike, epoch_images: int = 50_000) -> str:
    """The speed a run measured on this machine (median images per second of its logged
    rows, both networks' batches counted) and what it means: seconds per step, minutes per
    reference "epoch" of ``epoch_images`` images, i.e. ``epoch_images / batch`` steps."""
    from .train import read_metrics

    m = read_metrics(run_dir)
    train = m[m["phase"] == "train"]
    if train.empty or "images_per_s" not in train:
        return f"{run_dir}: no training rows logged yet"
    record = json.loads((Path(run_dir) / "config.json").read_text())["train"]
    ips = float(train["images_per_s"].median())
    batch = int(record["batch_size"])
    step_s = 2 * batch / ips
    epoch_steps = epoch_images / batch
    return (f"{ips:,.0f} images/s ({step_s * 1e3:.0f} ms per step of two batches of {batch}, "
            f"{record['image_size']} px): an epoch of {epoch_images:,} images ({epoch_steps:,.0f} steps) "
            f"takes {epoch_steps * step_s / 60:.1f} min here")


# ============================================================================ runs


def default_steps(device: str = "auto") -> int:
    """Training steps for the course's run: the demo's on a CPU or Apple GPU (a few minutes at
    64 px on two cores), 20,000 on a CUDA GPU."""
    from .train import pick_device

    return 20_000 if pick_device(device).type == "cuda" else DEMO["steps"]


def _choose_balance(data_dir, attributes: Sequence[str]) -> str | None:
    """The rarest of ``attributes`` if its rarer class is under :data:`BALANCE_BELOW`, else None."""
    celeba = read_celeba(data_dir)
    name = rarest_attribute(celeba, attributes)
    rate = float(celeba.attributes[name].to_numpy()[np.asarray(celeba.split) == 0].mean())
    return name if min(rate, 1 - rate) < BALANCE_BELOW else None


def model_config(image_size: int = 64, attributes: Sequence[str] = DEMO["attributes"]) -> ModelConfig:
    """The networks of the course's recipe (:data:`COURSE_RECIPE`) at a size, for attributes."""
    return ModelConfig.from_preset(COURSE_RECIPE.get("preset", "official"), image_size, list(attributes),
                                   **COURSE_RECIPE.get("model", {}))


def train_config(data_dir: str | os.PathLike, attributes: Sequence[str], image_size: int = 64,
                 steps: int | None = None, batch_size: int = 32, device: str = "auto",
                 balance: str | None = "auto", **overrides):
    """The :class:`~faderlib.train.TrainConfig` of the course: the demo's recipe
    (:data:`COURSE_RECIPE`) at the notebook's size, attributes and steps.

    ``steps=None``: :func:`default_steps`. ``balance="auto"``: draw the rarest attribute
    class-balanced when it is under 15 % (Eyeglasses: 6.5 %), else no balancing. Checkpoint,
    validation and log intervals follow the number of steps (they may change on resume); a
    run always validates and saves a checkpoint at its last step.
    """
    steps = default_steps(device) if steps is None else int(steps)
    if balance == "auto":
        balance = _choose_balance(data_dir, attributes)
    values = dict(json.loads(json.dumps(COURSE_RECIPE)), data_dir=str(data_dir), attributes=tuple(attributes),
                  image_size=image_size, steps=steps, batch_size=batch_size, device=device, balance=balance,
                  checkpoint_every=max(steps // 4, 100), eval_every=max(steps // 6, 50),
                  log_every=max(1, min(25, steps // 10)))
    values.update(overrides)
    return TrainConfig(**values)


def holds_run(path: str | os.PathLike) -> bool:
    """True if ``path`` is a trained run folder (its config and a last checkpoint)."""
    path = Path(path)
    return (path / "config.json").is_file() and (path / "checkpoints" / "last.pt").is_file()


@dataclass
class CourseRuns:
    """Where the course's runs are: the Fader network to use, and where its companions
    (classifier, lambda_E = 0 ablation, the other balancing choice) are or will be written."""

    fader: Path
    classifier: Path
    ablation: Path
    unbalanced: Path
    source: str

    def __str__(self) -> str:
        return f"Fader network: {self.fader} ({self.source})"


def course_runs(run_dir: str | os.PathLike) -> CourseRuns:
    """The layout of the course folder ``run_dir`` (see the module docstring). A folder
    that is itself a run (made by ``fader train --out``) keeps its companions beside it,
    named ``<run>_classifier`` and so on."""
    root = Path(run_dir)
    if holds_run(root) or ((root / "config.json").is_file() and not (root / "fader").exists()):
        return CourseRuns(root, root.with_name(root.name + "_classifier"), root.with_name(root.name + "_lambda0"),
                          root.with_name(root.name + "_unbalanced"), "a run folder")
    return CourseRuns(root / "fader", root / "classifier", root / "ablation_lambda0", root / "unbalanced",
                      "the course folder")


def find_run(run_dir: str | os.PathLike, demo_dir: str | os.PathLike | None = None) -> CourseRuns | None:
    """The trained run to use: in ``run_dir`` (a course folder or a run folder), else in
    ``demo_dir`` (``runs/demo`` after ``make demo``), else None. Companions that the run's
    folder lacks are placed in ``run_dir``."""
    mine = course_runs(run_dir)
    if holds_run(mine.fader):
        return CourseRuns(mine.fader, mine.classifier, mine.ablation, mine.unbalanced, f"trained in {run_dir}")
    if demo_dir is not None:
        demo = course_runs(demo_dir)
        if holds_run(demo.fader):
            def pick(theirs: Path, ours: Path) -> Path:
                return theirs if theirs.exists() else ours

            return CourseRuns(demo.fader, pick(demo.classifier, mine.classifier), pick(demo.ablation, mine.ablation),
                              mine.unbalanced, f"the demo's run in {demo_dir}")
    return None


def slider_app(run_dir: str | os.PathLike, demo_dir: str | os.PathLike | None = None):
    """The live slider app (:class:`faderlib.sliders.SliderApp`) on the run :func:`find_run`
    finds; ``notebooks/apps/slider_app.ipynb``, served by ``make app`` in Voila, is this one call.
    Trains nothing: without a run it says how to make one."""
    from .sliders import SliderApp

    found = find_run(run_dir, demo_dir)
    if found is None:
        where = f"{Path(run_dir).resolve()}" + (f" or {Path(demo_dir).resolve()}" if demo_dir else "")
        raise FileNotFoundError(f"no trained Fader network in {where}. Make one first: `make demo` (about "
                                "10 minutes on a laptop CPU), or notebook 03_training.")
    return SliderApp.from_run_dir(found.fader)


def ensure_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
               attributes: Sequence[str] = DEMO["attributes"], image_size: int = 64, steps: int | None = None,
               batch_size: int = 32, device: str = "auto", demo_dir: str | os.PathLike | None = None,
               progress: bool = True) -> CourseRuns:
    """The trained run for notebooks 04 and 05: the one in ``run_dir`` (notebook 03's), else
    the one in ``demo_dir`` (``make demo``'s), else a run of the course's recipe trained now
    into ``run_dir/fader`` on ``data_dir`` (the same run notebook 03 makes: running 03 later
    finds it done). Prints which one it uses."""
    from .train import Trainer

    found = find_run(run_dir, demo_dir)
    if found is not None:
        print(found)
        return found
    runs = course_runs(run_dir)
    data = ensure_data(data_dir, progress=progress)
    config = train_config(data, attributes, image_size, steps, batch_size, device)
    print(f"no trained run in {run_dir}" + (f" or {demo_dir}" if demo_dir else "")
          + f": training one now ({config.steps:,} steps at {image_size} px; notebook 03 explains it)")
    trainer = Trainer(config, runs.fader, progress=progress)
    trainer.train()
    runs.source = "trained just now"
    print(runs)
    return runs


def _run_record(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a training run (no config.json); train it first (notebook 03)")
    return json.loads(path.read_text())


def ensure_classifier(runs: CourseRuns, steps: int | None = None, progress: bool = True) -> Path:
    """The attribute classifier that judges the run's swaps: ``runs.classifier`` if it holds
    one that reads the run's attributes at its size, else one trained now on the run's data
    (``steps``: by default a third of the run's steps, at most 1,000)."""
    from .classifier import ClassifierConfig, train_classifier

    record = _run_record(runs.fader)
    model = record["model"]
    names = [a.split(".")[0] for a in model["attributes"]]
    path = Path(runs.classifier)
    if (path / "classifier.pt").is_file():
        saved = json.loads((path / "config.json").read_text())["model"]
        known = [a.split(".")[0] for a in saved["attributes"]]
        if saved["image_size"] == model["image_size"] and all(n in known for n in names):
            return path
        raise FileExistsError(
            f"{path} holds a classifier of {saved['image_size']} px images on {known}, but the run makes "
            f"{model['image_size']} px images of {names}: delete {path} (or choose another RUN_DIR) and run again")
    run_steps = int(record["train"]["steps"])
    steps = steps if steps is not None else max(1, min(CLASSIFIER_STEPS, run_steps // 3))
    config = ClassifierConfig(data_dir=record["data_root"], image_size=model["image_size"], attributes=tuple(names),
                              steps=steps, model=dict(CLASSIFIER_MODEL), device=record["train"].get("device", "auto"))
    record = train_classifier(config, path, progress=progress)
    acc = ", ".join(f"{k} {v:.1%}" for k, v in record["test_accuracy"].items())
    print(f"classifier trained ({steps} steps): test accuracy {acc}")
    return path


def train_variant(run_dir: str | os.PathLike, out_dir: str | os.PathLike, progress: bool = True,
                  callbacks: Sequence = (), **changes) -> Path:
    """Train the run of ``run_dir`` again into ``out_dir`` with some settings changed, e.g.
    ``lambda_e=0.0`` (the ablation) or ``balance=None``; same data, seed and steps.
    Resumes (or returns at once) when ``out_dir`` already holds that run."""
    from .train import Trainer

    record = _run_record(run_dir)
    settings = {**record["train"], "data_dir": record["data_root"], **changes}
    trainer = Trainer(TrainConfig.from_dict(settings), out_dir, progress=progress, callbacks=list(callbacks))
    trainer.train()
    return Path(out_dir)


# ============================================================================ results


def compare_results(results: Mapping[str, dict]) -> pd.DataFrame:
    """Evaluations (:func:`faderlib.evaluate.evaluate`) side by side, one column per run:
    reconstruction PSNR, then per attribute the swap accuracy in each direction, the latent
    discriminator's accuracy against the majority rate, and the counterfactual PSNR."""
    columns = {}
    for label, r in results.items():
        col = {"reconstruction PSNR (dB)": r["reconstruction"]["psnr"]}
        for name, d in r["latent_discriminator"].items():
            swap = r.get("swap_accuracy", {}).get(name, {})
            if swap:
                col[f"{name}: swap 0 -> 1 (add)"] = swap.get("1")
                col[f"{name}: swap 1 -> 0 (remove)"] = swap.get("0")
            col[f"{name}: discriminator accuracy"] = d["accuracy"]
            col[f"{name}: majority rate"] = d["majority_rate"]
            if name in r.get("counterfactual_psnr", {}):
                col[f"{name}: counterfactual PSNR (dB)"] = r["counterfactual_psnr"][name]
        columns[label] = col
    table = pd.DataFrame(columns)
    return table.astype(float).round(3)


def swap_table(result: dict) -> pd.DataFrame:
    """Swap accuracy by direction, one row per attribute: removing (images with the
    attribute, decoded with y = 0), adding (images without it, decoded with y = 1), and the
    classifier's own test accuracy, the ceiling of both."""
    rows = {}
    for name, swap in result["swap_accuracy"].items():
        row = {}
        if set(swap) == {"0", "1"}:
            row["remove (1 -> 0)"], row["add (0 -> 1)"] = swap["0"], swap["1"]
        else:
            row.update({f"-> {k}": v for k, v in swap.items()})
        row["classifier accuracy"] = result["classifier_accuracy"][name]
        rows[name] = row
    table = pd.DataFrame(rows).T.astype(float).round(3)
    table.index.name = "attribute"
    return table


def side_by_side(images: Mapping[str, object], width: float = 6.0) -> Figure:
    """PIL images (e.g. two interpolation grids) next to each other, titled by their keys."""
    fig = Figure(figsize=(width * len(images), width * 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(images)))
    for ax, (title, image) in zip(axes, images.items()):
        ax.imshow(np.asarray(image), interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    return fig


def _test_batch(run, n: int, start: int = 0):
    from .cache import prepared
    from .data import FaderDataset

    data = prepared(run.data_dir, run.model_config.image_size, progress=False)
    test = FaderDataset(data, "test", run.model_config.attribute_names, flip=False)
    idx = torch.arange(start, min(start + n, len(test)))
    x, y = test.batch(idx)
    return test, idx, x, y


def _show(ax, x: torch.Tensor, title: str) -> None:
    from .data import to_uint8

    ax.imshow(to_uint8(x), interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


@torch.no_grad()
def counterfactual_figure(run, attribute: str, n: int = 4, start: int = 0) -> Figure | None:
    """Edits against the truth, for synthetic faces: per test image, the original x, the
    reconstruction D(z, y), the edit D(z, y') with ``attribute`` flipped, and the same face
    re-rendered with that attribute flipped (:func:`faderlib.synth.counterfactual`), with the
    PSNR of the edit and of the unedited reconstruction against that truth. Both went through
    the decoder (the same blur), so a good edit is closer to the truth than the reconstruction.

    run: a :class:`~faderlib.runs.Run`. For photographs (no truth) prints why and returns None.
    """
    from .cache import crop_and_resize
    from .evaluate import psnr
    from .synth import counterfactual, is_synthetic

    if not is_synthetic(run.data_dir):
        print("this run was trained on photographs: no ground truth exists for an edited face, so the "
              "comparison needs the synthetic faces (DATA_DIR = None)")
        return None
    config = run.model_config
    j = config.attribute_names.index(attribute)
    test, idx, x, y = _test_batch(run, n, start)
    ae = run.autoencoder.eval()
    z = ae.encode(x)
    y2 = y.clone()
    y2[:, j] = 1 - y2[:, j]
    recon, edit = ae.decode(z, y), ae.decode(z, y2)
    fig = Figure(figsize=(7.2, 1.9 * len(idx) + 0.4), layout="constrained")
    axes = fig.subplots(len(idx), 4, squeeze=False)
    for r, i in enumerate(idx.tolist()):
        name = test.prepared.filenames[test.rows[i]]
        truth = torch.tensor(crop_and_resize(counterfactual(run.data_dir, name, {attribute: int(y2[r, j])}),
                                                 config.image_size)).float().div(127.5).sub(1)
        p_edit = psnr(float(((edit[r] - truth) ** 2).mean()))
        p_recon = psnr(float(((recon[r] - truth) ** 2).mean()))
        _show(axes[r, 0], x[r], f"original x, {attribute}={int(y[r, j])}")
        _show(axes[r, 1], recon[r], f"reconstruction D(z, y)\n{p_recon:.1f} dB from the truth")
        _show(axes[r, 2], edit[r], f"edit, {attribute}={int(y2[r, j])}\n{p_edit:.1f} dB from the truth")
        _show(axes[r, 3], truth, "truth: re-rendered")
    fig.suptitle(f"{attribute}: the edit against the true counterfactual (PSNR, higher is closer)", fontsize=10)
    return fig


@torch.no_grad()
def swap_failures(run, classifier_dir: str | os.PathLike, attribute: str, target: int = 1, n: int = 6,
                  max_images: int = 512) -> Figure:
    """Failure cases: test images (without ``attribute`` when ``target`` is 1) whose edit to
    ``target`` the classifier does not read as ``target``, worst first, each shown as the
    original and the edit with the classifier's probability of ``target``. The title counts
    the failures among the images tried."""
    from .classifier import load_classifier

    config = run.model_config
    j = config.attribute_names.index(attribute)
    clf = load_classifier(classifier_dir)
    cj = clf.config.attribute_names.index(attribute)
    start = sum(a.n_values for a in clf.config.attributes[:cj])
    n_values = clf.config.attributes[cj].n_values
    _, _, x, y = _test_batch(run, max_images)
    keep = y[:, j] != target
    x, y = x[keep], y[keep]
    ae = run.autoencoder.eval()
    y2 = y.clone()
    y2[:, j] = target
    edits = torch.cat([ae.decode(ae.encode(x[s:s + 128]), y2[s:s + 128]) for s in range(0, len(x), 128)]) \
        if len(x) else x
    probs = torch.cat([clf(edits[s:s + 128])[:, start:start + n_values].softmax(1)[:, target]
                       for s in range(0, len(edits), 128)]) if len(edits) else torch.zeros(0)
    failed = torch.nonzero(probs < 0.5).flatten()
    failed = failed[torch.argsort(probs[failed])][:n]
    title = (f"{attribute} -> {target}: {int((probs < 0.5).sum())} of {len(probs)} edits not read as {target} "
             f"by the classifier")
    cols = max(len(failed), 1)
    fig = Figure(figsize=(1.7 * cols + 0.4, 4.0), layout="constrained")
    axes = fig.subplots(2, cols, squeeze=False)
    if len(failed) == 0:
        for ax in axes.flat:
            ax.set_axis_off()
        axes[0, 0].text(0.5, 0.5, "no failure", ha="center", va="center", transform=axes[0, 0].transAxes)
    for c, i in enumerate(failed.tolist()):
        _show(axes[0, c], x[i], "original")
        _show(axes[1, c], edits[i], f"edit: p({target}) = {float(probs[i]):.2f}")
    fig.suptitle(title, fontsize=10)
    return fig


def sample_photo(run, out_path: str | os.PathLike, index: int = 0) -> Path:
    """Copy the original file (a 178x218 JPEG, as CelebA ships them) of test image ``index``
    of the run's data set to ``out_path``: a photo to edit when you have none of your own."""
    from .cache import prepared
    from .data import FaderDataset

    data = prepared(run.data_dir, run.model_config.image_size, progress=False)
    test = FaderDataset(data, "test", run.model_config.attribute_names, flip=False)
    name = data.filenames[test.rows[index]]
    source = Path(data.meta["image_dir"]) / name
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out)
    return out
