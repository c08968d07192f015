"""The checks of notebook 05, evaluation: balanced accuracy, a latent probe by hand, and swap
accuracy (exercises 5.1 to 5.3)."""

from __future__ import annotations

import numpy as np
import torch

from .checking import (CallError, Failed, as_number, as_run, as_share, attribute_index, call_answer, close, exercise,
                       require_answers)


@exercise("5.1", "balanced accuracy", "check_05_balanced_accuracy(my_balanced_accuracy)", seed=501)
def check_05_balanced_accuracy(my_balanced_accuracy):
    """Exercise 5.1: ``my_balanced_accuracy(predicted, labels)`` for class indices (N,): the mean over
    the classes of the share of each class predicted right, as :func:`faderlib.metrics.balanced_accuracy`."""
    from ..metrics import balanced_accuracy

    g = torch.Generator().manual_seed(501)
    for k, n, rare in ((2, 400, 0.1), (2, 1000, 0.5), (3, 600, 0.2)):
        labels = torch.where(torch.rand(n, generator=g) < rare, torch.randint(1, k, (n,), generator=g), 0)
        labels[:k] = torch.arange(k)  # every class present
        guess = torch.randint(0, k, (n,), generator=g)
        predicted = torch.where(torch.rand(n, generator=g) < 0.7, labels, guess)
        predicted[torch.rand(n, generator=g) < 0.3] = 0  # a bias towards the frequent class
        expected = balanced_accuracy(predicted, labels, k)
        found = as_number(call_answer(my_balanced_accuracy, predicted.clone(), labels.clone()), "the balanced accuracy")
        if not close(found, expected, rel=1e-6):
            plain = float((predicted == labels).float().mean())
            precision = float(np.mean([float((labels[predicted == c] == c).float().mean()) for c in range(k)
                                       if (predicted == c).any()]))
            if close(found, plain, rel=1e-6):
                hint = "that is the plain accuracy: average the accuracy within each true class"
            elif close(found, precision, rel=1e-6):
                hint = "group the images by their true class (labels), not by the predicted one"
            else:
                hint = "for each class c: the share of the images of class c predicted c; then the mean over c"
            raise Failed(f"{found:.4f} for {n} images, {k} classes", f"{expected:.4f}", hint)
    return "your balanced accuracy equals the library's for 2 and 3 classes, balanced or not."


@exercise("5.3", "swap accuracy", "check_05_swap_accuracy(my_swap_accuracy)", seed=502)
def check_05_swap_accuracy(my_swap_accuracy):
    """Exercise 5.3: ``my_swap_accuracy(read, original, target)``: of the images whose ``original``
    value of an attribute differs from ``target``, the share that the classifier, after the edit to
    ``target``, reads as ``target`` (``read``: its classes (N,)); as :func:`faderlib.evaluate.evaluate` counts it."""
    g = torch.Generator().manual_seed(502)
    for n, target, k in ((200, 1, 2), (300, 0, 2), (500, 2, 3)):
        original = torch.randint(0, k, (n,), generator=g)
        read = torch.where(torch.rand(n, generator=g) < 0.6, torch.full((n,), target), torch.randint(0, k, (n,),
                                                                                                   generator=g))
        mask = original != target
        expected = float((read[mask] == target).float().mean())
        found = as_number(call_answer(my_swap_accuracy, read.clone(), original.clone(), target), "the swap accuracy")
        if not close(found, expected, rel=1e-6):
            everyone = float((read == target).float().mean())
            kept = float((read[mask] == original[mask]).float().mean())
            if close(found, everyone, rel=1e-6):
                hint = "an image that already has the target value is no swap: leave it out"
            elif close(found, kept, rel=1e-6):
                hint = "a success is the classifier reading the *target*, not the original value"
            else:
                hint = "among the images whose original value is not the target: the share read as the target"
            raise Failed(f"{found:.4f} for {n} images, target {target}", f"{expected:.4f}", hint)
    return "your swap accuracy counts what evaluate counts, in both directions and for 3 values."


@exercise("5.2", "a latent probe by hand", "check_05_probe(run, names[0], probe_accuracy)", seed=503)
def check_05_probe(run, attribute, balanced_accuracy, train_images: int = 2000, test_images: int = 1000,
                   tolerance: float = 0.08):
    """Exercise 5.2: ``balanced_accuracy`` (on test images) of a logistic regression of ``attribute``
    fitted on the flattened codes z of the first ``train_images`` training images and scored on the
    first ``test_images`` test images; within ``tolerance`` of :func:`faderlib.evaluate.latent_probe`'s."""
    require_answers(balanced_accuracy=balanced_accuracy)
    from ..evaluate import latent_probe

    run = as_run(run)
    j = attribute_index(run.model_config, attribute)
    name = run.model_config.attribute_names[j]
    found = as_share(balanced_accuracy, "balanced_accuracy")
    try:
        train, test = run.dataset("train"), run.dataset("test")
    except FileNotFoundError as e:
        raise CallError(str(e)) from None
    expected = latent_probe(run.autoencoder, train, test, train_images, test_images)[name]["balanced_accuracy"]
    if abs(found - expected) > tolerance:
        if found > expected:
            hint = ("score the probe on test images it was not fitted on: on its own training codes a line "
                    "through thousands of dimensions can be right almost everywhere")
        else:
            hint = ("standardise z with the training codes' mean and deviation, weight each class by the inverse "
                    "of its frequency, and fit long enough (a few hundred full-batch Adam steps)")
        raise Failed(f"balanced accuracy {found:.3f}", f"within {tolerance:g} of what latent_probe finds on the "
                     "same images", hint)
    verdict = ("z still carries it: the adversary removed what it could read, not all of it" if expected > 0.6 else
               "a line reads little of it from z")
    return (f"your probe reads {name} from z with a balanced accuracy of {found:.3f} (the library's: "
            f"{expected:.3f}): {verdict}.")
