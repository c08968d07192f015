"""The glue a course notebook needs to start: check the environment, then make sure the data,
a trained run and its classifier are there (drawing, training or reusing them).

Everything else the notebooks call lives with its concept: figures of the data in
:mod:`faderlib.analysis`, network tables in :mod:`faderlib.summary`, the recipe in
:mod:`faderlib.train`, a run and its folder in :mod:`faderlib.runs`, results in
:mod:`faderlib.evaluate`, :mod:`faderlib.reports` and :mod:`faderlib.plots`. The course's folder
of runs, ``RUN_DIR`` in the notebooks, has the layout :class:`CourseRuns` describes (``fader demo``
writes it in ``runs/demo``), so ``RUN_DIR = "../runs/demo"`` opens the demo's results in notebooks
04 and 05.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .cache import CACHE_ENV_VAR
from .celeba import DATA_ENV_VAR, read_celeba, resolve_data_dir
from .classifier import ClassifierConfig, train_classifier
from .config import parse_attributes
from .devices import describe_device
from .runs import holds_run, run_record
from .sliders import SliderApp
from .synth import ensure_synthetic, is_synthetic
from .train import RECIPES, TrainConfig, Trainer

__all__ = ["REQUIREMENTS", "EnvironmentReport", "environment_check", "ensure_data", "ensure_run",
           "ensure_classifier", "train_variant", "slider_app", "CourseRuns", "course_runs", "find_run",
           "measured_sweep"]

#: Synthetic faces drawn when the course finds no data (about a minute on 2 cores); the demo too.
N_FACES = 20_000

#: The attribute classifier that judges the swaps of the course's runs (and the demo's): its
#: steps (at most; a third of the run's when fewer) and its network (ModelConfig settings).
CLASSIFIER_STEPS = 1000
CLASSIFIER_MODEL = {"init_fm": 16}


# ----------------------------------------------------------------------------- the environment
#: (import name, distribution name, minimum version) of what the notebooks import (pyproject.toml).
REQUIREMENTS = (
    ("torch", "torch", "2.4"),
    ("numpy", "numpy", "1.23"),
    ("pandas", "pandas", "1.5"),
    ("PIL", "pillow", "9.4"),
    ("matplotlib", "matplotlib", "3.6"),
    ("tqdm", "tqdm", "4.64"),
    ("ipywidgets", "ipywidgets", "8.0"),
    ("faderlib", "faderlib", None),
)


@dataclass
class EnvironmentReport:
    """What :func:`environment_check` found: one ``(ok, line)`` per check; shown as text."""

    rows: list[tuple[bool, str]]
    device: str
    caches: str = "beside the data, in DATA_DIR/fader_cache"

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.rows)

    def __str__(self) -> str:
        lines = [f"[{'OK' if ok else 'FAIL':>4}] {text}" for ok, text in self.rows]
        lines.append(f"device: {self.device}")
        lines.append(f"data caches: {self.caches}")
        if not self.ok:
            lines.append("Fix the FAIL lines first: `make install` (or `pip install -e .`) from the repository root.")
        return "\n".join(lines)

    __repr__ = __str__


def _version_tuple(text: str) -> tuple:
    try:
        from packaging.version import Version  # optional: present with pip, but not a declared dependency

        return (Version(text),)
    except Exception:  # no packaging, or a version it cannot parse: compare the leading numbers
        parts = []
        for piece in text.split("."):
            digits = "".join(ch for ch in piece if ch.isdigit())
            if not digits:
                break
            parts.append(int(digits))
            if not piece.isdigit():
                break
        return tuple(parts)


def environment_check(requirements: Sequence[tuple[str, str, str | None]] = REQUIREMENTS,
                      cache_dir: str | os.PathLike | None = None) -> EnvironmentReport:
    """Check Python and every package the notebooks import, OK or FAIL each with its version
    and the minimum needed; say which device training will use and where the data's caches
    go. The first cell of every notebook.

    A package counts as OK when it imports (an installed but broken package fails) and its
    version is at least the minimum. ``cache_dir`` (the notebooks' ``CACHE_DIR``) puts the
    caches there for the whole kernel, as ``$FADER_CACHE`` (``--cache-dir`` on the command
    line) does: for a data folder on a read-only share, or a faster disk.
    """
    if cache_dir is not None:
        os.environ[CACHE_ENV_VAR] = str(Path(cache_dir).expanduser().resolve())
    rows: list[tuple[bool, str]] = []
    py = platform.python_version()
    rows.append((sys.version_info >= (3, 10), f"python {py} (needs >= 3.10) at {sys.executable}"))
    for module, dist, minimum in requirements:
        need = f" (needs >= {minimum})" if minimum else ""
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            spec = f'"{dist}>={minimum}"' if minimum else dist
            rows.append((False, f"{dist} is not installed{need}: pip install {spec}"))
            continue
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - any failure to import is what we report
            rows.append((False, f"{dist} {version} is installed but does not import: {type(e).__name__}: {e}"))
            continue
        ok = minimum is None or _version_tuple(version) >= _version_tuple(minimum)
        rows.append((ok, f"{dist} {version}{need}" + ("" if ok else f": upgrade with pip install -U \"{dist}>={minimum}\"")))
    report = EnvironmentReport(rows, describe_device())
    if os.environ.get(CACHE_ENV_VAR):
        report.caches = f"{os.environ[CACHE_ENV_VAR]} (${CACHE_ENV_VAR})"
    return report



# ----------------------------------------------------------------------------- the course's folder of runs
#: The other adversarial setting that ``make demo-adversary`` (``fader demo --other-adversary``) and
#: notebook 05 (``COMPARE_ADVERSARY``) train beside the course recipe's network, same data, seed and
#: steps: the best trade-off of the kit's adversary sweep (docs/results.md, 'Can another adversary
#: empty z?'): four discriminator steps per autoencoder step (the reference code's ``n_lat_dis``).
OTHER_ADVERSARY = {"dis_steps": 4}


@dataclass
class CourseRuns:
    """Where the course's runs are: the Fader network to use, and where its companions
    (classifier, lambda_E = 0 ablation, the other balancing choice) are or will be written.

    The course keeps a run with its companions in one folder, the layout ``fader demo`` writes
    in ``runs/demo`` (``RUN_DIR`` in the notebooks)::

        RUN_DIR/fader/              the Fader network (notebook 03)
        RUN_DIR/ablation_lambda0/   the same network trained with lambda_E = 0 (notebook 03)
        RUN_DIR/classifier/         the attribute classifier that judges swaps (notebooks 03, 05)
        RUN_DIR/unbalanced/         the run again with the other class-balancing choice (notebook 05)
        RUN_DIR/other_adversary/    the run again with OTHER_ADVERSARY (notebook 05, `make demo-adversary`)
    """

    fader: Path
    classifier: Path
    ablation: Path
    unbalanced: Path
    other_adversary: Path
    source: str

    def __str__(self) -> str:
        return f"Fader network: {self.fader} ({self.source})"


def course_runs(run_dir: str | os.PathLike) -> CourseRuns:
    """The layout of the course folder ``run_dir`` (see :class:`CourseRuns`). A folder
    that is itself a run (made by ``fader train --out``) keeps its companions beside it,
    named ``<run>_classifier`` and so on."""
    root = Path(run_dir)
    if holds_run(root) or ((root / "config.json").is_file() and not (root / "fader").exists()):
        return CourseRuns(root, root.with_name(root.name + "_classifier"), root.with_name(root.name + "_lambda0"),
                          root.with_name(root.name + "_unbalanced"), root.with_name(root.name + "_other_adversary"),
                          "a run folder")
    return CourseRuns(root / "fader", root / "classifier", root / "ablation_lambda0", root / "unbalanced",
                      root / "other_adversary",
                      "the course folder")


def find_run(run_dir: str | os.PathLike, demo_dir: str | os.PathLike | None = None) -> CourseRuns | None:
    """The trained run to use: in ``run_dir`` (a course folder or a run folder), else in
    ``demo_dir`` (``runs/demo`` after ``make demo``), else None. Companions that the run's
    folder lacks are placed in ``run_dir``."""
    mine = course_runs(run_dir)
    if holds_run(mine.fader):
        return CourseRuns(mine.fader, mine.classifier, mine.ablation, mine.unbalanced, mine.other_adversary,
                          f"trained in {run_dir}")
    if demo_dir is not None:
        demo = course_runs(demo_dir)
        if holds_run(demo.fader):
            def pick(theirs: Path, ours: Path) -> Path:
                return theirs if theirs.exists() else ours

            return CourseRuns(demo.fader, pick(demo.classifier, mine.classifier), pick(demo.ablation, mine.ablation),
                              mine.unbalanced, pick(demo.other_adversary, mine.other_adversary),
                              f"the demo's run in {demo_dir}")
    return None


# ----------------------------------------------------------------------------- data, run, classifier
def ensure_data(data_dir: str | os.PathLike | None = None, n_faces: int = N_FACES,
                progress: bool = True) -> Path:
    """The data folder the course uses, as an absolute path, made if it is the default one.

    ``data_dir=None`` (the notebooks' ``DATA_DIR = None``) means ``$FADER_DATA`` if set, else
    the built-in synthetic faces in ``data/synthetic``, drawn now if they are not there yet
    (``n_faces`` faces, about a minute for 20,000 on two cores). A folder that holds a
    synthetic set is used as it is, whatever its size. Any other folder must hold CelebA (either
    layout); if it does not, the error lists what is missing and how to get it.
    """
    root = resolve_data_dir(data_dir).resolve()
    if is_synthetic(root):
        return root
    if data_dir is None and not os.environ.get(DATA_ENV_VAR):
        print(f"drawing {n_faces:,} synthetic faces into {root} (once; about a minute per 20,000 on 2 cores)")
        return ensure_synthetic(root, n=n_faces, seed=0, progress=progress).resolve()
    read_celeba(root)  # raises DataError with what is missing and how to get CelebA
    return root


def ensure_run(run_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
               attributes: Sequence[str] = RECIPES["course"]["attributes"], image_size: int = 64,
               steps: int | None = None, batch_size: int | None = None, device: str = "auto",
               demo_dir: str | os.PathLike | None = None, progress: bool = True) -> CourseRuns:
    """The trained run for notebooks 04 and 05: the one in ``run_dir`` (notebook 03's), else
    the one in ``demo_dir`` (``make demo``'s), else a run of the course's recipe trained now
    into ``run_dir/fader`` on ``data_dir`` (the same run notebook 03 makes: running 03 later
    finds it done; ``steps=None``: the recipe's). Prints which one it uses."""
    found = find_run(run_dir, demo_dir)
    if found is not None:
        print(found)
        return found
    runs = course_runs(run_dir)
    data = ensure_data(data_dir, progress=progress)
    config = TrainConfig.from_recipe("course", data_dir=str(data), attributes=tuple(attributes), image_size=image_size,
                                     steps=steps, batch_size=batch_size, device=device)
    print(f"no trained run in {run_dir}" + (f" or {demo_dir}" if demo_dir else "")
          + f": training one now ({config.steps:,} steps at {image_size} px; notebook 03 explains it)")
    trainer = Trainer(config, runs.fader, progress=progress)
    trainer.train()
    runs.source = "trained just now"
    print(runs)
    return runs


def ensure_classifier(runs: CourseRuns, steps: int | None = None, progress: bool = True) -> Path:
    """The attribute classifier that judges the run's swaps: ``runs.classifier`` if it holds
    one that reads the run's attributes at its size, else one trained now on the run's data
    (``steps``: by default a third of the run's steps, at most 1,000)."""
    record = run_record(runs.fader)
    model = record["model"]
    names = [a.name for a in parse_attributes(model["attributes"])]
    path = Path(runs.classifier)
    if (path / "classifier.pt").is_file():
        saved = json.loads((path / "config.json").read_text())["model"]
        known = [a.name for a in parse_attributes(saved["attributes"])]
        if saved["image_size"] == model["image_size"] and all(n in known for n in names):
            return path
        raise FileExistsError(
            f"{path} holds a classifier of {saved['image_size']} px images on {known}, but the run makes "
            f"{model['image_size']} px images of {names}: delete {path} (or choose another RUN_DIR) and run again")
    run_steps = int(record["train"]["steps"])
    steps = steps if steps is not None else max(1, min(CLASSIFIER_STEPS, run_steps // 3))
    config = ClassifierConfig(data_dir=record["data_root"], image_size=model["image_size"], attributes=tuple(names),
                              steps=steps, model=dict(CLASSIFIER_MODEL), device=record["train"].get("device", "auto"))
    record = train_classifier(config, path, progress=progress)
    acc = ", ".join(f"{k} {v:.1%}" for k, v in record["test_accuracy"].items())
    print(f"classifier trained ({steps} steps): test accuracy {acc}")
    return path


def train_variant(run_dir: str | os.PathLike, out_dir: str | os.PathLike, progress: bool = True,
                  callbacks: Sequence = (), **changes) -> Path:
    """Train the run of ``run_dir`` again into ``out_dir`` with some settings changed, e.g.
    ``lambda_e=0.0`` (the ablation) or ``balance=None``; same data, seed and steps.
    Resumes (or returns at once) when ``out_dir`` already holds that run."""
    record = run_record(run_dir)
    settings = {**record["train"], "data_dir": record["data_root"], **changes}
    trainer = Trainer(TrainConfig.from_dict(settings), out_dir, progress=progress, callbacks=list(callbacks))
    trainer.train()
    return Path(out_dir)


def slider_app(run_dir: str | os.PathLike, demo_dir: str | os.PathLike | None = None):
    """The live slider app (:class:`faderlib.sliders.SliderApp`) on the run :func:`find_run`
    finds; ``notebooks/apps/slider_app.ipynb``, served by ``make app`` in Voila, is this one call.
    Trains nothing: without a run it says how to make one."""
    found = find_run(run_dir, demo_dir)
    if found is None:
        where = f"{Path(run_dir).resolve()}" + (f" or {Path(demo_dir).resolve()}" if demo_dir else "")
        raise FileNotFoundError(f"no trained Fader network in {where}. Make one first: `make demo` (about "
                                "10 minutes on a laptop CPU), or notebook 03_training.")
    return SliderApp.from_run_dir(found.fader)


#: The kit's measured sweep of the adversarial objectives (``benchmarks/sweep_adversary.py``'s rows).
SWEEP_FILE = Path(__file__).resolve().parent.parent / "docs" / "adversary_sweep.jsonl"


def measured_sweep(path: str | os.PathLike = SWEEP_FILE) -> list[dict]:
    """The rows of the kit's measured adversary sweep (one training each: objective, strength, seed,
    probe, discriminator, swaps, PSNR; ``docs/results.md`` says how they were made), for
    :func:`faderlib.plots.plot_adversaries` and :func:`faderlib.reports.sweep_table`. ``[]`` (and a
    line saying so) where the docs folder is not beside the package (an installed copy)."""
    path = Path(path)
    if not path.is_file():
        print(f"no measured sweep at {path}: it ships in the kit's docs/ folder (a checkout or a hand-out)")
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
