"""The prepared cache: same pixels as a direct decode, atomic, reused, rebuilt, and clear errors."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import faderlib.cache as cache
from celeba_fixture import fixture_tables, write_celeba_fixture
from faderlib.cache import load_prepared, prepare, prepared
from faderlib.errors import DataError
from faderlib.images import decode_image

ATTRS = ("Eyeglasses", "Male", "Smiling")
S = 16


@pytest.fixture
def data(tmp_path) -> Path:
    return write_celeba_fixture(tmp_path / "celeba", n=24, attributes=ATTRS)


def _reference_decode(path: Path, size: int, top: int = 20, bottom: int = 198) -> np.ndarray:
    """Crop and resize written out here, independently of faderlib."""
    with Image.open(path) as im:
        im = im.convert("RGB").crop((0, top, 178, bottom))
        im = im.resize((size, size), Image.Resampling.BOX)
    return np.asarray(im).transpose(2, 0, 1)


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_cache_equals_a_direct_decode(data):
    before = _listing(data)
    path = prepare(data, 32, progress=False, workers=1)
    assert path == data / "fader_cache" / "32"
    p = load_prepared(path)
    assert p.images.shape == (24, 3, 32, 32) and p.images.dtype == np.uint8
    for i in (0, 7, 23):
        expected = _reference_decode(data / "img_align_celeba" / p.filenames[i], 32)
        np.testing.assert_array_equal(p.images[i], expected)
    table, split = fixture_tables(24, ATTRS)
    pd.testing.assert_frame_equal(p.attributes, table)
    np.testing.assert_array_equal(p.split, split.to_numpy())
    assert p.split.dtype == np.int8 and p.size == 32 and p.root == data.resolve()
    # nothing but fader_cache/ was written into the data folder
    assert {x for x in _listing(data) - before if not x.startswith("fader_cache")} == set()
    assert sorted(os.listdir(path)) == ["attributes.csv", "images.npy", "meta.json", "split.npy"]
    assert os.listdir(data / "fader_cache") == ["32"]


def test_crop_really_removes_the_bands(data):
    # the fixture paints rows 0..19 and 198..217 in solid colours; none may leak in
    path = data / "img_align_celeba" / "000001.jpg"
    full = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
    x = decode_image(path, 178)
    np.testing.assert_array_equal(x, full[:, 20:198])
    assert decode_image(path, 200, crop=None).shape == (3, 200, 200)


def test_meta_json(data):
    path = prepare(data, S, progress=False)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["complete"] and meta["count"] == 24 and meta["size"] == S
    assert meta["crop"] == [20, 198] and meta["skipped_count"] == 0
    assert meta["fingerprint"]["image_count"] == 24
    assert meta["fingerprint"]["attribute_file"]["name"] == "list_attr_celeba.txt"
    assert meta["split_counts"] == {"train": 16, "valid": 3, "test": 5}
    assert meta["attributes"] == list(ATTRS)


def test_worker_pool_gives_the_same_cache(data, tmp_path):
    one = load_prepared(prepare(data, S, progress=False, workers=1, cache_dir=tmp_path / "a"))
    two = load_prepared(prepare(data, S, progress=False, workers=2, cache_dir=tmp_path / "b"))
    np.testing.assert_array_equal(one.images, two.images)


def test_cache_dir_elsewhere_leaves_the_data_folder_alone(data, tmp_path):
    before = _listing(data)
    path = prepare(data, S, progress=False, cache_dir=tmp_path / "elsewhere")
    assert path == tmp_path / "elsewhere" / str(S)
    assert _listing(data) == before


def test_reuse_does_not_rewrite(data):
    path = prepare(data, S, progress=False)
    stamp = (path / "images.npy").stat().st_mtime_ns
    time.sleep(0.01)
    assert prepare(data, S, progress=False) == path
    assert (path / "images.npy").stat().st_mtime_ns == stamp


def test_rebuild_on_crop_and_source_change(data):
    path = prepare(data, S, progress=False)
    stamp = (path / "images.npy").stat().st_mtime_ns
    prepare(data, S, progress=False, crop=(0, 178))
    assert (path / "images.npy").stat().st_mtime_ns != stamp
    assert load_prepared(path).meta["crop"] == [0, 178]
    np.testing.assert_array_equal(
        load_prepared(path).images[0],
        _reference_decode(data / "img_align_celeba" / "000001.jpg", S, 0, 178))

    attr = data / "list_attr_celeba.txt"
    text = attr.read_text().splitlines()
    text[2] = "000001.jpg  1  1  1"  # change the first image's attributes
    attr.write_text("\n".join(text) + "\n")
    prepare(data, S, progress=False, crop=(0, 178))
    assert load_prepared(path).attributes.iloc[0].tolist() == [1, 1, 1]


def test_other_size_is_another_cache(data):
    a = prepare(data, S, progress=False)
    b = prepare(data, 8, progress=False)
    assert a != b and load_prepared(a).size == S and load_prepared(b).size == 8


def test_interrupted_preparation_leaves_nothing_usable(data, monkeypatch):
    calls = {"n": 0}
    real = cache.decode_image

    def dies_midway(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C
        return real(*args, **kw)

    monkeypatch.setattr(cache, "decode_image", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        prepare(data, S, progress=False, workers=1)
    assert os.listdir(data / "fader_cache") == []  # no cache, no temporary folder
    with pytest.raises(DataError, match="not a complete faderlib cache"):
        load_prepared(data / "fader_cache" / str(S))
    monkeypatch.setattr(cache, "decode_image", real)
    assert load_prepared(prepare(data, S, progress=False)).images.shape[0] == 24


def test_killed_preparation_is_cleaned_and_never_used(data):
    base = data / "fader_cache"
    # a process killed mid-way: a temporary folder with a half-written meta.json ...
    tmp = base / f".{S}.tmp-999999999"
    tmp.mkdir(parents=True)
    np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(24, 3, S, S))
    (tmp / "meta.json").write_text('{"complete": true, "count": 24, "si')
    # ... and a final folder whose meta.json was cut short
    target = base / str(S)
    shutil.copytree(tmp, target)
    for folder in (tmp, target):
        with pytest.raises(DataError) as err:
            load_prepared(folder)
        assert "meta.json is unreadable or truncated" in str(err.value)
        assert "prepare(data_dir, size)" in str(err.value)
    assert prepare(data, S, progress=False) == target
    assert not tmp.exists()
    assert load_prepared(target).images.shape == (24, 3, S, S)


def test_load_prepared_refuses_missing_files(data):
    path = prepare(data, S, progress=False)
    (path / "split.npy").unlink()
    with pytest.raises(DataError, match="split.npy is missing"):
        load_prepared(path)
    assert prepare(data, S, progress=False) == path  # rebuilt
    load_prepared(path)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("workers", [1, 2])
def test_truncated_image_names_the_file(data, workers):
    _truncate(data / "img_align_celeba" / "000020.jpg")
    with pytest.raises(DataError) as err:
        prepare(data, S, progress=False, workers=workers)
    msg = str(err.value)
    assert "000020.jpg" in msg and "truncated" in msg and "skip_bad=True" in msg
    assert os.listdir(data / "fader_cache") == []


def test_skip_bad_leaves_unreadable_images_out(data):
    _truncate(data / "img_align_celeba" / "000005.jpg")
    (data / "img_align_celeba" / "000009.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="Skipped 2 unreadable image"):
        path = prepare(data, S, progress=False, skip_bad=True)
    p = load_prepared(path)
    assert len(p) == 22 and "000005.jpg" not in p.filenames and "000009.jpg" not in p.filenames
    assert p.meta["skipped_count"] == 2 and p.meta["source_count"] == 24
    assert [s["file"] for s in p.meta["skipped"]] == ["000005.jpg", "000009.jpg"]
    i = p.filenames.index("000010.jpg")
    np.testing.assert_array_equal(p.images[i], _reference_decode(data / "img_align_celeba" / "000010.jpg", S))
    table, split = fixture_tables(24, ATTRS)
    keep = ~table.index.isin(["000005.jpg", "000009.jpg"])
    pd.testing.assert_frame_equal(p.attributes, table[keep])
    np.testing.assert_array_equal(p.split, split.to_numpy()[keep])


def test_unreadable_and_missing_images(data):
    (data / "img_align_celeba" / "000003.jpg").write_bytes(b"GIF89a garbage")
    with pytest.raises(DataError, match=r"000003\.jpg: image cannot be decoded"):
        prepare(data, S, progress=False, workers=1)
    (data / "img_align_celeba" / "000024.jpg").unlink()
    with pytest.raises(DataError, match=r"Image not found: .*000024\.jpg"):
        prepare(data, S, progress=False, workers=1)


def test_wrong_image_size(data):
    Image.new("RGB", (100, 120), "red").save(data / "img_align_celeba" / "000011.jpg")
    with pytest.raises(DataError) as err:
        prepare(data, S, progress=False, workers=1)
    msg = str(err.value)
    assert "000011.jpg" in msg and "found 100x120" in msg and "178x218" in msg
    # --skip-bad skips it like any bad image, and says why in meta.json
    with pytest.warns(UserWarning, match="Skipped 1"):
        path = prepare(data, S, progress=False, workers=1, skip_bad=True)
    p = load_prepared(path)
    assert "000011.jpg" not in p.filenames and "found 100x120" in p.meta["skipped"][0]["reason"]


def test_a_cache_with_skipped_images_is_rebuilt_once_they_are_fixed(data):
    bad = data / "img_align_celeba" / "000007.jpg"
    good = bad.read_bytes()
    bad.write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="Skipped 1"):
        path = prepare(data, S, progress=False, workers=1, skip_bad=True)
    assert prepare(data, S, progress=False, workers=1, skip_bad=True) == path  # nothing changed: reused
    assert "000007.jpg" not in load_prepared(path).filenames
    bad.write_bytes(good)  # the image is fixed: the next call rebuilds without --force
    prepare(data, S, progress=False, workers=1, skip_bad=True)
    p = load_prepared(path)
    assert "000007.jpg" in p.filenames and p.meta["skipped_count"] == 0


def test_disk_space_is_checked_first(data, monkeypatch):
    usage = SimpleNamespace(total=10**9, used=10**9, free=1000)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage)
    with pytest.raises(DataError) as err:
        prepare(data, 256, progress=False)
    msg = str(err.value)
    assert "Not enough free disk space" in msg
    assert "needs 71." in msg and "MB" in msg and "only 0.0 MB is free" in msg  # 24 x 3 x 256^2 + 64 MiB
    assert "smaller size" in msg and "cache_dir=" in msg
    assert not (data / "fader_cache").exists()


def test_disk_space_message_for_full_celeba(monkeypatch):
    usage = SimpleNamespace(total=10**12, used=10**12, free=12 * 10**9)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage)
    with pytest.raises(DataError) as err:
        cache._check_disk_space(Path("/"), 202_599, 256)
    msg = str(err.value)
    assert "needs 39.9 GB (202,599 images x 3 x 256 x 256 bytes" in msg  # 39.8 GB + margin
    assert "only 12.0 GB is free" in msg and "size=128 needs 10.0 GB" in msg


def test_prepared_object(data, monkeypatch):
    monkeypatch.setenv("FADER_DATA", str(data))
    p = prepared(size=S, progress=False)
    assert p.indices("train").tolist() == list(range(16))
    assert p.indices(1).tolist() == [16, 17, 18] and p.indices("test").tolist() == list(range(19, 24))
    assert len(p.indices("all")) == 24
    with pytest.raises(DataError, match="Unknown split 'training'"):
        p.indices("training")
    rows = [5, 1, 5, 0]
    np.testing.assert_array_equal(p.read(rows), np.stack([p.images[r] for r in rows]))
    p.release_memory()
    np.testing.assert_array_equal(p.read([3]), p.images[3:4])
    assert not p.images.flags.writeable
    # pickles without the images, and reopens them
    blob = pickle.dumps(p)
    assert len(blob) < 20_000
    np.testing.assert_array_equal(pickle.loads(blob).images[7], p.images[7])
    assert "24 images" in repr(p)


def test_bad_arguments(data):
    with pytest.raises(DataError, match="crop"):
        prepare(data, S, crop=(100, 50), progress=False)
    with pytest.raises(DataError, match="positive"):
        prepare(data, 0, progress=False)


def test_skip_bad_with_every_image_bad(tmp_path):
    root = write_celeba_fixture(tmp_path, n=10, attributes=ATTRS)  # 7/1/2: no split empty (3 images leave valid empty)
    for f in (root / "img_align_celeba").iterdir():
        f.write_bytes(b"broken")
    with pytest.raises(DataError, match="None of the 10 images"):
        prepare(root, S, progress=False, skip_bad=True)
    assert os.listdir(root / "fader_cache") == []
