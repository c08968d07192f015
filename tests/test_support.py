"""The small modules everything leans on: errors and their hint, atomic files, progress bars,
devices and the single-process Dist, and the one grid of the kit (visual.tile)."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from faderlib.devices import Dist, init_distributed, pick_device, torch_threads, use_channels_last
from faderlib.errors import did_you_mean
from faderlib.files import atomic_write_text, atomic_writer
from faderlib.images import to_float, to_uint8
from faderlib.progress import Progress, progress_bar
from faderlib.visual import tile, write


# ------------------------------------------------------------------------------------- errors
def test_did_you_mean_prefers_the_same_name_in_other_case_then_the_closest():
    names = ["Smiling", "Eyeglasses", "Male"]
    assert did_you_mean("eyeglasses", names) == " Did you mean 'Eyeglasses'?"
    assert did_you_mean("Smilng", names) == " Did you mean 'Smiling'?"
    assert did_you_mean("Beard", names) == ""
    assert did_you_mean("oficial", ["paper", "official"]) == " Did you mean 'official'?"


# ------------------------------------------------------------------------------------- files
def test_atomic_writer_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "config.json"
    atomic_write_text(target, "first")
    assert target.read_text() == "first"
    with pytest.raises(KeyboardInterrupt):
        with atomic_writer(target) as f:
            f.write("half of the second")
            raise KeyboardInterrupt
    assert target.read_text() == "first"  # the old file, whole
    assert [p.name for p in target.parent.iterdir()] == ["config.json"]  # no temporary file left
    with atomic_writer(tmp_path / "bytes.bin", "wb", sync=True) as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "bytes.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="text .'w'. or bytes .'wb'."):
        with atomic_writer(tmp_path / "x", "a"):
            pass


def test_atomic_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "shared.txt", "for the group")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # as open() makes it, not mkstemp's private 0600


# ------------------------------------------------------------------------------------- progress
def test_progress_labels_lines_and_silence():
    assert Progress.of(True, "training") == Progress("training", None, True)
    assert not Progress.of(False, "training")
    assert Progress.of(Progress(line=1), "training") == Progress("training", 1, True)
    assert Progress.of(Progress("fader", 0), "training").label == "fader"
    bar = Progress("x", enabled=False).bar(10)
    assert bar.disable
    bar.update(3)  # a hidden bar takes the same calls
    bar.close()
    assert Progress("x").bar(10, enabled=False).disable  # e.g. every rank of a distributed run but the first
    with progress_bar(5, "faces", "face", progress=False) as bar:
        assert bar.disable


def test_a_bar_written_to_a_file_stays_small(tmp_path):
    """A job whose output goes to a file (a scheduler's log) gets a few lines of progress, not one
    per step: 1,500 quick steps once wrote about 1 MB."""
    script = ("import time\nfrom faderlib.progress import progress_bar\n"
              "with progress_bar(1500, 'classifier', 'step') as bar:\n"
              "    for i in range(1500):\n        time.sleep(0.003)\n        bar.update(1)\n"
              "        if i % 25 == 0:\n            bar.set_postfix(loss=f'{i:.3f}', refresh=False)\n")
    log = tmp_path / "job.log"
    with open(log, "w") as err:
        subprocess.run([sys.executable, "-c", script], stderr=err, check=True,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    text = log.read_text()
    assert "1500/1500" in text          # the end is there
    assert len(text) < 2_000, len(text)  # but not a redraw per step (tqdm's default redraws 10 times a second)


# ------------------------------------------------------------------------------------- devices
def test_devices_alone_on_a_cpu(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    dist, name = init_distributed("auto")
    assert (dist.rank, dist.world, dist.main, name) == (0, 1, True, "auto")
    assert dist.broadcast({"a": 1}) == {"a": 1} and dist.gather(3) == [3]
    assert dist.any(True, torch.device("cpu")) and not dist.any(False, torch.device("cpu"))
    module = torch.nn.Linear(2, 2)
    assert dist.wrap(module, torch.device("cpu")) is module
    dist.barrier()
    dist.close()  # alone: nothing to do, and no error
    assert Dist(rank=1, world=2).main is False
    assert pick_device("cpu").type == "cpu" and pick_device("auto").type == "cpu"  # conftest hides any GPU
    assert use_channels_last("auto", torch.device("cpu")) and not use_channels_last(False, torch.device("cpu"))
    with pytest.raises(ValueError, match="true, false or 'auto'"):
        use_channels_last("sometimes", torch.device("cpu"))
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# ------------------------------------------------------------------------------------- pixels and grids
def test_pixels_round_trip_and_tensor_and_array_give_the_same_bits():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16).repeat(3, axis=1)
    x = to_float(pixels)
    assert x.dtype == torch.float32 and float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert torch.equal(x, to_float(torch.from_numpy(pixels)))  # numpy and torch paths agree bit for bit
    assert np.array_equal(to_uint8(x[0]), pixels[0].transpose(1, 2, 0))


def test_tile_lays_out_tensors_and_uint8_arrays_with_margins():
    a = torch.full((3, 4, 4), -1.0)                       # black, as a tensor in [-1, 1]
    b = np.full((3, 4, 4), 255, np.uint8)                 # white, as the cache stores it
    c = np.zeros((3, 4, 4), np.uint8)
    grid = np.asarray(tile([[a, b], [c]], pad=2, fill=128, scale=2, top=5, left=3, cols=3))
    cell = 8
    assert grid.shape == (5 + 2 * (cell + 2) + 2, 3 + 3 * (cell + 2) + 2, 3)
    assert (grid[5 + 2:5 + 2 + cell, 3 + 2:3 + 2 + cell] == 0).all()                       # row 0, col 0: a
    assert (grid[5 + 2:5 + 2 + cell, 3 + 2 + cell + 2:3 + 2 + 2 * cell + 2] == 255).all()  # row 0, col 1: b
    assert (grid[:5] == 128).all() and (grid[:, :3] == 128).all()                          # the margins
    image = tile([[a]], pad=2, top=14)
    write(image, "label", (0, 0, image.width, 14))
    assert np.asarray(image.convert("L"))[:14].min() < 100  # the label is drawn in the margin
