"""The live slider app: move an attribute, watch the face change
(docs/paper_notes.md, 'Interpolation beyond [0, 1]').

The chosen image is encoded once, z = E(x); a slider move only reruns the decoder
D(z, y_alpha), with ``[1 - alpha, alpha]`` for each binary attribute, so the sliders reach
beyond [0, 1]. In a notebook::

    from faderlib.sliders import SliderApp
    SliderApp.from_run_dir("runs/demo/fader")

:class:`SliderApp` uses ipywidgets 8 only (no JavaScript of ours), so it runs in JupyterLab
and Voila; it decodes with :class:`faderlib.fastdecoder.FastDecoder`, the same D(z, y)
computed faster for one image and many y.

How fast drags are coalesced (``throttle=True``, the default): a slider move only
records the newest values and wakes a worker thread; the worker decodes whatever is
newest when it is free, so moves made during a decode are merged into one and the
picture is at most one decode behind the hand. ``throttle=False`` decodes in the
callback itself (what tests use: no thread, no event loop).
"""

from __future__ import annotations

import contextlib
import html
import io
import os
import random
import threading
import time
import traceback
from typing import Sequence

import numpy as np
import torch
from PIL import Image as PILImage

from .classifier import classifier_places, find_classifier, load_classifier, read_attributes
from .config import ModelConfig
from .devices import torch_threads
from .edit import domain_notes
from .fastdecoder import FastDecoder, Latent
from .images import prepare_photo, read_image, to_uint8
from .models import code_for
from .runs import Run, load_run
from .visual import FACE_PX, display_scale

#: The CSS class of the app's pictures, and the rule that shows them enlarged without smoothing
#: (the browser enlarges the model's pixels as squares: ``image-rendering: pixelated``) and never
#: narrower than their width (``max-width: none``; the row of pictures wraps instead).
FACE_CLASS = "fader-face"
FACE_STYLE = (f"<style>img.{FACE_CLASS} {{ image-rendering: crisp-edges; image-rendering: pixelated; "
              "max-width: none; }</style>")


def encode_image(pixels: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """(H, W, 3) uint8 -> JPEG (4:4:4, ``quality``) or PNG bytes, for an ``ipywidgets.Image``."""
    buf = io.BytesIO()
    image = PILImage.fromarray(pixels)
    if fmt == "jpeg":
        image.save(buf, format="JPEG", quality=quality, subsampling=0)
    elif fmt == "png":
        image.save(buf, format="PNG", compress_level=1)
    else:
        raise ValueError(f"unknown image format {fmt!r}; choose 'jpeg' or 'png'")
    return buf.getvalue()


# ---------------------------------------------------------------------- the app


class SliderApp:
    """Sliders over the attributes of a trained Fader network, decoding live.

    run: a :class:`~faderlib.runs.Run` or a run folder. Images come from the run's data
    set (``split``, by index or at random) or from an uploaded JPEG/PNG. Each binary
    attribute gets a slider over ``alpha_range`` (default -1..2), a categorical one a
    dropdown; they start at the image's true values y. An uploaded photo has no true values:
    its sliders start at what the attribute ``classifier`` reads from it, so that its
    reconstruction keeps its smile, glasses...; ``classifier="auto"`` (the default) takes the
    one kept with the run (:func:`faderlib.classifier.find_classifier`: ``RUN_DIR/classifier``
    beside ``RUN_DIR/fader``, as notebook 03 and ``make demo`` leave it), a folder or a loaded
    classifier that one, None none; without one the sliders start at 0 and the app says so.
    ``index=None`` starts without an image (for uploads only, or a run whose data set is not
    on this machine).

    ``throttle``: coalesce fast drags through a worker thread (see the module docstring);
    False decodes synchronously in the callback. ``threads``: torch threads for a decode
    (1 by default: at batch 1 a second thread gains little and, when another process
    holds a core, OpenMP's waiting makes a decode up to 10-50 times slower).
    ``image_format``: ``"jpeg"`` (q90, 4:4:4) or ``"png"``, of the model's own pixels;
    ``display_px``: the least on-screen side of each picture (256 by default): the browser
    shows it the smallest whole number of times larger that reaches it (a 64 px model 4x,
    32 px 8x), each pixel a square (CSS ``image-rendering: pixelated``), never smoothed.

    Errors never escape a callback or a method of the app: they are shown in ``output``
    (and kept in ``errors``), so a bad upload leaves the app working.

    Attributes for code and tests: ``sliders`` (name -> widget), ``original``,
    ``reconstruction``, ``edited`` (``ipywidgets.Image``), ``output`` (errors),
    ``readout``, ``encode_count``, ``decode_count``, ``widget`` (the whole app).
    """

    def __init__(self, run, *, split: str = "test", index: int | None = 0,
                 alpha_range: tuple[float, float] = (-1.0, 2.0), step: float = 0.05, throttle: bool = True,
                 classifier="auto", image_format: str = "jpeg", display_px: int = FACE_PX, threads: int | None = 1,
                 checkpoint: str = "last.pt", dataset=None):
        import ipywidgets as w  # here, not at the top: `import faderlib.sliders` should not load Jupyter

        self.run = run if isinstance(run, Run) else load_run(run, checkpoint)
        self.config: ModelConfig = self.run.model_config
        self.ae = self.run.autoencoder.eval()
        self.device = next(self.ae.parameters()).device
        self.fast = FastDecoder(self.ae.decoder)
        if not (classifier is None or isinstance(classifier, (str, os.PathLike, torch.nn.Module))):
            raise TypeError(f"classifier={classifier!r}: give 'auto' (the run's, if it has one), a folder from "
                            "`fader train-classifier`, a loaded classifier, or None")
        self.split, self.throttle, self.classifier = split, bool(throttle), classifier
        self._classifier_name = ""  # the folder the classifier was loaded from, for the notes
        self.image_format, self.threads = image_format, threads
        encode_image(np.zeros((2, 2, 3), np.uint8), image_format)  # a wrong format fails now, not later
        self._dataset = dataset
        self.encode_count = 0
        self.decode_count = 0
        self.coalesced_count = 0
        self.errors: list[BaseException] = []

        # state of the current image (replaced as a whole, read by the worker)
        self._image_id = 0
        self._latent: Latent | None = None
        self._y: torch.Tensor | None = None
        self._quiet = False
        # worker thread (throttle=True)
        self._cv = threading.Condition()
        self._pending: tuple | None = None
        self._busy = False
        self._worker: threading.Thread | None = None
        self._closed = False

        size = self.config.image_size
        self.display_scale = display_scale(size, display_px)  # a display_px below 1 fails here
        px = str(size * self.display_scale)
        fmt = "jpeg" if image_format == "jpeg" else "png"
        self.original = w.Image(format=fmt, width=px, height=px)
        self.reconstruction = w.Image(format=fmt, width=px, height=px)
        self.edited = w.Image(format=fmt, width=px, height=px)
        for image in (self.original, self.reconstruction, self.edited):
            image.add_class(FACE_CLASS)
        lo, hi = alpha_range
        self.sliders: dict[str, w.ValueWidget] = {}
        for attr in self.config.attributes:
            if attr.is_binary:
                s = w.FloatSlider(value=0.0, min=lo, max=hi, step=step, description=attr.name,
                                  continuous_update=True, readout_format=".2f",
                                  style={"description_width": "110px"}, layout=w.Layout(width="420px"))
            else:
                s = w.Dropdown(options=[(str(k), k) for k in range(attr.n_values)], value=0,
                               description=attr.name, style={"description_width": "110px"})
            s.observe(self._guard(self._on_slider), names="value")
            self.sliders[attr.name] = s
        self.index = w.BoundedIntText(value=max(int(index or 0), 0), min=0, max=10**9, description="image",
                                      layout=w.Layout(width="180px"))
        self.index.observe(self._guard(self._on_index), names="value")
        self.random_button = w.Button(description="random", icon="random", layout=w.Layout(width="100px"))
        self.random_button.on_click(lambda _: self.select_random())
        self.upload = w.FileUpload(accept=".jpg,.jpeg,.png,image/jpeg,image/png", multiple=False,
                                   description="upload photo")
        self.upload.observe(self._guard(self._on_upload), names="value")
        self.reset_button = w.Button(description="reset", icon="undo", tooltip="back to the image's values",
                                     layout=w.Layout(width="100px"))
        self.reset_button.on_click(lambda _: self.reset())
        self.readout = w.HTML(value="")
        self.source = w.HTML(value="")
        self.notes = w.HTML(value="")
        self.output = w.Output()

        def column(title: str, image) -> w.VBox:
            return w.VBox([w.HTML(f"<b>{title}</b>"), image], layout=w.Layout(align_items="center"))

        self.widget = w.VBox([
            w.HTML(FACE_STYLE + f"<b>Fader network</b>: {', '.join(a.spec for a in self.config.attributes)}, "
                   f"{self.config.image_size} px (shown {self.display_scale}x), step {self.run.step}"),
            w.HBox([self.index, self.random_button, self.upload, self.source]),
            w.HBox([column("original x", self.original), column("reconstruction D(z, y)", self.reconstruction),
                    column("edited D(z, y')", self.edited)], layout=w.Layout(flex_flow="row wrap")),
            w.VBox(list(self.sliders.values())),
            w.HBox([self.reset_button, self.readout]),
            self.notes,
            self.output,
        ])
        if index is not None:
            self.select(index)

    @classmethod
    def from_run_dir(cls, run_dir, checkpoint: str = "last.pt", **kwargs) -> "SliderApp":
        """``SliderApp.from_run_dir("runs/demo/fader")``: load the run, build the app."""
        return cls(load_run(run_dir, checkpoint), **kwargs)

    # ---------------------------------------------------------------- display
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self):
        from IPython.display import display  # Jupyter: loaded only when a notebook shows the app

        display(self.widget)

    # ----------------------------------------------------------------- images
    @property
    def dataset(self):
        """The run's data set split, opened on first use."""
        if self._dataset is None:
            self._dataset = self.run.dataset(self.split, otherwise="upload a photo instead")
        return self._dataset

    def select(self, index: int) -> None:
        """Show image ``index`` of the data set split, sliders at its true values."""
        self._guard(self._select)(index)

    def _select(self, index: int) -> None:
        n = len(self.dataset)
        if not 0 <= int(index) < n:
            raise IndexError(f"image {index} is out of range: the {self.split} split has {n} images (0..{n - 1})")
        x, y = self.dataset[int(index)]
        if self.index.value != int(index):
            with self._quietly():
                self.index.value = int(index)
        self._set_image(x[None], y[None], f"{self.split} image {int(index)}", [])

    def select_random(self) -> None:
        """Show a random image of the split."""
        self._guard(lambda: self._select(random.randrange(len(self.dataset))))()

    def load_image(self, image, name: str | None = None, crop: str = "auto") -> None:
        """Show a photo (path, bytes or PIL image; JPEG/PNG, any size), cropped like the training data."""
        self._guard(self._load_image)(image, name, crop)

    def _load_image(self, image, name: str | None = None, crop: str = "auto") -> None:
        pil = read_image(image, name)
        x, used = prepare_photo(pil, self.config.image_size, crop)
        y, start = self._photo_attributes(x)
        label = name or (str(image) if isinstance(image, (str, os.PathLike)) else "uploaded photo")
        self._set_image(x, y, label, [start, *domain_notes(self.run, pil, used)])

    def _photo_attributes(self, x: torch.Tensor) -> tuple[torch.Tensor, str]:
        """The attributes a photo's sliders start at, and a note that says where they come from."""
        names = self.config.attribute_names
        zeros = torch.zeros(1, len(names), dtype=torch.long)
        advice = ("every slider starts at 0, so the reconstruction shows the photo with every attribute removed "
                  "rather than with its own; give one with SliderApp(..., classifier=FOLDER) (`fader "
                  "train-classifier`, or course.ensure_classifier(runs) as in notebook 03)")
        if isinstance(self.classifier, str) and self.classifier == "auto":
            found = find_classifier(self.run.run_dir, names)  # looked for at each photo until there is one
            if found is None:
                places = " or ".join(str(p) for p in classifier_places(self.run.run_dir))
                return zeros, (f"no attribute classifier of {', '.join(names)} was found with the run (in {places}): "
                               + advice)
            self.classifier = found
        if self.classifier is None:
            return zeros, f"no attribute classifier (classifier=None): {advice}"
        if isinstance(self.classifier, (str, os.PathLike)):
            self._classifier_name = str(self.classifier)
            self.classifier = load_classifier(self.classifier)  # once
        y = read_attributes(self.classifier, x, self.config)
        read = ", ".join(f"{n} {int(v)}" for n, v in zip(names, y[0].tolist()))
        where = f" in {self._classifier_name}" if self._classifier_name else ""
        return y, f"the sliders start at what the attribute classifier{where} reads from the photo: {read}"

    def reset(self) -> None:
        """Sliders back to the image's true values y."""
        self._guard(self._reset)()

    def _reset(self) -> None:
        if self._y is None:
            return
        with self._quietly():
            for j, (name, s) in enumerate(self.sliders.items()):
                s.value = float(self._y[0, j]) if self.config.attributes[j].is_binary else int(self._y[0, j])
        self._request()

    def values(self) -> dict[str, float]:
        """The sliders' current values y' (name -> alpha or class)."""
        return {name: s.value for name, s in self.sliders.items()}

    def close(self) -> None:
        """Stop the worker thread and close the widgets."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self.widget.close()

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until every requested decode is shown (throttle=True); True if it got there."""
        with self._cv:
            return self._cv.wait_for(lambda: self._pending is None and not self._busy, timeout)

    # -------------------------------------------------------------- internals
    def _set_image(self, x: torch.Tensor, y: torch.Tensor, label: str, notes: Sequence[str]) -> None:
        """Encode x once (z = E(x)), show x and D(z, y), put the sliders at y, decode."""
        x = x.to(self.device)
        with torch_threads(self.threads), torch.inference_mode():
            latent = self.fast.prepare(self.ae.encode(x))
            recon = to_uint8(self.fast.decode(latent, code_for(self.config, y).to(self.device))[0])
            original = to_uint8(x[0])
        self.encode_count += 1
        with self._cv:
            self._image_id += 1
            self._latent, self._y = latent, y.cpu().long()
        self.original.value = encode_image(original, self.image_format)
        self.reconstruction.value = encode_image(recon, self.image_format)
        self.source.value = f"<i>{label}</i>"
        self.notes.value = "".join(f"<div>note: {html.escape(n)}</div>" for n in notes)
        self._reset()

    @contextlib.contextmanager
    def _quietly(self):
        """Set widget values without triggering decodes."""
        old, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = old

    def _code(self) -> torch.Tensor:
        values = {j: s.value for j, s in enumerate(self.sliders.values())}
        return code_for(self.config, self._y, values).to(self.device)

    def _request(self) -> None:
        """Ask for a decode of the current slider values (latest values win)."""
        if self._latent is None or self._closed:
            return
        with torch_threads(self.threads):
            job = (self._image_id, self._latent, self._code())
        if not self.throttle:
            self._show(*job)
            return
        with self._cv:
            if self._pending is not None:
                self.coalesced_count += 1
            self._pending = job
            self._cv.notify()
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="fader-sliders", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        """Worker: decode the newest request; exit after 60 s idle (restarted on demand)."""
        while True:
            with self._cv:
                if not self._cv.wait_for(lambda: self._pending is not None or self._closed, timeout=60):
                    self._worker = None
                    return
                if self._closed:
                    return
                job, self._pending, self._busy = self._pending, None, True
            try:
                self._show(*job)
            except Exception as e:  # never lose an error in a thread
                self._report(e)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _show(self, image_id: int, latent: Latent, code: torch.Tensor) -> None:
        t0 = time.perf_counter()
        with torch_threads(self.threads):  # element-wise work too: see ``threads`` in the class docstring
            pixels = to_uint8(self.fast.decode(latent, code)[0])
        t1 = time.perf_counter()
        data = encode_image(pixels, self.image_format)
        t2 = time.perf_counter()
        if image_id != self._image_id:
            return  # another image was chosen meanwhile; its own request follows
        self.decode_count += 1
        self.edited.value = data
        self.readout.value = (f"<code>decode {1e3 * (t1 - t0):.1f} ms + {self.image_format} "
                              f"{1e3 * (t2 - t1):.1f} ms</code>"
                              + (f" <small>({self.coalesced_count} moves merged)</small>"
                                 if self.coalesced_count else ""))

    def _on_slider(self, change) -> None:
        if not self._quiet:
            self._request()

    def _on_index(self, change) -> None:
        if not self._quiet:
            self._select(change["new"])

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        f = files[-1]
        name = f.get("name", "upload") if isinstance(f, dict) else getattr(f, "name", "upload")
        content = f["content"] if isinstance(f, dict) else f.content
        try:
            self._load_image(bytes(content), name=name)
        finally:
            self.upload.value = ()  # so that uploading the same file again is a change too

    def _guard(self, fn):
        """Wrap a callback: an error goes to the Output widget instead of being lost."""
        def wrapped(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                self._report(e)
        return wrapped

    def _report(self, exc: BaseException) -> None:
        self.errors.append(exc)
        ours = isinstance(exc, (ValueError, OSError, IndexError, KeyError))
        text = f"{type(exc).__name__}: {exc}\n"
        if not ours:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.output.append_stderr(text)
