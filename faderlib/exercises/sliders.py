"""The checks of notebook 04, interpolation and sliders: the decoder's code for alpha = 2, and
the pixels a slider moves (exercises 4.1 and 4.2)."""

from __future__ import annotations

import torch

from .checking import Failed, as_number, as_run, as_tensor, attribute_index, exercise, require_answers, run_image, show


@exercise("4.1", "the decoder's code for alpha = 2", "check_04_code(run, code, names[0])", seed=401)
def check_04_code(run, code, attribute, alpha: float = 2.0, index: int = 0):
    """Exercise 4.1: ``code``, the attribute code (1, n_attr_channels) the decoder gets for test image
    ``index`` of the run with ``attribute`` at ``alpha`` and the others at the image's values, as
    :func:`faderlib.models.code_for` builds it."""
    require_answers(code=code)
    from ..models import code_for

    run = as_run(run)
    config = run.model_config
    j = attribute_index(config, attribute)
    alpha = as_number(alpha, "alpha")
    _, y = run_image(run, index)
    expected = code_for(config, y, {j: alpha}).double()
    found = as_tensor(code, "code", tuple(expected.shape))
    if not torch.allclose(found, expected, atol=1e-6):
        block = config.attribute_blocks[j]
        others = torch.ones(expected.shape[1], dtype=torch.bool)
        others[block] = False
        if torch.allclose(found[:, block], expected[:, block].flip(1), atol=1e-6):
            hint = "the pair is [1 - alpha, alpha]: 'absent' first"
        elif not torch.allclose(found[:, block], expected[:, block], atol=1e-6):
            hint = (f"{config.attribute_names[j]} is attribute {j}: its pair is channels {block.start} and "
                    f"{block.start + 1}")
        elif not bool(found[:, others].abs().sum()):
            hint = "the other attributes keep the image's values, y, as one-hot pairs"
        else:
            hint = "the other attributes keep the image's values: the pair [1 - y_i, y_i] for each"
        raise Failed(f"code = {show(found)}", f"the code of test image {index}'s y = {show(y)} with "
                     f"{config.attribute_names[j]} at alpha = {alpha:g}", hint)
    return (f"{config.attribute_names[j]} at alpha = {alpha:g} is the pair [{1 - alpha:g}, {alpha:g}]; the other "
            "attributes keep the image's values.")


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
