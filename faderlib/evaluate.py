"""How well did it work? The evaluation of a trained run (paper section 4; docs/paper_notes.md, section 4).

:func:`evaluate` returns one plain dict (``fader evaluate RUN --classifier CLF --json``):

* ``reconstruction``: ``mse`` (images in [-1, 1]) and ``psnr`` (dB, peak-to-peak 2) on
  the test split, decoded with the true attributes;
* ``latent_discriminator``: per attribute, its ``accuracy`` on the test split and the
  ``majority_rate``, what a discriminator that learned nothing from z can reach; and its
  ``balanced_accuracy`` (the mean of the per-class accuracies), which is 1/K for a
  discriminator that learned nothing, whatever the class frequencies or its own prior;
* ``swap_accuracy``: per attribute and target value, the share of test images whose value
  differs from the target that the classifier reads as the target after the edit;
* ``classifier_accuracy``: the classifier's own test accuracy, the ceiling of swap accuracy;
* ``counterfactual_psnr`` (synthetic faces only): per attribute, the PSNR of the edited
  image against the true face re-rendered with that attribute flipped; and, as a yardstick,
  ``counterfactual_psnr_unedited``, the PSNR of the unedited reconstruction against the same truth.

Beside it, the tables the notebooks show (:func:`swap_table`, :func:`compare_results`) and the
computing half of two pictures (:func:`counterfactual_edits`, :func:`swap_failures`; drawn by
:mod:`faderlib.plots`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
import torch

from .classifier import load_classifier, predict
from .data import FaderDataset
from .images import crop_and_resize, to_float
from .losses import predict_classes
from .models import AutoEncoder, set_attribute, swapped_attributes, toggle_attribute
from .runs import Run, load_run
from .synth import counterfactual, is_synthetic


def psnr(mse: float) -> float:
    """PSNR in dB of images in [-1, 1] (a peak-to-peak range of 2)."""
    return 10 * math.log10(4.0 / mse) if mse > 0 else math.inf


@torch.no_grad()
def evaluate(run_dir: str | os.PathLike, classifier_dir: str | os.PathLike | None = None, *,
             checkpoint: str = "last.pt", max_images: int | None = None, counterfactual_images: int = 200,
             strength: float = 1.0, also_strengths: tuple[float, ...] = (), batch_size: int = 128,
             device: str = "cpu", progress: bool = False) -> dict:
    """Evaluate the run in ``run_dir`` on the test split of its data set.

    ``strength`` is the edit strength of the swaps: 1 sets a binary attribute to exactly 0
    or 1 (the paper's protocol); 1.5 decodes with alpha = 1.5 to add it and -0.5 to remove
    it, as a slider pushed past the end does (peers such as AttGAN test at 2).
    ``also_strengths`` adds ``swap_accuracy_at`` (strength -> the same table) for others.
    """
    run = load_run(run_dir, checkpoint=checkpoint, device=device, with_discriminator=True)
    ae, dis, config = run.autoencoder, run.discriminator, run.model_config
    test = run.dataset("test", otherwise="evaluate a run whose data set is on this machine")
    n = len(test) if max_images is None else min(max_images, len(test))
    names = config.attribute_names

    clf = clf_index = None
    if classifier_dir is not None:
        clf = load_classifier(classifier_dir, device)
        if clf.config.image_size != config.image_size:
            raise ValueError(f"the classifier in {classifier_dir} reads {clf.config.image_size} px images, the run "
                             f"makes {config.image_size} px; train a classifier at --size {config.image_size}")
        missing = [a for a in names if a not in clf.config.attribute_names]
        if missing:
            raise ValueError(f"the classifier in {classifier_dir} was not trained on {missing}; "
                             f"it knows {clf.config.attribute_names}")
        clf_index = [clf.config.attribute_names.index(a) for a in names]

    se_sum, pixels = 0.0, 0
    class_hits = [torch.zeros(a.n_values) for a in config.attributes]    # right predictions per true class
    class_counts = [torch.zeros(a.n_values) for a in config.attributes]  # images per true class
    strengths = (strength, *also_strengths)
    swap_hits = {(s, a.name): torch.zeros(a.n_values) for s in strengths for a in config.attributes}
    swap_total = {a.name: torch.zeros(a.n_values) for a in config.attributes}
    clf_correct = torch.zeros(len(names))
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        x, y = test.batch(idx)
        x, y = x.to(device), y.to(device)
        z = ae.encode(x)
        x_hat = ae.decode(z, y)
        se_sum += float(((x_hat - x) ** 2).sum())
        pixels += x.numel()
        right = (predict_classes(dis(z), config) == y).cpu()
        for j, a in enumerate(config.attributes):
            yj = y[:, j].cpu()
            class_counts[j] += torch.bincount(yj, minlength=a.n_values).float()
            class_hits[j] += torch.bincount(yj[right[:, j]], minlength=a.n_values).float()
        if clf is None:
            continue
        clf_correct += (predict(clf, x)[:, clf_index] == y).sum(0).float().cpu()
        for j, a in enumerate(config.attributes):
            for target in range(a.n_values):
                mask = y[:, j] != target
                if not mask.any():
                    continue
                for s in strengths:
                    read = predict(clf, ae.decode(z[mask], swapped_attributes(y[mask], j, target, s, config)))
                    swap_hits[s, a.name][target] += float((read[:, clf_index[j]] == target).sum())
                swap_total[a.name][target] += float(mask.sum())

    mse = se_sum / max(pixels, 1)
    result: dict = {
        "checkpoint": checkpoint,
        "swap_strength": strength,
        "step": run.step,
        "test_images": n,
        "reconstruction": {"mse": mse, "psnr": psnr(mse)},
        "latent_discriminator": {
            name: {"accuracy": float(class_hits[j].sum()) / n, "majority_rate": float(class_counts[j].max()) / n,
                   "balanced_accuracy": float((class_hits[j] / class_counts[j])[class_counts[j] > 0].mean())}
            for j, name in enumerate(names)
        },
    }
    if clf is not None:
        def table(s: float) -> dict:
            return {a.name: {str(t): float(swap_hits[s, a.name][t] / swap_total[a.name][t])
                             if swap_total[a.name][t] else None for t in range(a.n_values)}
                    for a in config.attributes}

        result["swap_accuracy"] = table(strength)
        if also_strengths:
            result["swap_accuracy_at"] = {f"{s:g}": table(s) for s in also_strengths}
        result["classifier_accuracy"] = {name: float(clf_correct[j]) / n for j, name in enumerate(names)}
    if is_synthetic(run.data_dir):
        result.update(counterfactual_scores(ae, test, run.data_dir, counterfactual_images, device))
    return result


# ----------------------------------------------------------------------------- counterfactuals
def counterfactual_truth(data_dir, test: FaderDataset, index: torch.Tensor, attribute: str,
                         values: torch.Tensor, device="cpu") -> torch.Tensor:
    """The true counterfactuals of synthetic test images ``index``: each face re-rendered with
    ``attribute`` set to its entry of ``values`` (:func:`faderlib.synth.counterfactual`),
    preprocessed as the cache was, as x (B, 3, S, S) in [-1, 1]."""
    faces = [crop_and_resize(counterfactual(data_dir, test.prepared.filenames[test.rows[int(i)]],
                                            {attribute: int(v)}), test.size)
             for i, v in zip(index.tolist(), values.tolist())]
    return to_float(np.stack(faces)).to(device)


@torch.no_grad()
def counterfactual_scores(ae: AutoEncoder, test: FaderDataset, data_dir, n_images: int, device) -> dict:
    """PSNR of each single-attribute edit against the synthetic face re-rendered with that
    attribute flipped (the ground truth no photograph can give), and of the unedited
    reconstruction against the same truth."""
    config = ae.config
    n = min(n_images, len(test))
    index = torch.arange(n)
    x, y = test.batch(index)
    x, y = x.to(device), y.to(device)
    z = ae.encode(x)
    recs = ae.decode(z, y)  # the unedited reconstruction, the yardstick of every attribute's edit
    edited_psnr, unedited_psnr = {}, {}
    for j, a in enumerate(config.attributes):
        if not a.is_binary:
            continue
        y2 = toggle_attribute(y, j, config)
        edits = ae.decode(z, y2)
        truth = counterfactual_truth(data_dir, test, index, a.name, y2[:, j], device)
        edited_psnr[a.name] = psnr(float(((edits - truth) ** 2).mean()))
        unedited_psnr[a.name] = psnr(float(((recs - truth) ** 2).mean()))
    return {"counterfactual_psnr": edited_psnr, "counterfactual_psnr_unedited": unedited_psnr}


@dataclass
class Counterfactuals:
    """Test images next to their edits and the truth (:func:`counterfactual_edits`); each
    tensor (B, 3, S, S) in [-1, 1], PSNRs per image in dB against ``truth``."""

    attribute: str
    names: list[str]          # file names of the images
    y: torch.Tensor           # their values of the attribute (B,)
    y_edit: torch.Tensor      # the values the edits were decoded with (B,)
    x: torch.Tensor
    reconstruction: torch.Tensor
    edit: torch.Tensor
    truth: torch.Tensor
    psnr_reconstruction: list[float]
    psnr_edit: list[float]


@torch.no_grad()
def counterfactual_edits(run: Run, attribute: str, n: int = 4, start: int = 0) -> Counterfactuals | None:
    """For synthetic test images ``start..start+n-1``: the original x, the reconstruction
    D(z, y), the edit D(z, y') with ``attribute`` flipped, the truth (the face re-rendered
    with it flipped), and the PSNR of the reconstruction and of the edit against the truth.
    Both went through the decoder (the same blur), so a good edit is closer to the truth than
    the reconstruction. None for a run trained on photographs (no truth exists)."""
    if not is_synthetic(run.data_dir):
        return None
    config = run.model_config
    j = config.attribute_names.index(attribute)
    test = run.dataset("test")
    index = torch.arange(start, min(start + n, len(test)))
    x, y = test.batch(index)
    ae = run.autoencoder.eval()
    z = ae.encode(x)
    y2 = toggle_attribute(y, j, config)
    recon, edit = ae.decode(z, y), ae.decode(z, y2)
    truth = counterfactual_truth(run.data_dir, test, index, attribute, y2[:, j])
    per_image = [(psnr(float(((recon[r] - truth[r]) ** 2).mean())), psnr(float(((edit[r] - truth[r]) ** 2).mean())))
                 for r in range(len(index))]
    return Counterfactuals(attribute, [test.prepared.filenames[test.rows[int(i)]] for i in index], y[:, j],
                           y2[:, j], x, recon, edit, truth, [p for p, _ in per_image], [p for _, p in per_image])


# ----------------------------------------------------------------------------- failure cases
@dataclass
class SwapFailures:
    """Edits the classifier does not read as their target (:func:`swap_failures`), worst first."""

    attribute: str
    target: int
    tried: int                # images edited
    failed: int               # of those, not read as the target
    x: torch.Tensor           # the worst failures' originals (k, 3, S, S)
    edits: torch.Tensor       # and their edits
    probability: list[float]  # the classifier's probability of the target, per failure shown


@torch.no_grad()
def swap_failures(run: Run, classifier_dir: str | os.PathLike, attribute: str, target: int = 1, n: int = 6,
                  max_images: int = 512) -> SwapFailures:
    """Among the first ``max_images`` test images whose ``attribute`` is not ``target``, the
    edits to ``target`` that the classifier does not read as ``target`` (probability < 0.5),
    the ``n`` worst kept."""
    config = run.model_config
    j = config.attribute_names.index(attribute)
    clf = load_classifier(classifier_dir)
    cj = clf.config.attribute_names.index(attribute)
    block = clf.config.attribute_blocks[cj]
    test = run.dataset("test")
    x, y = test.batch(torch.arange(min(max_images, len(test))))
    keep = y[:, j] != target
    x, y = x[keep], y[keep]
    ae = run.autoencoder.eval()
    y2 = set_attribute(y, j, target)
    edits = torch.cat([ae.decode(ae.encode(x[s:s + 128]), y2[s:s + 128]) for s in range(0, len(x), 128)]) \
        if len(x) else x
    probs = torch.cat([clf(edits[s:s + 128])[:, block].softmax(1)[:, target]
                       for s in range(0, len(edits), 128)]) if len(edits) else torch.zeros(0)
    failed = torch.nonzero(probs < 0.5).flatten()
    worst = failed[torch.argsort(probs[failed])][:n]
    return SwapFailures(attribute, target, len(probs), len(failed), x[worst], edits[worst], probs[worst].tolist())


# ----------------------------------------------------------------------------- tables
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


def compare_results(results: Mapping[str, dict]) -> pd.DataFrame:
    """Evaluations (:func:`evaluate`) side by side, one column per run: reconstruction PSNR,
    then per attribute the swap accuracy in each direction, the latent discriminator's
    accuracy against the majority rate, and the counterfactual PSNR."""
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


def format_report(result: dict) -> str:
    """The evaluation as a short table for a terminal."""
    lines = [f"checkpoint {result['checkpoint']} (step {result['step']}), {result['test_images']} test images, "
             f"swap strength {result['swap_strength']:g}",
             f"reconstruction: MSE {result['reconstruction']['mse']:.4f}, PSNR {result['reconstruction']['psnr']:.1f} dB",
             "",
             f"{'attribute':<22}{'disc. acc':>10}{'majority':>10}{'balanced':>10}{'swap->0':>9}{'swap->1':>9}{'clf acc':>9}"
             f"{'cf PSNR':>9}"]
    for name, d in result["latent_discriminator"].items():
        swap = result.get("swap_accuracy", {}).get(name, {})
        clf = result.get("classifier_accuracy", {}).get(name)
        cf = result.get("counterfactual_psnr", {}).get(name)

        def f(v, fmt="{:.3f}"):
            return fmt.format(v) if v is not None else "-"

        lines.append(f"{name:<22}{f(d['accuracy']):>10}{f(d['majority_rate']):>10}{f(d['balanced_accuracy']):>10}"
                     f"{f(swap.get('0')):>9}"
                     f"{f(swap.get('1')):>9}{f(clf):>9}{f(cf, '{:.1f}'):>9}")
    return "\n".join(lines)
