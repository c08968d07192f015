"""Synthetic faces in CelebA's exact file layout: the course's default data set.

A Fader Network needs face images ``x`` and binary attributes ``y``. CelebA is 1.3 GB
behind a download quota; this package draws cartoon faces instead, in about a minute on
any laptop, with exact labels, and every face can be drawn again with any attribute
changed: the true answer a Fader Network's edit should approach. Read it in this order:

1. :mod:`~faderlib.synth.sampling`: who a face is (its identity) and what it shows (its
   attributes), drawn from ``(seed, index)`` alone, with CelebA's frequencies.
2. :mod:`~faderlib.synth.drawing`: :func:`render` ``(identity, attributes)``, the pixels.
3. :mod:`~faderlib.synth.dataset`: :func:`generate` writes a data set in CelebA's layout;
   :func:`load_ground_truth` and :func:`counterfactual` read it back and re-render a face.

:mod:`~faderlib.synth.detect` tells these faces from photographs by their sensor noise
(:func:`is_synthetic_face`), for the domain note of :mod:`faderlib.edit`.
"""

from .dataset import (
    ATTR_FILE,
    FACE_BYTES,
    FORMAT_NAME,
    FORMAT_VERSION,
    GROUND_TRUTH_CSV,
    IMAGE_DIR,
    JPEG_QUALITY,
    MARKER_FILE,
    PARTITION_FILE,
    GroundTruth,
    counterfactual,
    ensure_synthetic,
    generate,
    is_synthetic,
    load_ground_truth,
    read_marker,
)
from .detect import SYNTHETIC_FACE_THRESHOLD, is_synthetic_face, synthetic_face_score
from .drawing import render
from .sampling import ATTRIBUTES, IDENTITY_KEYS, Attributes, face_params, sample_attributes, sample_identity, split_sizes

__all__ = [
    "ATTRIBUTES",
    "GroundTruth",
    "counterfactual",
    "ensure_synthetic",
    "face_params",
    "generate",
    "is_synthetic",
    "is_synthetic_face",
    "load_ground_truth",
    "render",
    "sample_attributes",
    "sample_identity",
    "split_sizes",
    "synthetic_face_score",
]
