"""Drawing a synthetic face: :func:`render` ``(identity, attributes)`` -> a 178x218 RGB image.

The face is drawn at twice the size on a canvas in *face coordinates* (origin midway
between the eyes, y down), shrunk to antialias, then given a camera's lighting, contrast
and sensor noise. The noise is a window into one fixed texture (:func:`noise_texture`),
which is how :mod:`faderlib.synth.detect` recognises these faces from their pixels.
"""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from PIL import Image, ImageDraw

from ..celeba_facts import IMAGE_HEIGHT, IMAGE_WIDTH
from .sampling import ATTRIBUTES, IDENTITY_KEYS, Attributes, unknown_attribute_message

__all__ = ["noise_texture", "render"]

_SUPERSAMPLE = 2          # draw at 2x, then shrink: cheap antialiasing
_EYE_ROW = 110            # image row of the eye line (CelebA aligned faces: ~110 of 218)
_FACE_CY = 10.0           # face ellipse centre, below the eye line
_Color = tuple[int, int, int]

_SKIN_RAMP = np.array([(241, 206, 180), (226, 180, 148), (198, 144, 108),
                       (152, 102, 72), (100, 66, 46)], dtype=float)
_PALE_SKIN = (253, 241, 236)
_HAIR_FAMILIES = [(104, 68, 44), (150, 104, 64), (146, 66, 36), (118, 78, 50)]
_BLACK_HAIR = (30, 27, 28)
_BLOND_HAIR = ((222, 186, 118), (246, 224, 160))
_GREY_HAIR = (180, 178, 174)
_EYE_COLORS = [(92, 56, 30), (48, 32, 22), (68, 110, 160), (78, 118, 78), (122, 96, 52)]
_GLASSES_COLORS = [(18, 18, 20), (62, 36, 24), (24, 30, 64), (86, 22, 30)]
_MOUTH_DARK = (72, 26, 30)
_TEETH = (240, 236, 226)


def _mix(a, b, t: float) -> _Color:
    """Colour ``a`` moved a fraction ``t`` of the way to colour ``b``."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _scale(color, k: float) -> _Color:
    return tuple(int(min(255, max(0, round(c * k)))) for c in color)


def _hsv(h: float, s: float, v: float) -> _Color:
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _ellipse(cx, cy, rx, ry, start=0.0, end=2 * math.pi, n=40, power=2.0):
    """Points of a (super)ellipse arc; ``power`` > 2 squares it off (for frames)."""
    return [(cx + rx * u, cy + ry * v) for u, v in _unit_arc(start, end, n, power)]


@functools.lru_cache(maxsize=256)
def _unit_arc(start: float, end: float, n: int, power: float):
    """``n + 1`` points of the unit (super)circle from angle ``start`` to ``end``, cached."""
    pts = []
    for k in range(n + 1):
        a = start + (end - start) * k / n
        c, s = math.cos(a), math.sin(a)
        pts.append((math.copysign(abs(c) ** (2 / power), c), math.copysign(abs(s) ** (2 / power), s)))
    return tuple(pts)


def _bezier(p0, p1, p2, n=16):
    """Points of the quadratic Bezier curve from ``p0`` to ``p2`` pulled toward ``p1``."""
    return [((1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * p1[0] + t * t * p2[0],
             (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * p1[1] + t * t * p2[1])
            for t in (k / n for k in range(n + 1))]


def _through(p0, mid, p2, n=16):
    """Quadratic Bezier from ``p0`` to ``p2`` that passes through ``mid`` halfway."""
    control = (2 * mid[0] - (p0[0] + p2[0]) / 2, 2 * mid[1] - (p0[1] + p2[1]) / 2)
    return _bezier(p0, control, p2, n)


class _Canvas:
    """A supersampled RGB image drawn on in *face coordinates*.

    Face coordinates: origin midway between the eyes, x to the right, y down, unit =
    one pixel of the final 178x218 image. The identity's shift and tilt are applied
    here, once, so the drawing code below never has to think about pose.
    """

    def __init__(self, image: Image.Image, dx: float, dy: float, angle_deg: float):
        self.image = image
        self.draw = ImageDraw.Draw(image)
        a = math.radians(angle_deg)
        self._cos, self._sin = math.cos(a), math.sin(a)
        self._ox = (IMAGE_WIDTH / 2 + dx) * _SUPERSAMPLE
        self._oy = (_EYE_ROW + dy) * _SUPERSAMPLE

    def _xy(self, pts):
        c, s, k = self._cos, self._sin, _SUPERSAMPLE
        return [(self._ox + k * (x * c - y * s), self._oy + k * (x * s + y * c)) for x, y in pts]

    def polygon(self, pts, fill: _Color) -> None:
        self.draw.polygon(self._xy(pts), fill=fill)

    def line(self, pts, fill: _Color, width: float) -> None:
        self.draw.line(self._xy(pts), fill=fill, width=max(1, round(width * _SUPERSAMPLE)),
                       joint="curve")

    def blended(self, strength: float, draw: Callable[["_Canvas"], None]) -> None:
        """Run ``draw(self)`` at opacity ``strength``: 0 skips it, 1 draws it opaque.

        In between, it draws on a copy and blends the copy in; this is how an attribute
        of 0.5 (a slider half-way) gives a half-visible hat or a half-grey head of hair.
        """
        strength = min(1.0, max(0.0, strength))
        if strength == 0.0:
            return
        if strength == 1.0:
            draw(self)
            return
        base = self.image
        self.image = base.copy()
        self.draw = ImageDraw.Draw(self.image)
        draw(self)
        self.image = Image.blend(base, self.image, strength)
        self.draw = ImageDraw.Draw(self.image)


@dataclass(frozen=True)
class _Face:
    """Face outline: an ellipse on top, a squarer, wider-or-narrower jaw below its centre."""

    rx: float
    ry: float
    jaw_power: float   # 2 = round chin, 3+ = square jaw
    jaw_taper: float   # how much the jaw narrows toward the chin

    def half_width(self, y: float) -> float:
        t = min(1.0, abs(y - _FACE_CY) / self.ry)
        if y <= _FACE_CY:
            return self.rx * math.sqrt(1 - t * t)
        p = self.jaw_power
        return self.rx * (1 - t**p) ** (1 / p) * (1 - self.jaw_taper * t * t)

    def outline(self, n: int = 24):
        right = [(self.rx * math.cos(a), _FACE_CY + self.ry * math.sin(a))
                 for a in (-math.pi / 2 + (math.pi / 2) * k / n for k in range(n))]
        for k in range(n + 1):
            y = _FACE_CY + self.ry * math.sin((math.pi / 2) * k / n)
            right.append((self.half_width(y), y))
        left = [(-x, y) for x, y in reversed(right[1:-1])]
        return right + left


def _attribute_values(attributes: Attributes) -> dict[str, float]:
    """All of :data:`ATTRIBUTES` as floats (missing ones are 0); unknown names raise."""
    for name in attributes:
        if name not in ATTRIBUTES:
            raise ValueError(unknown_attribute_message(name))
    return {name: float(attributes.get(name, 0)) for name in ATTRIBUTES}


def _skin_color(identity, a) -> _Color:
    pos = identity["skin"] * (len(_SKIN_RAMP) - 1)
    k = min(int(pos), len(_SKIN_RAMP) - 2)
    base = _SKIN_RAMP[k] + (_SKIN_RAMP[k + 1] - _SKIN_RAMP[k]) * (pos - k)
    base = base + np.array([6.0, 0.0, -6.0]) * identity["skin_warmth"]
    color = _mix(base, _PALE_SKIN, 0.78 * a["Pale_Skin"])
    grey = sum(color) / 3
    return _mix(color, (grey, grey, grey), 0.18 * (1 - a["Young"]))


def _hair_color(identity, a) -> _Color:
    shade = identity["hair_shade"]
    black, blond = a["Black_Hair"], a["Blond_Hair"]
    if black + blond > 1:             # both asked for (only by hand): share the head
        black, blond = black / (black + blond), blond / (black + blond)
    own = np.array(_scale(_HAIR_FAMILIES[identity["hair_family"]], 1 + 0.15 * shade), float)
    color = (own * (1 - black - blond)
             + np.array(_scale(_BLACK_HAIR, 1 + 0.2 * shade)) * black
             + np.array(_mix(*_BLOND_HAIR, (shade + 1) / 2)) * blond)
    return _mix(color, _GREY_HAIR, 0.42 * (1 - a["Young"]))


def _background(identity) -> Image.Image:
    """A two-colour linear gradient, enlarged to the supersampled size."""
    start = Image.new("RGB", (IMAGE_WIDTH, IMAGE_HEIGHT),
                      _hsv(identity["bg_hue"], identity["bg_sat"], identity["bg_value"]))
    end = Image.new("RGB", start.size, _hsv(identity["bg_hue"] + identity["bg_hue_shift"],
                                            identity["bg_sat"], identity["bg_value"] * 0.78))
    ramp = (_ramp(identity["bg_angle"]) + 0.71) * (255 / 1.42)
    mask = Image.fromarray(ramp.astype(np.uint8), "L")
    return Image.composite(end, start, mask).resize(
        (IMAGE_WIDTH * _SUPERSAMPLE, IMAGE_HEIGHT * _SUPERSAMPLE), Image.NEAREST)


def _ramp(angle: float) -> np.ndarray:
    """(218, 178) array going linearly from about -0.7 to 0.7 along direction ``angle``."""
    xs = np.linspace(-0.5, 0.5, IMAGE_WIDTH, dtype=np.float32) * math.cos(angle)
    ys = np.linspace(-0.5, 0.5, IMAGE_HEIGHT, dtype=np.float32) * math.sin(angle)
    return ys[:, None] + xs[None, :]


def _head_arc(identity, face: _Face, male: float, grow: float = 0.0, end_y: float = _FACE_CY):
    """The top of the skull with its hair, from the left side at height ``end_y`` over
    the top to the right side; returns the points and the half-width of the hair.
    Men's hair lies flatter."""
    volume = identity["hair_volume"] + (1.2 if identity["hair_style"] == 3 else 0.0)
    volume *= 1 - 0.6 * male
    rx = face.rx + 3 + 4 * volume + grow
    ry = face.ry + 3 + 4 * volume + grow
    skip = math.asin(min(1.0, (_FACE_CY - end_y) / ry))
    n = 48
    pts = _ellipse(0, _FACE_CY, rx, ry, math.pi + skip, 2 * math.pi - skip, n=n)
    if identity["hair_style"] == 2:   # curly: a bumpy outline
        bump = [1 + 0.05 * abs(math.sin(9 * math.pi * k / n)) for k in range(n + 1)]
        pts = [(x * b, _FACE_CY + (y - _FACE_CY) * b) for (x, y), b in zip(pts, bump)]
    return pts, rx


def _draw_back_hair(c: _Canvas, identity, face: _Face, hair: _Color, male: float) -> None:
    """Hair behind the head; long unless the face is male (Male shortens it)."""
    length = identity["hair_length"] * (1 - 0.85 * male)
    bottom = _FACE_CY - 10 + 100 * length
    if bottom <= _FACE_CY + 10:            # short: the hair ends above the ears
        c.polygon(_head_arc(identity, face, male, grow=1.5, end_y=2)[0], hair)
        return
    arc, rx = _head_arc(identity, face, male, grow=1.5)
    flare = (4 + 6 * identity["hair_volume"] + (6 if identity["hair_style"] == 3 else 0)) * min(
        1.0, (bottom - _FACE_CY) / 40)
    right = [(rx + flare * (y - _FACE_CY) / (bottom - _FACE_CY), y)
             for y in np.linspace(_FACE_CY, bottom, 6)]
    ends = _through((rx + flare, bottom), (0, bottom + 6), (-rx - flare, bottom))
    if identity["hair_style"] == 2:
        ends = [(x, y + 2.5 * math.sin(k * 1.9)) for k, (x, y) in enumerate(ends)]
    left = [(-x, y) for x, y in reversed(right)]
    c.polygon(arc + right + ends + left, hair)


def _draw_front_hair(c: _Canvas, identity, face: _Face, hair: _Color, male: float) -> None:
    """Hair on top of the head, down to the hairline on the forehead and the temples."""
    ear_y = 2.0
    arc, _ = _head_arc(identity, face, male, end_y=ear_y)
    part = identity["hair_part"]
    top = -40.0
    if identity["hair_style"] == 1:        # side parting: the hair sweeps across, lower
        left_y, right_y = (-19.0, -30.0) if part > 0 else (-30.0, -19.0)
        crown_x = 0.35 * face.rx * part
    else:
        left_y = right_y = -26.0
        crown_x = 0.0
    right_temple = (face.half_width(right_y) - 5, right_y)
    left_temple = (-face.half_width(left_y) + 5, left_y)
    hairline = (
        [(face.half_width(ear_y) - 1, ear_y)]
        + _through(right_temple, (0.5 * (right_temple[0] + crown_x), top - 1), (crown_x, top))[:-1]
        + _through((crown_x, top), (0.5 * (left_temple[0] + crown_x), top - 1), left_temple)
        + [(-face.half_width(ear_y) + 1, ear_y)]
    )
    c.polygon(arc + hairline, hair)
    dark = _scale(hair, 0.78)
    if identity["hair_style"] == 1:
        c.line([(crown_x, top), (crown_x * 1.1, top - 10)], dark, 1.4)
    for k in (-2, -1, 1, 2):               # a few strands, for texture
        x0 = k * 0.12 * face.rx
        c.line(_through((x0, top - 1), (x0 * 1.1 + 1, top - 5), (x0 * 1.2, top - 9), n=6), dark, 1.0)


def _draw_bangs(c: _Canvas, identity, face: _Face, hair: _Color) -> None:
    """A fringe over the whole forehead, down to just above the brows."""
    style, part = identity["bangs_style"], identity["hair_part"]
    low = -18.0
    w = face.half_width(low) + 2

    def bottom(x):
        if style == 1:                     # swept to one side
            return low - 9 * (1 + part * x / w) / 2
        wisps = 3.0 if style == 2 else 1.2
        return low + wisps * abs(math.sin(x * math.pi / 6.5)) - 1.5 * (x / w) ** 2

    edge = [(x, bottom(x)) for x in np.linspace(w, -w, 25)]
    top = _ellipse(0, _FACE_CY, face.rx + 1, face.ry + 1, math.pi + 0.35, 2 * math.pi - 0.35, n=20)
    c.polygon([(-w, low - 4)] + top + [(w, low - 4)] + edge, hair)
    dark = _scale(hair, 0.8)
    for x in np.linspace(-0.7 * w, 0.7 * w, 6):
        c.line([(x * 0.8, -38), (x, bottom(x) - 2)], dark, 0.9)


def _draw_eyes_and_brows(c: _Canvas, identity, a, hair: _Color, skin: _Color) -> None:
    male, old = a["Male"], 1 - a["Young"]
    size, gap = identity["eye_size"], identity["eye_gap"]
    brow = _mix(hair, (35, 28, 26), 0.45)
    lid = (40, 30, 30)
    for side in (-1, 1):
        x = side * gap
        c.polygon(_ellipse(x, 0, 7.5 * size, 4.2 * size), (246, 244, 240))
        c.polygon(_ellipse(x, 0.3, 3.6 * size, 3.6 * size, n=20), _EYE_COLORS[identity["eye_color"]])
        c.polygon(_ellipse(x, 0.3, 1.7 * size, 1.7 * size, n=12), (16, 14, 16))
        c.polygon(_ellipse(x + 1.1, -0.9, 0.8, 0.8, n=8), (250, 250, 250))
        c.line(_ellipse(x, 0, 7.9 * size, 4.6 * size, math.pi, 2 * math.pi, n=14), lid,
               1.5 + 0.9 * (1 - male))
        # brow: an arch above the eye, thicker for men
        h = identity["brow_height"]
        inner, outer = (x - side * 8, -10.5 - h), (x + side * 10, -11 - h)
        peak = (x + side * 1.5, -14 - h - 2.5 * identity["brow_arch"])
        thick = (2.4 + 1.4 * identity["brow_thickness"]) * (1 + 0.6 * male)
        curve = _through(inner, peak, outer, n=10)
        upper = [(px, py - thick * (0.55 - 0.25 * k / 10)) for k, (px, py) in enumerate(curve)]
        lower = [(px, py + thick * (0.45 - 0.2 * k / 10)) for k, (px, py) in enumerate(curve)]
        c.polygon(upper + lower[::-1], brow)

        def age_lines(c, x=x, side=side):  # under-eye bags and crow's feet
            c.line(_through((x - 6, 5.5), (x, 8), (x + 6, 5.5), n=8), _scale(skin, 0.72), 1.1)
            for dy in (-2.5, 0.5, 3.5):
                c.line([(x + side * 10, dy * 0.6), (x + side * 15, dy * 1.3)], _scale(skin, 0.7), 0.9)

        c.blended(old, age_lines)


def _mouth_geometry(identity, a):
    """Mouth shape in face coordinates: (half-width, height of the corners, heights of
    the middle of the upper and of the lower lip line, and the opening between them)."""
    smile, opened, old = a["Smiling"], a["Mouth_Slightly_Open"], 1 - a["Young"]
    width = 14.5 * identity["mouth_width"] * (1 + 0.15 * smile)
    y = 44 + identity["mouth_y"]
    corner = y - 6.5 * smile + 1.5 * old * (1 - smile)
    upper = y + 2.2 * smile
    gap = opened * (5.5 + 4.5 * smile)
    return width, corner, upper, upper + gap, gap


def _draw_mouth(c: _Canvas, identity, a, skin: _Color) -> None:
    """Smiling: corners up, a U-shaped mouth; Mouth_Slightly_Open: a dark opening
    (with teeth when it also smiles)."""
    smile, male = a["Smiling"], a["Male"]
    width, corner, upper, lower, gap = _mouth_geometry(identity, a)
    left, right = (-width, corner), (width, corner)

    def curve(mid):
        return _through(left, (0, mid), right)

    lip = _mix(skin, (178, 62, 72), 0.42 + 0.22 * (1 - male))
    full = identity["lip_fullness"]
    c.polygon(curve(upper - 2.4 - full) + curve(upper)[::-1], lip)
    c.polygon(curve(lower) + curve(lower + 3.4 + 1.5 * full)[::-1], _scale(lip, 1.06))
    if gap > 0.3:
        c.polygon(curve(upper) + curve(lower)[::-1], _MOUTH_DARK)
        c.polygon(curve(upper) + curve(upper + 0.45 * gap)[::-1], _mix(_MOUTH_DARK, _TEETH, smile))
    c.line(curve(upper), _mix(lip, _MOUTH_DARK, 0.6), 1.6)

    def smile_lines(c):                    # the cheeks bunch up at the corners
        for side in (-1, 1):
            x = side * (width + 3)
            c.line(_through((x - side * 1, corner - 5), (x + side * 1.5, corner), (x, corner + 4), n=6),
                   _scale(skin, 0.78), 1.2)

    c.blended(smile, smile_lines)


def _draw_glasses(c: _Canvas, identity, face: _Face) -> None:
    """Dark frames around both eyes, a bridge and the temples back to the ears."""
    gap, style = identity["eye_gap"], identity["glasses_style"]
    rx, ry, power = [(10.0, 9.5, 2.0), (11.5, 8.0, 4.0), (11.0, 9.0, 2.8)][style]
    color = _GLASSES_COLORS[identity["glasses_color"]]
    lenses = [_ellipse(side * gap, 1, rx, ry, n=40, power=power) for side in (-1, 1)]

    def tint(c):
        for lens in lenses:
            c.polygon(lens, (214, 230, 240))

    c.blended(0.18, tint)
    for lens in lenses:
        c.line(lens + lens[1:2], color, 3.6)
    c.line(_through((-gap + rx, 0), (0, -2.5), (gap - rx, 0), n=8), color, 3.0)
    for side in (-1, 1):
        c.line([(side * (gap + rx), -1), (side * (face.half_width(-2) + 1), -2.5)], color, 3.0)


def _draw_hat(c: _Canvas, identity, face: _Face) -> None:
    """One of three hats (beanie, cap, brimmed hat) covering the top of the head."""
    color = _hsv(identity["hat_hue"], 0.55, identity["hat_value"])
    dark = _scale(color, 0.72)
    w = face.rx + 8 + 4 * identity["hair_volume"]
    style = identity["hat_style"]
    if style == 0:      # beanie with a folded cuff
        c.polygon(_ellipse(0, -24, w, 52, math.pi, 2 * math.pi), color)
        c.polygon([(-w - 1, -34), (w + 1, -34), (w + 1, -20), (-w - 1, -20)], dark)
        for x in np.linspace(-0.7 * w, 0.7 * w, 5):
            c.line([(x, -36), (x * 0.8, -66)], dark, 1.0)
    elif style == 1:    # baseball cap: crown and a visor toward the camera
        c.polygon(_ellipse(0, -28, w, 46, math.pi, 2 * math.pi), color)
        c.polygon(_ellipse(0, -29, 0.9 * w, 11, 0, math.pi), dark)
        c.polygon(_ellipse(0, -73, 3, 2, n=10), dark)
    else:               # brimmed hat: wide brim, tall crown, a band
        c.polygon(_ellipse(0, -30, w + 26, 9), dark)
        crown = _through((-w + 2, -30), (0, -88), (w - 2, -30), n=20)
        c.polygon(crown, color)
        c.polygon([(-w + 2, -40), (w - 2, -40), (w - 2, -31), (-w + 2, -31)], _scale(color, 0.45))


def render(identity: Mapping[str, int | float], attributes: Attributes) -> Image.Image:
    """Draw one face: a 178x218 RGB image, a pure function of its inputs.

    ``identity`` comes from :func:`sample_identity` (or the ground truth of a data
    set); ``attributes`` maps names of :data:`ATTRIBUTES` to 0/1 (missing names count
    as 0). Values in between give an in-between face (a half smile, a half-visible
    hat), which is what the true answer to a Fader slider at 0.5 looks like; values
    outside [0, 1] are clipped to it.
    """
    missing = [k for k in IDENTITY_KEYS if k not in identity]
    if missing:
        raise ValueError(f"identity lacks {missing}; build it with sample_identity(rng) "
                         f"or take it from load_ground_truth(data_dir).")
    a = {k: min(1.0, max(0.0, v)) for k, v in _attribute_values(attributes).items()}
    male = a["Male"]
    skin, hair = _skin_color(identity, a), _hair_color(identity, a)
    face = _Face(rx=identity["face_rx"] * (1 + 0.04 * male), ry=identity["face_ry"],
                 jaw_power=2.0 + 0.6 * identity["jaw"] + 0.9 * male,
                 jaw_taper=0.12 * (1 - male) * (1 - 0.5 * identity["jaw"]))
    c = _Canvas(_background(identity), identity["dx"], identity["dy"], identity["angle"])

    # body: shoulders in a shirt, a V of neck, the neck in the chin's shadow
    neck = _scale(skin, 0.86)
    c.polygon(_ellipse(0, 152, 104, 72), _hsv(identity["shirt_hue"], identity["shirt_sat"],
                                              identity["shirt_value"]))
    c.polygon([(-0.42 * face.rx, 40), (0.42 * face.rx, 40), (0.5 * face.rx, 86), (0, 102),
               (-0.5 * face.rx, 86)], neck)
    _draw_back_hair(c, identity, face, hair, male)
    for side in (-1, 1):
        x = side * (face.half_width(6) - 1)
        c.polygon(_ellipse(x, 7, 6.5, 11, n=20), skin)
        c.polygon(_ellipse(x + side * 1.5, 7, 3, 6.5, n=12), _scale(skin, 0.8))
    c.polygon(face.outline(), skin)
    c.line(face.outline()[::3] + face.outline()[:1], _scale(skin, 0.82), 1.0)

    base = 24 + 5 * identity["nose_length"]   # the bottom of the nose
    nw = 5 + 2.5 * identity["nose_width"]

    def stubble(c):                        # jaw, chin and upper lip, up to the sideburns
        width = _mouth_geometry(identity, a)[0]
        jaw = [(x, y) for x, y in face.outline() if y > 12]
        inner = [(-width - 5, base + 6), (-nw - 1, base + 3), (nw + 1, base + 3), (width + 5, base + 6)]
        c.polygon(jaw + [(-face.half_width(12) + 3, 12)] + inner + [(face.half_width(12) - 3, 12)],
                  _mix(skin, (52, 40, 36), 0.65))

    c.blended(0.24 * male * identity["stubble"], stubble)

    def forehead_lines(c):
        for y in (-26, -32):
            c.line(_through((-18, y), (0, y - 2), (18, y)), _scale(skin, 0.74), 1.2)

    c.blended(1 - a["Young"], forehead_lines)
    _draw_front_hair(c, identity, face, hair, male)
    _draw_eyes_and_brows(c, identity, a, hair, skin)

    # nose: a shadow down one side, a curved tip, two nostrils
    c.line([(2, 4), (0.6 * nw, base - 4)], _scale(skin, 0.85), 1.4)
    c.line(_through((-nw, base - 1), (0, base + 2), (nw, base - 1), n=8), _scale(skin, 0.76), 1.5)
    for side in (-1, 1):
        c.polygon(_ellipse(side * 0.5 * nw, base, 1.7, 1.0, n=10), _scale(skin, 0.5))

    def nasolabial_folds(c):
        _, corner, _, _, _ = _mouth_geometry(identity, a)
        for side in (-1, 1):
            c.line(_through((side * (nw + 3), base - 2), (side * (nw + 9), base + 10),
                            (side * (nw + 11), corner + 7), n=8), _scale(skin, 0.72), 1.5)

    c.blended(1 - a["Young"], nasolabial_folds)
    _draw_mouth(c, identity, a, skin)

    def mustache(c):
        width, corner, upper, _, _ = _mouth_geometry(identity, a)
        top = _through((-width - 1, corner + 1), (0, base + 3), (width + 1, corner + 1), n=12)
        bottom = _through((-width - 1, corner + 3), (0, upper - 2.5), (width + 1, corner + 3), n=12)
        c.polygon(top + bottom[::-1], _scale(hair, 0.7))

    c.blended(a["Mustache"], mustache)
    c.blended(a["Bangs"], lambda c: _draw_bangs(c, identity, face, hair))
    c.blended(a["Eyeglasses"], lambda c: _draw_glasses(c, identity, face))
    c.blended(a["Wearing_Hat"], lambda c: _draw_hat(c, identity, face))
    return _finish(c.image.reduce(_SUPERSAMPLE), identity)   # 2x2 averages: antialiasing


def _finish(image: Image.Image, identity) -> Image.Image:
    """Camera effects on the 178x218 image: a lighting gradient, contrast, sensor noise.

    The noise is a window, placed by ``noise_seed``, into one fixed noise texture:
    as random-looking as fresh noise per face, at a fraction of the cost.
    """
    contrast = identity["contrast"]
    gain = (identity["brightness"] * contrast) * (
        1 + identity["light_strength"] * _ramp(identity["light_angle"]))
    pixels = np.asarray(image, dtype=np.float32) * gain[..., None]
    seed = identity["noise_seed"]
    row, col = seed % IMAGE_HEIGHT, (seed // IMAGE_HEIGHT) % IMAGE_WIDTH
    pixels += noise_texture()[row:row + IMAGE_HEIGHT, col:col + IMAGE_WIDTH]
    pixels += 128 * (1 - contrast) + 0.5       # + 0.5: the uint8 cast below then rounds
    np.clip(pixels, 0, 255, out=pixels)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


@functools.lru_cache(maxsize=1)
def noise_texture() -> np.ndarray:
    """Gaussian noise (sigma 2 grey levels), twice the image size, always the same."""
    return 2.0 * np.random.default_rng(20170603).standard_normal(
        (2 * IMAGE_HEIGHT, 2 * IMAGE_WIDTH, 3), np.float32)
