"""Interpolation grids: sizes, labels, what each cell holds, and ``fader grid``."""

import numpy as np
import pytest
import torch
from PIL import Image

from faderlib.cli import main
from faderlib.config import ModelConfig
from faderlib.images import to_uint8
from faderlib.interpolate import LINE, interpolation_grid, interpolation_grid_2d, parse_alphas, reference_alphas
from faderlib.models import AutoEncoder
from faderlib.runs import load_run

PAD = 2


@pytest.fixture(scope="module")
def run_dir(tiny_run_dir):
    return tiny_run_dir


def cell(grid: Image.Image, row: int, col: int, size: int, top: int = 2 * LINE, left: int = 0) -> np.ndarray:
    a = np.asarray(grid)
    y, x = top + PAD + row * (size + PAD), left + PAD + col * (size + PAD)
    return a[y:y + size, x:x + size]


def test_grid_size_and_cells(run_dir):
    run = load_run(run_dir)
    x, y = run.images(4)
    alphas = (-1.0, 0.0, 1.0, 2.0)
    grid = interpolation_grid(run.autoencoder, x, y, "Smiling", alphas)
    cell_px = 64  # 32 px cells are enlarged x2 so that the labels fit
    assert grid.size == ((2 + len(alphas)) * (cell_px + PAD) + PAD, 2 * LINE + 4 * (cell_px + PAD) + PAD)
    for i in range(4):
        recon, at_one, at_two = cell(grid, i, 1, cell_px), cell(grid, i, 4, cell_px), cell(grid, i, 5, cell_px)
        at_true = at_one if y[i, 0] == 1 else cell(grid, i, 3, cell_px)
        assert np.array_equal(at_true, recon)  # alpha = the true value is the reconstruction
        assert not np.array_equal(at_two, at_one)  # beyond 1 is another picture
    # column 0 is the original, enlarged by pixel repetition

    assert np.array_equal(cell(grid, 2, 0, cell_px)[::2, ::2], to_uint8(x[2]))


def test_grid_labels_every_column(run_dir):
    grid = interpolation_grid(run_dir, attribute="Eyeglasses", alphas=(0, 1.5), n=2, scale=3)
    a = np.asarray(grid.convert("L"))
    size = 96
    assert grid.size == (4 * (size + PAD) + PAD, 2 * LINE + 2 * (size + PAD) + PAD)
    for c in range(4):  # a label (dark text) above each column
        left = PAD + c * (size + PAD)
        assert a[LINE:2 * LINE, left:left + size].min() < 100
    assert a[:LINE, PAD + 2 * (size + PAD):].min() < 100  # the title over the sweep
    # different alphas, different labels
    assert not np.array_equal(a[LINE:2 * LINE, PAD + 2 * (size + PAD):][:, :size],
                              a[LINE:2 * LINE, PAD + 3 * (size + PAD):][:, :size])


def test_grid_from_the_run_test_split_by_default(run_dir):
    grid = interpolation_grid(run_dir, n=3, start=2, scale=1)
    assert grid.size == (7 * (32 + PAD) + PAD, 2 * LINE + 3 * (32 + PAD) + PAD)
    x, _ = load_run(run_dir).images(1, start=2)

    assert np.array_equal(cell(grid, 0, 0, 32), to_uint8(x[0]))


def test_other_attributes_keep_their_true_values_even_categorical():
    torch.manual_seed(0)
    config = ModelConfig.from_preset("official", 32, ["Smiling", "Hair.3"])
    ae = AutoEncoder(config).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = torch.tensor([[0, 2], [1, 1]])
    grid = interpolation_grid(ae, x, y, "Smiling", (0.0, 1.0), scale=1)
    with torch.no_grad():
        expected = ae.decode(ae.encode(x), y)

    assert np.array_equal(cell(grid, 0, 2, 32), to_uint8(expected[0]))  # Smiling 0 = its truth
    assert np.array_equal(cell(grid, 1, 3, 32), to_uint8(expected[1]))
    with pytest.raises(ValueError, match="categorical"):
        interpolation_grid(ae, x, y, "Hair")
    assert ae.training is False
    ae.train()
    interpolation_grid(ae, x, y, "Smiling")
    assert ae.training is True  # the mode is restored


def test_2d_grid_size_and_consistency_with_1d(run_dir):
    run = load_run(run_dir)
    x, y = run.images(1, start=1)
    a1, a2 = (-1.0, 0.5, 2.0), (0.0, 1.0)
    grid = interpolation_grid_2d(run, "Smiling", "Male", a1, a2, index=1, scale=1)
    size = 32
    assert grid.size == (size + PAD + 3 * (size + PAD) + PAD, 2 * LINE + 2 * (size + PAD) + PAD)
    row = interpolation_grid(run, x, y, "Smiling", a1, scale=1)
    true_male = int(y[0, 2])
    for c in range(3):  # the row where Male is at its true value is the 1-D sweep
        got = cell(grid, true_male, c, size, left=size + PAD).astype(int)
        assert np.abs(got - cell(row, 0, 2 + c, size).astype(int)).max() <= 1  # batch-size rounding
    a = np.asarray(grid.convert("L"))
    assert a[2 * LINE + PAD:2 * LINE + PAD + size, PAD:size].min() < 100  # row labels
    with pytest.raises(ValueError, match="two different"):
        interpolation_grid_2d(run, "Male", "Male")


def test_errors_teach(run_dir):
    run = load_run(run_dir)
    with pytest.raises(ValueError, match="Did you mean 'Eyeglasses'"):
        interpolation_grid(run, attribute="Eyeglass")
    with pytest.raises(ValueError, match=r"out of range.*\[-10, 10\]"):
        interpolation_grid(run, alphas=(0, 12))
    with pytest.raises(IndexError, match="test split has"):
        interpolation_grid(run, start=10**6)
    with pytest.raises(ValueError, match="not a number|comma-separated"):
        parse_alphas("0,one,2")


def test_reference_alphas():
    assert reference_alphas(2, 2, 4) == [-1.0, 0.0, 1.0, 2.0]
    assert reference_alphas(1, 10, 11)[0] == 0.0 and reference_alphas(1, 10, 11)[-1] == 10.0
    assert parse_alphas("-1, 0,0.5 ,2") == [-1.0, 0.0, 0.5, 2.0]


def test_cli_grid_writes_pngs(run_dir, tmp_path, capsys):
    out = tmp_path / "g" / "grid.png"
    assert main(["grid", str(run_dir), "--out", str(out), "--attr", "Eyeglasses", "--alphas", "-1,0,1,2",
                 "--n", "3", "--checkpoint", "best.pt"]) == 0
    image = Image.open(out)
    assert image.format == "PNG" and image.size == (6 * 66 + PAD, 2 * LINE + 3 * 66 + PAD)
    assert "grid written" in capsys.readouterr().out
    out2 = tmp_path / "grid2.png"
    assert main(["grid", str(run_dir), "--out", str(out2), "--attr", "Smiling", "--attr2", "Male",
                 "--alphas", "0,1,2", "--alphas2", "0,2", "--index", "4"]) == 0
    assert Image.open(out2).size == (66 + 3 * 66 + PAD, 2 * LINE + 2 * 66 + PAD)
    assert main(["grid", str(run_dir), "--out", str(out2), "--attr", "Smiles"]) == 2
    assert "Did you mean 'Smiling'" in capsys.readouterr().err


@pytest.mark.parametrize("args, says", [
    (["--n", "0"], "--n 0 is not a number of images: give a whole number of 1 or more"),
    (["--n", "-1"], "--n -1 is not a number of images"),
    (["--index", "-5"], "--index -5 is out of range: the test split has"),
    (["--index", "1000000"], "--index 1000000 is out of range"),
    (["--n", "1000000"], "--n 1000000 is too many: the test split has"),
    (["--attr2", "Male", "--index", "-5"], "--index -5 is out of range"),
])
def test_cli_grid_refuses_image_counts_and_indexes_the_split_lacks(run_dir, tmp_path, capsys, args, says):
    out = tmp_path / "g.png"
    assert main(["grid", str(run_dir), "--out", str(out), "--attr", "Smiling", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and "step sign" not in err
    assert not out.exists()


def test_grid_range_error_names_the_allowed_range(run_dir):
    run = load_run(run_dir)
    size = len(run.dataset("test"))
    with pytest.raises(ValueError, match=rf"start -5 is out of range: .* from 0 to {size - 1}"):
        interpolation_grid(run, start=-5)
    with pytest.raises(ValueError, match=rf"n {size} is too many: the test split has {size - 2} images from start 2"):
        interpolation_grid(run, n=size, start=2)
