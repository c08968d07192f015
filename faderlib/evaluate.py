"""How well did it work? The evaluation of a trained run (paper section 4; REFERENCE.md section 3).

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
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from .losses import predict_classes
from .models import AutoEncoder
from .runs import load_run


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
    from .cache import prepared
    from .data import FaderDataset

    run = load_run(run_dir, checkpoint=checkpoint, device=device, with_discriminator=True)
    ae, dis, config = run.autoencoder, run.discriminator, run.model_config
    data = prepared(run.data_dir, config.image_size, progress=progress)
    test = FaderDataset(data, "test", config.attribute_names, flip=False)
    n = len(test) if max_images is None else min(max_images, len(test))
    names = config.attribute_names

    clf = clf_index = None
    if classifier_dir is not None:
        from .classifier import load_classifier

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
        from .classifier import predict

        clf_correct += (predict(clf, x)[:, clf_index] == y).sum(0).float().cpu()
        for j, a in enumerate(config.attributes):
            for target in range(a.n_values):
                mask = y[:, j] != target
                if not mask.any():
                    continue
                for s in strengths:
                    read = predict(clf, ae.decode(z[mask], swap_code(y[mask], j, target, s, config)))
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
    from .synth import is_synthetic

    if is_synthetic(run.data_dir):
        result.update(counterfactual_scores(ae, test, run.data_dir, counterfactual_images, device))
    return result


@torch.no_grad()
def counterfactual_scores(ae: AutoEncoder, test, data_dir, n_images: int, device) -> dict:
    """PSNR of each single-attribute edit against the synthetic face re-rendered with that
    attribute flipped (the ground truth no photograph can give)."""
    from .cache import crop_and_resize
    from .synth import counterfactual

    config = ae.config
    n = min(n_images, len(test))
    x, y = test.batch(torch.arange(n))
    x, y = x.to(device), y.to(device)
    z = ae.encode(x)
    edited_psnr, unedited_psnr = {}, {}
    for j, a in enumerate(config.attributes):
        if not a.is_binary:
            continue
        y2 = y.clone()
        y2[:, j] = 1 - y2[:, j]
        edits, recs = ae.decode(z, y2), ae.decode(z, y)
        truth = torch.from_numpy(np.stack([
            crop_and_resize(counterfactual(data_dir, test.prepared.filenames[test.rows[i]], {a.name: int(y2[i, j])}),
                            config.image_size)
            for i in range(n)
        ])).float().div(127.5).sub(1).to(device)
        edited_psnr[a.name] = psnr(float(((edits - truth) ** 2).mean()))
        unedited_psnr[a.name] = psnr(float(((recs - truth) ** 2).mean()))
    return {"counterfactual_psnr": edited_psnr, "counterfactual_psnr_unedited": unedited_psnr}


def swap_code(y: torch.Tensor, j: int, target: int, strength: float, config) -> torch.Tensor:
    """The attributes y with attribute ``j`` set to ``target``: class indices at strength 1;
    otherwise binary alphas, ``strength`` to add the attribute, ``1 - strength`` to remove it."""
    if strength == 1.0 or not all(a.is_binary for a in config.attributes):
        y2 = y.clone()
        y2[:, j] = target
        return y2
    y2 = y.float()
    y2[:, j] = strength if target == 1 else 1.0 - strength
    return y2


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
