"""Editing any photo with a trained Fader network: x -> z = E(x) -> D(z, y') (paper section 3).

A photo is read (JPEG or PNG, any size or colour mode), cropped and resized the way the
training images were (:func:`prepare_photo`), encoded once, and decoded with new
attribute values ``y'``. A binary attribute takes any real alpha, fed to the decoder
as ``[1 - alpha, alpha]``: values beyond [0, 1] exaggerate it (REFERENCE.md section 4);
a categorical one takes one of its class indices.

Results are best on faces aligned like the training data (CelebA's ``img_align_celeba``:
eyes level, face centred); a model trained on the synthetic cartoon faces has never seen
a real photo.
"""

from __future__ import annotations

import difflib
import io
import math
import os
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .celeba_facts import CROP_BOTTOM, CROP_TOP, IMAGE_HEIGHT, IMAGE_WIDTH
from .config import ModelConfig

#: Largest |alpha| accepted for a binary attribute (the reference went up to 10, for age).
MAX_ALPHA = 10.0

#: Crop modes of :func:`prepare_photo`.
CROPS = ("auto", "celeba", "center")


class EditNote(UserWarning):
    """A remark about an edit that is not an error (e.g. a photo outside the model's domain)."""


# ------------------------------------------------------------------ attribute values


def parse_changes(items: Sequence[str]) -> dict[str, float]:
    """``["Smiling=1.5", "Eyeglasses=1"]`` (the CLI's ``--set``) -> ``{"Smiling": 1.5, "Eyeglasses": 1.0}``."""
    changes: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set {item!r}: expected NAME=VALUE, e.g. --set Smiling=1.5")
        try:
            changes[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--set {item!r}: the value {value.strip()!r} is not a number; "
                             "write e.g. Smiling=1.5 (alpha: 0 = absent, 1 = present, beyond exaggerates)") from None
    return changes


def check_changes(config: ModelConfig, changes: Mapping[str, float]) -> dict[int, float]:
    """Validate ``{name: value}`` against the model's attributes; returns ``{attribute index: value}``.

    Binary attributes take a real alpha with |alpha| <= :data:`MAX_ALPHA`; a categorical
    attribute with K values takes an integer 0..K-1.
    """
    names = config.attribute_names
    out: dict[int, float] = {}
    for name, value in changes.items():
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown attribute {name!r}: this model knows {', '.join(names)}.{hint}")
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


def code_for(config: ModelConfig, y: torch.Tensor, changes: Mapping[int | str, float] | None = None) -> torch.Tensor:
    """The decoder's attribute code (B, n_attr_channels) for class indices ``y`` (B, n_attr),
    with ``changes`` ``{attribute (index or name): value}`` applied: a binary attribute
    becomes ``[1 - alpha, alpha]``, a categorical one the one-hot of its integer value.
    Attributes not changed keep their values in ``y``."""
    from .models import attribute_code

    y = torch.as_tensor(y)
    if y.dim() == 1:
        y = y[None]
    code = attribute_code(y.long(), config).clone()
    starts = np.cumsum([0] + [a.n_values for a in config.attributes])
    for key, v in (changes or {}).items():
        j = config.attribute_names.index(key) if isinstance(key, str) else int(key)
        attr, s = config.attributes[j], int(starts[j])
        if attr.is_binary:
            code[:, s] = 1.0 - float(v)
            code[:, s + 1] = float(v)
        else:
            code[:, s:s + attr.n_values] = 0.0
            code[:, s + int(v)] = 1.0
    return code


# ----------------------------------------------------------------------- reading


def read_image(image, name: str | None = None) -> Image.Image:
    """Open ``image`` (a path, bytes or a PIL image) fully decoded, EXIF rotation applied.

    Raises ``ValueError`` naming the file when it is not a readable image.
    """
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        label = name or f"the uploaded data ({len(image)} bytes)"
        source = io.BytesIO(bytes(image))
    elif isinstance(image, (str, os.PathLike)):
        label = name or str(image)
        if not Path(image).is_file():
            raise FileNotFoundError(f"{label}: no such image file")
        source = image
    else:
        raise TypeError(f"expected a path, bytes or a PIL image, got {type(image).__name__}")
    try:
        with Image.open(source) as im:
            im.load()  # decode fully: a truncated file raises here, not later
            im = ImageOps.exif_transpose(im) or im
            return im.copy()
    except UnidentifiedImageError:
        raise ValueError(f"{label}: not an image file Pillow recognises; expected a JPEG or PNG file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"{label}: cannot be read as an image ({type(e).__name__}: {e}); "
                         "expected a complete JPEG or PNG file (re-save or re-download it)") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as RGB: transparency composited on white, 16-bit and float scaled to 8 bits."""
    mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or a.max(initial=0) > 255 else 255.0
        if mode == "F" and a.max(initial=0) <= 1.0:
            top = 1.0
        a = np.clip(a / top * 255.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if mode == "RGB":
        return image
    return image.convert("RGB")


def choose_crop(size: tuple[int, int], crop: str = "auto") -> str:
    """``auto`` -> ``celeba`` for an aligned CelebA-sized image (178x218), else ``center``."""
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
    if crop == "auto":
        return "celeba" if tuple(size) == (IMAGE_WIDTH, IMAGE_HEIGHT) else "center"
    return crop


def prepare_photo(image, size: int, crop: str = "auto", name: str | None = None) -> tuple[torch.Tensor, str]:
    """A photo as the network's input x: (1, 3, size, size) float in [-1, 1], and the crop used.

    ``celeba``: keep rows 20..197 of an aligned 178x218 image (the training crop; an aligned
    image scaled up or down keeps the same proportions); ``center``: the centred square.
    Then :func:`faderlib.cache.crop_and_resize` exactly as the cache was built.
    """
    from .cache import crop_and_resize

    pil = to_rgb(read_image(image, name))
    mode = choose_crop(pil.size, crop)
    w, h = pil.size
    if mode == "celeba":
        if abs(w / h - IMAGE_WIDTH / IMAGE_HEIGHT) > 0.02:
            raise ValueError(
                f"crop='celeba' expects an aligned CelebA image of {IMAGE_WIDTH}x{IMAGE_HEIGHT} (or the same "
                f"proportions), found {w}x{h}; use crop='center' (--crop center) for other photos")
        rows = (round(CROP_TOP * h / IMAGE_HEIGHT), round(CROP_BOTTOM * h / IMAGE_HEIGHT))
    else:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        pil, rows = pil.crop((left, top, left + side, top + side)), None
    array = crop_and_resize(pil, size, rows)
    x = torch.from_numpy(array.astype(np.float32) / np.float32(127.5) - np.float32(1.0))
    return x[None], mode


# ------------------------------------------------------------------------- notes


def domain_notes(run, original_size: tuple[int, int], crop: str) -> list[str]:
    """What a user should know about this edit (never an error)."""
    notes = []
    if crop == "center":
        w, h = original_size
        notes.append(f"the photo ({w}x{h}) is not an aligned CelebA image (178x218) and was centre-cropped to a "
                     "square: results are best on faces aligned like the training data (face centred, eyes level, "
                     "as in img_align_celeba)")
    if _trained_on_synthetic(run):
        notes.append("this model was trained on the synthetic cartoon faces: it edits faces drawn like them; "
                     "if this is a real photo, it is out of the model's domain (expect a cartoon-like face "
                     "rather than an edit of the photo)")
    return notes


def _trained_on_synthetic(run) -> bool:
    try:
        from .synth import is_synthetic

        return bool(run.data_dir) and is_synthetic(run.data_dir)
    except Exception:  # a moved or deleted data folder: we simply do not know
        return False


# -------------------------------------------------------------------- base values


def predicted_attributes(classifier, x: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Class indices (B, n_attr) of the run's attributes as read by an attribute classifier
    (a folder from ``fader train-classifier`` or a loaded one), matched by name."""
    from .classifier import load_classifier, predict

    clf = load_classifier(classifier) if isinstance(classifier, (str, os.PathLike)) else classifier
    names = clf.config.attribute_names
    missing = [n for n in config.attribute_names if n not in names]
    if missing:
        raise ValueError(f"the classifier does not predict {', '.join(missing)} (it knows {', '.join(names)}); "
                         "train one on the run's attributes with `fader train-classifier --attrs ...`")
    if clf.config.image_size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=clf.config.image_size, mode="area")
    pred = predict(clf, x)
    return pred[:, [names.index(n) for n in config.attribute_names]]


# -------------------------------------------------------------------------- edit


def _as_run(run, checkpoint: str = "last.pt"):
    from .runs import Run, load_run

    return run if isinstance(run, Run) else load_run(run, checkpoint)


@torch.inference_mode()
def edit_image(run, image, changes: Mapping[str, float], crop: str = "auto", compare: bool = False,
               classifier=None, checkpoint: str = "last.pt") -> Image.Image:
    """Edit a photo: ``D(E(x), y')`` with ``y'`` = ``changes`` (e.g. ``{"Smiling": 1.5}``).

    run: a :class:`~faderlib.runs.Run` or a run folder; image: a path, bytes or PIL image
    (JPEG/PNG, any size and mode). Attributes not in ``changes`` are 0, or what the attribute
    ``classifier`` (a folder) reads from the photo. Returns the edited image at the model's
    size, or the input and the edit side by side when ``compare``. Notes on the photo's
    domain come as :class:`EditNote` warnings.
    """
    run = _as_run(run, checkpoint)
    config = run.model_config
    index_changes = check_changes(config, changes)
    pil = read_image(image)
    x, used = prepare_photo(pil, config.image_size, crop)
    for note in domain_notes(run, pil.size, used):
        warnings.warn(note, EditNote, stacklevel=3)
    ae = run.autoencoder.eval()
    x = x.to(next(ae.parameters()).device)
    if classifier is not None:
        y = predicted_attributes(classifier, x, config)
    else:
        y = torch.zeros(1, len(config.attributes), dtype=torch.long)
    x_hat = ae.decoder(ae.encode(x), code_for(config, y, index_changes).to(x.device))
    from .visual import to_pil

    edited = to_pil(x_hat[0])
    if not compare:
        return edited
    side = Image.new("RGB", (2 * edited.width + 2, edited.height), "white")
    side.paste(to_pil(x[0]), (0, 0))
    side.paste(edited, (edited.width + 2, 0))
    return side
