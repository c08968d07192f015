"""Pairs (x, y) for training a Fader Network, read from a prepared cache.

x is an image scaled to [-1, 1] (the decoder ends with tanh), y holds the class
index of each chosen attribute (0/1 for CelebA's binary ones): the encoder sees x,
the decoder gets D(E(x), y), the latent discriminator predicts y from z = E(x)
(Lample et al. 2017, section 3).

Two ways to read batches:

* :class:`FaderDataset` with :func:`make_loader` (a ``torch.utils.data.DataLoader``,
  optionally class-balanced), the usual PyTorch route;
* ``dataset.batch(indices, generator)`` / ``dataset.sample(batch_size, generator)``:
  one vectorised read per batch, with every random draw taken from the given
  ``torch.Generator``, so a resumed run replays exactly (the reference drew its
  batch indices with replacement the same way).

Images stay on disk in a memory map: resident memory does not grow with the data set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from .cache import Prepared, load_prepared, split_code
from .celeba_facts import SPLIT_NAMES
from .config import check_attributes
from .errors import DataError
from .images import to_float

__all__ = ["FaderDataset", "balanced_weights", "class_balanced_weights", "minority_shares", "choose_balance",
           "make_loader", "check_attributes_vary", "BALANCE_BELOW"]

#: Attributes rarer than this (the share of their rarer class in the training split) are drawn
#: class-balanced by the course's recipe (``balance="auto"``). Eyeglasses: 6.5 % in CelebA.
BALANCE_BELOW = 0.15


class FaderDataset(Dataset):
    """One split of a prepared cache, with the attributes the decoder is conditioned on.

    ``dataset[i] -> (x, y)``: x float32 (3, S, S) in [-1, 1], mirrored left-right with
    probability 0.5 when ``flip``; y int64 (n_attr,), the class index of each attribute
    in the order given (never sorted).

    prepared: a :class:`~faderlib.cache.Prepared` or the path of a cache folder.
    split: ``"train"``, ``"valid"``, ``"test"`` (or 0/1/2) or ``"all"``.
    attributes: names from the attribute table, e.g. ``("Smiling",)`` or
    ``("Smiling", "Male")``; an unknown name raises with the closest valid one. For the training
    split, an attribute with a single value there (no positive, or no negative, example) is refused
    (:func:`check_attributes_vary`): there would be nothing to learn.
    """

    def __init__(self, prepared: Prepared | str | os.PathLike, split: str | int = "train",
                 attributes: str | Sequence[str] = ("Smiling",), flip: bool = True):
        if not isinstance(prepared, Prepared):
            prepared = load_prepared(prepared)
        self.prepared = prepared
        self.attributes = tuple(check_attributes(attributes, prepared.attributes.columns))
        self.split = split
        self.flip = bool(flip)
        #: Row of each example in the cache (``prepared.images[rows[i]]`` is example i).
        self.rows = prepared.indices(split)
        table = prepared.attributes[list(self.attributes)].to_numpy(np.int64)
        #: Classes per attribute (2 for a binary one), counted over the whole table.
        self.n_classes = tuple(max(2, int(table[:, j].max(initial=0)) + 1) for j in range(table.shape[1]))
        self.y = torch.from_numpy(table[self.rows])
        if not isinstance(split, bool) and split in (0, "train"):
            check_attributes_vary(prepared, self.attributes, "train")

    @property
    def size(self) -> int:
        """Image side S."""
        return self.prepared.size

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        name = SPLIT_NAMES[self.split] if isinstance(self.split, int) and 0 <= self.split < 3 else self.split
        return (f"FaderDataset({len(self)} images, split={name!r}, attributes={self.attributes}, "
                f"size={self.size}, flip={self.flip})")

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} images")
        image = self.prepared.read([self.rows[i]])
        if self.flip and torch.rand(()) < 0.5:  # the global torch RNG (seeded per DataLoader worker)
            image = image[..., ::-1]
        return to_float(image)[0], self.y[i].clone()

    def batch(self, indices: torch.Tensor | Sequence[int],
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples ``indices`` (positions in this dataset, repeats allowed) as one batch.

        Returns x float32 (B, 3, S, S) in [-1, 1] and y int64 (B, n_attr). The rows
        are read from the memory map in one sorted pass, then put back in the order
        asked for. With ``flip``, each image is mirrored when ``torch.rand(B,
        generator=generator) < 0.5``: this consumes exactly B draws from the generator
        (none without flip), which keeps resumed runs reproducible.
        """
        idx = self._check_indices(indices)
        return self.assemble(idx, self.draw_flips(len(idx), generator))

    def sample(self, batch_size: int, generator: torch.Generator | None = None,
               weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch drawn with replacement (as the reference did).

        Draws the indices first (``torch.randint``, or ``torch.multinomial`` on
        ``weights`` such as :func:`balanced_weights`), then the flips, all from
        ``generator``.
        """
        return self.assemble(*self.draw(batch_size, generator, weights))

    # -- the three parts of a batch, for the training feed (faderlib.feed) -----------------
    def draw(self, batch_size: int, generator: torch.Generator | None = None,
             weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The random part of :meth:`sample`: the indices (with replacement), then the flips
        (a bool mask, None without ``flip``), drawn from ``generator`` in that order."""
        if weights is None:
            idx = torch.randint(len(self), (batch_size,), generator=generator)
        else:
            idx = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
        return idx, self.draw_flips(batch_size, generator)

    def draw_flips(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Which of ``n`` images to mirror: ``torch.rand(n, generator) < 0.5``, or None without ``flip``."""
        return torch.rand(n, generator=generator) < 0.5 if self.flip else None

    def read(self, idx: torch.Tensor, out: np.ndarray | None = None) -> np.ndarray:
        """The uint8 pixels (B, 3, S, S) of examples ``idx``, not flipped, into ``out`` if given
        (e.g. a pinned buffer that a GPU copies from without a staging copy)."""
        return self.prepared.read(self.rows[idx.numpy()], out=out)

    def assemble(self, idx: torch.Tensor, mirror: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x float32 (B, 3, S, S) in [-1, 1], mirrored where ``mirror``, and y, on the host."""
        images = self.read(idx)  # (B, 3, S, S) uint8, a copy
        if mirror is not None:
            m = mirror.numpy()
            images[m] = images[m][..., ::-1]  # mirror the width axis
        return to_float(images), self.y[idx]

    def _check_indices(self, indices) -> torch.Tensor:
        idx = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= len(self)):
            raise IndexError(f"batch indices must lie in 0..{len(self) - 1}, "
                             f"got {int(idx.min())}..{int(idx.max())}")
        return idx


def check_attributes_vary(data, attributes: Sequence[str], split: str | int | None = "train") -> None:
    """Refuse an attribute with a single value in ``split`` (or ``"all"``): no positive (or no negative) example.

    data: a :class:`~faderlib.cache.Prepared` (or anything with an ``attributes`` table and a
    ``split``). A Fader network learns to change an attribute from images of both values; with one
    value the decoder learns to ignore it, the latent discriminator has nothing to predict, and the
    evaluation scores read perfect while saying nothing. Raises :class:`DataError` naming the
    attribute, its counts and what to do.
    """
    names = check_attributes(list(attributes), data.attributes.columns)
    everything = split is None or split == "all"
    rows = np.ones(len(data.split), bool) if everything else np.asarray(data.split) == split_code(split)
    part = "any split" if everything else f"the {SPLIT_NAMES[split_code(split)]} split"
    for name in names:
        labels = data.attributes[name].to_numpy(np.int64)[rows]
        counts = np.bincount(labels, minlength=2)
        if (counts > 0).sum() >= 2 or len(labels) == 0:
            continue
        where = getattr(data, "root", None) or getattr(data, "path", None) or "the data set"
        table = getattr(data, "attribute_file", None)  # a CelebA's; a cache records the name in its meta.json
        if table is None:
            stamp = ((getattr(data, "meta", None) or {}).get("fingerprint") or {}).get("attribute_file") or {}
            table = Path(where) / stamp["name"] if stamp.get("name") else "the attribute file of the data set"
        if len(counts) == 2:
            missing = "positive" if counts[1] == 0 else "negative"
            found = f"{counts[0]:,} negative, {counts[1]:,} positive"
        else:
            missing, found = "second class", f"all {len(labels):,} are class {int(labels[0])}"
        raise DataError(
            f"Attribute {name!r} has no {missing} example in {part} of {where} ({found} of "
            f"{len(labels):,} images): a Fader network learns to change an attribute from images of both "
            "values, so there is nothing to learn (and the evaluation would read a meaningless perfect score). "
            "Choose another attribute (CelebA's rarest, Bald at 2.24 %, still has about 4,500 positive images), "
            f"or check {table}.")


def balanced_weights(dataset: FaderDataset, attribute: str) -> torch.Tensor:
    """Per-example weights (float64, summing to 1) that draw each class of ``attribute`` equally often.

    Example i of class c gets 1 / (n_c * C), C the number of classes present
    (:func:`class_balanced_weights`). Useful for rare attributes (Eyeglasses: 6.5 % of CelebA).
    ``attribute`` may be any column of the table, not only one the dataset returns.
    """
    (attribute,) = check_attributes([attribute], dataset.prepared.attributes.columns)
    labels = dataset.prepared.attributes[attribute].to_numpy(np.int64)[dataset.rows]
    if len(labels) == 0:
        raise DataError(f"The {dataset.split!r} split is empty: there is nothing to balance.")
    check_attributes_vary(dataset.prepared, [attribute], dataset.split)
    return torch.from_numpy(class_balanced_weights(labels))


def class_balanced_weights(labels) -> np.ndarray:
    """The weights of :func:`balanced_weights` for an array of class indices (0, 1, ...): label i
    of class c gets 1 / (n_c * C), n_c the labels of class c and C the number of classes present,
    so that the weights sum to 1 and each class present gets 1 / C of the total."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise DataError(f"expected a non-empty 1-d array of class indices 0, 1, ...; got {labels.dtype} of shape "
                        f"{labels.shape}" + (f" with values from {labels.min()}" if labels.size else ""))
    counts = np.bincount(labels)
    present = int((counts > 0).sum())
    return 1.0 / (counts[labels] * present)


def minority_shares(data, attributes: Sequence[str], split: str | int = "train"):
    """The share of the rarer class of each attribute in a split, 0..0.5 (a pandas Series).

    data: anything with an ``attributes`` table and a ``split`` (a :class:`~faderlib.celeba.CelebA`,
    a :class:`~faderlib.cache.Prepared`). Eyeglasses in CelebA's training split: 0.065.
    """
    names = check_attributes(list(attributes), data.attributes.columns)
    rows = np.asarray(data.split) == split_code(split)
    rates = (data.attributes.loc[rows, names] > 0).mean()
    return pd.Series(np.minimum(rates, 1 - rates), index=names, name=f"rarer class share ({split})")


def choose_balance(data, attributes: Sequence[str], below: float = BALANCE_BELOW) -> str | None:
    """What ``balance="auto"`` means: the attribute of ``attributes`` whose rarer class is the
    rarest in the training split, if that share is under ``below``; else None (no balancing)."""
    shares = minority_shares(data, attributes)
    name = str(shares.idxmin())
    return name if shares[name] < below else None


def make_loader(dataset: FaderDataset, batch_size: int = 32, shuffle: bool = True,
                balance: str | None = None, num_workers: int = 0, seed: int = 0,
                drop_last: bool = True) -> DataLoader:
    """A DataLoader over ``dataset``; ``balance="Eyeglasses"`` draws both classes equally often.

    With ``balance``, a ``WeightedRandomSampler`` (with replacement, len(dataset) draws
    per epoch) replaces shuffling. ``seed`` seeds the order (and the workers' flips).
    """
    if drop_last and len(dataset) < batch_size:
        raise DataError(
            f"{dataset!r} has {len(dataset)} images, fewer than batch_size={batch_size}: with "
            "drop_last=True the loader would yield nothing. Use a smaller batch_size or drop_last=False.")
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if balance is not None:
        sampler = WeightedRandomSampler(balanced_weights(dataset, balance), num_samples=len(dataset),
                                        replacement=True, generator=generator)
        shuffle = False
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler,
                      num_workers=num_workers, drop_last=drop_last, generator=generator,
                      persistent_workers=num_workers > 0)
