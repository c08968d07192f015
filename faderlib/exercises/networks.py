"""The checks of notebook 02, the networks and the losses: what one more attribute costs the
decoder, the decoder's forward pass by hand (the code [1 - alpha, alpha] entering every layer), the
cross-entropy of equation (1), and the flipped target of equation (3) for a K-valued attribute
(exercises 2.1 to 2.4).

Exercise 2.2 is written as statements on a practice, :func:`decoder_practice`: a small decoder's layers
and inputs built from a seed of the exercise's own; its check builds them again and compares the
student's decoding with :class:`faderlib.models.Decoder`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .checking import (CallError, Failed, as_number, as_tensor, binary_config, call_answer, close, exercise,
                       require_answers, show)


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


# ----------------------------------------------------------------------------- 2.2: y in every decoder layer
@dataclass(eq=False)
class DecoderPractice:
    """What exercise 2.2 starts from (:func:`decoder_practice`): the layers of a small decoder, first to
    last (``layers``, a list of modules in eval mode), a batch of codes ``z`` (B, C, h, w), and ``alpha``
    (B, n), one float per image and binary attribute, for the networks of ``config`` (32 px, n = 3)."""

    config: object
    layers: list
    z: torch.Tensor
    alpha: torch.Tensor

    def __repr__(self) -> str:
        return (f"DecoderPractice({len(self.layers)} decoder layers for {', '.join(self.config.attribute_names)}; "
                f"z {tuple(self.z.shape)}, alpha {tuple(self.alpha.shape)})")


DECODER_SEED = 2020


def practice_decoder():
    """The decoder of exercise 2.2 (eval mode), its z and its alpha: the same at every call, the random
    generators left as they were."""
    from ..config import ModelConfig
    from ..models import Decoder

    config = ModelConfig.from_preset("paper", 32, ["Smiling", "Eyeglasses", "Male"], init_fm=8, max_fm=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DECODER_SEED)
        decoder = Decoder(config).eval()
        for module in decoder.modules():  # BatchNorm statistics of a trained decoder, not the initial 0 and 1
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        side = config.image_size // 2 ** config.n_layers
        z = torch.randn(4, config.channels(config.n_layers - 1), side, side)
        alpha = (torch.rand(4, len(config.attributes)) * 3 - 1).round(decimals=2)
        alpha[0] = torch.tensor([0.0, 1.0, 2.0])
    return decoder, z, alpha


def decoder_practice() -> DecoderPractice:
    """A fresh practice for exercise 2.2 (see :class:`DecoderPractice`): the same at every call."""
    decoder, z, alpha = practice_decoder()
    return DecoderPractice(decoder.config, list(decoder.layers), z, alpha)


def _decode_with(layers, z, code, code_first=False):
    """The decoder's forward pass written by hand, ``code_first`` putting the code before h."""
    h = z
    for layer in layers:
        tiled = code[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        h = layer(torch.cat([tiled, h] if code_first else [h, tiled], dim=1))
    return h


@exercise("2.2", "y in every decoder layer", "check_02_decoder(state, x_hat)", seed=202)
def check_02_decoder(state, x_hat):
    """Exercise 2.2: ``x_hat``, the decoding of ``state.z`` with ``state.alpha`` (``state`` from
    :func:`decoder_practice`) by ``state.layers`` called one by one, the code [1 - alpha, alpha] of each
    attribute concatenated to the input of every layer: as :class:`faderlib.models.Decoder` computes it."""
    require_answers(x_hat=x_hat)
    from ..models import attribute_code

    if not isinstance(state, DecoderPractice):
        raise CallError(f"state is {type(state).__name__}, not exercise 2.2's practice: make it with "
                        "state = decoder_practice() at the top of the cell")
    decoder, z, alpha = practice_decoder()
    config = decoder.config
    with torch.no_grad():
        code = attribute_code(alpha, config)
        expected = decoder(z, code).double()
        found = as_tensor(x_hat, "x_hat", tuple(expected.shape))
        if torch.allclose(found, expected, atol=1e-5):
            return ("your decoder matches faderlib.models.Decoder: the code, broadcast over each layer's height and "
                    "width, enters all of its layers.")
        layers = list(decoder.layers)
        swapped = attribute_code(1 - alpha, config)
        blocks = torch.cat([1 - alpha, alpha], dim=1)
        mistakes = [
            (decoder(z, swapped), "each pair is [1 - alpha, alpha]: the channel 'absent' first"),
            (decoder(z, blocks), "the two channels of one attribute sit side by side: attribute i has the "
                                 "channels 2i and 2i + 1, not i and n + i"),
            (_decode_with(layers, z, code, code_first=True), "h first, then the code: torch.cat([h, code], dim=1)"),
            (decoder(z, code[:1].expand(len(z), -1)), "each image has its own code: expand the code over height "
                                                      "and width, not over the batch"),
        ]
    hint = next((h for out, h in mistakes if torch.allclose(found, out.double(), atol=1e-5)),
                "for each layer in turn: h = layer(torch.cat([h, the code expanded to h's height and width], dim=1)), "
                "starting from h = z")
    worst = float((found - expected).abs().max())
    raise Failed(f"x_hat differs from the decoder's by up to {worst:.3g}",
                 f"faderlib.models.Decoder's output for state.z and state.alpha, shape {tuple(expected.shape)}", hint)


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


@exercise("2.4", "the flipped target of a K-valued attribute", "check_02_flip_categorical(my_flip_k)", seed=205)
def check_02_flip_categorical(my_flip_k):
    """Exercise 2.4: ``my_flip_k(y, K)`` returns, for class indices y (N,) of an attribute with K
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
