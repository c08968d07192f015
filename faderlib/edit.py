"""Editing any photo with a trained Fader network: x -> z = E(x) -> D(z, y') (the paper, section 3).

A photo is read (JPEG or PNG, any size or colour mode), cropped and resized the way the
training images were (:func:`faderlib.images.prepare_photo`), encoded once, and decoded with
new attribute values ``y'``. A binary attribute takes any real alpha, fed to the decoder as
``[1 - alpha, alpha]``: values beyond [0, 1] exaggerate it (docs/paper_notes.md,
'Interpolation beyond [0, 1]'); a categorical one takes one of its class indices.

Results are best on faces aligned like the training data (CelebA's ``img_align_celeba``:
eyes level, face centred); a model trained on the synthetic cartoon faces has never seen
a real photo.
"""

from __future__ import annotations

import os
import warnings
from typing import Mapping, Sequence

import torch
from PIL import Image

from .classifier import classifier_places, find_classifier, read_attributes
from .images import prepare_photo, read_image, to_pil
from .models import check_changes, code_for
from .runs import Run, load_run
from .synth import is_synthetic, is_synthetic_face
from .visual import LINE, Picture


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


def domain_notes(run: Run, image: Image.Image, crop: str) -> list[str]:
    """What a user should know about editing ``image`` (the photo as read, before any crop)
    with ``run`` (never an error): that a photo of other proportions than CelebA's was
    centre-cropped, and, for a model trained on the synthetic faces, that an image which is not
    one of them (:func:`faderlib.synth.is_synthetic_face`: a real photo) is outside the model's
    domain. A synthetic face, such as the sample of :func:`faderlib.runs.sample_photo`, gets
    no domain note."""
    notes = []
    if crop == "center":
        w, h = image.size
        notes.append(f"the photo ({w}x{h}) is not an aligned CelebA image (178x218) and was centre-cropped to a "
                     "square: results are best on faces aligned like the training data (face centred, eyes level, "
                     "as in img_align_celeba)")
    if _trained_on_synthetic(run) and not is_synthetic_face(image):
        notes.append("this model was trained on the synthetic cartoon faces, and this image is not one of them (it "
                     "lacks their fixed sensor noise): if it is a real photo, it is out of the model's domain "
                     "(expect a cartoon-like face rather than an edit of the photo)")
    return notes


def _trained_on_synthetic(run: Run) -> bool:
    try:
        return bool(run.data_dir) and is_synthetic(run.data_dir)
    except Exception:  # a moved or deleted data folder: we simply do not know
        return False


#: The notes :func:`edit_image` printed in this process (each is printed once: a notebook cell that
#: edits one photo six times says where its other attributes come from once).
PRINTED_NOTES: set[str] = set()


def photo_attributes(run: Run, x: torch.Tensor, classifier="auto", changed: Sequence[int] = ()
                     ) -> tuple[torch.Tensor, str | None]:
    """The attributes y (1, n_attr) that an edit of the photo ``x`` starts from, and a note that
    says where they come from (None when there is nothing to say).

    ``classifier="auto"`` takes the attribute classifier kept with the run, as the slider app
    does (:func:`faderlib.classifier.find_classifier`: ``RUN_DIR/classifier`` beside a course's
    ``RUN_DIR/fader``, or ``<run>_classifier``); a folder or a loaded classifier is used as it
    is; None reads nothing. Without a classifier every attribute is 0 (absent). Nothing is read
    when every attribute is in ``changed`` (indices): they are all set anyway.
    """
    names = run.model_config.attribute_names
    zeros = torch.zeros(1, len(names), dtype=torch.long)
    others = [n for j, n in enumerate(names) if j not in set(changed)]
    if classifier is None or not others:
        return zeros, None
    where = ""
    if isinstance(classifier, str) and classifier == "auto":
        found = find_classifier(run.run_dir, names)
        if found is None:
            places = " or ".join(str(p) for p in classifier_places(run.run_dir))
            return zeros, (f"no attribute classifier of {', '.join(names)} was found with the run (in {places}): "
                           f"the attributes not set ({', '.join(others)}) are 0, so the edit also removes them "
                           "from the photo; give one with classifier=FOLDER (`fader train-classifier`, or "
                           "course.ensure_classifier(runs) as in notebook 03)")
        classifier = found
    if isinstance(classifier, (str, os.PathLike)):
        where = f" in {classifier}"
    y = read_attributes(classifier, x, run.model_config).cpu()
    read = ", ".join(f"{n} {int(v)}" for n, v in zip(names, y[0].tolist()))
    return y, f"the attributes not set keep what the attribute classifier{where} reads from the photo: {read}"


def _print_once(note: str) -> None:
    if note not in PRINTED_NOTES:
        PRINTED_NOTES.add(note)
        print(f"note: {note}")


@torch.inference_mode()
def edit_image(run, image, changes: Mapping[str, float], crop: str = "auto", compare: bool = False,
               classifier="auto", checkpoint: str = "last.pt") -> Picture:
    """Edit a photo: ``D(E(x), y')`` with ``y'`` = ``changes`` (e.g. ``{"Smiling": 1.5}``).

    run: a :class:`~faderlib.runs.Run` or a run folder; image: a path, bytes or PIL image
    (JPEG/PNG, any size and mode). Attributes not in ``changes`` keep what the attribute
    classifier reads from the photo (:func:`photo_attributes`): ``classifier="auto"`` (the
    default) takes the one kept with the run, as the slider app does; a folder or a loaded
    classifier is used as it is; None, or no classifier found, sets them to 0. A short note,
    printed once per process, says which classifier was used, or that none was found. Returns the
    edited image at the model's size, or the input and the edit side by side when ``compare``
    (``2 * S + 2`` by ``S``). Both are :class:`~faderlib.visual.Picture`: saved, the model's
    pixels; in a notebook, enlarged to at least 256 px per face, the strip captioned ("input",
    "edited", the changes above). Notes on the photo's domain come as :class:`EditNote` warnings.
    """
    if not (classifier is None or isinstance(classifier, (str, os.PathLike, torch.nn.Module))):
        raise TypeError(f"classifier={classifier!r}: give 'auto' (the run's, if it has one), a folder from "
                        "`fader train-classifier`, a loaded classifier, or None (the attributes not set are 0)")
    run = run if isinstance(run, Run) else load_run(run, checkpoint)
    config = run.model_config
    index_changes = check_changes(config, changes)
    pil = read_image(image)
    x, used = prepare_photo(pil, config.image_size, crop)
    for note in domain_notes(run, pil, used):
        warnings.warn(note, EditNote, stacklevel=3)
    ae = run.autoencoder.eval()
    x = x.to(next(ae.parameters()).device)
    y, note = photo_attributes(run, x, classifier, changed=list(index_changes))
    if note:
        _print_once(note)
    edited = to_pil(ae.decoder(ae.encode(x), code_for(config, y, index_changes).to(x.device))[0])
    if not compare:
        return Picture(edited)
    s = edited.width
    side = Image.new("RGB", (2 * s + 2, s), "white")
    side.paste(to_pil(x[0]), (0, 0))
    side.paste(edited, (s + 2, 0))
    change = ", ".join(f"{k} = {v:g}" for k, v in changes.items()) or "no change"
    captions = [(change, (0, 0, 2 * s + 2, LINE)), ("input", (0, LINE, s, 2 * LINE)),
                ("edited", (s + 2, LINE, 2 * s + 2, 2 * LINE))]
    return Picture(side, s, caption_top=2 * LINE, captions=captions)
