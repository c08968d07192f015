"""The checks of notebook 03, training: the lambda_E schedule, and what a slider changes in a
trained run's decodings (exercises 3.1 and 3.2)."""

from __future__ import annotations

import numpy as np
import torch

from .checking import (CallError, Failed, as_number, as_run, attribute_index, call_answer, close, exercise,
                       require_answers)


@exercise("3.1", "the lambda_E schedule", "check_03_lambda(my_lambda)", seed=301)
def check_03_lambda(my_lambda):
    """Exercise 3.1: ``my_lambda(step, lambda_max, ramp)``: lambda_E at autoencoder step ``step``
    (0-based) of a linear ramp from 0 to ``lambda_max`` over ``ramp`` steps (ramp > 0), then constant:
    as :func:`faderlib.losses.lambda_e`."""
    from ..losses import lambda_e
    from ..train import RECIPES

    course = RECIPES["course"]
    rng = np.random.default_rng(301)
    cases = [(s, course["lambda_e"], course["lambda_ramp"]) for s in (0, 1, 500, 999, 1000, 1001, 4000)]
    cases += [(int(rng.integers(0, 900_000)), 1e-4, 500_000) for _ in range(3)] + [(0, 1e-4, 500_000),
                                                                               (700_000, 1e-4, 500_000)]
    lam_max, ramp = float(rng.uniform(0.01, 1)), int(rng.integers(10, 100))
    cases += [(s, lam_max, ramp) for s in (0, ramp // 2, ramp - 1, ramp, 3 * ramp)]
    for step, lam, ramp_steps in cases:
        expected = lambda_e(step, lam, ramp_steps)
        found = as_number(call_answer(my_lambda, step, lam, ramp_steps), "lambda_E")
        if not close(found, expected, rel=1e-6, abs_=1e-12):
            if step >= ramp_steps and found > lam:
                hint = "after the ramp lambda_E stays at lambda_max"
            elif close(found, lam * min(step + 1, ramp_steps) / ramp_steps, rel=1e-6, abs_=1e-12):
                hint = "steps count from 0: lambda_E is 0 at step 0"
            else:
                hint = "lambda_E grows linearly, from 0 at step 0 to lambda_max at step ramp"
            raise Failed(f"{found:.6g} at step {step:,} (lambda_max {lam:g}, ramp {ramp_steps:,})",
                         f"{expected:.6g}", hint)
    return (f"right on {len(cases)} steps of 3 schedules: the course's reaches {course['lambda_e']:g} at step "
            f"{course['lambda_ramp']:,}.")


def _slider_effect(run, j: int, n: int) -> float:
    from ..models import code_for

    x, y = run.images(n)
    ae = run.autoencoder.eval()
    with torch.no_grad():
        z = ae.encode(x)
        low = ae.decode(z, code_for(run.model_config, y, {j: 0.0}))
        high = ae.decode(z, code_for(run.model_config, y, {j: 1.0}))
    return float((high - low).abs().mean())


@exercise("3.2", "what a slider changes", "check_03_slider_effect(runs.ablation, effect, ATTRIBUTES[0])", seed=302)
def check_03_slider_effect(run, effect, attribute, n: int = 16):
    """Exercise 3.2: ``effect``, the mean absolute change of the pixels (images in [-1, 1], over the
    channels and the first ``n`` test images) when the run's decoder gets ``attribute`` at 0, then
    at 1, the other attributes at each image's values, z = E(x) the same."""
    require_answers(effect=effect)
    run = as_run(run)
    j = attribute_index(run.model_config, attribute)
    if not isinstance(n, int) or n < 1:
        raise CallError(f"n={n!r} must be a positive number of images")
    expected = _slider_effect(run, j, n)
    found = as_number(effect, "effect")
    if not close(found, expected, rel=0.01, abs_=1e-5):
        hint = ("a mean over the pixels, not a sum" if close(found, expected * n * run.model_config.image_size ** 2
                                                               * 3, rel=0.05) else
                "a change either way counts: take the absolute value before the mean" if abs(found) < 0.5 * expected
                else "decode the same z twice, with the attribute at 0 and at 1, and compare the two decodings")
        raise Failed(f"effect = {found:.5f}", f"the mean of |D(z, y with {run.model_config.attribute_names[j]} = 1)"
                     f" - D(z, y with it = 0)| over the first {n} test images", hint)
    return (f"{run.model_config.attribute_names[j]} from 0 to 1 moves the pixels of {run.run_dir.name} by "
            f"{found:.4f} on average (images in [-1, 1]).")
