"""Pictures of images: grids with white gutters and labels, and how a notebook shows them.

:func:`tile` lays out every grid of the kit (samples of the data set, training samples,
interpolation grids); :func:`write` puts a label in a box of a grid. Cells are the images'
own pixels, enlarged by repeating pixels (never smoothed: what the network drew is what is
shown). Matplotlib figures are in :mod:`faderlib.plots`; interpolation grids in
:mod:`faderlib.interpolate`.

**On screen, every face is at least** :data:`FACE_PX` **pixels** (a 64 px face is a thumbnail on a
class projector). Two types do it, on display only:

* :class:`Picture`, what grids and edits return: a PIL image and the size of its faces; saving
  it, its ``size`` and its pixels are the image's own; Jupyter shows it :func:`display_scale` times larger, pixels
  repeated, its labels typeset again at that size, and captions above when it has any;
* :class:`FaceFigure`, the matplotlib figure of the kit's pictures of faces: sized so that each
  face panel is at least :data:`FACE_PX` pixels at its dpi, drawn with ``interpolation="nearest"``.

Both tell the notebook how large they show a face: the ``image/png`` output's metadata holds
``face_px`` (the smallest face on screen, in CSS pixels; None for a figure of faces that has
none to show) beside ``width`` and ``height`` (the PNG's own: shown one for one, never resized
by the browser) and ``unconfined`` (so that JupyterLab does not shrink a wide picture to the
cell's width: the output scrolls instead). tests/face_outputs.py checks executed notebooks by it.
"""

from __future__ import annotations

import base64
import contextlib
import io
from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from .images import to_uint8
from .models import AutoEncoder, toggle_attribute

#: The smallest side, in screen (CSS) pixels, at which a notebook or the slider app shows a face.
FACE_PX = 256

#: The dpi of a :class:`FaceFigure` (matplotlib's default): its sizes in inches are chosen for it.
FIGURE_DPI = 100

#: Font sizes of labels, largest first, at scale 1 (a label takes the largest that fits).
FONT_SIZES = (11, 10, 9, 8, 7)

#: Height of one line of labels, in pixels (at scale 1).
LINE = 14

#: Labels are typeset at most this many times larger on screen (44 px: read from the back of a
#: room), however much the faces are enlarged (8x for 32 px faces).
MAX_LABEL_SCALE = 4


def display_scale(face_px: int, target: int = FACE_PX) -> int:
    """The smallest integer factor that shows a face of ``face_px`` pixels at ``target`` pixels
    or more: 64 -> 4, 32 -> 8, 100 -> 3, 256 -> 1. An integer, so every pixel of the network
    becomes a square of equal size."""
    face_px, target = int(face_px), int(target)
    if face_px < 1 or target < 1:
        raise ValueError(f"a face is at least 1 pixel and so is the size to show it at "
                         f"(got face_px={face_px}, target={target})")
    return max(1, -(-target // face_px))


def pixels(image: torch.Tensor | np.ndarray, scale: int = 1) -> np.ndarray:
    """One image as (H * scale, W * scale, 3) uint8: a tensor (3, H, W) in [-1, 1] or a uint8
    array (3, H, W) as the cache stores it; enlarged by pixel repetition."""
    a = np.asarray(image).transpose(1, 2, 0) if isinstance(image, np.ndarray) else to_uint8(image)
    return a.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else a


# ----------------------------------------------------------------------------- Picture
Box = tuple[int, int, int, int]


class Picture:
    """A PIL image of faces (:attr:`image`) that Jupyter shows with each face at :data:`FACE_PX`
    pixels or more.

    The image's own pixels are what is saved and measured: ``save`` writes them (a saved grid
    is the decoder's pixels, one for one), ``size``, ``width``, ``height``, ``mode``,
    ``convert`` and ``np.asarray(picture)`` are the image's; draw or paste on :attr:`image`.
    Only the notebook's display (``_repr_png_``) is larger: the image :attr:`display_scale`
    times, by pixel repetition (never smoothed), with the labels that :func:`write` put in it
    typeset again at that size (sharp, not blocky) and the ``captions`` (labels for the display
    only, in a band of ``caption_top`` pixels above the image) written there. What
    :meth:`display_image` returns is exactly what is shown.

    ``face_px``: the side of one face in the image's pixels (a grid's cell; default: the whole
    image is one face, its shorter side). ``target_px``: the least size to show a face at.
    """

    def __init__(self, image: Image.Image, face_px: int | None = None, *, captions: Sequence[tuple[str, Box]] = (),
                 caption_top: int = 0, fill: int = 255):
        if not isinstance(image, Image.Image):
            raise TypeError(f"Picture takes a PIL image, not {type(image).__name__}")
        self.image = image
        self.face_px = int(face_px if face_px is not None else min(image.size))
        display_scale(self.face_px)  # a wrong size fails here, not at display
        self.target_px = FACE_PX
        self.fill = int(fill)
        self.caption_top = int(caption_top)
        self.labels: list[tuple[str, Box, Box]] = []  # (text, box, ink) of each label write() put in the image
        self.captions = [(str(t), tuple(int(v) for v in box)) for t, box in captions]

    # The image's own pixels.
    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    @property
    def mode(self) -> str:
        return self.image.mode

    def save(self, fp, format: str | None = None, **params) -> None:
        """Write the image's own pixels (``PIL.Image.Image.save``)."""
        self.image.save(fp, format, **params)

    def convert(self, *args, **kwargs) -> Image.Image:
        """The image converted (``PIL.Image.Image.convert``): a plain PIL image, at its own size."""
        return self.image.convert(*args, **kwargs)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.image, dtype=dtype)

    def __repr__(self) -> str:
        return f"<Picture {self.width}x{self.height}, faces of {self.face_px} px shown {self.display_scale}x>"

    # What a notebook shows.
    @property
    def display_scale(self) -> int:
        """How many times larger the notebook shows the image (:func:`display_scale`)."""
        return display_scale(self.face_px, self.target_px)

    def display_image(self) -> Image.Image:
        """The image as a notebook shows it: enlarged :attr:`display_scale` times, labels
        typeset again at that size (their fonts at most :data:`MAX_LABEL_SCALE` times larger),
        captions in a band above."""
        k = self.display_scale
        a = np.asarray(self.image.convert("RGB"))
        top = self.caption_top
        canvas = np.full(((top + a.shape[0]) * k, a.shape[1] * k, 3), self.fill, np.uint8)
        canvas[top * k:] = a.repeat(k, axis=0).repeat(k, axis=1) if k > 1 else a
        if k > 1:  # blank the ink of the small labels, to write them again at the larger size
            for _, _, (x0, y0, x1, y1) in self.labels:
                canvas[(top + y0) * k:(top + y1) * k, x0 * k:x1 * k] = self.fill
        out = Image.fromarray(canvas)
        fonts = min(k, MAX_LABEL_SCALE)
        if k > 1:
            for text, (x0, y0, x1, y1), _ in self.labels:
                write(out, text, (x0 * k, (top + y0) * k, x1 * k, (top + y1) * k), scale=fonts)
        for text, (x0, y0, x1, y1) in self.captions:
            write(out, text, (x0 * k, y0 * k, x1 * k, y1 * k), scale=fonts)
        return out

    def display_metadata(self, image: Image.Image | None = None) -> dict:
        """The metadata of the notebook's ``image/png`` output (see the module docstring)."""
        image = image if image is not None else self.display_image()
        return {"width": image.width, "height": image.height, "unconfined": True,
                "face_px": self.face_px * self.display_scale}

    def _repr_png_(self):
        image = self.display_image()
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=6)
        return buf.getvalue(), self.display_metadata(image)


def tile(rows: Sequence[Sequence[torch.Tensor | np.ndarray]], pad: int = 2, fill: int = 255, *, scale: int = 1,
         cols: int | None = None, top: int = 0, left: int = 0) -> Picture:
    """A grid of equally sized images, one list per row, with ``pad`` pixels of gutter.

    Each image is a tensor (3, H, W) in [-1, 1] or a uint8 array (3, H, W), enlarged ``scale``
    times. ``cols``: columns of the canvas (default: the longest row); ``top`` and ``left``:
    blank margins above and to the left of the cells, for labels (:func:`write`).
    Size: ``left + cols * (cell + pad) + pad`` by ``top + len(rows) * (cell + pad) + pad``.
    A :class:`Picture` whose faces are the cells: a notebook shows them at :data:`FACE_PX` px or more.

    ``torchvision.utils.make_grid`` draws the same pixels (benchmarks/bench_torchvision.py) given
    blank cells for short rows and a gutter it leaves out around a single image; it is not used,
    as importing torchvision would cost every process that draws a grid 60 % more CPU than
    importing faderlib.cli (2.8 s on top of 4.5 s, on 2 cores).
    """
    first = pixels(rows[0][0], scale)
    h, w = first.shape[:2]
    n_cols = cols if cols is not None else max(len(r) for r in rows)
    canvas = np.full((top + len(rows) * (h + pad) + pad, left + n_cols * (w + pad) + pad, 3), fill, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            y0, x0 = top + pad + i * (h + pad), left + pad + j * (w + pad)
            canvas[y0:y0 + h, x0:x0 + w] = pixels(image, scale)
    return Picture(Image.fromarray(canvas), min(h, w), fill=fill)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, scale: int = 1):
    """A font small enough for ``text`` to fit ``width`` (down to 7 px, times ``scale``), else
    the text cut short."""
    for size in FONT_SIZES:
        font = ImageFont.load_default(size=size * scale)
        if draw.textlength(text, font=font) <= width - 2 * scale:
            return text, font
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width - 2 * scale:
        text = text[:-1]
    return text + "…", font


def write(image: Image.Image | Picture, text: str, box: tuple[int, int, int, int], *, scale: int = 1) -> None:
    """Write ``text`` in black, centred in ``box`` (left, top, right, bottom) of ``image``,
    in the largest font that fits (11 px down to 7 px, each times ``scale``), else cut short
    with an ellipsis. On a :class:`Picture` the label is remembered, to be typeset again
    when the picture is shown enlarged."""
    draw = ImageDraw.Draw(image.image if isinstance(image, Picture) else image)
    x0, y0, x1, y1 = (int(v) for v in box)
    shown, font = _fit(draw, text, x1 - x0, scale)
    w = draw.textlength(shown, font=font)
    position = ((x0 + x1 - w) / 2, (y0 + y1) / 2)
    draw.text(position, shown, fill="black", font=font, anchor="lm")
    if isinstance(image, Picture):
        ink = draw.textbbox(position, shown, font=font, anchor="lm")
        ink = (max(0, int(ink[0]) - 1), max(0, int(ink[1]) - 1),
               min(image.width, int(np.ceil(ink[2])) + 1), min(image.height, int(np.ceil(ink[3])) + 1))
        image.labels.append((text, (x0, y0, x1, y1), ink))


@contextlib.contextmanager
def evaluating(ae: AutoEncoder):
    """Eval mode (BatchNorm statistics, no dropout) for the block, restored after; yields the device."""
    was_training = ae.training
    ae.eval()
    try:
        yield next(ae.parameters()).device
    finally:
        ae.train(was_training)


@torch.no_grad()
def edit_grid(ae: AutoEncoder, x: torch.Tensor, y: torch.Tensor) -> Picture:
    """One row per image: original, reconstruction, then the image with each attribute
    changed in turn (:func:`~faderlib.models.toggle_attribute`: binary 1 - y, categorical the next value).

    Saved, it is the cells alone; a notebook shows it with a caption over each column."""
    with evaluating(ae):
        z = ae.encode(x)
        columns = [x, ae.decode(z, y)]
        columns += [ae.decode(z, toggle_attribute(y, j, ae.config)) for j in range(len(ae.config.attributes))]
    pad = 2
    grid = tile([[c[i] for c in columns] for i in range(x.shape[0])], pad)
    cell = grid.face_px
    names = ["original", "reconstr."] + [f"{a.name} changed" for a in ae.config.attributes]
    grid.caption_top = LINE
    grid.captions = [(t, (pad + c * (cell + pad), 0, pad + c * (cell + pad) + cell, LINE)) for c, t in enumerate(names)]
    return grid


# ----------------------------------------------------------------------------- FaceFigure
class FaceFigure(Figure):
    """A matplotlib figure of faces (``matplotlib.figure.Figure`` in every other respect).

    Made at :data:`FIGURE_DPI` and sized by the function that draws it so that each face panel
    is at least :data:`FACE_PX` pixels at that dpi (:meth:`face_px` measures it). Faces are
    drawn by :meth:`show_face` (``interpolation="nearest"``, axes off), which also records
    where they are. Jupyter shows the figure as one PNG with the display metadata of the
    module docstring; should a face come out smaller than :data:`FACE_PX` (a long title
    squeezing the panels), the PNG is drawn at a higher dpi until it does not.

    Saved with ``savefig``, it is an ordinary figure.
    """

    target_px: int = FACE_PX

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("dpi", FIGURE_DPI)
        super().__init__(*args, **kwargs)
        self.face_axes: list[tuple] = []

    def show_face(self, ax, image, title: str | None = None, *, face_px: int | None = None,
                  fontsize: float | None = None, axis: bool = False):
        """``ax.imshow(image, interpolation="nearest")`` of one face, or of a grid whose faces
        are ``face_px`` pixels (a :class:`Picture` says so itself); the axes off unless ``axis``."""
        a = np.asarray(image)
        if face_px is None:
            face_px = image.face_px if isinstance(image, Picture) else min(a.shape[:2])
        shown = ax.imshow(a, interpolation="nearest")
        if title is not None:
            ax.set_title(title, fontsize=fontsize)
        if not axis:
            ax.set_axis_off()
        self.face_axes.append((ax, face_px / a.shape[1], face_px / a.shape[0]))
        return shown

    def face_px(self, dpi: float | None = None, draw: bool = True) -> float | None:
        """The side of the smallest face on screen, in pixels at ``dpi`` (default: the
        figure's); None when the figure shows no face. ``draw``: lay the figure out first."""
        if not self.face_axes:
            return None
        if draw:
            self.draw_without_rendering()
        w_in, h_in = self.get_size_inches()
        dpi = self.dpi if dpi is None else dpi
        sizes = []
        for ax, fx, fy in self.face_axes:
            box = ax.get_position()
            sizes.append(min(box.width * w_in * fx, box.height * h_in * fy) * dpi)
        return min(sizes)

    def display_png(self) -> tuple[bytes, dict]:
        """The PNG Jupyter shows and its metadata (``face_px``, ``width``, ``height``, ``unconfined``)."""
        dpi = float(self.dpi)
        measured = self.face_px(dpi)
        for _ in range(3):
            if measured is None or measured >= self.target_px:
                break
            dpi *= self.target_px / measured * 1.01
            measured = self.face_px(dpi)
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
        shown = self.face_px(dpi, draw=False)  # as laid out by that drawing
        data = buf.getvalue()
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
        return data, {"width": width, "height": height, "unconfined": True,
                      "face_px": None if shown is None else round(shown, 1)}

    def _ipython_display_(self):
        from IPython.display import publish_display_data  # only Jupyter calls this

        data, metadata = self.display_png()
        publish_display_data({"image/png": base64.b64encode(data).decode("ascii"), "text/plain": repr(self)},
                             metadata={"image/png": metadata})


def face_inches(faces: float = 1.0, dpi: float = FIGURE_DPI) -> float:
    """Inches that ``faces`` faces side by side take at :data:`FACE_PX` pixels each, plus 4 %
    for rounding: the unit in which the figures of faces are sized."""
    return faces * FACE_PX * 1.04 / dpi
