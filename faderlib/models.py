"""The networks of a Fader Network (Lample et al. 2017, section 3; docs/paper_notes.md, 'Networks').

Notation of the paper: an image x, its attributes y, the encoder E, the latent code
z = E(x), the decoder D that rebuilds x_hat = D(z, y), and the latent discriminator P that
tries to read y back from z. Notation of the layers: Ck = Conv2d(k filters, kernel 4,
stride 2, padding 1), each halving the image side.

The parameter counts equal those of the reference implementation (tested in
``tests/test_models.py``).

The attribute code comes first: how y enters the decoder (``[1 - y, y]`` per binary
attribute), and the few ways the kit changes y to edit, sweep or swap an attribute.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from .config import ModelConfig
from .errors import did_you_mean


def _norm(config: ModelConfig, channels: int) -> nn.Module:
    if config.instance_norm:
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.BatchNorm2d(channels)


def encoder_layer(config: ModelConfig, i: int, dropout: float = 0.0) -> nn.Sequential:
    """Layer ``i`` of the encoder-style stack: Ck, norm (not on the first layer), LeakyReLU(0.2).

    The encoder, the latent discriminator and the classifier all use this layer; the
    discriminator and classifier simply keep going until the image is 1x1.
    """
    n_in = config.img_channels if i == 0 else config.channels(i - 1)
    n_out = config.channels(i)
    layers: list[nn.Module] = [nn.Conv2d(n_in, n_out, kernel_size=4, stride=2, padding=1)]
    if i > 0:
        layers.append(_norm(config, n_out))
    layers.append(nn.LeakyReLU(0.2))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def decoder_layer(config: ModelConfig, i: int) -> nn.Sequential:
    """The decoder layer that mirrors encoder layer ``i``: it maps channels(i) back to channels(i-1).

    Its input has ``n_attr_channels`` more channels than the matching encoder output,
    because the attribute code is concatenated to the input of every decoder layer.
    """
    n_in = config.channels(i) + config.n_attr_channels
    n_out = config.img_channels if i == 0 else config.channels(i - 1)
    if config.upsampling == "convtranspose":
        layers: list[nn.Module] = [nn.ConvTranspose2d(n_in, n_out, kernel_size=4, stride=2, padding=1, bias=False)]
    elif config.upsampling == "upsampling":
        layers = [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(n_in, n_out, 3, 1, 1)]
    else:  # pixelshuffle
        layers = [nn.Conv2d(n_in, 4 * n_out, 3, 1, 1), nn.PixelShuffle(2)]
    if i == 0:
        layers.append(nn.Tanh())  # images live in [-1, 1]
    else:
        layers.append(_norm(config, n_out))
        if config.dec_dropout > 0 and i >= config.n_layers - 3:
            layers.append(nn.Dropout(config.dec_dropout))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------- the attribute code
#: Largest |alpha| accepted for a binary attribute (the reference went up to 10, for age).
MAX_ALPHA = 10.0


def attribute_code(y: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Turn attribute values into the decoder's attribute code.

    * an integer tensor (bs, n_attr) of class indices becomes one-hot blocks: a binary
      y becomes ``[1 - y, y]``, a K-valued one K channels;
    * a floating tensor (bs, n_attr) is allowed when all attributes are binary: each value
      alpha becomes ``[1 - alpha, alpha]``. This is how the sliders reach beyond [0, 1]
      (docs/paper_notes.md, 'Interpolation beyond [0, 1]');
    * a floating tensor (bs, n_attr_channels) is taken as the code itself.
    """
    n_attr, n_ch = len(config.attributes), config.n_attr_channels
    if y.dim() != 2:
        raise ValueError(f"attributes must have shape (batch, {n_attr}), got {tuple(y.shape)}")
    if not torch.is_floating_point(y):
        if y.shape[1] != n_attr:
            raise ValueError(f"expected {n_attr} attribute indices per image ({config.attribute_names}), got {y.shape[1]}")
        blocks = [nn.functional.one_hot(y[:, j].long(), a.n_values) for j, a in enumerate(config.attributes)]
        return torch.cat(blocks, dim=1).float()
    if y.shape[1] == n_ch:
        return y
    if y.shape[1] == n_attr and all(a.is_binary for a in config.attributes):
        return torch.stack([1 - y, y], dim=2).flatten(1)
    raise ValueError(
        f"a float attribute tensor must have {n_ch} channels (the code) or, for binary attributes, "
        f"{n_attr} values; got shape {tuple(y.shape)}"
    )


def code_for(config: ModelConfig, y: torch.Tensor, changes: Mapping[int | str, float] | None = None) -> torch.Tensor:
    """The decoder's attribute code (B, n_attr_channels) for class indices ``y`` (B, n_attr),
    with ``changes`` ``{attribute (index or name): value}`` applied: a binary attribute
    becomes ``[1 - alpha, alpha]`` (any real alpha: 0 absent, 1 present, beyond exaggerates),
    a categorical one the one-hot of its integer value. Attributes not changed keep their
    values in ``y``. This is what a slider, a sweep and an edit feed the decoder."""
    y = torch.as_tensor(y)
    if y.dim() == 1:
        y = y[None]
    code = attribute_code(y.long(), config).clone()
    blocks = config.attribute_blocks
    for key, v in (changes or {}).items():
        j = config.attribute_names.index(key) if isinstance(key, str) else int(key)
        attr, s = config.attributes[j], blocks[j].start
        if attr.is_binary:
            code[:, s] = 1.0 - float(v)
            code[:, s + 1] = float(v)
        else:
            code[:, blocks[j]] = 0.0
            code[:, s + int(v)] = 1.0
    return code


def set_attribute(y: torch.Tensor, j: int, value: int | torch.Tensor) -> torch.Tensor:
    """A copy of the class indices ``y`` (B, n_attr) with attribute ``j`` set to ``value``."""
    y2 = y.clone()
    y2[:, j] = value
    return y2


def toggle_attribute(y: torch.Tensor, j: int, config: ModelConfig) -> torch.Tensor:
    """A copy of ``y`` with attribute ``j`` changed to its next value: ``1 - y`` for a binary
    attribute, ``(y + 1) mod K`` for a K-valued one (the edit a sample grid shows)."""
    return set_attribute(y, j, (y[:, j] + 1) % config.attributes[j].n_values)


def swapped_attributes(y: torch.Tensor, j: int, target: int, strength: float, config: ModelConfig) -> torch.Tensor:
    """The attributes y with attribute ``j`` set to ``target``, as the swap evaluation decodes them:
    class indices at strength 1 (the paper's protocol); otherwise binary alphas, ``strength``
    to add the attribute and ``1 - strength`` to remove it (1.5: the slider pushed past the end)."""
    if strength == 1.0 or not all(a.is_binary for a in config.attributes):
        return set_attribute(y, j, target)
    y2 = y.float()
    y2[:, j] = strength if target == 1 else 1.0 - strength
    return y2


def check_changes(config: ModelConfig, changes: Mapping[str, float]) -> dict[int, float]:
    """Validate ``{name: value}`` against the model's attributes; returns ``{attribute index: value}``.

    Binary attributes take a real alpha with |alpha| <= :data:`MAX_ALPHA`; a categorical
    attribute with K values takes an integer 0..K-1.
    """
    names = config.attribute_names
    out: dict[int, float] = {}
    for name, value in changes.items():
        if name not in names:
            raise ValueError(f"unknown attribute {name!r}: this model knows {', '.join(names)}."
                             f"{did_you_mean(str(name), names)}")
        attr = config.attributes[names.index(name)]
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={value!r}: expected a number") from None
        if not math.isfinite(v):
            raise ValueError(f"{name}={value!r}: expected a finite number")
        if attr.is_binary:
            if abs(v) > MAX_ALPHA:
                raise ValueError(
                    f"{name}={v:g} is out of range: alpha must lie in [-{MAX_ALPHA:g}, {MAX_ALPHA:g}] "
                    "(0 = absent, 1 = present; 2 already exaggerates strongly, the reference used up to 10 for age)")
        elif v != int(v) or not 0 <= v < attr.n_values:
            raise ValueError(f"{name} is categorical with {attr.n_values} values: expected an integer "
                             f"0..{attr.n_values - 1}, got {v:g}")
        out[names.index(name)] = v
    return out


# ----------------------------------------------------------------------------- the networks
class Encoder(nn.Module):
    """E: x (bs, 3, S, S) -> z (bs, C, S / 2**n_layers, S / 2**n_layers)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(encoder_layer(config, i, config.enc_dropout) for i in range(config.n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Decoder(nn.Module):
    """D: (z, y) -> x_hat. The attribute code is broadcast over space and concatenated to the
    input of every layer, so y cannot be ignored by a late layer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(decoder_layer(config, i) for i in reversed(range(config.n_layers)))

    def forward(self, z: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        h = z
        for layer in self.layers:
            h = layer(torch.cat([h, self._code_like(code, h)], dim=1))
        return h

    @staticmethod
    def _code_like(code: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The code (B, n_attr_channels) broadcast over h's space, in h's dtype and memory layout,
        so that the concatenation stays in h's precision (bf16 under autocast, where a float32
        code made it a float32 tensor cast back by the next layer) and layout (channels-last,
        where a broadcast code made it NCHW, converted back by the next layer). In float32 NCHW
        nothing changes."""
        c = code.to(h.dtype)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        if not h.is_contiguous() and h.is_contiguous(memory_format=torch.channels_last):
            c = c.contiguous(memory_format=torch.channels_last)
        return c


class AutoEncoder(nn.Module):
    """The encoder-decoder pair. ``encode`` and ``decode`` are separate so that a caller can
    encode an image once and decode it with many attribute values (the sliders do)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = E(x)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x_hat = D(z, y); y as accepted by :func:`attribute_code`."""
        return self.decoder(z, attribute_code(y, self.config))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z, y)


class _ConvProjector(nn.Module):
    """Encoder-style layers from ``first`` until the image is 1x1, then FC(hid_dim), FC(n)."""

    def __init__(self, config: ModelConfig, first: int, dropout: float):
        super().__init__()
        n_total = int(math.log2(config.image_size))
        self.conv = nn.Sequential(*(encoder_layer(config, i, dropout) for i in range(first, n_total)))
        self.proj = nn.Sequential(
            nn.Linear(config.channels(n_total - 1), config.hid_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(config.hid_dim, config.n_attr_channels),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.proj(self.conv(h).flatten(1))


class LatentDiscriminator(_ConvProjector):
    """P: z -> logits of y (bs, n_attr_channels), one block of logits per attribute.

    For the 4x4 latent of the reference code: two C512 layers with BatchNorm, LeakyReLU and
    dropout 0.3, then FC512 and FCn (the paper: "C512 + FC512 + FCn", dropout 0.3).
    """

    def __init__(self, config: ModelConfig):
        super().__init__(config, first=config.n_layers, dropout=config.lat_dis_dropout)
        self.config = config


class AttributeClassifier(_ConvProjector):
    """A classifier of y from the image x, used only to evaluate swaps (the paper's protocol).

    Encoder-style stack down to 1x1 (8 layers at 256 px), then FC512 and FCn.
    """

    def __init__(self, config: ModelConfig):
        super().__init__(config, first=0, dropout=0.0)
        self.config = config


class PatchDiscriminator(nn.Module):
    """Optional image-space patch discriminator, as the reference code has one (the method the
    paper describes has none; this architecture is the kit's own, docs/paper_notes.md, 'Networks'):
    real/fake logits per patch, meant to sharpen reconstructions (measured: it did not, docs/results.md)."""

    def __init__(self, config: ModelConfig, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(config.img_channels, config.init_fm, 4, 2, 1), nn.LeakyReLU(0.2)]
        n_in = config.init_fm
        for n in range(n_layers):
            n_out = min(2 * n_in, config.max_fm)
            stride = 1 if n == n_layers - 1 else 2
            layers += [nn.Conv2d(n_in, n_out, 4, stride, 1), nn.BatchNorm2d(n_out), nn.LeakyReLU(0.2)]
            n_in = n_out
        layers.append(nn.Conv2d(n_in, 1, 4, 1, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
