"""The checks of notebook 02, the networks and the losses: what one more attribute costs the
decoder, the attribute code [1 - alpha, alpha], the cross-entropy of equation (1), and the
flipped targets of equation (3), binary and K-valued (exercises 2.1 to 2.5)."""

from __future__ import annotations

import torch

from .checking import Failed, as_number, as_tensor, binary_config, call_answer, close, exercise, show


@exercise("2.1", "what one more attribute costs the decoder", "check_02_extra_attribute(my_extra)", seed=201)
def check_02_extra_attribute(my_extra):
    """Exercise 2.1: ``my_extra(config)`` returns the number of decoder parameters that one more
    binary attribute adds to the networks of ``config`` (a ModelConfig, convtranspose decoder)."""
    from ..config import ModelConfig
    from ..models import Decoder, count_parameters

    cases = [("official", 256, ["Male"]), ("paper", 64, ["Smiling", "Eyeglasses", "Male"]),
             ("official", 32, ["Smiling"]), ("paper", 128, ["Male", "Young"])]
    for preset, size, names in cases:
        config = ModelConfig.from_preset(preset, size, names)
        bigger = ModelConfig.from_preset(preset, size, [*names, "Extra"])
        expected = count_parameters(Decoder(bigger)) - count_parameters(Decoder(config))
        found = as_number(call_answer(my_extra, config), "the count")
        if found != expected:
            first = 2 * 16 * (config.img_channels if config.n_layers == 1 else config.channels(config.n_layers - 2))
            if found * 2 == expected:
                hint = "a binary attribute enters the decoder as a pair of channels, [1 - y, y]"
            elif found * 16 == expected:
                hint = "each input channel of a transposed convolution meets a 4x4 kernel per output channel"
            elif found == first:
                hint = "the attribute code is concatenated to the input of every decoder layer, not only the first"
            else:
                hint = "decoder_inputs(config) lists each decoder layer's input and output channels"
            raise Failed(f"{found:,.0f} for the {preset!r} preset at {size} px with {len(names)} attribute(s)",
                         f"{expected:,} for that configuration", hint)
    return (f"right on {len(cases)} configurations, from 32 to 256 px; at 256 px one more attribute costs the "
            "reference decoder 31,840 parameters.")


@exercise("2.2", "the attribute code [1 - alpha, alpha]", "check_02_code(my_code)", seed=202)
def check_02_code(my_code):
    """Exercise 2.2: ``my_code(alpha)`` turns a float tensor (B, n) of values alpha, one per binary
    attribute, into the decoder's attribute code (B, 2n), as :func:`faderlib.models.attribute_code`."""
    from ..models import attribute_code

    g = torch.Generator().manual_seed(202)
    for n in (1, 3):
        alpha = (torch.rand(4, n, generator=g) * 3 - 1).round(decimals=2)
        expected = attribute_code(alpha, binary_config(n))
        found = as_tensor(call_answer(my_code, alpha.clone()), "the code", (4, 2 * n))
        if not torch.allclose(found, expected.double(), atol=1e-6):
            a = alpha[:1]
            mine = found[:1]
            pairs = torch.stack([a, 1 - a], 2).flatten(1).double()
            blocks = torch.cat([1 - a, a], 1).double()
            if torch.allclose(mine, pairs, atol=1e-6):
                hint = "each pair starts with the channel 'absent', which is 1 for alpha = 0"
            elif n > 1 and torch.allclose(mine, blocks, atol=1e-6):
                hint = "the channels of one attribute sit side by side: attribute i has channels 2i and 2i + 1"
            else:
                hint = "alpha = 0 gives the pair [1, 0] (absent) and alpha = 1 the pair [0, 1] (present)"
            raise Failed(f"for alpha = {show(a)}: {show(mine)}", show(expected[:1]), hint)
    return "your code matches attribute_code for 1 and 3 attributes, alpha from -1 to 2."


@exercise("2.3", "the cross-entropy of equation (1)", "check_02_cross_entropy(my_cross_entropy)", seed=203)
def check_02_cross_entropy(my_cross_entropy):
    """Exercise 2.3: ``my_cross_entropy(logits, y)``: P's loss (1) for logits (B, 2n), one pair per
    binary attribute, against the true classes y (B, n): as :func:`faderlib.losses.discriminator_loss`."""
    from ..losses import discriminator_loss

    g = torch.Generator().manual_seed(203)
    b = 16
    for n in (1, 3):
        config = binary_config(n)
        logits = torch.randn(b, 2 * n, generator=g) * 2
        y = torch.randint(0, 2, (b, n), generator=g)
        expected = float(discriminator_loss(logits, y, config))
        found = as_number(call_answer(my_cross_entropy, logits.clone(), y.clone()), "the loss")
        if not close(found, expected, rel=1e-4):
            flipped = float(discriminator_loss(logits, 1 - y, config))
            whole = float(-torch.log_softmax(logits, 1).gather(1, 2 * torch.arange(n)[None] + y).sum(1).mean())
            if n > 1 and close(found * n, expected, rel=1e-4):
                hint = "the paper sums the log-probabilities over the attributes (and averages over the batch)"
            elif close(found, expected * b, rel=1e-4):
                hint = "average over the images of the batch"
            elif close(found, -expected, rel=1e-4):
                hint = "a loss to minimise is minus the log-probability"
            elif close(found, flipped, rel=1e-4):
                hint = "equation (1) scores P against the true y; the flipped 1 - y belongs to equation (3)"
            elif close(found, whole, rel=1e-4):
                hint = "a softmax per attribute: over its own pair of logits, not over all of them"
            else:
                hint = "-log_softmax of each attribute's pair of logits, taken at the true class"
            raise Failed(f"{found:.5f} for {n} attribute(s), a batch of {b}", f"{expected:.5f}", hint)
    return "your loss equals discriminator_loss for 1 and 3 attributes."


@exercise("2.4", "the flipped target of equation (3)", "check_02_flip(my_flip)", seed=204)
def check_02_flip(my_flip):
    """Exercise 2.4: ``my_flip(y)`` returns the target of the adversarial term for binary class
    indices y (B, n): as :func:`faderlib.losses.flip_attributes` (1 - y), leaving y unchanged."""
    from ..losses import flip_attributes

    g = torch.Generator().manual_seed(204)
    for n in (1, 3):
        y = torch.randint(0, 2, (8, n), generator=g)
        given = y.clone()
        expected = flip_attributes(y, binary_config(n))
        found = as_tensor(call_answer(my_flip, given), "the flipped attributes", (8, n))
        if not torch.equal(given, y):
            raise Failed("your function changed y itself", "a new tensor, y unchanged",
                         "the trainer still needs the true y for the reconstruction: compute a new tensor")
        if not torch.equal(found, expected.double()):
            if torch.equal(found, y.double()):
                hint = "these are the true attributes: P would be pushed to read y, the opposite of hiding it"
            elif not bool(((found == 0) | (found == 1)).all()):
                hint = "the target must stay a class index, 0 or 1"
            else:
                hint = "every attribute of every image must become the other value"
            raise Failed(f"for y = {show(y[:2])}: {show(found[:2])}", show(expected[:2]), hint)
    return "your flip is 1 - y, and leaves y alone."


@exercise("2.5", "the flipped target of a K-valued attribute", "check_02_flip_categorical(my_flip_k)", seed=205)
def check_02_flip_categorical(my_flip_k):
    """Exercise 2.5: ``my_flip_k(y, K)`` returns, for class indices y (N,) of an attribute with K
    values, a value different from y drawn uniformly among the K - 1 others, as
    :func:`faderlib.losses.flip_attributes` does for a K-valued attribute (1 - y when K = 2)."""
    g = torch.Generator().manual_seed(205)
    for k, n in ((3, 6000), (5, 10000), (2, 200)):
        y = torch.randint(0, k, (n,), generator=g)
        given = y.clone()
        found = as_tensor(call_answer(my_flip_k, given, k), "the flipped values", (n,))
        where = f"K = {k}"
        if not torch.equal(given, y):
            raise Failed(f"for {where}: your function changed y itself", "a new tensor, y unchanged")
        if not bool((found == found.round()).all()) or found.min() < 0 or found.max() > k - 1:
            raise Failed(f"for {where}: values from {found.min():g} to {found.max():g}",
                         f"class indices 0..{k - 1}")
        found = found.long()
        same = int((found == y).sum())
        if same:
            raise Failed(f"for {where}: {same} of {n} values equal to the true one", "never the true value",
                         "the target is a wrong answer: a value y never has")
        for true in range(k):
            picked = found[y == true]
            counts = torch.bincount(picked, minlength=k).double()
            shares = counts / max(len(picked), 1)
            missing = [v for v in range(k) if v != true and counts[v] == 0]
            if missing:
                raise Failed(f"for {where}, y = {true}: never {', '.join(map(str, missing))}",
                             f"every other value of the {k} reached", "draw the new value at random among the "
                             f"{k - 1} values that are not y")
            worst = max(abs(float(shares[v]) - 1 / (k - 1)) for v in range(k) if v != true)
            if worst > 0.05:
                raise Failed(f"for {where}, y = {true}: the other values drawn with shares "
                             f"{show(shares[[v for v in range(k) if v != true]])}",
                             f"each of the {k - 1} other values about 1/{k - 1} of the time",
                             "the draw must not favour any of the other values")
    return "never the true value, every other value equally often, for K = 2, 3 and 5."
