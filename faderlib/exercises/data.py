"""The checks of notebook 01, the data and its attributes: what a constant answer scores
(accuracy against balanced accuracy), and class-balanced sampling weights (exercises 1.1 and 1.2)."""

from __future__ import annotations

import numpy as np
import torch

from .checking import Failed, as_share, as_tensor, call_answer, close, exercise, require_answers, split_labels


@exercise("1.1", "the accuracy of a constant answer",
          "check_01_constant_guess(train, rare, accuracy, balanced_accuracy)", seed=101)
def check_01_constant_guess(dataset, attribute, accuracy, balanced_accuracy):
    """Exercise 1.1: a "classifier" that always answers the most frequent value of ``attribute``
    on ``dataset`` (a FaderDataset): its ``accuracy`` and its ``balanced_accuracy`` (shares)."""
    require_answers(accuracy=accuracy, balanced_accuracy=balanced_accuracy)
    from ..metrics import balanced_accuracy as library_balanced_accuracy

    labels = split_labels(dataset, attribute)
    counts = np.bincount(labels, minlength=2)
    majority = int(counts.argmax())
    expected = float(counts[majority]) / len(labels)
    labels_t = torch.from_numpy(labels)
    expected_balanced = library_balanced_accuracy(torch.full_like(labels_t, majority), labels_t, len(counts))
    acc, bal = as_share(accuracy, "accuracy"), as_share(balanced_accuracy, "balanced_accuracy")
    tol = 6e-4  # a share rounded to 3 decimals passes
    if abs(acc - expected) > tol:
        hint = ("that is the share of the rarer value: what always answering *it* would score"
                if abs(acc - (1 - expected)) <= tol and len(counts) == 2 else
                "count how many images of the split have the most frequent value")
        raise Failed(f"accuracy = {acc:.4f}", f"the share of {len(labels)} images whose {attribute} is the answer "
                     "given to all of them (the most frequent value)", hint)
    if abs(bal - expected_balanced) > tol:
        hint = ("that is the plain accuracy again: the balanced accuracy is the mean, over the classes, of the "
                "accuracy within each class" if abs(bal - expected) <= tol else
                "within each class the constant answer is right on every image, or on none")
        raise Failed(f"balanced_accuracy = {bal:.4f}", "the mean over the classes of the share of each class "
                     "answered right", hint)
    return (f"always answering {attribute} = {majority} is right {acc:.1%} of the time, yet its balanced accuracy "
            f"is {bal:.2f}: it knows nothing.")


@exercise("1.2", "class-balanced sampling weights", "check_01_balanced_weights(my_weights)", seed=102)
def check_01_balanced_weights(my_weights):
    """Exercise 1.2: ``my_weights(labels)`` for a numpy array of 0/1 labels returns one weight per
    label, as :func:`faderlib.data.balanced_weights` draws them (each class equally often)."""
    from ..data import class_balanced_weights

    rng = np.random.default_rng(102)
    cases = [(40, 0.5), (500, 0.065), (300, 0.8), (1000, 0.2)]
    for n, rate in cases:
        labels = (rng.random(n) < rate).astype(np.int64)
        labels[:2] = (0, 1)  # both classes present
        expected = class_balanced_weights(labels)
        found = call_answer(my_weights, labels.copy())
        w = as_tensor(found, "the weights", (n,)).numpy()
        name = f"{n} labels of which {int(labels.sum())} are 1"
        if not np.all(np.isfinite(w)) or (w < 0).any():
            raise Failed(f"for {name}: weights from {w.min():g} to {w.max():g}", "finite weights >= 0")
        if not close(w.sum(), 1.0, rel=1e-6):
            hint = ("each class has a total weight of 1 now: the two classes must share a total of 1"
                    if close(w.sum(), 2.0, rel=1e-6) else
                    "a weight is the probability of drawing that image")
            raise Failed(f"for {name}: weights that sum to {w.sum():.4g}", "weights that sum to 1", hint)
        mass = [float(w[labels == c].sum()) for c in (0, 1)]
        if not all(close(m, 0.5, rel=1e-6) for m in mass):
            raise Failed(f"for {name}: class 0 gets {mass[0]:.3f} of the total, class 1 gets {mass[1]:.3f}",
                         "each class gets half of the total, whatever its count",
                         "the fewer images a class has, the more each one must weigh")
        if not np.allclose(w, expected, rtol=1e-6, atol=0):
            raise Failed(f"for {name}: images of one class with different weights", "the same weight for every "
                         "image of a class")
    return (f"right on {len(cases)} label arrays (from 50 % to 6.5 % of 1s); compare with "
            "faderlib.data.balanced_weights(train, rare).")

