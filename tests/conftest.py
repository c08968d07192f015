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
