"""The training batches, fed to the device: drawn in order from one generator, read as uint8,
moved, then flipped and scaled to [-1, 1] where the networks are.

A :class:`~faderlib.train.Trainer` opens its data once (:class:`TrainingData`) and takes two
batches per iteration from a :class:`BatchFeed`.
Three ways to feed, the same batches from each (the same draws from the generator, in the
same order, so a resumed run replays exactly):

* **host** (a CPU device): the rows are read from the memory map, mirrored and scaled on the
  host, as :meth:`FaderDataset.sample <faderlib.data.FaderDataset.sample>` does;
* **pinned** (a CUDA device): the rows are read as uint8 into pinned (page-locked) memory,
  copied to the GPU without blocking (a quarter of the bytes of float32), and mirrored and
  scaled there;
* **resident**: the whole split is uploaded once as uint8 (:func:`resident_split`), and a batch
  is an index into it on the device: no host work per step at all.

With ``prefetch > 0`` a background thread draws and reads the next batches while the device
computes (reading from the memory map releases the GIL). It is bounded (``prefetch``
batches ahead), re-raises any error of its own in the training loop, and stops with
:meth:`BatchFeed.close`. Each batch carries the generator's state after its draws, so a
checkpoint records where the consumed batches end, however far the thread has read ahead.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .cache import prepared
from .data import FaderDataset, balanced_weights
from .images import to_float

if TYPE_CHECKING:
    from .devices import Placement

#: Images uploaded per chunk by :func:`resident_split` (a bounded host copy, whatever the split's size).
UPLOAD_CHUNK = 4096


@dataclass
class Batch:
    """One training batch on the device, and the generator's state after it was drawn."""

    x: torch.Tensor          # (B, 3, S, S) float32 in [-1, 1]
    y: torch.Tensor          # (B, n_attr) int64
    rng_state: torch.Tensor  # torch.Generator.get_state() after this batch's draws


@dataclass
class Resident:
    """A split held on the device as uint8 (:func:`resident_split`)."""

    images: torch.Tensor     # (N, 3, S, S) uint8
    y: torch.Tensor          # (N, n_attr) int64


def resident_split(dataset: FaderDataset, device: torch.device, chunk: int = UPLOAD_CHUNK) -> Resident:
    """Upload every image of ``dataset`` (its rows, in order) to ``device`` as uint8, chunk by chunk."""
    s = dataset.size
    images = torch.empty((len(dataset), 3, s, s), dtype=torch.uint8, device=device)
    for a in range(0, len(dataset), chunk):
        idx = torch.arange(a, min(a + chunk, len(dataset)))
        images[a:a + len(idx)] = torch.from_numpy(dataset.read(idx)).to(device)
    return Resident(images, dataset.y.to(device))


def split_bytes(dataset: FaderDataset) -> int:
    """Bytes of a split as uint8: N x 3 x S x S."""
    return len(dataset) * 3 * dataset.size ** 2


def place(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """A float batch on ``device``, in the channels-last layout if asked (the host feed, and validation)."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def to_device_batch(pixels: torch.Tensor, mirror: torch.Tensor | None, channels_last: bool) -> torch.Tensor:
    """uint8 (B, 3, S, S) on the device -> x float32 in [-1, 1], mirrored where ``mirror`` (B,):
    element-wise operations where the pixels are, no host work. The same bits as the host's
    numpy path (:meth:`FaderDataset.assemble <faderlib.data.FaderDataset.assemble>`)."""
    if mirror is not None:
        pixels = torch.where(mirror.view(-1, 1, 1, 1), pixels.flip(-1), pixels)
    x = to_float(pixels)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class BatchFeed:
    """Batches of ``dataset`` for a device, drawn with replacement from ``generator`` (see the
    module docstring).

    weights: per-example sampling weights (class balancing) or None (uniform).
    prefetch: batches read ahead by a background thread (0: read when asked).
    resident: a :class:`Resident` copy of the split on the device, or None (read from the memory map).
    While a feed with ``prefetch > 0`` is open, ``generator`` belongs to its thread: read the
    state to save from :attr:`Batch.rng_state`, and :meth:`close` the feed before using the
    generator again (it is then left at the state after the last batch taken).
    """

    def __init__(self, dataset: FaderDataset, batch_size: int, generator: torch.Generator, device: torch.device,
                 *, weights: torch.Tensor | None = None, channels_last: bool = False, prefetch: int = 0,
                 resident: Resident | None = None):
        self.dataset, self.batch_size, self.generator = dataset, batch_size, generator
        self.device, self.weights, self.channels_last = device, weights, channels_last
        self.resident = resident
        self.mode = "resident" if resident is not None else ("pinned" if device.type == "cuda" else "host")
        self.last_state = generator.get_state()  # after the last batch handed out
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if prefetch > 0:
            self._queue = queue.Queue(maxsize=prefetch)
            self._thread = threading.Thread(target=self._work, name="fader-prefetch", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ the host half
    def _prepare(self) -> tuple:
        """Draw one batch and do its host work: what :meth:`next` turns into a :class:`Batch`."""
        idx, mirror = self.dataset.draw(self.batch_size, self.generator, self.weights)
        state = self.generator.get_state()
        if self.mode == "host":
            x, y = self.dataset.assemble(idx, mirror)
            return x, y, None, state
        if self.mode == "pinned":
            s = self.dataset.size
            pixels = torch.empty((len(idx), 3, s, s), dtype=torch.uint8, pin_memory=True)
            self.dataset.read(idx, out=pixels.numpy())
            return pixels, self.dataset.y[idx], mirror, state
        return idx, None, mirror, state  # resident: the device does the rest

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                item = self._prepare()
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:  # handed to the training loop, which raises it
            self._error = e

    def _take(self) -> tuple:
        """The next prepared batch from the thread; its error, if it failed."""
        while True:
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._error is not None:
                    error, self._error = self._error, None
                    self.close()
                    raise error
                if self._thread is None or not self._thread.is_alive():
                    raise RuntimeError("the prefetch thread of the training batches has stopped") from None

    # ------------------------------------------------------------------ the device half
    def next(self) -> Batch:
        """The next batch, on the device."""
        first, y, mirror, state = self._prepare() if self._queue is None else self._take()
        if self.mode == "host":
            x, y = place(first, self.device, self.channels_last), y.to(self.device)
        elif self.mode == "pinned":
            pixels = first.to(self.device, non_blocking=True)
            m = mirror.to(self.device, non_blocking=True) if mirror is not None else None
            x, y = to_device_batch(pixels, m, self.channels_last), y.to(self.device, non_blocking=True)
        else:
            idx = first.to(self.device, non_blocking=True)
            m = mirror.to(self.device, non_blocking=True) if mirror is not None else None
            x = to_device_batch(self.resident.images.index_select(0, idx), m, self.channels_last)
            y = self.resident.y.index_select(0, idx)
        self.last_state = state
        return Batch(x, y, state)

    def close(self) -> None:
        """Stop the thread (if any) and leave the generator at the state after the last batch taken."""
        if self._thread is not None:
            self._stop.set()
            while self._thread.is_alive():
                try:
                    self._queue.get(timeout=0.05)  # unblock a waiting put
                except queue.Empty:
                    pass
            self._thread.join()
            self._thread = None
        self.generator.set_state(self.last_state)

    def __enter__(self) -> "BatchFeed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrainingData:
    """The data a training run reads, opened once for its configuration ``config`` (a
    :class:`~faderlib.train.TrainConfig`) where ``placement`` computes (:class:`~faderlib.devices.Placement`):

    * the prepared cache (:func:`faderlib.cache.prepared`): rank 0 builds it, the other ranks then reuse it;
    * ``config``: the configuration with ``balance="auto"`` decided on the data (``TrainConfig.for_data``);
    * ``train`` (flipped at random if ``config.flip``) and ``valid``: the splits, with the run's attributes;
      ``root``: the data set's folder;
    * ``weights``: per-example weights for class-balanced draws (``config.balance``), or None;
    * ``on_device`` and ``prefetch``: how training batches reach the device (``Placement.feed_plan``).
    """

    def __init__(self, config, placement: Placement, progress: bool = False):
        dist = placement.dist
        data = dist.main_first(lambda: prepared(config.data_dir, config.image_size, progress=progress and dist.main))
        self.config = config = config.for_data(data)
        self.root, self.placement = str(data.root), placement
        names = config.model_config().attribute_names
        self.train = FaderDataset(data, "train", names, flip=config.flip)
        self.valid = FaderDataset(data, "valid", names, flip=False)
        self.weights = balanced_weights(self.train, config.balance) if config.balance else None
        self.on_device, self.prefetch = placement.feed_plan(config.data_on_device, config.prefetch,
                                                            split_bytes(self.train))
        self._resident: Resident | None = None  # uploaded at the first feed

    def feed(self, generator: torch.Generator) -> BatchFeed:
        """The training batches, drawn with replacement from ``generator`` (so a resumed run draws the same)."""
        device = self.placement.device
        if self.on_device and self._resident is None:
            self._resident = resident_split(self.train, device)
        return BatchFeed(self.train, self.config.batch_size, generator, device, weights=self.weights,
                         channels_last=self.placement.channels_last, prefetch=self.prefetch, resident=self._resident)
