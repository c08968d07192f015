"""The live slider app: move an attribute, watch the face change (REFERENCE.md section 4).

The chosen image is encoded once, z = E(x); a slider move only reruns the decoder
D(z, y_alpha), with ``[1 - alpha, alpha]`` for each binary attribute, so the sliders reach
beyond [0, 1] (REFERENCE.md section 4). In a notebook::

    from faderlib.sliders import SliderApp
    SliderApp.from_run_dir("runs/demo/fader")

Two pieces:

* :class:`FastDecoder`: the same D(z, y), computed faster for one image and many y (the
  numbers equal the plain decoder's to 1e-5; ``tests/test_sliders.py``);
* :class:`SliderApp`: ipywidgets 8 only (no JavaScript of ours), so it runs in
  JupyterLab and Voila.

How fast drags are coalesced (``throttle=True``, the default): a slider move only
records the newest values and wakes a worker thread; the worker decodes whatever is
newest when it is free, so moves made during a decode are merged into one and the
picture is at most one decode behind the hand. ``throttle=False`` decodes in the
callback itself (what tests use: no thread, no event loop).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .config import ModelConfig
from .edit import code_for, domain_notes, predicted_attributes, prepare_photo, read_image
from .models import Decoder

# ------------------------------------------------------------------ fast decoder


@dataclass
class _Layer:
    kind: str               # "gemm" (matrix product + col2im) or "convT" (oneDNN transposed convolution)
    n_h: int                # channels of h (the attribute code adds n_attr_channels more)
    w: torch.Tensor         # BatchNorm-folded weight (C_in, C_out, 4, 4)
    w_h: torch.Tensor       # (C_out*16, n_h): the weight as a matrix, for h
    w_c: torch.Tensor       # (n_attr_channels, C_out*16): the same, for the code
    bias: torch.Tensor      # (C_out,) the folded BatchNorm shift
    last: bool              # tanh instead of ReLU


@dataclass
class Latent:
    """What :meth:`FastDecoder.prepare` keeps of one z: z itself and the part of the first
    layer that does not depend on y."""

    z: torch.Tensor
    first: torch.Tensor | None


class FastDecoder:
    """D(z, y) of an eval-mode :class:`~faderlib.models.Decoder`, for one z and many y.

    Same numbers as ``decoder(z, code)`` (to float rounding), computed differently:

    1. BatchNorm folded into the transposed convolution before it (eval statistics are
       constants): W' = W * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps);
    2. the first layer is split: ConvT(cat(z, c)) = ConvT_z(z) + ConvT_c(c). The z part
       is computed once per image (:meth:`prepare`): it is the layer that reads the most
       weights (17 MB at 256 px) for the least work;
    3. layers on small inputs (8x8 and below) and the last one (3 output channels) run as
       one matrix product and a col2im (``F.fold``), where the attribute code becomes a
       bias of the product instead of channels concatenated to h; the other layers use
       PyTorch's transposed convolution;
    4. :meth:`decode` runs under ``torch.inference_mode``.

    The weights are copied when it is built: rebuild it after training further.
    Configurations other than transposed convolutions with BatchNorm (InstanceNorm,
    upsampling, pixel shuffle) fall back to the plain decoder.
    """

    def __init__(self, decoder: Decoder):
        self.decoder = decoder
        self.config: ModelConfig = decoder.config
        self.fast = self.supports(self.config)
        self.layers: list[_Layer] = []
        if not self.fast:
            return
        n_c = self.config.n_attr_channels
        with torch.no_grad():
            for seq in decoder.layers:
                conv = seq[0]
                bn = next((m for m in seq if isinstance(m, nn.BatchNorm2d)), None)
                if bn is not None:
                    conv = fuse_conv_bn_eval(conv.eval(), bn.eval(), transpose=True)
                w = conv.weight.detach().clone()
                n_in, n_out = w.shape[:2]
                bias = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(n_out)
                w_mat = w.reshape(n_in, n_out * 16)
                self.layers.append(_Layer("convT", n_in - n_c, w, w_mat[:n_in - n_c].t().contiguous(),
                                          w_mat[n_in - n_c:].contiguous(), bias, bn is None))
        # First layer, code part: ConvT_c(c) is linear in c; keep one map per code channel.
        first, side = self.layers[0], self.config.latent_shape[1]
        n_out = first.w.shape[1]
        cols = first.w_c[:, :, None].expand(-1, -1, side * side)
        self._first_code_maps = F.fold(cols, (2 * side, 2 * side), 4, stride=2, padding=1).reshape(n_c, -1)
        for i, layer in enumerate(self.layers):
            side_in = side * 2 ** i
            if i > 0 and (side_in * side_in <= 64 or layer.w.shape[1] < 8):
                layer.kind = "gemm"
        self._first_shape = (n_out, 2 * side, 2 * side)

    @staticmethod
    def supports(config: ModelConfig) -> bool:
        """Whether the fast path applies (else :meth:`decode` is the plain decoder)."""
        return config.upsampling == "convtranspose" and not config.instance_norm

    @torch.inference_mode()
    def prepare(self, z: torch.Tensor) -> Latent:
        """Keep z = E(x) and the first layer's z part, ConvT_z(z) + b (done once per image)."""
        if not self.fast:
            return Latent(z, None)
        first = self.layers[0]
        b, _, h, w = z.shape
        cols = torch.matmul(first.w_h, z.reshape(b, first.n_h, h * w))
        out = F.fold(cols, (2 * h, 2 * w), 4, stride=2, padding=1)
        return Latent(z, out.add_(first.bias[None, :, None, None]))

    @torch.inference_mode()
    def decode(self, latent: Latent | torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """x_hat = D(z, code): (B, 3, S, S) in [-1, 1]; ``code`` (B, n_attr_channels), see
        :func:`faderlib.edit.code_for`."""
        if not isinstance(latent, Latent):
            latent = self.prepare(latent)
        code = code.to(latent.z.dtype)
        if not self.fast:
            return self.decoder(latent.z, code)
        first = latent.first
        code_part = (code @ self._first_code_maps).reshape(code.shape[0], *self._first_shape)
        h = (first + code_part).relu_()
        for layer in self.layers[1:]:
            b, _, side, _ = h.shape
            if layer.kind == "gemm":
                bias_cols = code @ layer.w_c  # the code as a bias of the product (B, C_out*16)
                flat = h.reshape(b, layer.n_h, side * side)
                if b == 1:
                    cols = torch.addmm(bias_cols[0, :, None], layer.w_h, flat[0])[None]
                else:
                    cols = torch.baddbmm(bias_cols[:, :, None], layer.w_h.expand(b, -1, -1), flat)
                out = F.fold(cols, (2 * side, 2 * side), 4, stride=2, padding=1)
                out.add_(layer.bias[None, :, None, None])
            else:
                inp = torch.cat([h, code[:, :, None, None].expand(-1, -1, side, side)], dim=1)
                out = F.conv_transpose2d(inp, layer.w, layer.bias, stride=2, padding=1)
            h = out.tanh_() if layer.last else out.relu_()
        return h


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` intra-op threads (None: leave as is), then restore."""
    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


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


def to_pixels(x: torch.Tensor) -> np.ndarray:
    """One image (3, S, S) or (1, 3, S, S) in [-1, 1] -> (S, S, 3) uint8."""
    from .data import to_uint8

    return to_uint8(x[0] if x.dim() == 4 else x)


# ---------------------------------------------------------------------- the app


class SliderApp:
    """Sliders over the attributes of a trained Fader network, decoding live.

    run: a :class:`~faderlib.runs.Run` or a run folder. Images come from the run's data
    set (``split``, by index or at random) or from an uploaded JPEG/PNG. Each binary
    attribute gets a slider over ``alpha_range`` (default -1..2), a categorical one a
    dropdown; they start at the image's true values y (uploads: 0 for every attribute, or
    what the attribute ``classifier`` folder reads from the photo). ``index=None`` starts
    without an image (for uploads only, or a run whose data set is not on this machine).

    ``throttle``: coalesce fast drags through a worker thread (see the module docstring);
    False decodes synchronously in the callback. ``threads``: torch threads for a decode
    (1 by default: at batch 1 a second thread gains little and, when another process
    holds a core, OpenMP's waiting makes a decode up to 10-50 times slower).
    ``image_format``: ``"jpeg"`` (q90, 4:4:4) or ``"png"``; ``display_px``: the on-screen
    side of each picture, at least the model's size (the browser enlarges small images).

    Errors never escape a callback or a method of the app: they are shown in ``output``
    (and kept in ``errors``), so a bad upload leaves the app working.

    Attributes for code and tests: ``sliders`` (name -> widget), ``original``,
    ``reconstruction``, ``edited`` (``ipywidgets.Image``), ``output`` (errors),
    ``readout``, ``encode_count``, ``decode_count``, ``widget`` (the whole app).
    """

    def __init__(self, run, *, split: str = "test", index: int | None = 0,
                 alpha_range: tuple[float, float] = (-1.0, 2.0), step: float = 0.05, throttle: bool = True,
                 classifier=None, image_format: str = "jpeg", display_px: int = 192, threads: int | None = 1,
                 checkpoint: str = "last.pt", dataset=None):
        import ipywidgets as w

        from .runs import Run, load_run

        self.run = run if isinstance(run, Run) else load_run(run, checkpoint)
        self.config: ModelConfig = self.run.model_config
        self.ae = self.run.autoencoder.eval()
        self.device = next(self.ae.parameters()).device
        self.fast = FastDecoder(self.ae.decoder)
        self.split, self.throttle, self.classifier = split, bool(throttle), classifier
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

        px = str(max(int(display_px), self.config.image_size))  # small images are enlarged by the browser
        fmt = "jpeg" if image_format == "jpeg" else "png"
        self.original = w.Image(format=fmt, width=px, height=px)
        self.reconstruction = w.Image(format=fmt, width=px, height=px)
        self.edited = w.Image(format=fmt, width=px, height=px)
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
            w.HTML(f"<b>Fader network</b>: {', '.join(a.spec for a in self.config.attributes)}, "
                   f"{self.config.image_size} px, step {self.run.step}"),
            w.HBox([self.index, self.random_button, self.upload, self.source]),
            w.HBox([column("original x", self.original), column("reconstruction D(z, y)", self.reconstruction),
                    column("edited D(z, y')", self.edited)]),
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
        from .runs import load_run

        return cls(load_run(run_dir, checkpoint), **kwargs)

    # ---------------------------------------------------------------- display
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # ----------------------------------------------------------------- images
    @property
    def dataset(self):
        """The run's data set split, opened on first use."""
        if self._dataset is None:
            from .cache import prepared
            from .data import FaderDataset

            try:
                data = prepared(self.run.data_dir, self.config.image_size, progress=False)
            except Exception as e:
                raise FileNotFoundError(
                    f"cannot open the run's data set {self.run.data_dir!r} ({e}); upload a photo instead, "
                    "or recreate the data (`fader synth DIR`)") from None
            self._dataset = FaderDataset(data, self.split, self.config.attribute_names, flip=False)
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
        if self.classifier is not None:
            if isinstance(self.classifier, (str, os.PathLike)):
                from .classifier import load_classifier

                self.classifier = load_classifier(self.classifier)  # once
            y = predicted_attributes(self.classifier, x, self.config)
        else:
            y = torch.zeros(1, len(self.config.attributes), dtype=torch.long)
        label = name or (str(image) if isinstance(image, (str, os.PathLike)) else "uploaded photo")
        self._set_image(x, y, label, domain_notes(self.run, pil.size, used))

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
            recon = to_pixels(self.fast.decode(latent, code_for(self.config, y).to(self.device)))
            original = to_pixels(x)
        self.encode_count += 1
        with self._cv:
            self._image_id += 1
            self._latent, self._y = latent, y.cpu().long()
        self.original.value = encode_image(original, self.image_format)
        self.reconstruction.value = encode_image(recon, self.image_format)
        self.source.value = f"<i>{label}</i>"
        self.notes.value = "".join(f"<div>note: {n}</div>" for n in notes)
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
            pixels = to_pixels(self.fast.decode(latent, code))
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
