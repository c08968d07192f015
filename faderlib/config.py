"""Network settings of a Fader Network, as one typed dataclass with named presets.

The defaults are those of the reference implementation (docs/paper_notes.md, 'Networks').
Two presets fix the depth of the encoder:

* ``paper``    (Lample et al. 2017, section 3): 16 filters first, latent 512x2x2 at 256 px
  (7 layers at 256 px);
* ``official`` (the reference code's default): 32 filters first, latent 512x4x4 at 256 px
  (6 layers at 256 px).

At other image sizes a preset keeps its latent *spatial* size (2x2 or 4x4), so the
number of layers follows from the size: ``official`` at 64 px has 4 layers.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .errors import AttributeNameError, ConfigError, did_you_mean

__all__ = ["IMAGE_SIZES", "UPSAMPLING_METHODS", "PRESETS", "ConfigError", "Attribute", "parse_attribute",
           "parse_attributes", "check_attributes", "ModelConfig", "from_settings", "jsonable"]

#: Image sizes the networks accept: powers of two from 32 to 256.
IMAGE_SIZES = (32, 64, 128, 256)

#: How the decoder doubles the spatial size at each layer.
UPSAMPLING_METHODS = ("convtranspose", "upsampling", "pixelshuffle")

#: Preset name -> (first layer filters, latent spatial side).
PRESETS = {
    "paper": {"init_fm": 16, "latent_side": 2},
    "official": {"init_fm": 32, "latent_side": 4},
}

_ATTRIBUTE_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_]+?)(?:\.(?P<k>\d+))?$")


@dataclass(frozen=True)
class Attribute:
    """One attribute y_i the decoder is conditioned on.

    A binary attribute (``Smiling``) has ``n_values == 2`` and is fed to the decoder as the
    one-hot pair ``[1 - y, y]``; a categorical one written ``Hair.3`` has three values and
    three channels.
    """

    name: str
    n_values: int = 2

    @property
    def spec(self) -> str:
        """The string this attribute was written as (``Smiling`` or ``Hair.3``)."""
        return self.name if self.n_values == 2 else f"{self.name}.{self.n_values}"

    @property
    def is_binary(self) -> bool:
        return self.n_values == 2


def parse_attribute(spec: str) -> Attribute:
    """Parse ``"Smiling"`` (binary) or ``"Hair.3"`` (categorical with 3 values)."""
    if isinstance(spec, Attribute):
        return spec
    if not isinstance(spec, str):
        raise AttributeNameError(f"an attribute must be a name such as 'Smiling' or 'Hair.3', got {spec!r}")
    m = _ATTRIBUTE_SPEC.match(spec.strip())
    if not m:
        raise AttributeNameError(
            f"malformed attribute {spec!r}: write a name of letters, digits and underscores, "
            "optionally followed by '.K' for a categorical attribute with K >= 2 values "
            "(e.g. 'Smiling' or 'Hair.3')"
        )
    k = int(m.group("k")) if m.group("k") is not None else 2
    if k < 2:
        raise AttributeNameError(f"malformed attribute {spec!r}: a categorical attribute needs at least 2 values, "
                                 f"got {k}")
    return Attribute(m.group("name"), k)


def parse_attributes(specs: str | Iterable[str | Attribute],
                     available: Iterable[str] | None = None) -> tuple[Attribute, ...]:
    """Parse a list (or a comma-separated string) of attribute specs, keeping the user's order.

    With ``available`` (the columns of a data set's attribute table), every name must be one
    of them: an unknown one raises with the closest valid name. Every mistake raises an
    :class:`~faderlib.errors.AttributeNameError`.

    The reference implementation sorted the attributes silently, which made the meaning of
    the decoder's input channels depend on spelling; here the order is the one you gave.
    """
    attrs = tuple(parse_attribute(s) for s in _spec_list(specs))
    _check_names([a.name for a in attrs], available)
    return attrs


def check_attributes(names: str | Iterable[str], available: Iterable[str]) -> list[str]:
    """The attribute names asked for (``"Hair.3"`` counts as ``"Hair"``), in the order given,
    each checked against ``available``, the columns of a data set's attribute table.

    The same checks and messages as :func:`parse_attributes`; a column of the table is
    accepted as it is written, even where it is not a valid spec.
    """
    available = [str(a) for a in available]
    names = [s.strip() if isinstance(s, str) and s.strip() in available else parse_attribute(s).name
             for s in _spec_list(names)]
    return _check_names(names, available)


def _spec_list(specs) -> list:
    """``"Smiling,Male"``, ``["Smiling", "Male"]`` or ``"Smiling"`` -> ``["Smiling", "Male"]`` (or ``["Smiling"]``)."""
    if isinstance(specs, (str, Attribute)):
        specs = [specs]
    out = []
    for s in specs:
        if isinstance(s, str):
            out.extend(p for p in s.split(",") if p.strip())
        else:
            out.append(s)
    return out


def _check_names(names: list[str], available: Iterable[str] | None) -> list[str]:
    """Refuse an empty list, a name listed twice and (given ``available``) an unknown name."""
    valid = None if available is None else [str(a) for a in available]
    listing = "" if valid is None else f" Valid names ({len(valid)}): {', '.join(valid)}."
    if not names:
        raise AttributeNameError(f"at least one attribute is needed, e.g. ['Smiling'].{listing}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AttributeNameError(f"attribute(s) listed twice: {', '.join(dupes)}; list each attribute once")
    for name in names:
        if valid is not None and name not in valid:
            raise AttributeNameError(f"Unknown attribute {name!r}.{did_you_mean(name, valid, cutoff=0.4)}{listing}")
    return names


@dataclass
class ModelConfig:
    """Every setting of the networks (docs/paper_notes.md, 'Networks'), reference defaults.

    ``n_layers`` is the number of stride-2 layers of the encoder; the latent z has shape
    ``(min(init_fm * 2**(n_layers-1), max_fm), image_size / 2**n_layers, same)``.
    """

    image_size: int = 256
    attributes: tuple[Attribute, ...] = field(default_factory=lambda: (Attribute("Male"),))
    preset: str = "official"
    init_fm: int = 32
    max_fm: int = 512
    n_layers: int = 6
    img_channels: int = 3
    upsampling: str = "convtranspose"
    instance_norm: bool = False
    enc_dropout: float = 0.0
    dec_dropout: float = 0.0
    hid_dim: int = 512
    lat_dis_dropout: float = 0.3

    def __post_init__(self) -> None:
        self.attributes = parse_attributes(self.attributes)
        self.validate()

    # ------------------------------------------------------------------ presets
    @classmethod
    def from_preset(cls, preset: str = "official", image_size: int = 256,
                    attributes: str | Sequence[str] = ("Male",), **overrides) -> "ModelConfig":
        """Build the ``paper`` or ``official`` configuration for an image size.

        >>> ModelConfig.from_preset("official", 64, ["Smiling"]).n_layers
        4
        """
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}."
                              f"{did_you_mean(str(preset), PRESETS)}")
        _check_image_size(image_size)
        p = PRESETS[preset]
        n_layers = int(math.log2(image_size)) - int(math.log2(p["latent_side"]))
        values = dict(image_size=image_size, attributes=attributes, preset=preset,
                      init_fm=p["init_fm"], n_layers=n_layers)
        values.update(overrides)
        return cls(**values)

    # --------------------------------------------------------------- validation
    def validate(self) -> None:
        _check_image_size(self.image_size)
        max_layers = int(math.log2(self.image_size))
        if not isinstance(self.n_layers, int) or not 1 <= self.n_layers <= max_layers:
            raise ConfigError(
                f"n_layers={self.n_layers!r} does not fit {self.image_size} px images: each layer halves "
                f"the size, so allowed values are 1 to {max_layers} (log2 of {self.image_size})"
            )
        if self.upsampling not in UPSAMPLING_METHODS:
            raise ConfigError(f"unknown upsampling {self.upsampling!r}; choose one of {', '.join(UPSAMPLING_METHODS)}")
        for name in ("init_fm", "max_fm", "hid_dim", "img_channels"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("enc_dropout", "dec_dropout", "lat_dis_dropout"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"{name} is a dropout probability and must be in [0, 1), got {v!r}")

    # ------------------------------------------------------------ derived sizes
    @property
    def attribute_names(self) -> list[str]:
        return [a.name for a in self.attributes]

    @property
    def n_attr_channels(self) -> int:
        """Channels of the decoder's attribute code: 2 per binary attribute, K per K-valued one."""
        return sum(a.n_values for a in self.attributes)

    def channels(self, i: int) -> int:
        """Output channels of encoder-style layer ``i`` (0-based): init_fm * 2**i, capped at max_fm."""
        return min(self.init_fm * 2 ** i, self.max_fm)

    @property
    def attribute_blocks(self) -> list[slice]:
        """Where each attribute sits, in order, in the decoder's attribute code and in the
        discriminator's logits: one block of ``n_values`` channels per attribute.

        >>> ModelConfig.from_preset("official", 64, ["Smiling", "Hair.3"]).attribute_blocks
        [slice(0, 2, None), slice(2, 5, None)]
        """
        starts = [0]
        for a in self.attributes:
            starts.append(starts[-1] + a.n_values)
        return [slice(a, b) for a, b in zip(starts, starts[1:])]

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        side = self.image_size // 2 ** self.n_layers
        return (self.channels(self.n_layers - 1), side, side)

    # ----------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["attributes"] = [a.spec for a in self.attributes]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return from_settings(cls, d, "model")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def from_settings(cls, d: dict, what: str):
    """Build dataclass ``cls`` from a dict read from a file, refusing unknown keys by name."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown {what} setting(s) {unknown}; known settings: {sorted(known)}")
    return cls(**d)


def jsonable(obj):
    """``obj`` as it reads back from JSON (tuples become lists), for comparing settings with a file."""
    return json.loads(json.dumps(obj))


def _check_image_size(size) -> None:
    if size not in IMAGE_SIZES or isinstance(size, bool):
        raise ConfigError(
            f"image size {size!r} is not allowed: use a power of two from 32 to 256 "
            f"({', '.join(map(str, IMAGE_SIZES))})"
        )
