"""The attribute classifier used to evaluate swaps (the protocol of the paper, section 4).

It reads attributes from real images, is trained separately, and is never a training
signal for the Fader network: it only judges whether an edited face shows the attribute
it was asked to show.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from . import checkpoint as ckpt
from .cache import prepared
from .config import ModelConfig, jsonable, parse_attributes
from .data import FaderDataset
from .devices import pick_device
from .fastconv import choose_fast_convs, use_gemm
from .files import LOCK_NAME, FolderLock, atomic_write_text
from .losses import attribute_cross_entropy
from .metrics import correct_counts, predict_classes
from .models import AttributeClassifier
from .progress import progress_bar

FORMAT_VERSION = 1


@dataclass
class ClassifierConfig:
    """Every setting of the attribute classifier's training (the reference's classifier,
    docs/paper_notes.md, 'Networks'; Adam with beta1 0.5, gradients clipped at 5, as for the Fader network)."""

    data_dir: str | None = None
    image_size: int = 64
    attributes: tuple[str, ...] | None = None   # None: every attribute of the data set
    preset: str = "official"
    model: dict = field(default_factory=dict)
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-4
    seed: int = 0
    flip: bool = True
    device: str = "auto"

    def __post_init__(self):
        if self.attributes is not None:
            self.attributes = tuple(a.spec for a in parse_attributes(self.attributes))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def train_classifier(config: ClassifierConfig, out_dir: str | os.PathLike, *, progress: bool = True) -> dict:
    """Train the classifier and write ``OUT_DIR/classifier.pt`` and ``OUT_DIR/config.json``.

    An existing classifier trained with the same settings is reused (its record is returned);
    one trained with other settings is never overwritten. Returns the accuracy on the test split.
    """
    out = Path(out_dir)
    record_path, weights_path = out / "config.json", out / "classifier.pt"
    if record_path.exists():
        old = json.loads(record_path.read_text())
        if old.get("train") == jsonable(config.to_dict()) and weights_path.exists():
            return old
        if (out / "checkpoints").is_dir() or "lambda_e" in old.get("train", {}):
            raise FileExistsError(f"{out} is the run folder of a Fader network, not of a classifier; give "
                                  f"train-classifier a folder of its own (e.g. {out}_classifier); nothing was changed")
        raise FileExistsError(
            f"{out} holds a classifier trained with other settings; choose another --out folder "
            "(nothing was overwritten)"
        )
    if out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise FileExistsError(f"{out} is not empty and holds no classifier; choose a new or empty folder")
    lock = FolderLock(out, "training a classifier").acquire()  # a second process on it is refused
    try:
        return _train(config, out, progress)
    except BaseException:
        lock.discard()
        raise
    finally:
        lock.release()


def _train(config: ClassifierConfig, out: Path, progress) -> dict:
    record_path, weights_path = out / "config.json", out / "classifier.pt"
    data = prepared(config.data_dir, config.image_size, progress=progress)
    names = list(config.attributes or data.attributes.columns)
    model_config = ModelConfig.from_preset(config.preset, config.image_size, names, **config.model)
    device = pick_device(config.device)
    train_set = FaderDataset(data, "train", names, flip=config.flip)
    test_set = FaderDataset(data, "test", names, flip=False)

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    # its small convolutions as one matrix product where that was measured faster (fastconv.py)
    clf = use_gemm(AttributeClassifier(model_config).to(device), choose_fast_convs("auto", device))
    opt = torch.optim.Adam(clf.parameters(), lr=config.lr, betas=(0.5, 0.999),
                           fused=True if device.type in ("cpu", "cuda") else None)  # see train.py
    clf.train()
    bar = progress_bar(config.steps, "classifier", "step", progress)
    for step in range(config.steps):
        idx = torch.randint(0, len(train_set), (config.batch_size,), generator=generator)
        x, y = train_set.batch(idx, generator=generator)
        x, y = x.to(device), y.to(device)
        loss = attribute_cross_entropy(clf(x), y, model_config)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(clf.parameters(), 5.0)
        opt.step()
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)  # drawn at the next redraw
        bar.update(1)
    bar.close()

    accuracy = classifier_accuracy(clf, model_config, test_set, device)
    record = {"format_version": FORMAT_VERSION, "train": config.to_dict(), "model": model_config.to_dict(),
              "data_root": str(data.root), "test_accuracy": accuracy}
    out.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_save({"format_version": FORMAT_VERSION, "model_config": model_config.to_dict(),
                      "classifier": clf.state_dict()}, weights_path)
    atomic_write_text(record_path, json.dumps(record, indent=2))
    return record


def load_classifier(clf_dir: str | os.PathLike, device: str | torch.device = "cpu") -> AttributeClassifier:
    """The classifier saved by :func:`train_classifier`, in eval mode, on ``device`` ("cpu",
    "cuda", "auto": :func:`faderlib.devices.pick_device`; a device this machine lacks raises
    a ``ValueError`` that says so)."""
    path = Path(clf_dir) / "classifier.pt"
    if not path.exists():
        raise FileNotFoundError(
            f"no classifier at {path}; train one with `fader train-classifier --data DATA_DIR --size S --out {clf_dir}`"
        )
    device = pick_device(str(device))  # "auto" resolved and a missing GPU named, before reading the file
    state = ckpt.load(path)  # to the CPU; load_state_dict copies to the device
    clf = AttributeClassifier(ModelConfig.from_dict(state["model_config"])).to(device)
    clf.load_state_dict(state["classifier"])
    return clf.eval()


def classifier_places(run_dir: str | os.PathLike) -> list[Path]:
    """Where the attribute classifier of a run is kept, in the layouts of :class:`faderlib.course.CourseRuns`:
    ``RUN_DIR/classifier`` beside ``RUN_DIR/fader`` (the course's folder, ``runs/demo``), and
    ``<run>_classifier`` beside a run folder of its own (``fader train --out <run>``)."""
    from .course import course_runs  # the course's glue imports this module

    run_dir = Path(run_dir)
    places = []
    course = course_runs(run_dir.parent)
    if course.fader == run_dir:
        places.append(course.classifier)
    places.append(run_dir.with_name(run_dir.name + "_classifier"))
    return places


def find_classifier(run_dir: str | os.PathLike, attributes: Sequence[str]) -> Path | None:
    """The attribute classifier kept with the run of ``run_dir`` (:func:`classifier_places`)
    that reads every one of ``attributes`` (names), or None when there is none."""
    for place in classifier_places(run_dir):
        try:
            saved = json.loads((place / "config.json").read_text())["model"]["attributes"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        known = {str(a).split(".")[0] for a in saved}
        if (place / "classifier.pt").is_file() and all(a.split(".")[0] in known for a in attributes):
            return place
    return None


@torch.no_grad()
def predict(clf: AttributeClassifier, x: torch.Tensor) -> torch.Tensor:
    """Class indices (batch, n_attr) the classifier reads from images x in [-1, 1]."""
    return predict_classes(clf(x), clf.config)


def read_attributes(classifier, x: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Class indices (B, n_attr) of ``config``'s attributes as an attribute classifier reads
    them from images x (a folder from ``fader train-classifier`` or a loaded classifier),
    matched by name and resized to the classifier's size if needed.

    Wherever x and the classifier are: a folder is loaded on x's device; a loaded classifier
    reads x on its own device. The result is on x's device."""
    if isinstance(classifier, (str, os.PathLike)):
        clf = load_classifier(classifier, x.device)
    else:
        clf = classifier
    where = x.device
    x = x.to(next(clf.parameters()).device)
    names = clf.config.attribute_names
    missing = [n for n in config.attribute_names if n not in names]
    if missing:
        raise ValueError(f"the classifier does not predict {', '.join(missing)} (it knows {', '.join(names)}); "
                         "train one on the run's attributes with `fader train-classifier --attrs ...`")
    if clf.config.image_size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=clf.config.image_size, mode="area")
    return predict(clf, x)[:, [names.index(n) for n in config.attribute_names]].to(where)


@torch.no_grad()
def classifier_accuracy(clf: AttributeClassifier, model_config: ModelConfig, dataset, device,
                        batch_size: int = 128) -> dict[str, float]:
    """Per-attribute accuracy on a whole dataset (no flips)."""
    clf.eval()
    correct, n = torch.zeros(len(model_config.attributes)), 0
    for start in range(0, len(dataset), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(dataset)))
        x, y = dataset.batch(idx)
        correct += correct_counts(clf(x.to(device)), y.to(device), model_config)
        n += len(idx)
    return {name: float(c) / max(n, 1) for name, c in zip(model_config.attribute_names, correct)}
