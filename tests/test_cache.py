"""The prepared cache: same pixels as a direct decode, atomic, reused, rebuilt, and clear errors."""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import faderlib.cache as cache
import faderlib.cache_check as cache_check
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


# --------------------------------------------------------------------------- caches that prove what they hold


def _rebuild_command(data: Path, size: int = S) -> str:
    return f"fader prepare {data} --size {size} --force"


def _overwrite(path: Path, offset: int, data: bytes, keep_mtime: bool = False) -> None:
    """Write ``data`` into ``path`` at ``offset``; the modification time moves on by a second (so
    that it differs even on a coarse clock), or stays as it was with ``keep_mtime`` (damage that no
    write recorded: a bad sector, a bit flip)."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
    mtime = st.st_mtime_ns if keep_mtime else st.st_mtime_ns + 10**9
    os.utime(path, ns=(st.st_atime_ns, mtime))


def test_damaged_images_are_refused_at_open_and_rebuilt_by_prepare(data, capsys):
    path = prepare(data, S, progress=False, workers=1)
    capsys.readouterr()
    # as in the issue: bytes overwritten inside images.npy, here with white
    _overwrite(path / "images.npy", 2000, b"\xff" * 3000)
    with pytest.raises(DataError) as err:
        load_prepared(path)
    msg = str(err.value)
    assert f"The cache {path} cannot be used" in msg and "chunks of images.npy" in msg
    assert "differ from the checksums recorded when it was built" in msg and "bytes 0..18,559" in msg
    assert _rebuild_command(data) in msg
    # the source is there: prepare() rebuilds, and says why
    assert prepare(data, S, progress=False, workers=1) == path
    out = capsys.readouterr().out
    assert f"rebuilding the cache {path}: it is damaged: 1 of the 1 checked chunks of images.npy" in out
    p = load_prepared(path)
    np.testing.assert_array_equal(p.images[2], _reference_decode(data / "img_align_celeba" / "000003.jpg", S))


def test_edited_attributes_are_caught_by_their_checksum(data, capsys):
    path = prepare(data, S, progress=False, workers=1)
    capsys.readouterr()
    table = pd.read_csv(path / "attributes.csv", index_col=0)
    table[:] = 1  # every value set to 1: all within range, only the checksum can tell
    table.to_csv(path / "attributes.csv")
    with pytest.raises(DataError) as err:
        load_prepared(path)
    msg = str(err.value)
    assert "attributes.csv differs from the checksum recorded when the cache was built" in msg
    built = fixture_tables(24, ATTRS)[0]["Eyeglasses"].sum()
    assert f"'Eyeglasses' has 24 positive of 24 now, {built} when built" in msg
    assert _rebuild_command(data) in msg
    prepare(data, S, progress=False, workers=1)
    assert "rebuilding the cache" in capsys.readouterr().out
    pd.testing.assert_frame_equal(load_prepared(path).attributes, fixture_tables(24, ATTRS)[0])


def test_replaced_source_images_rebuild_the_cache(data, capsys):
    path = prepare(data, S, progress=False, workers=1)
    capsys.readouterr()
    images = data / "img_align_celeba"
    from celeba_fixture import fixture_image
    for i in range(3, 8):  # five JPEGs replaced by other faces; the tables, the names and the count unchanged
        target = images / f"{i + 1:06d}.jpg"
        stamp = target.stat()
        fixture_image(i + 100).save(target, quality=90)
        os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    prepare(data, S, progress=False, workers=1)
    out = capsys.readouterr().out
    assert f"rebuilding the cache {path}: the source images changed" in out
    p = load_prepared(path)
    np.testing.assert_array_equal(p.images[5], _reference_decode(images / "000006.jpg", S))
    assert prepare(data, S, progress=False, workers=1) == path and capsys.readouterr().out == ""  # now up to date


def test_an_attribute_value_out_of_range_is_refused_by_name(data, capsys):
    path = prepare(data, S, progress=False, workers=1)
    capsys.readouterr()
    text = (path / "attributes.csv").read_text().splitlines()
    assert text[4].startswith("000004.jpg,")
    fields = text[4].split(",")
    fields[3] = "7"  # Smiling, the third attribute
    text[4] = ",".join(fields)
    (path / "attributes.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataError) as err:
        load_prepared(path)
    msg = str(err.value)
    assert ("attributes.csv, line 5 (image 000004.jpg): attribute 'Smiling' has the value 7, outside its range 0..1"
            in msg)
    assert _rebuild_command(data) in msg
    from faderlib.data import FaderDataset
    with pytest.raises(DataError, match="'Smiling' has the value 7"):  # what training opens
        FaderDataset(path, "train", ("Smiling",))
    # with the source at hand, prepared() (what `fader train` calls) rebuilds it and says why
    p = prepared(data, S, progress=False, workers=1)
    assert "it is damaged: attributes.csv, line 5 (image 000004.jpg): attribute 'Smiling' has the value 7" in \
        capsys.readouterr().out
    assert p.attributes["Smiling"].max() == 1


@pytest.mark.parametrize("edit, expected", [
    (np.zeros(24, np.int8), "split.npy differs from the checksum recorded when the cache was built: it puts no image "
                            "in the valid (1) and test (2) split; train/valid/test 24/0/0 now, 16/3/5 when built"),
    (np.array([0] * 3 + [5] + [0] * 12 + [1] * 3 + [2] * 5, np.int8),
     "split.npy, row 3 (image 000004.jpg): the split value 5 is not 0 (train), 1 (valid) or 2 (test)"),
])
def test_an_edited_split_is_refused_by_name(data, edit, expected):
    path = prepare(data, S, progress=False, workers=1)
    np.save(path / "split.npy", edit)
    with pytest.raises(DataError) as err:
        load_prepared(path)
    assert expected in str(err.value) and _rebuild_command(data) in str(err.value)


@pytest.mark.parametrize("missing, code", [("valid", 1), ("test", 2)])
def test_a_partition_without_valid_or_test_images_is_refused_before_decoding(tmp_path, capsys, missing, code):
    split = [0] * 16 + [1] * 3 + [2] * 5
    split = [0 if k == code else k for k in split]
    data = write_celeba_fixture(tmp_path / "celeba", n=24, attributes=ATTRS, split=split)
    with pytest.raises(DataError) as err:
        prepare(data, S, progress=False)
    msg = str(err.value)
    assert f"{data / 'list_eval_partition.txt'} puts no image in the {missing} ({code}) split" in msg
    assert "move it out of" in msg and "default 80/10/10 split" in msg
    assert not (data / "fader_cache").exists()  # refused before anything was written
    from faderlib.cli import main
    assert main(["prepare", str(data), "--size", str(S)]) == 2
    err_out = capsys.readouterr().err
    assert f"fader prepare: error: {data / 'list_eval_partition.txt'} puts no image in the {missing}" in err_out
    assert "Traceback" not in err_out


def test_an_empty_split_stops_train_evaluate_and_grid_with_a_message(tmp_path, capsys, monkeypatch):
    from faderlib.cli import main
    data = write_celeba_fixture(tmp_path / "celeba", n=24, attributes=ATTRS)
    partition = data / "list_eval_partition.txt"
    good = partition.read_text()
    run = tmp_path / "run"
    argv = ["train", "--recipe", "tiny", "--data", str(data), "--attrs", "Smiling", "--size", "32", "--steps", "2",
            "--batch-size", "4", "--eval-every", "2", "--eval-images", "2", "--device", "cpu", "--out", str(run),
            "--quiet"]
    for value, name in ((1, "valid (1)"), (2, "test (2)")):
        partition.write_text(good.replace(f" {value}\n", " 0\n"))  # no validation image, then no test image
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"fader train: error: {partition} puts no image in the {name} split" in err and "Traceback" not in err
        assert not list(run.rglob("*.pt"))  # stopped before training: no checkpoint
    # a run trained on such a data set by an earlier faderlib, which let it through: evaluate and grid say why
    with monkeypatch.context() as m:
        m.setattr(cache_check, "check_source_splits", lambda celeba: None)
        m.setattr(cache_check, "check_cache_splits", lambda path, meta, split: None)
        assert main(argv) == 0
    assert main(["evaluate", str(run)]) == 2
    assert main(["grid", str(run), "--out", str(tmp_path / "grid.png")]) == 2
    err = capsys.readouterr().err
    assert err.count(f"{partition} puts no image in the test (2) split") == 2 and "Traceback" not in err
    assert not (tmp_path / "grid.png").exists()


def test_verify_finds_damage_that_the_sampled_check_misses(data, monkeypatch, capsys):
    monkeypatch.setattr(cache_check, "CHUNK_BYTES", 1024)  # 19 chunks of the 18,560 bytes
    monkeypatch.setattr(cache_check, "SAMPLED_CHUNKS", 0)  # an open checks the first and the last only
    path = prepare(data, S, progress=False, workers=1)
    meta = json.loads((path / "meta.json").read_text())
    assert len(meta["checksums"]["images.npy"]["chunks"]) == 19
    # a chunk in the middle damaged without a write that the file system recorded (a bad sector)
    _overwrite(path / "images.npy", 9 * 1024 + 100, b"\x00" * 50, keep_mtime=True)
    load_prepared(path)  # missed: chunk 9 is not sampled
    with pytest.raises(DataError, match=r"1 of the 19 checked chunks of images\.npy .*bytes 9,216\.\.10,239, "
                                        r"image rows 11\.\.13"):
        load_prepared(path, verify=True)
    capsys.readouterr()
    from faderlib.cli import main
    assert main(["prepare", str(data), "--size", str(S), "--verify", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "it is damaged: 1 of the 19 checked chunks of images.npy" in out and f"cache ready: {path}" in out
    np.testing.assert_array_equal(load_prepared(path).images[12],
                                  _reference_decode(data / "img_align_celeba" / "000013.jpg", S))
    assert main(["prepare", str(data), "--size", str(S), "--verify"]) == 0
    assert f"verified {path}: its tables and all 19 chunks of images.npy" in capsys.readouterr().out


def test_a_modified_images_file_is_checked_whole(data, monkeypatch, capsys):
    monkeypatch.setattr(cache_check, "CHUNK_BYTES", 1024)
    monkeypatch.setattr(cache_check, "SAMPLED_CHUNKS", 0)
    path = prepare(data, S, progress=False, workers=1)
    images = path / "images.npy"
    # written to since it was built: every chunk is checked, not a sample
    _overwrite(images, 9 * 1024 + 100, b"\x00" * 50)
    with pytest.raises(DataError, match="1 of the 19 checked chunks .*the file was modified after it was built"):
        load_prepared(path)
    prepare(data, S, progress=False, workers=1)
    assert "it is damaged" in capsys.readouterr().out
    # copied, or touched, with the same bytes: checked whole once, then its new time recorded
    st = images.stat()
    os.utime(images, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert prepare(data, S, progress=False, workers=1) == path and "rebuilding" not in capsys.readouterr().out
    meta = json.loads((path / "meta.json").read_text())
    assert meta["checksums"]["images.npy"]["mtime_ns"] == images.stat().st_mtime_ns


def test_a_cache_is_checked_once_per_process_until_a_file_changes(data, monkeypatch):
    path = prepare(data, S, progress=False, workers=1)
    hashed = []
    real = cache_check._sha256_file
    monkeypatch.setattr(cache_check, "_sha256_file", lambda p: hashed.append(Path(p).name) or real(p))
    load_prepared(path)
    assert hashed == ["attributes.csv", "split.npy"]
    load_prepared(path)
    prepared(data, S, progress=False)
    assert hashed == ["attributes.csv", "split.npy"]  # not again
    st = (path / "split.npy").stat()
    os.utime(path / "split.npy", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_prepared(path)
    assert hashed == ["attributes.csv", "split.npy"] * 2


def test_a_cache_of_another_format_version_is_rebuilt_and_says_so(data, capsys):
    path = prepare(data, S, progress=False, workers=1)
    meta = json.loads((path / "meta.json").read_text())
    meta["format_version"] = 1
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError) as err:
        load_prepared(path)
    assert "it has format version 1, this faderlib reads 2" in str(err.value)
    assert _rebuild_command(data) in str(err.value)
    capsys.readouterr()
    prepare(data, S, progress=False, workers=1)
    assert f"rebuilding the cache {path}: it has format version 1, this faderlib reads 2" in capsys.readouterr().out
    assert load_prepared(path).meta["format_version"] == cache.FORMAT_VERSION == 2


# --------------------------------------------------------------------------- a full disk


def _assert_disk_full_message(msg: str, where: Path) -> None:
    assert msg.startswith("not enough disk space: need ") and " free " in msg and f"at {where};" in msg
    assert "--cache-dir" in msg and "run the same command again" in msg


@pytest.mark.parametrize("workers", [1, 2])
def test_a_disk_that_fills_while_the_workers_write_gives_a_message_and_no_cache(data, tmp_path, monkeypatch,
                                                                                 workers):
    real = cache._write_at

    def full_after_the_first_rows(fd, array, position):  # runs in the workers (forked with this patch)
        if position > 1024:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, array, position)

    monkeypatch.setattr(cache, "_write_at", full_after_the_first_rows)
    base = tmp_path / "caches"
    with pytest.raises(DataError) as err:
        prepare(data, S, progress=False, workers=workers, cache_dir=base)
    _assert_disk_full_message(str(err.value), base)
    assert os.listdir(base) == []  # no partial cache, no temporary folder
    monkeypatch.setattr(cache, "_write_at", real)
    assert load_prepared(prepare(data, S, progress=False, workers=workers, cache_dir=base)).images.shape[0] == 24


@pytest.fixture
def small_disk(tmp_path):
    """A 512 kB tmpfs (root and a kernel that lets us mount; else the test is skipped)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("preallocate", [True, False])
def test_a_real_full_disk_gives_a_message_and_no_cache(data, small_disk, monkeypatch, capsys, preallocate):
    # the check before the build passes (say, another job filled the disk meanwhile): the writes meet the full disk
    monkeypatch.setattr(cache, "_check_disk_space", lambda base, n, size: None)
    if not preallocate:  # a file system without posix_fallocate: the workers' own writes fail (no SIGBUS)
        def unsupported(fd, offset, length):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        monkeypatch.setattr(os, "posix_fallocate", unsupported)
    from faderlib.cli import main
    code = main(["prepare", str(data), "--size", "128", "--cache-dir", str(small_disk), "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "Bus error" not in err
    _assert_disk_full_message(err.split("error: ", 1)[1], small_disk)
    assert "need 68.3 MB" in err  # 24 x 3 x 128 x 128 and the 64 MiB margin
    assert [p for p in os.listdir(small_disk) if p != ".fader.lock"] == []
    assert shutil.disk_usage(small_disk).free > 500_000  # what was written is gone


def test_a_killed_worker_is_explained_without_the_main_guard_advice(data, monkeypatch):
    real = cache.decode_image
    parent = os.getpid()

    def killed_in_a_worker(path, *args, **kw):
        if os.getpid() != parent and str(path).endswith("000020.jpg"):
            os.kill(os.getpid(), 9)  # as the kernel's out-of-memory killer would
        return real(path, *args, **kw)

    monkeypatch.setattr(cache, "decode_image", killed_in_a_worker)
    with pytest.warns(RuntimeWarning) as warned:
        path = prepare(data, S, progress=False, workers=2)
    msg = str(warned[0].message)
    assert "a worker was killed (out of memory, or by a signal)" in msg and "__main__" not in msg
    p = load_prepared(path)  # the rest was decoded in this process: a whole, checked cache
    np.testing.assert_array_equal(p.images[19], _reference_decode(data / "img_align_celeba" / "000020.jpg", S))
