"""The measures: plain functions of tensors and numbers, for training, the classifier and the evaluation.

* predictions from blocks of logits (one block per attribute, as the losses read them):
  :func:`predict_classes`, and how many are right, :func:`correct_counts` and :func:`accuracy`;
* :func:`balanced_accuracy`: the mean of the per-class accuracies (1/K for a blind guess,
  whatever the class frequencies);
* images in [-1, 1]: :func:`psnr` of a mean squared error, :func:`masked_psnr` over some pixels
  only, and :func:`changed_pixels`, the pixels a true counterfactual changes.

Evaluating a run with them is :mod:`faderlib.evaluate`; their words and tables, :mod:`faderlib.reports`.
"""

from __future__ import annotations

import math

import torch

from .config import ModelConfig


# ----------------------------------------------------------------------------- predictions
def predict_classes(logits: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """The most likely value of each attribute, (batch, n_attr), from blocks of logits."""
    return torch.stack([logits[:, block].argmax(1) for block in config.attribute_blocks], dim=1)


def correct_counts(logits: torch.Tensor, y: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """How many predictions are right, per attribute (a float tensor of n_attr counts, on CPU)."""
    return (predict_classes(logits, config) == y).sum(0).float().cpu()


def accuracy(logits: torch.Tensor, y: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """The share of right predictions in a batch, averaged over attributes: a 0-dim tensor left
    where the logits are (reading it would make the host wait for the device)."""
    return (predict_classes(logits, config) == y).sum(0).float().mean() / y.shape[0]


def balanced_accuracy(predicted: torch.Tensor, labels: torch.Tensor, n_values: int) -> float:
    """The mean over classes present of the share of each class predicted right (1/K for a blind guess)."""
    hits = [float((predicted[labels == k] == k).float().mean()) for k in range(n_values) if (labels == k).any()]
    return sum(hits) / len(hits)


# ----------------------------------------------------------------------------- images
def psnr(mse: float) -> float:
    """PSNR in dB of images in [-1, 1] (a peak-to-peak range of 2)."""
    return 10 * math.log10(4.0 / mse) if mse > 0 else math.inf


#: A pixel counts as changed by an attribute when its squared difference, summed over the three
#: channels of images in [-1, 1], exceeds this (about 1 % of the range in one channel).
CHANGED_PIXEL = 1e-3


def changed_pixels(x: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The pixels an attribute changes: a mask (B, 1, S, S) of 1.0 where the true counterfactual
    ``truth`` differs from the face ``x`` as drawn (:data:`CHANGED_PIXEL`)."""
    return (((truth - x) ** 2).sum(1, keepdim=True) > CHANGED_PIXEL).float()


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR of ``a`` against ``b`` over the pixels of ``mask`` (B, 1, S, S) only, pooled over the batch."""
    area = float(mask.sum()) * a.shape[1]
    return psnr(float((((a - b) ** 2) * mask).sum()) / area) if area else math.nan
