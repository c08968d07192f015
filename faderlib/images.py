"""Images in and out: from a file to the network's input x, and from x back to pixels.

Two representations meet here:

* **pixels**: uint8 0..255, channels first ``(3, S, S)`` in the cache and the network's
  side, channels last ``(S, S, 3)`` for display (PIL, matplotlib, PNG files);
* **x**: float32 in [-1, 1], ``x = pixels / 127.5 - 1``, what the encoder reads and the
  decoder's tanh writes. :func:`to_float` and :func:`to_uint8` are the one pair that converts.

The preprocessing is the reference code's (docs/paper_notes.md, 'CelebA'): keep rows
20..197 of an aligned 178x218 CelebA image (a 178x178 square), then resize to S x S with an
area filter when shrinking (:func:`crop_and_resize`). Any other photo is centre-cropped to a
square first (:func:`prepare_photo`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .celeba_facts import CROP_BOTTOM, CROP_TOP, IMAGE_HEIGHT, IMAGE_WIDTH
from .errors import DataError, DiskFullError
from .files import atomic_writer, free_bytes, human_bytes, is_disk_full

#: Crop modes of :func:`prepare_photo`.
CROPS = ("auto", "celeba", "center")


# ----------------------------------------------------------------------------- pixels <-> x
# Not torchvision's conversions (benchmarks/bench_torchvision.py compares them): its
# normalize(to_dtype(pixels, scale=True), 0.5, 0.5) differs from pixels / 127.5 - 1 in the last
# bit for 666 of the 1,536 values of the test (pixels / 255 is rounded first), and its
# to_dtype(x, uint8, scale=True) truncates where to_uint8 rounds (a quarter of a sweep of [-1, 1]
# differs). Its horizontal_flip is tensor.flip(-1), the very bits of the kit's flips (data, feed),
# but importing torchvision costs every process 60 % more CPU than importing faderlib.cli (2.8 s
# on top of 4.5 s, measured on 2 cores: torchvision.ops loads torch's compiler), so they stay
# torch's and numpy's.
def to_float(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1] (``pixels / 127.5 - 1``), any shape.

    A numpy array is converted in numpy: single-threaded and predictable, where torch's
    intra-op threads can be 50x slower on a busy machine for such small element-wise work.
    A tensor is converted where it lies (on a GPU, on the GPU). Both give the same bits: on the
    CPU torch divides exactly as numpy does; CUDA divides by a scalar as a multiplication by its
    reciprocal (111 of the 256 values one bit off), so elsewhere each value is looked up in a
    256-entry table made by the numpy path, identical by construction.
    """
    if isinstance(pixels, torch.Tensor):
        if pixels.device.type == "cpu":
            return pixels.to(torch.float32).div_(127.5).sub_(1.0)
        return _float_table(pixels.device)[pixels.long()]
    x = np.asarray(pixels).astype(np.float32)
    x /= np.float32(127.5)
    x -= np.float32(1.0)
    return torch.from_numpy(x)


_FLOAT_TABLES: dict[torch.device, torch.Tensor] = {}


def _float_table(device: torch.device) -> torch.Tensor:
    """The 256 values of :func:`to_float` as the numpy path computes them, on ``device`` (made once)."""
    if device not in _FLOAT_TABLES:
        _FLOAT_TABLES[device] = to_float(np.arange(256, dtype=np.uint8)).to(device)
    return _FLOAT_TABLES[device]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Undo the scaling, for display: x in [-1, 1], (3, S, S) or (B, 3, S, S) -> uint8 (..., S, S, 3)."""
    x = x.detach().cpu().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def to_pil(x: torch.Tensor) -> Image.Image:
    """One image in [-1, 1], shape (3, H, W), as a PIL image."""
    return Image.fromarray(to_uint8(x))


# ----------------------------------------------------------------------------- the reference preprocessing
def crop_and_resize(image: Image.Image, size: int,
                    crop: tuple[int, int] | None = (CROP_TOP, CROP_BOTTOM)) -> np.ndarray:
    """The reference preprocessing of one decoded image: keep rows ``crop[0]..crop[1]-1``,
    resize to ``size`` x ``size`` (area filter when shrinking, bicubic when enlarging).
    Returns a (3, size, size) uint8 array.

    torchvision's resize has no area filter: bilinear with antialias, faster, gives other pixels
    (about 40 % of the values differ at 64 and 128 px: benchmarks/bench_torchvision.py)."""
    image = image.convert("RGB")
    if crop is not None:
        image = image.crop((0, crop[0], image.width, crop[1]))
    if image.size != (size, size):
        shrinking = size < min(image.size)
        image = image.resize((size, size), Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def decode_image(path: str | os.PathLike, size: int, crop: tuple[int, int] | None = (CROP_TOP, CROP_BOTTOM),
                 expected_size: tuple[int, int] | None = (IMAGE_WIDTH, IMAGE_HEIGHT)) -> np.ndarray:
    """Decode one aligned CelebA JPEG into a (3, size, size) uint8 array (:func:`crop_and_resize`).

    Raises :class:`DataError` if the image is not ``expected_size`` (width, height).
    Unreadable or truncated files raise Pillow's ``OSError``.
    """
    with Image.open(path) as image:
        if expected_size is not None and image.size != tuple(expected_size):
            w, h = image.size
            raise DataError(
                f"{path}: expected an aligned CelebA image of {expected_size[0]}x{expected_size[1]} "
                f"(width x height), found {w}x{h}. Use the 'Align&Cropped' images "
                "(img_align_celeba.zip), not the in-the-wild ones, and do not resize them yourself.")
        image.load()  # decodes fully: a truncated JPEG raises here
        return crop_and_resize(image, size, crop)


# ----------------------------------------------------------------------------- any photo
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
    Then :func:`crop_and_resize`, exactly as the cache was built.
    """
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
    return to_float(crop_and_resize(pil, size, rows))[None], mode


# ----------------------------------------------------------------------------- writing a picture
#: What :func:`save_image` writes, by the extension of the path.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def check_output(path: str | os.PathLike, force: bool = False, protect: tuple = ()) -> str:
    """The format :func:`save_image` would write ``path`` in; raises first if it would refuse:
    an extension other than .png/.jpg/.jpeg, an existing file without ``force``, a file of
    ``protect`` (the input photo of an edit, say) even with ``force``."""
    path = Path(path)
    fmt = IMAGE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: write a .png (lossless) or a .jpg file; {path.suffix or 'no extension'!r} is not "
                         "a format this command writes")
    for source in protect:
        if path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise ValueError(f"{path} is the input image itself: choose another --out, it would be overwritten")
    if path.is_symlink() and not path.exists():
        if not force:
            raise FileExistsError(f"{path} is a link to a missing file ({os.readlink(path)}) and was left as it is; "
                                  "choose another --out, or pass --force to replace the link itself by the picture "
                                  "(its target is never written)")
        return fmt
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists and was left as it is; choose another --out, or pass --force "
                              "to replace it")
    return fmt


def save_image(image: Image.Image, path: str | os.PathLike, *, force: bool = False,
               protect: tuple = ()) -> Path:
    """Write ``image`` (a PIL image or a :class:`~faderlib.visual.Picture`) in the format its
    extension names: PNG (lossless: use it for anything measured), or JPEG at quality 95 for
    ``.jpg``/``.jpeg``; any other extension is refused.

    An existing file is never replaced unless ``force``, and the files in ``protect`` (the
    input photo of an edit, say) never, even with ``force`` (:func:`check_output`). The picture
    is encoded in memory and written atomically (:func:`~faderlib.files.atomic_writer`): a full
    disk raises :class:`~faderlib.errors.DiskFullError` and leaves nothing, neither a partial file
    nor a changed old one. A ``path`` that is a link is replaced by the picture; its target is
    never written.
    """
    path = Path(path)
    fmt = check_output(path, force, protect)
    buf = io.BytesIO()  # encoded in memory, then written whole: a failed write leaves no file behind
    if fmt == "JPEG":
        image.convert("RGB").save(buf, format="JPEG", quality=95, subsampling=0)
    else:
        image.save(buf, format="PNG")
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_writer(path, "wb") as f:  # a temporary file beside path, renamed over it (over a link, not its target)
            f.write(data)
    except OSError as e:
        if not is_disk_full(e):
            raise
        raise DiskFullError(e.errno, f"not enough free disk space to write {path}: the picture needs "
                                     f"{human_bytes(len(data))}, only {human_bytes(free_bytes(path.parent))} are free "
                                     f"in {path.parent}. Nothing was written. Free some space there, or choose an "
                                     f"--out on another disk, then run the same command again") from None
    return path
