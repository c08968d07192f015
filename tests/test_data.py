"""FaderDataset, the batch API and the loaders: shapes, range, flips, balance, workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from celeba_fixture import write_celeba_fixture
from faderlib.cache import load_prepared, prepare
from faderlib.data import FaderDataset, balanced_weights, make_loader
from faderlib.errors import DataError
from faderlib.images import to_uint8

ATTRS = ("Eyeglasses", "Smiling", "Male")
N, S = 40, 16


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    """40 images; Eyeglasses positive for 4 of them (10 %), 3 of them in train."""
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2, size=(N, len(ATTRS)))
    values[:, 0] = 0
    values[[2, 11, 20, 35], 0] = 1
    split = [0] * 30 + [1] * 5 + [2] * 5
    root = write_celeba_fixture(tmp_path_factory.mktemp("celeba"), n=N, attributes=ATTRS,
                                values=values, split=split)
    return load_prepared(prepare(root, S, progress=False, workers=1))


def _as_float(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1)


def test_item_shapes_dtype_range(prep):
    ds = FaderDataset(prep, "train", ("Smiling", "Male"), flip=False)
    assert len(ds) == 30 and ds.size == S and ds.n_classes == (2, 2)
    x, y = ds[3]
    assert x.shape == (3, S, S) and x.dtype == torch.float32
    assert y.shape == (2,) and y.dtype == torch.int64
    assert -1.0 <= x.min() and x.max() <= 1.0
    torch.testing.assert_close(x, _as_float(prep.images[3]))
    assert y.tolist() == prep.attributes.loc[prep.filenames[3], ["Smiling", "Male"]].tolist()
    np.testing.assert_array_equal(to_uint8(x), prep.images[3].transpose(1, 2, 0))


def test_attribute_order_is_kept(prep):
    a = FaderDataset(prep, "valid", ("Smiling", "Male"), flip=False)
    b = FaderDataset(prep, "valid", ("Male", "Smiling"), flip=False)
    assert b.attributes == ("Male", "Smiling")
    torch.testing.assert_close(a.y.flip(1), b.y)
    assert len(FaderDataset(prep, "test", "Smiling").attributes) == 1
    assert len(FaderDataset(prep, "all", ATTRS)) == N


def test_unknown_attribute(prep):
    with pytest.raises(DataError, match="Unknown attribute 'Eyeglases'. Did you mean 'Eyeglasses'"):
        FaderDataset(prep, "train", ("Eyeglases",))


def test_split_selects_rows(prep):
    ds = FaderDataset(prep, "test", ("Smiling",), flip=False)
    assert ds.rows.tolist() == list(range(35, 40))
    torch.testing.assert_close(ds[0][0], _as_float(prep.images[35]))
    FaderDataset(prep.path, 2, ("Smiling",))  # a path and a split number work too


def test_item_flip(prep):
    ds = FaderDataset(prep, "train", ("Smiling",), flip=True)
    plain, mirrored = _as_float(prep.images[0]), _as_float(prep.images[0]).flip(-1)
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        x, _ = ds[0]
        if torch.equal(x, plain):
            seen.add("plain")
        else:
            torch.testing.assert_close(x, mirrored)
            seen.add("mirrored")
    assert seen == {"plain", "mirrored"}
    assert not torch.equal(plain, mirrored)  # the fixture is not symmetric


def test_batch_reads_in_order_and_flips_from_the_generator(prep):
    ds = FaderDataset(prep, "train", ATTRS, flip=True)
    idx = torch.tensor([7, 2, 7, 29, 0, 13, 2, 5])
    x, y = ds.batch(idx, torch.Generator().manual_seed(5))
    assert x.shape == (8, 3, S, S) and x.dtype == torch.float32 and y.dtype == torch.int64
    expected_flip = torch.rand(8, generator=torch.Generator().manual_seed(5)) < 0.5
    assert 0 < expected_flip.sum() < 8
    for k, i in enumerate(idx.tolist()):
        ref = _as_float(prep.images[i])
        torch.testing.assert_close(x[k], ref.flip(-1) if expected_flip[k] else ref)
        assert y[k].tolist() == prep.attributes.iloc[i][list(ATTRS)].tolist()
    # deterministic with an equally seeded generator
    x2, _ = ds.batch(idx, torch.Generator().manual_seed(5))
    torch.testing.assert_close(x, x2)
    # flip consumes exactly B draws
    g = torch.Generator().manual_seed(5)
    ds.batch(idx, g)
    after = torch.rand(1, generator=g)
    g2 = torch.Generator().manual_seed(5)
    torch.rand(8, generator=g2)
    assert torch.equal(after, torch.rand(1, generator=g2))


def test_batch_without_flip_consumes_nothing(prep):
    ds = FaderDataset(prep, "train", ATTRS, flip=False)
    g = torch.Generator().manual_seed(3)
    x, _ = ds.batch(torch.arange(4), g)
    torch.testing.assert_close(x, _as_float(prep.read([0, 1, 2, 3])))
    assert torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(IndexError, match="0..29"):
        ds.batch(torch.tensor([30]))


def test_sample_is_reproducible(prep):
    ds = FaderDataset(prep, "train", ATTRS)
    a = ds.sample(16, torch.Generator().manual_seed(9))
    b = ds.sample(16, torch.Generator().manual_seed(9))
    torch.testing.assert_close(a, b)


def test_balanced_weights(prep):
    ds = FaderDataset(prep, "train", ("Smiling",))
    w = balanced_weights(ds, "Eyeglasses")  # 3 positives among 30 in train
    assert w.shape == (30,) and torch.isclose(w.sum(), torch.tensor(1.0, dtype=w.dtype))
    labels = prep.attributes["Eyeglasses"].to_numpy()[:30]
    assert labels.sum() == 3
    assert torch.isclose(w[labels == 1].sum(), torch.tensor(0.5, dtype=w.dtype))
    draws = torch.multinomial(w, 20_000, replacement=True, generator=torch.Generator().manual_seed(0))
    share = labels[draws.numpy()].mean()
    assert 0.48 < share < 0.52
    glasses = FaderDataset(prep, "train", ("Eyeglasses",), flip=False)  # the batch API, balanced
    _, y = glasses.sample(4000, torch.Generator().manual_seed(0), weights=w)
    assert 0.46 < y.float().mean().item() < 0.54


def test_loader_balances_a_rare_attribute(prep):
    ds = FaderDataset(prep, "train", ("Eyeglasses",), flip=False)
    plain = make_loader(ds, batch_size=10, seed=0)
    balanced = make_loader(ds, batch_size=10, balance="Eyeglasses", seed=0)

    def share(loader, epochs=30):
        ys = torch.cat([y[:, 0] for _ in range(epochs) for _, y in loader])
        return ys.float().mean().item()

    assert share(plain, 1) == pytest.approx(0.1)  # each image once per epoch
    assert 0.4 < share(balanced) < 0.6  # 900 draws, ~50 % positives


def test_loader_shapes_and_shuffle(prep):
    ds = FaderDataset(prep, "train", ("Smiling", "Male"))
    batches = list(make_loader(ds, batch_size=8, seed=1))
    assert len(batches) == 3  # drop_last
    x, y = batches[0]
    assert x.shape == (8, 3, S, S) and y.shape == (8, 2) and y.dtype == torch.int64
    assert len(list(make_loader(ds, batch_size=8, drop_last=False))) == 4
    with pytest.raises(DataError, match="fewer than batch_size=64"):
        make_loader(ds, batch_size=64)


def test_loader_with_two_workers(prep):
    ds = FaderDataset(prep, "all", ATTRS, flip=True)
    assert len(pickle.dumps(ds)) < 50_000  # no images inside: workers reopen the memory map
    loader = make_loader(ds, batch_size=8, shuffle=False, num_workers=2, drop_last=False)
    seen = 0
    for epoch in range(2):
        ys = []
        for x, y in loader:
            assert x.shape[1:] == (3, S, S) and x.dtype == torch.float32
            assert x.abs().max() <= 1.0
            ys.append(y)
            seen += len(x)
        torch.testing.assert_close(torch.cat(ys), ds.y)
    assert seen == 2 * N


def test_class_balanced_weights_of_an_array_of_labels():
    from faderlib.data import class_balanced_weights
    from faderlib.errors import DataError

    w = class_balanced_weights(np.array([0, 0, 0, 1, 2, 2]))
    assert np.allclose(w, [1 / 9, 1 / 9, 1 / 9, 1 / 3, 1 / 6, 1 / 6]) and np.isclose(w.sum(), 1.0)
    for bad in (np.array([0.5, 1.0]), np.array([], dtype=np.int64), np.array([[0, 1]]), np.array([-1, 0])):
        with pytest.raises(DataError, match="class indices 0, 1"):
            class_balanced_weights(bad)


def test_an_attribute_that_never_occurs_in_training_is_refused_by_name(tmp_path):
    # Eyeglasses at -1 for every face (as in the issue): training would learn nothing and evaluate read 1.000
    values = np.random.default_rng(2).integers(0, 2, size=(N, len(ATTRS)))
    values[:, 0] = 0
    values[:, 2] = 1  # Male: every face, so no negative example
    root = write_celeba_fixture(tmp_path / "celeba", n=N, attributes=ATTRS, values=values,
                                split=[0] * 30 + [1] * 5 + [2] * 5)
    prep = load_prepared(prepare(root, S, progress=False, workers=1))
    with pytest.raises(DataError) as err:
        FaderDataset(prep, "train", ("Smiling", "Eyeglasses"))
    msg = str(err.value)
    assert "'Eyeglasses' has no positive example in the train split" in msg
    assert "30 negative, 0 positive of 30 images" in msg and "Choose another attribute" in msg
    assert str(root / "list_attr_celeba.txt") in msg
    with pytest.raises(DataError, match=r"'Male' has no negative example in the train split .*0 negative, 30 positive"):
        FaderDataset(prep, "train", ("Male",))
    # --balance Eyeglasses on another attribute is refused too
    with pytest.raises(DataError, match="'Eyeglasses' has no positive example"):
        balanced_weights(FaderDataset(prep, "train", ("Smiling",)), "Eyeglasses")
    # only the training split is held to it (a test split may lack a class), and Smiling trains
    assert len(FaderDataset(prep, "test", ("Eyeglasses",))) == 5
    assert len(FaderDataset(prep, "train", ("Smiling",))) == 30
