"""The checks of notebook 04, interpolation and sliders: how far alpha = 0.5 decodes from half way
between the two ends of a slider, and the pixels a slider moves (exercises 4.1 and 4.2)."""

from __future__ import annotations

import torch

from .checking import Failed, as_number, as_run, attribute_index, close, exercise, require_answers, run_image


@exercise("4.1", "is alpha = 0.5 half way?", "check_04_halfway(run, gap, names[0])", seed=401)
def check_04_halfway(run, gap, attribute, index: int = 0):
    """Exercise 4.1: ``gap``, the mean over the pixels and channels (images in [-1, 1]) of
    |D(z, alpha = 0.5) - (D(z, 0) + D(z, 1)) / 2| for test image ``index`` of the run, ``attribute`` at
    alpha, the other attributes at the image's values, z = E(x) the same: how far the decoder is from
    linear in the code along that slider."""
    require_answers(gap=gap)
    from ..models import code_for

    run = as_run(run)
    config = run.model_config
    j = attribute_index(config, attribute)
    x, y = run_image(run, index)
    ae = run.autoencoder.eval()
    with torch.no_grad():
        z = ae.encode(x)
        low, middle, high = (ae.decode(z, code_for(config, y, {j: a})) for a in (0.0, 0.5, 1.0))
        reconstruction = ae.decode(z, y)
    average = (low + high) / 2
    expected = float((middle - average).abs().mean())
    ends = float((high - low).abs().mean())
    found = as_number(gap, "gap")
    if not close(found, expected, rel=0.01, abs_=1e-5):
        candidates = [
            (float((middle - average).mean()), "a difference either way counts: the absolute value before the mean"),
            (float((middle - average).abs().sum()), "a mean over the pixels and channels, not a sum"),
            (ends, "that is how far the two ends are apart; the question is how far alpha = 0.5 is from their "
                   "average"),
            (float((middle - reconstruction).abs().mean()), "compare D(z, 0.5) with the average of the two ends, "
                                                             "not with the reconstruction D(z, y)"),
            (float((middle - x).abs().mean()), "compare D(z, 0.5) with the average of the two decodings, not with "
                                               "the image"),
        ]
        hint = next((h for value, h in candidates if close(found, value, rel=0.01, abs_=1e-5)),
                    "decode one z three times (alpha = 0, 0.5, 1 for the attribute, code_for builds the codes), then "
                    "the mean of |middle - (low + high) / 2|")
        raise Failed(f"gap = {found:.5g}", f"the mean of |D(z, {config.attribute_names[j]} = 0.5) - the average of "
                     f"D(z, 0) and D(z, 1)| over test image {index}'s pixels and channels", hint)
    return (f"alpha = 0.5 decodes {expected:.4f} away from the average of the two ends, which differ by {ends:.4f} "
            f"({expected / max(ends, 1e-12):.0%} of it): the decoder is not linear in its code.")


@exercise("4.2", "the pixels a slider moves", "check_04_changed_pixels(run, count, names[0])", seed=402)
def check_04_changed_pixels(run, count, attribute, index: int = 0, threshold: float = 0.1):
    """Exercise 4.2: ``count``, the number of pixels of test image ``index`` whose colour moves by
    more than ``threshold`` in at least one channel (images in [-1, 1]) when the run's decoder gets
    ``attribute`` at alpha = 0, then at alpha = 1 (the same z, the other attributes at the image's values)."""
    require_answers(count=count)
    from ..models import code_for

    run = as_run(run)
    config = run.model_config
    j = attribute_index(config, attribute)
    threshold = as_number(threshold, "threshold")
    x, y = run_image(run, index)
    ae = run.autoencoder.eval()
    with torch.no_grad():
        z = ae.encode(x)
        low = ae.decode(z, code_for(config, y, {j: 0.0}))
        high = ae.decode(z, code_for(config, y, {j: 1.0}))
        reconstruction = ae.decode(z, y)
    diff = high - low
    expected = int((diff.abs().amax(1) > threshold).sum())
    found = as_number(count, "count")
    if abs(found - expected) > max(2, 0.01 * expected):
        values = int((diff.abs() > threshold).sum())
        signed = int((diff.amax(1) > threshold).sum())
        vs_original = int(((high - x).abs().amax(1) > threshold).sum())
        vs_reconstruction = int(((high - reconstruction).abs().amax(1) > threshold).sum())
        if found == values and values != expected:
            hint = "count pixels, not channel values: a pixel counts once, whichever of its channels moved"
        elif found == signed and signed != expected:
            hint = "a change either way counts: compare absolute values"
        elif found in (vs_original, vs_reconstruction) and found != expected:
            hint = "compare the two decodings (alpha = 0 and alpha = 1), not the image or its reconstruction"
        else:
            hint = "decode the same z twice, then count the pixels where |difference| > threshold in some channel"
        raise Failed(f"count = {found:g}", f"the pixels of test image {index} ({config.image_size}x"
                     f"{config.image_size}) that move by more than {threshold:g} in some channel", hint)
    share = expected / config.image_size ** 2
    return (f"{config.attribute_names[j]} from 0 to 1 moves {expected} of the {config.image_size ** 2} pixels "
            f"({share:.0%}) of test image {index} by more than {threshold:g}.")
