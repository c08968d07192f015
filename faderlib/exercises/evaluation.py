"""The checks of notebook 05, evaluation: a latent probe fitted by hand on the validation codes, and
swap accuracy (exercises 5.1 and 5.2)."""

from __future__ import annotations

import numpy as np
import torch

from .checking import (CallError, Failed, as_number, as_run, as_share, attribute_index, call_answer, close, exercise,
                       require_answers)


@exercise("5.1", "a latent probe by hand", "check_05_probe(run, names[0], probe_accuracy)", seed=501)
def check_05_probe(run, attribute, balanced_accuracy, fit_images: int = 2000, test_images: int = 1000,
                   tolerance: float = 0.03):
    """Exercise 5.1: ``balanced_accuracy`` (on test images) of a logistic regression of ``attribute``
    fitted on the flattened codes z of the first ``fit_images`` images of the VALIDATION split, and scored
    on the first ``test_images`` test images: within ``tolerance`` of the check's own fit
    (:func:`faderlib.evaluate.probe_scores`, the same recipe). :func:`faderlib.evaluate.evaluate` fits its
    probe on the training split: its number, copied, fails (also rounded)."""
    require_answers(balanced_accuracy=balanced_accuracy)
    from ..evaluate import encode_split, probe_scores

    run = as_run(run)
    config = run.model_config
    j = attribute_index(config, attribute)
    name = config.attribute_names[j]
    found = as_share(balanced_accuracy, "balanced_accuracy")
    for what, value in (("fit_images", fit_images), ("test_images", test_images)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CallError(f"{what}={value!r} must be a positive number of images")
    try:
        train, valid, test = run.dataset("train"), run.dataset("valid"), run.dataset("test")
    except FileNotFoundError as e:
        raise CallError(str(e)) from None
    ae = run.autoencoder.eval()
    z_valid, y_valid = encode_split(ae, valid, fit_images)
    z_test, y_test = encode_split(ae, test, test_images)
    expected = probe_scores(z_valid, y_valid, z_test, y_test, config)[name]["balanced_accuracy"]
    if abs(found - expected) <= 0.005:
        return _probe_verdict(name, found, expected)
    # what evaluate() reports (a probe fitted on the first 2,000 training images, scored on the first
    # 1,000 test images), and the same probe scored on the codes it was fitted on
    z_train, y_train = encode_split(ae, train, 2000)
    z_eval_test, y_eval_test = encode_split(ae, test, min(len(test), 1000))
    copied = probe_scores(z_train, y_train, z_eval_test, y_eval_test, config)[name]["balanced_accuracy"]
    on_itself = probe_scores(z_valid, y_valid, z_valid, y_valid, config)[name]["balanced_accuracy"]
    if abs(found - copied) <= 0.005:
        raise Failed(f"balanced accuracy {found:.3f}, the number evaluate() reports (result['latent_probe'])",
                     f"the probe fitted on the first {len(z_valid):,} VALIDATION images, scored on the first "
                     f"{len(z_test):,} test images", "evaluate() fits its probe on the training split: fit yours "
                     "on the validation codes, as the exercise asks, and score it on the test codes")
    if abs(found - expected) > tolerance:
        if abs(found - on_itself) <= 0.005 or found > expected + tolerance:
            hint = ("score the probe on the test codes, never on those it was fitted on: on its own training codes "
                    "a line through thousands of dimensions can be right almost everywhere")
        else:
            hint = ("standardise z with the validation codes' mean and deviation, weight each class by the inverse "
                    "of its frequency, start from zero weights, 300 full-batch Adam steps (lr 0.05, weight decay "
                    "1e-3)")
        raise Failed(f"balanced accuracy {found:.3f}", f"within {tolerance:g} of the check's own probe fitted on "
                     f"the first {len(z_valid):,} validation images", hint)
    return _probe_verdict(name, found, expected)


def _probe_verdict(name: str, found: float, expected: float) -> str:
    verdict = ("z still carries it: the adversary removed what it could read, not all of it" if expected > 0.6 else
               "a line reads little of it from z")
    return (f"your probe reads {name} from z with a balanced accuracy of {found:.3f} (the check's: {expected:.3f}): "
            f"{verdict}.")


@exercise("5.2", "swap accuracy", "check_05_swap_accuracy(my_swap_accuracy)", seed=502)
def check_05_swap_accuracy(my_swap_accuracy):
    """Exercise 5.2: ``my_swap_accuracy(read, original, target)``: of the images whose ``original``
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
