"""Who a synthetic face is and what it shows: the samplers of its identity and attributes.

Each face is an *identity* (face shape, skin tone, hair style, eyes, background,
lighting, pose...) and a set of *attributes* (Smiling, Male, Eyeglasses...). They are
drawn independently: identity ``i`` of seed ``s`` comes from
``np.random.default_rng([s, i, 1])``, its attributes from ``np.random.default_rng([s, i, 0])``
(:func:`face_params`), so a data set does not depend on the number of worker processes,
and the pixels are a pure function :func:`faderlib.synth.drawing.render` ``(identity, attributes)``.
"""

from __future__ import annotations

import math
from typing import Mapping, Union

import numpy as np

from ..celeba_facts import CELEBA_ATTRIBUTES, SPLIT_SIZES
from ..errors import did_you_mean

__all__ = [
    "ATTRIBUTES",
    "IDENTITY_KEYS",
    "INT_KEYS",
    "Attributes",
    "face_params",
    "sample_attributes",
    "sample_identity",
    "split_sizes",
    "unknown_attribute_message",
]

#: The CelebA attributes this data set draws, in CelebA's header order. The other 29
#: CelebA columns are absent from its ``list_attr_celeba.txt`` (readers go by the header).
ATTRIBUTES = tuple(
    name
    for name in CELEBA_ATTRIBUTES
    if name
    in {
        "Bangs", "Black_Hair", "Blond_Hair", "Eyeglasses", "Male", "Mouth_Slightly_Open",
        "Mustache", "Pale_Skin", "Smiling", "Wearing_Hat", "Young",
    }
)

#: Attribute values by name: 0/1, or in between for a partial edit (a Fader slider at 0.5).
Attributes = Mapping[str, Union[int, float]]


def sample_attributes(rng: np.random.Generator) -> dict[str, int]:
    """Draw one face's attributes (0/1), with CelebA's frequencies (docs/paper_notes.md, 'CelebA').

    Smiling, Male and Eyeglasses are independent of each other, so that a Fader
    Network can learn each one alone. A few mild correlations copy CelebA's:
    an open mouth goes with a smile, men are older, bangs and blond hair are mostly
    women's, mustaches only men's, and Black_Hair and Blond_Hair never both hold.
    Always draws 10 numbers, whatever the outcome, so the stream stays aligned.
    """
    u = rng.random(10)
    male = u[0] < 0.4168                                    # CelebA 41.68 %
    smiling = u[1] < 0.4821                                 # 48.21 %
    mouth_open = u[2] < (0.66 if smiling else 0.32)         # -> 48.4 % (CelebA 48.34 %)
    young = u[3] < (0.68 if male else 0.84)                 # -> 77.3 % (77.36 %)
    eyeglasses = u[4] < 0.0651                              # 6.51 %
    bangs = u[5] < (0.06 if male else 0.22)                 # -> 15.3 % (15.16 %)
    p_blond = 0.035 if male else 0.23                       # -> 14.9 % (14.80 %)
    blond = u[6] < p_blond
    black = p_blond <= u[6] < p_blond + 0.2393              # 23.93 %, never with blond
    hat = u[7] < 0.0485                                     # 4.85 %
    mustache = male and u[8] < 0.0996                       # -> 4.15 % (4.15 %)
    pale = u[9] < (0.018 if male else 0.06)                 # -> 4.25 % (4.29 %)
    values = {
        "Bangs": bangs, "Black_Hair": black, "Blond_Hair": blond, "Eyeglasses": eyeglasses,
        "Male": male, "Mouth_Slightly_Open": mouth_open, "Mustache": mustache,
        "Pale_Skin": pale, "Smiling": smiling, "Wearing_Hat": hat, "Young": young,
    }
    return {name: int(values[name]) for name in ATTRIBUTES}


#: Identity parameters that are whole numbers (styles, colour choices, the noise seed).
INT_KEYS = frozenset({
    "hair_style", "hair_family", "hair_part", "bangs_style", "eye_color",
    "glasses_style", "glasses_color", "hat_style", "noise_seed",
})


def sample_identity(rng: np.random.Generator) -> dict[str, int | float]:
    """Draw everything about a face that is *not* an attribute.

    Lengths are in pixels of the final 178x218 image, in face coordinates (origin
    midway between the eyes, y down); other numbers are 0..1 knobs read by
    :func:`render`. Floats are rounded to 4 decimals so that the ground-truth CSV
    stores them exactly.
    """
    def u(low, high):
        return float(rng.uniform(low, high))

    def pick(k):
        return int(rng.integers(k))

    identity = {
        # pose: a few pixels of shift and a few degrees of tilt, like CelebA's alignment
        "dx": u(-4, 4), "dy": u(-4, 4), "angle": u(-4, 4),
        # face: half-width, half-height, jaw squareness; skin tone (0 light .. 1 dark)
        "face_rx": u(40, 46), "face_ry": u(60, 67), "jaw": u(0, 1),
        "skin": float(rng.beta(1.4, 2.4)), "skin_warmth": u(-1, 1),
        # hair: style (0 straight, 1 parted, 2 curly, 3 full), colour family used when
        # neither Black_Hair nor Blond_Hair (0 brown, 1 light brown, 2 auburn, 3 chestnut)
        "hair_style": pick(4), "hair_family": pick(4), "hair_shade": u(-1, 1),
        "hair_length": u(0.2, 1), "hair_volume": u(0, 1), "hair_part": 2 * pick(2) - 1,
        "bangs_style": pick(3),
        # eyes, brows, nose, mouth
        "eye_gap": u(17.5, 20.5), "eye_size": u(0.9, 1.12), "eye_color": pick(5),
        "brow_thickness": u(0, 1), "brow_arch": u(0, 1), "brow_height": u(-1.5, 1.5),
        "nose_length": u(0, 1), "nose_width": u(0, 1),
        "mouth_width": u(0.9, 1.12), "mouth_y": u(-2, 2), "lip_fullness": u(0, 1),
        "stubble": u(0.4, 1),
        # what Eyeglasses and Wearing_Hat look like on this person, when they are on
        "glasses_style": pick(3), "glasses_color": pick(4),
        "hat_style": pick(3), "hat_hue": u(0, 1), "hat_value": u(0.3, 0.85),
        # clothes, background, lighting, sensor noise
        "shirt_hue": u(0, 1), "shirt_sat": u(0.2, 0.7), "shirt_value": u(0.3, 0.9),
        "bg_hue": u(0, 1), "bg_hue_shift": u(-0.12, 0.12), "bg_sat": u(0.08, 0.45),
        "bg_value": u(0.5, 0.95), "bg_angle": u(0, 2 * math.pi),
        "light_angle": u(0, 2 * math.pi), "light_strength": u(0, 0.25),
        "brightness": u(0.92, 1.08), "contrast": u(0.88, 1.08),
        "noise_seed": int(rng.integers(2**31)),
    }
    return {k: v if k in INT_KEYS else round(v, 4) for k, v in identity.items()}


#: The names of the identity parameters, in the ground-truth CSV's column order.
IDENTITY_KEYS = tuple(sample_identity(np.random.default_rng(0)))


def face_params(seed: int, index: int) -> tuple[dict[str, int | float], dict[str, int]]:
    """The (identity, attributes) of face ``index`` (0-based) of the set made with ``seed``."""
    attributes = sample_attributes(np.random.default_rng([seed, index, 0]))
    identity = sample_identity(np.random.default_rng([seed, index, 1]))
    return identity, attributes


def split_sizes(n: int) -> tuple[int, int, int]:
    """(train, valid, test) sizes for ``n`` images, in CelebA's proportions.

    ``split_sizes(202599)`` gives the official (162770, 19867, 19962).
    """
    total = sum(SPLIT_SIZES)
    valid = round(n * SPLIT_SIZES[1] / total)
    test = round(n * SPLIT_SIZES[2] / total)
    return n - valid - test, valid, test


def unknown_attribute_message(name: str) -> str:
    """The error message for an attribute name that is not one of :data:`ATTRIBUTES`."""
    valid = ", ".join(ATTRIBUTES)
    if name in CELEBA_ATTRIBUTES:
        return (f"{name!r} is a CelebA attribute, but the synthetic faces do not draw it. "
                f"They draw: {valid}.")
    return f"Unknown attribute {name!r}.{did_you_mean(name, ATTRIBUTES)} The synthetic faces draw: {valid}."
