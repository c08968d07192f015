"""Editing any photo with a trained Fader network: x -> z = E(x) -> D(z, y') (paper section 3).

A photo is read (JPEG or PNG, any size or colour mode), cropped and resized the way the
training images were (:func:`faderlib.images.prepare_photo`), encoded once, and decoded with
new attribute values ``y'``. A binary attribute takes any real alpha, fed to the decoder as
``[1 - alpha, alpha]``: values beyond [0, 1] exaggerate it (docs/paper_notes.md, section 5);
a categorical one takes one of its class indices.

Results are best on faces aligned like the training data (CelebA's ``img_align_celeba``:
eyes level, face centred); a model trained on the synthetic cartoon faces has never seen
a real photo.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import torch
from PIL import Image

from .classifier import read_attributes
from .images import prepare_photo, read_image, to_pil
from .models import check_changes, code_for
from .runs import Run, load_run
from .synth import is_synthetic


class EditNote(UserWarning):
    """A remark about an edit that is not an error (e.g. a photo outside the model's domain)."""


def parse_changes(items: Sequence[str]) -> dict[str, float]:
    """``["Smiling=1.5", "Eyeglasses=1"]`` (the CLI's ``--set``) -> ``{"Smiling": 1.5, "Eyeglasses": 1.0}``."""
    changes: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set {item!r}: expected NAME=VALUE, e.g. --set Smiling=1.5")
        if name.strip() in changes:
            raise ValueError(f"--set {name.strip()} is given twice ({name.strip()}={changes[name.strip()]:g} and "
                             f"{item}); give each attribute once")
        try:
            changes[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--set {item!r}: the value {value.strip()!r} is not a number; "
                             "write e.g. Smiling=1.5 (alpha: 0 = absent, 1 = present, beyond exaggerates)") from None
    return changes


def domain_notes(run: Run, original_size: tuple[int, int], crop: str) -> list[str]:
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


def _trained_on_synthetic(run: Run) -> bool:
    try:
        return bool(run.data_dir) and is_synthetic(run.data_dir)
    except Exception:  # a moved or deleted data folder: we simply do not know
        return False


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
    run = run if isinstance(run, Run) else load_run(run, checkpoint)
    config = run.model_config
    index_changes = check_changes(config, changes)
    pil = read_image(image)
    x, used = prepare_photo(pil, config.image_size, crop)
    for note in domain_notes(run, pil.size, used):
        warnings.warn(note, EditNote, stacklevel=3)
    ae = run.autoencoder.eval()
    x = x.to(next(ae.parameters()).device)
    if classifier is not None:
        y = read_attributes(classifier, x, config)
    else:
        y = torch.zeros(1, len(config.attributes), dtype=torch.long)
    edited = to_pil(ae.decoder(ae.encode(x), code_for(config, y, index_changes).to(x.device))[0])
    if not compare:
        return edited
    side = Image.new("RGB", (2 * edited.width + 2, edited.height), "white")
    side.paste(to_pil(x[0]), (0, 0))
    side.paste(edited, (edited.width + 2, 0))
    return side
