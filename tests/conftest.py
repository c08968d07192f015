"""Shared fixtures: a small synthetic data set made once per test session."""

import os

import pytest

# Tests must be reproducible on 2 cores and never wait on a GPU.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# PyTorch's CPU threads wait without spinning (faderlib/__main__.py): here for the notebooks'
# kernels and the commands the tests start; in this process when torch is not loaded yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    """400 synthetic faces in CelebA's original layout (about 2 s to draw)."""
    from faderlib.synth import generate

    return generate(tmp_path_factory.mktemp("synthetic") / "faces", n=400, seed=0, progress=False)


@pytest.fixture(scope="session")
def tiny_run_dir(synthetic_dir, tmp_path_factory):
    """A barely trained 32 px run on Smiling, Eyeglasses, Male (3 steps): enough for grids,
    edits and sliders, whose pictures change with y whatever the training. Read-only."""
    from faderlib.train import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    config = TrainConfig(data_dir=str(synthetic_dir), attributes=("Smiling", "Eyeglasses", "Male"), image_size=32,
                         steps=3, batch_size=8, eval_every=3, eval_images=8, device="cpu")
    Trainer(config, out, progress=False).train()
    return out


@pytest.fixture(scope="session")
def celeba_dir(tmp_path_factory):
    """40 random-colour images in CelebA's Kaggle layout: photographs, as far as the kit can tell."""
    from celeba_fixture import write_celeba_fixture

    return write_celeba_fixture(tmp_path_factory.mktemp("celeba") / "celeba", n=40, layout="kaggle")


@pytest.fixture(scope="session")
def course_dir(synthetic_dir, tmp_path_factory):
    """A course folder (the layout of faderlib.course.CourseRuns) with a tiny Fader run of the course's recipe
    and its classifier (6 steps each at 32 px: seconds, not quality). Read-only."""
    from faderlib import course

    root = tmp_path_factory.mktemp("course") / "runs"
    runs = course.ensure_run(root, synthetic_dir, ("Smiling", "Eyeglasses", "Male"), image_size=32, steps=6,
                             batch_size=4, device="cpu", progress=False)
    course.ensure_classifier(runs, steps=6, progress=False)
    return runs
