"""How well did it work? The evaluation of a trained run (the paper, section 4;
docs/paper_notes.md, 'Evaluation').

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
* ``latent_probe``: per attribute, the balanced test accuracy of a fresh logistic regression
  fitted on the frozen codes z (:func:`latent_probe`): an independent witness of invariance;
* ``probe_floor``: per attribute, the same probe's balanced accuracy fitted not on z but on the
  *other* attributes of the label table (:func:`probe_floor`): what a z that holds nothing of y
  but those other attributes (which it must hold to rebuild the face) still gives away. The
  latent probe can fall to this floor, not to 0.5;
* ``counterfactual_psnr`` (synthetic faces only): per attribute, the PSNR of the edited
  image against the true face re-rendered with that attribute flipped; and, as a yardstick,
  ``counterfactual_psnr_unedited``, the PSNR of the unedited reconstruction against the same truth;
  ``counterfactual_gain`` the difference (what the edit gained: the measure a classifier cannot
  saturate), and ``counterfactual_gain_masked`` the same on the pixels the attribute changes.

Beside it, the computing half of two pictures (:func:`counterfactual_edits`, :func:`swap_failures`;
drawn by :mod:`faderlib.plots`). The measures themselves (PSNR, balanced accuracy, the pixels an
attribute changes) are :mod:`faderlib.metrics`; the tables and sentences the notebooks show
(:func:`faderlib.reports.swap_table`, :func:`faderlib.reports.compare_results`, ...) are
:mod:`faderlib.reports`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .classifier import load_classifier, predict
from .data import FaderDataset, check_attributes_vary
from .devices import pick_device
from .images import crop_and_resize, to_float
from .metrics import balanced_accuracy, changed_pixels, masked_psnr, predict_classes, psnr
from .models import AutoEncoder, set_attribute, swapped_attributes, toggle_attribute
from .runs import Run, load_run
from .synth import counterfactual, is_synthetic


@torch.no_grad()
def evaluate(run_dir: str | os.PathLike, classifier_dir: str | os.PathLike | None = None, *,
             checkpoint: str = "last.pt", max_images: int | None = None, counterfactual_images: int = 200,
             strength: float = 1.0, also_strengths: tuple[float, ...] = (), batch_size: int = 128,
             probe_images: int = 2000, device: str = "cpu", progress: bool = False) -> dict:
    """Evaluate the run in ``run_dir`` on the test split of its data set.

    ``strength`` is the edit strength of the swaps: 1 sets a binary attribute to exactly 0
    or 1 (the paper's protocol); 1.5 decodes with alpha = 1.5 to add it and -0.5 to remove
    it, as a slider pushed past the end does (peers such as AttGAN test at 2).
    ``also_strengths`` adds ``swap_accuracy_at`` (strength -> the same table) for others.
    ``probe_images``: training images the latent probe is fitted on (:func:`latent_probe`; 0: no probe).
    """
    device = pick_device(str(device))  # a missing GPU is named before any file is read
    run = load_run(run_dir, checkpoint=checkpoint, device=device, with_discriminator=True)
    ae, dis, config = run.autoencoder, run.discriminator, run.model_config
    test = run.dataset("test", otherwise="evaluate a run whose data set is on this machine")
    # an attribute with one value in the test split would score a perfect, meaningless balanced
    # accuracy and swaps in one direction only: refused by name, with its counts
    check_attributes_vary(test.prepared, config.attribute_names, "test")
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
    if probe_images:
        train = run.dataset("train")
        result["latent_probe"] = latent_probe(ae, train, test, train_images=probe_images,
                                              test_images=min(n, 1000), device=device)
        floor = probe_floor(train, test, config, train_images=probe_images, test_images=min(n, 1000))
        if floor:
            result["probe_floor"] = floor
    if is_synthetic(run.data_dir):
        result.update(counterfactual_scores(ae, test, run.data_dir, counterfactual_images, device))
    return result


# ----------------------------------------------------------------------------- the latent probe
@torch.no_grad()
def encode_split(ae: AutoEncoder, data: FaderDataset, n: int, batch_size: int = 256, device="cpu"):
    """z = E(x) of the first ``n`` images of a split, flattened: (n, C*h*w), and their y (n, n_attr)."""
    zs, ys = [], []
    for start in range(0, min(n, len(data)), batch_size):
        x, y = data.batch(torch.arange(start, min(start + batch_size, n, len(data))))
        zs.append(ae.encode(x.to(device)).flatten(1).float().cpu())
        ys.append(y)
    return torch.cat(zs), torch.cat(ys)


def fit_probe(z: torch.Tensor, labels: torch.Tensor, n_values: int = 2, steps: int = 300, lr: float = 0.05,
              weight_decay: float = 1e-3) -> nn.Linear:
    """A fresh linear classifier (logistic regression) of one attribute from flattened codes ``z``
    (N, d), standardised by the caller: full-batch Adam for ``steps`` steps, each class weighted by
    the inverse of its frequency (so that a rare class is not simply ignored), starting from zero
    weights (the same fit every time). It draws no random number (a training run that refits it
    at each validation goes on as if it had not)."""
    return fit_probes(z, labels[:, None], [n_values], steps, lr, weight_decay)


def fit_probes(z: torch.Tensor, labels: torch.Tensor, n_values: list[int], steps: int = 300, lr: float = 0.05,
               weight_decay: float = 1e-3) -> nn.Linear:
    """:func:`fit_probe` of several attributes at once: ``labels`` (N, n_attr), ``n_values`` the number
    of values of each. One linear layer whose outputs hold one block of logits per attribute (in
    order, as the discriminator's), the loss the sum of each block's cross-entropy. Each block's loss
    reaches its own weights alone, and Adam and its weight decay act on each weight alone: the same
    fits as one :func:`fit_probe` per attribute, in one matrix product per step."""
    with torch.random.fork_rng(devices=[]):  # the layer's random initial weights are drawn and undone: zeros below
        probe = nn.Linear(z.shape[1], sum(n_values), device=z.device)
    nn.init.zeros_(probe.weight)
    nn.init.zeros_(probe.bias)
    blocks, weights, start = [], [], 0
    for j, k in enumerate(n_values):
        counts = torch.bincount(labels[:, j], minlength=k).float()
        weights.append(torch.where(counts > 0, counts.sum() / (k * counts.clamp(min=1)), torch.zeros_like(counts)))
        blocks.append(slice(start, start + k))
        start += k
    opt = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        logits = probe(z)
        loss = sum(nn.functional.cross_entropy(logits[:, b], labels[:, j], weight=w)
                   for j, (b, w) in enumerate(zip(blocks, weights)))
        loss.backward()
        opt.step()
    return probe


def latent_probe(ae: AutoEncoder, train: FaderDataset, test: FaderDataset, train_images: int = 2000,
                 test_images: int = 1000, steps: int = 300, device="cpu") -> dict:
    """An independent witness of what z says about y (in the manner of InterFaceGAN's linear probes).

    The latent discriminator was trained *against* the encoder, so its blindness is weak evidence:
    the encoder may only have learnt to fool that one network. Here the encoder is frozen and a
    fresh logistic regression per attribute is fitted on the flattened codes of ``train_images``
    training images, then scored on ``test_images`` test images. Returns per attribute its
    ``balanced_accuracy`` (0.5 for a binary attribute: z says nothing a line can read; near 1:
    z still carries the attribute) and its plain ``accuracy``.
    """
    was_training = ae.training
    ae.eval()
    try:
        z_train, y_train = encode_split(ae, train, train_images, device=device)
        z_test, y_test = encode_split(ae, test, test_images, device=device)
    finally:
        ae.train(was_training)
    return probe_scores(z_train, y_train, z_test, y_test, ae.config, steps)


def probe_scores(z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor,
                 config, steps: int = 300) -> dict:
    """The probe's fit and score on codes already computed: ``z_train`` and ``z_test`` (N, d) are
    standardised with the mean and deviation of ``z_train``, a probe per attribute of ``config`` (a
    :class:`~faderlib.config.ModelConfig`) is fitted on them (all at once: :func:`fit_probes`) and
    scored on ``z_test``. Returns per attribute its ``balanced_accuracy`` and ``accuracy``, as
    :func:`latent_probe`; the trainer calls it at each validation (``TrainConfig.probe_images``).
    Draws no random number."""
    mean, std = z_train.mean(0), z_train.std(0).clamp(min=1e-6)
    z_train, z_test = (z_train - mean) / std, (z_test - mean) / std
    with torch.enable_grad():
        probe = fit_probes(z_train, y_train.long(), [a.n_values for a in config.attributes], steps)
    with torch.no_grad():
        logits = probe(z_test)
    out = {}
    for j, (a, block) in enumerate(zip(config.attributes, config.attribute_blocks)):
        predicted = logits[:, block].argmax(1)
        labels = y_test[:, j].long()
        out[a.name] = {"balanced_accuracy": balanced_accuracy(predicted, labels, a.n_values),
                       "accuracy": float((predicted == labels).float().mean())}
    return out


def other_attributes(data: FaderDataset, names, n: int) -> torch.Tensor:
    """The label table's columns other than ``names`` for the first ``n`` images of a split, as
    features (N, d): a two-valued column as one 0/1 feature, a K-valued one as K one-hot features."""
    table = data.prepared.attributes
    rows = data.rows[:min(n, len(data.rows))]
    columns = []
    for name in table.columns:
        if name in names:
            continue
        values = table[name].to_numpy(np.int64)
        k = int(values.max(initial=0)) + 1
        v = torch.from_numpy(values[rows])
        columns.append(v[:, None].float() if k <= 2 else nn.functional.one_hot(v, k).float())
    return torch.cat(columns, 1) if columns else torch.zeros(len(rows), 0)


def probe_floor(train: FaderDataset, test: FaderDataset, config, train_images: int = 2000,
                test_images: int = 1000, steps: int = 300) -> dict:
    """How low the latent probe can fall: the same probe (:func:`probe_scores`, the same images) fitted
    on the *other* attributes of the label table instead of on z. Per attribute of ``config``, its
    ``balanced_accuracy``; ``{}`` when the table has no other column.

    A Fader network's z must still describe what y does not (the face needs it to be rebuilt), and
    in real data that description is tied to y: on CelebA a moustache or lipstick says much about
    Male; on the synthetic faces an open mouth goes with a smile and men are older and rarely blond
    (:func:`faderlib.synth.sample_attributes`). So even a z that holds nothing of y itself lets a
    probe read y from what it must hold, at about this floor (at least; a label table names only
    some of what z carries). A latent probe near its floor, not near 0.5, is an adversary that did
    all it could."""
    names = config.attribute_names
    f_train, f_test = other_attributes(train, names, train_images), other_attributes(test, names, test_images)
    if f_train.shape[1] == 0:
        return {}
    y_train, y_test = train.y[:len(f_train)], test.y[:len(f_test)]
    return probe_scores(f_train, y_train, f_test, y_test, config, steps)


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
    """How close each single-attribute edit comes to the truth no photograph can give: the
    synthetic face re-rendered with that attribute flipped.

    * ``counterfactual_psnr``: PSNR of the edit against the truth; ``counterfactual_psnr_unedited``:
      of the unedited reconstruction against the same truth;
    * ``counterfactual_gain``: the difference (dB): what the edit gained by moving towards the
      truth. An edit that changes nothing gains 0, however well the classifier is fooled;
    * ``counterfactual_gain_masked``: the same on the pixels the attribute changes only (a mouth
      is a small part of a face: there the whole-image gain is small even for a perfect edit);
      ``changed_share``: the share of the pixels that is;
    * ``counterfactual_gain_bound``: what an edit would gain that rebuilt the true edited face as
      well as the reconstruction rebuilds the face as drawn (PSNR of the reconstruction against x
      minus that against the truth): the most this decoder's blur leaves to gain. A smile, a few
      pixels of a 64 px face, has a small bound on the whole image however good the edit.
    """
    config = ae.config
    n = min(n_images, len(test))
    index = torch.arange(n)
    x, y = test.batch(index)
    x, y = x.to(device), y.to(device)
    z = ae.encode(x)
    recs = ae.decode(z, y)  # the unedited reconstruction, the yardstick of every attribute's edit
    rec_psnr = psnr(float(((recs - x) ** 2).mean()))
    out = {k: {} for k in ("counterfactual_psnr", "counterfactual_psnr_unedited", "counterfactual_gain",
                           "counterfactual_gain_masked", "counterfactual_gain_bound", "changed_share")}
    for j, a in enumerate(config.attributes):
        if not a.is_binary:
            continue
        y2 = toggle_attribute(y, j, config)
        edits = ae.decode(z, y2)
        truth = counterfactual_truth(data_dir, test, index, a.name, y2[:, j], device)
        mask = changed_pixels(x, truth)
        edited, unedited = psnr(float(((edits - truth) ** 2).mean())), psnr(float(((recs - truth) ** 2).mean()))
        out["counterfactual_psnr"][a.name] = edited
        out["counterfactual_psnr_unedited"][a.name] = unedited
        out["counterfactual_gain"][a.name] = edited - unedited
        out["counterfactual_gain_masked"][a.name] = masked_psnr(edits, truth, mask) - masked_psnr(recs, truth, mask)
        out["counterfactual_gain_bound"][a.name] = rec_psnr - unedited
        out["changed_share"][a.name] = float(mask.mean())
    return out


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
    device = next(run.autoencoder.parameters()).device
    clf = load_classifier(classifier_dir, device)
    cj = clf.config.attribute_names.index(attribute)
    block = clf.config.attribute_blocks[cj]
    test = run.dataset("test")
    x, y = test.batch(torch.arange(min(max_images, len(test))))
    x, y = x.to(device), y.to(device)
    keep = y[:, j] != target
    x, y = x[keep], y[keep]
    ae = run.autoencoder.eval()
    y2 = set_attribute(y, j, target)
    edits = torch.cat([ae.decode(ae.encode(x[s:s + 128]), y2[s:s + 128]) for s in range(0, len(x), 128)]) \
        if len(x) else x
    probs = torch.cat([clf(edits[s:s + 128])[:, block].softmax(1)[:, target]
                       for s in range(0, len(edits), 128)]) if len(edits) else edits.new_zeros(0)
    failed = torch.nonzero(probs < 0.5).flatten()
    worst = failed[torch.argsort(probs[failed])][:n]
    return SwapFailures(attribute, target, len(probs), len(failed), x[worst].cpu(), edits[worst].cpu(),
                        probs[worst].tolist())
