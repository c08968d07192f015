"""Telling a synthetic face from a photograph by its pixels: :func:`synthetic_face_score`.

Used for the domain note of :mod:`faderlib.edit`: a model trained on the synthetic faces
says so when it is asked to edit a photograph.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from ..celeba_facts import IMAGE_HEIGHT, IMAGE_WIDTH
from .drawing import noise_texture

__all__ = ["SYNTHETIC_FACE_THRESHOLD", "is_synthetic_face", "synthetic_face_score"]

# How a synthetic face is recognised from its pixels: its sensor noise is a window into the
# renderer's fixed texture (:func:`noise_texture`), which no photograph carries. Cross-correlating the image's fine detail
# with the texture's over every window position (one FFT) gives, for a face drawn by
# :func:`render`, a peak at its window dozens of standard deviations above the rest; for a
# photograph, nothing above the maximum of ~39,000 Gaussian draws (about 4.5 to 5.7 measured,
# on 111 windows of a real photo and on noise, gradients and mirrored faces). The faces of a
# data set (JPEG quality 90) score 37 and more, saved again at quality 75 still 13.
SYNTHETIC_FACE_THRESHOLD = 10.0
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _fine_detail(a: np.ndarray, r: int = 2) -> np.ndarray:
    """``a`` (H, W) minus its (2r+1)-box mean: the noise and the edges, without the shading."""
    k = 2 * r + 1
    c = np.pad(np.pad(a, r, mode="edge").cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = a.shape
    return a - (c[k:k + h, k:k + w] - c[:h, k:k + w] - c[k:k + h, :w] + c[:h, :w]) / (k * k)


@functools.lru_cache(maxsize=1)
def _texture_spectrum() -> np.ndarray:
    return np.fft.rfft2(_fine_detail(noise_texture() @ _LUMA))


def synthetic_face_score(image: Image.Image) -> float:
    """How surely ``image`` (a PIL image) is a face drawn by :func:`render`: the peak of the
    correlation of its fine detail with the renderer's noise texture, in standard deviations
    of that correlation over every window position. Above :data:`SYNTHETIC_FACE_THRESHOLD`:
    a synthetic face (a file of a data set, a :func:`counterfactual`); about 5 or less: not
    one. 0.0 for an image not of the renderer's size (178x218): resized or cropped, it cannot
    be told."""
    if image.size != (IMAGE_WIDTH, IMAGE_HEIGHT):
        return 0.0
    detail = _fine_detail(np.asarray(image.convert("RGB"), np.float32) @ _LUMA)
    spread = np.median(np.abs(detail)) * 1.4826 + 1e-3  # edges of the drawing are clipped to
    detail = np.clip(detail, -3 * spread, 3 * spread)  # 3 robust sigmas: the noise remains
    spectrum = _texture_spectrum()
    padded = np.zeros((2 * IMAGE_HEIGHT, 2 * IMAGE_WIDTH), np.float32)
    padded[:IMAGE_HEIGHT, :IMAGE_WIDTH] = detail - detail.mean()
    corr = np.fft.irfft2(spectrum * np.conj(np.fft.rfft2(padded)), s=padded.shape)[:IMAGE_HEIGHT, :IMAGE_WIDTH]
    std = corr.std()
    return float((corr.max() - corr.mean()) / std) if std > 0 else 0.0


def is_synthetic_face(image: Image.Image) -> bool:
    """True if ``image`` is a face drawn by :func:`render` (:func:`synthetic_face_score`)."""
    return synthetic_face_score(image) > SYNTHETIC_FACE_THRESHOLD
