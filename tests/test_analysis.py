"""Attribute analysis: exact numbers on known tables, and figures with the expected parts."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from celeba_fixture import fixture_tables, write_celeba_fixture
from faderlib import analysis
from faderlib.analysis import correlation, cooccurrence, plot_correlation, plot_frequencies, positive_rates
from faderlib.cache import prepared
from faderlib.data import FaderDataset
from faderlib.cache import load_prepared, prepare
from faderlib.celeba import read_celeba
from faderlib.errors import DataError

# 10 images, train = 0..5, valid = 6..7, test = 8..9
KNOWN = pd.DataFrame({
    "A": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
    "B": [1, 1, 0, 0, 0, 0, 0, 0, 1, 0],
    "C": [0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
})
SPLIT = [0] * 6 + [1] * 2 + [2] * 2


@pytest.fixture(scope="module")
def known(tmp_path_factory):
    root = write_celeba_fixture(tmp_path_factory.mktemp("known"), n=10, attributes=list(KNOWN),
                                values=KNOWN.to_numpy(), split=SPLIT, images=False)
    return read_celeba(root)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return read_celeba(write_celeba_fixture(tmp_path_factory.mktemp("full"), n=60, images=False))


def test_positive_rates_known(known):
    rates = positive_rates(known)
    assert list(rates.columns) == ["train", "valid", "test", "all"]
    assert list(rates.index) == ["A", "B", "C"]
    assert rates.loc["A"].tolist() == pytest.approx([4 / 6, 0, 0, 0.4])
    assert rates.loc["B"].tolist() == pytest.approx([2 / 6, 0, 0.5, 0.3])
    assert rates.loc["C"].tolist() == pytest.approx([2 / 6, 1, 1, 0.6])


def test_positive_rates_match_the_fixture(full):
    table, split = fixture_tables(60)
    rates = positive_rates(full)
    np.testing.assert_allclose(rates["all"], table.mean())
    np.testing.assert_allclose(rates["test"], table[split.to_numpy() == 2].mean())
    assert rates.shape == (40, 4)


def test_correlation_and_cooccurrence_known(known):
    corr = correlation(known)
    np.testing.assert_allclose(corr.to_numpy(), np.corrcoef(KNOWN.to_numpy().T))
    assert corr.loc["A", "C"] == pytest.approx(-1.0)  # C is exactly "not A"
    co = cooccurrence(known)
    assert co.loc["A", "B"] == pytest.approx(0.5)  # P(B | A): 2 of the 4 A's have B
    assert co.loc["B", "A"] == pytest.approx(2 / 3)  # P(A | B)
    assert co.loc["A", "C"] == 0 and co.loc["C", "B"] == pytest.approx(1 / 6)
    assert np.diag(co.to_numpy()).tolist() == [1, 1, 1]
    sub = correlation(known, ["C", "A"])
    assert list(sub.columns) == ["C", "A"]
    with pytest.raises(DataError, match="Did you mean 'A'"):
        correlation(known, ["a"])


def test_plot_frequencies(known):
    fig = plot_frequencies(known)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.patches) == 3 * 3  # 3 attributes x 3 splits
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["B", "A", "C"]  # by overall frequency, most frequent on top
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "valid", "test"]
    assert isinstance(ax.xaxis.get_major_formatter(), PercentFormatter)
    widths = sorted(round(p.get_width(), 6) for p in ax.patches)
    assert widths == sorted(round(v, 6) for v in [4 / 6, 0, 0, 2 / 6, 0, 0.5, 2 / 6, 1, 1])
    assert len(plot_frequencies(known, splits=("all",)).axes[0].patches) == 3
    fig.savefig(io.BytesIO(), format="png")  # renders headless


def test_plot_correlation(full):
    fig = plot_correlation(full)
    assert len(fig.axes) == 2  # heatmap and colorbar
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == full.names
    assert [t.get_text() for t in ax.get_yticklabels()] == full.names
    image = ax.get_images()[0]
    assert image.get_cmap().name == "RdBu_r" and image.get_clim() == (-1, 1)
    np.testing.assert_allclose(np.asarray(image.get_array()), correlation(full).to_numpy())
    fig.savefig(io.BytesIO(), format="png")


def test_works_on_a_prepared_cache(tmp_path):
    root = write_celeba_fixture(tmp_path, n=10, attributes=list(KNOWN), values=KNOWN.to_numpy(),
                                split=SPLIT)
    p = load_prepared(prepare(root, 8, progress=False, workers=1))
    pd.testing.assert_frame_equal(positive_rates(p), positive_rates(read_celeba(root)))
    assert len(plot_frequencies(p).axes[0].patches) == 9

ATTRS = ("Smiling", "Eyeglasses", "Male")

# ------------------------------------------------------------------------------------- imbalance, faces


def test_imbalance_table_and_rarest_attribute(synthetic_dir):
    celeba = read_celeba(synthetic_dir)
    table = analysis.imbalance_table(celeba, ATTRS)
    assert list(table.index)[0] == "Eyeglasses"  # rarest first
    np.testing.assert_allclose(table['accuracy of always "no"'], 1 - table["positives"])
    assert (table["majority accuracy"] >= 0.5).all() and (table["balanced accuracy of a constant"] == 0.5).all()
    train = celeba.attributes[celeba.split.to_numpy() == 0]
    assert table.loc["Male", "positives"] == pytest.approx(train["Male"].mean())
    assert analysis.rarest_attribute(celeba, ATTRS) == "Eyeglasses"
    assert analysis.rarest_attribute(celeba, ["Smiling", "Male"]) in ("Smiling", "Male")


def test_sampling_table_shows_what_balancing_does(synthetic_dir):
    train = FaderDataset(prepared(synthetic_dir, 32, progress=False), "train", ATTRS)
    rate = float(train.y[:, 1].float().mean())
    table = analysis.sampling_table(train, "Eyeglasses", batches=400)
    uniform, balanced = table.iloc[0], table.iloc[1]
    assert uniform["share of Eyeglasses"] == pytest.approx(rate, abs=0.02)
    assert balanced["share of Eyeglasses"] == pytest.approx(0.5, abs=0.03)
    assert uniform["draws of each positive image per epoch"] == pytest.approx(1.0, rel=0.15)
    assert balanced["draws of each positive image per epoch"] == pytest.approx(0.5 / rate, rel=0.15)


def test_sample_grid_shows_each_attribute_with_and_without(synthetic_dir):
    data = prepared(synthetic_dir, 32, progress=False)
    fig = analysis.sample_grid(data, ATTRS, n=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * len(ATTRS)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[2].startswith("with Eyeglasses") and titles[3].startswith("without Eyeglasses")
    # a class with no face in the split says so instead of failing
    data.attributes["Smiling"] = 0
    fig = analysis.sample_grid(data, ["Smiling"], n=3)
    assert any(t.get_text() == "none in this split" for t in fig.axes[0].texts)
    with pytest.raises(DataError, match="Did you mean 'Smiling'"):
        analysis.sample_grid(data, ["Smilling"])


def test_crop_figure_frames_the_reference_rows(synthetic_dir):
    celeba = read_celeba(synthetic_dir)
    fig = analysis.crop_figure(celeba.image_path(celeba.filenames[0]), sizes=(64, 32))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["original 178x218", "rows 20..197: 178x178", "resized to 64x64", "resized to 32x32"]
    (frame,) = fig.axes[0].patches
    assert frame.get_y() == pytest.approx(19.5) and frame.get_height() == 178
    assert fig.axes[2].images[0].get_array().shape == (64, 64, 3)


def test_toggle_figure_renders_counterfactuals_or_explains(synthetic_dir, celeba_dir, capsys):
    fig = analysis.toggle_figure(synthetic_dir, 0, ATTRS, size=32)
    assert len(fig.axes) == 1 + len(ATTRS)
    assert fig.axes[1].get_title().startswith("Smiling ")
    assert analysis.toggle_figure(celeba_dir, 0, ATTRS) is None
    assert "no ground truth" in capsys.readouterr().out
