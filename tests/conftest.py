"""Shared fixtures: a small synthetic data set made once per test session."""

import os

import pytest

# Tests must be reproducible on 2 cores and never wait on a GPU.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


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
