"""CelebA readers: both layouts, real quirks, and a clear error for every bad input."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import faderlib
from celeba_fixture import fixture_tables, write_celeba_fixture
from faderlib.celeba import default_data_dir, read_celeba, resolve_data_dir
from faderlib.celeba_facts import CELEBA_ATTRIBUTES
from faderlib.errors import DataError

SUBSET = ("Bald", "Eyeglasses", "Male", "Smiling", "Young")


def _write(tmp_path, **kw) -> Path:
    kw.setdefault("images", False)
    return write_celeba_fixture(tmp_path / kw.get("layout", "original"), **kw)


def _replace_line(path: Path, lineno: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = new
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("layout", ["original", "kaggle"])
def test_reads_what_was_written(tmp_path, layout):
    celeba = read_celeba(_write(tmp_path, layout=layout))
    table, split = fixture_tables(24)
    pd.testing.assert_frame_equal(celeba.attributes, table)
    pd.testing.assert_series_equal(celeba.split, split)
    assert celeba.layout == layout
    assert celeba.split_source == "file"
    assert celeba.names == list(CELEBA_ATTRIBUTES)
    assert all(dtype == np.int8 for dtype in celeba.attributes.dtypes)
    assert celeba.split.dtype == np.int8
    assert len(celeba) == 24 and celeba.filenames[0] == "000001.jpg"


def test_fixture_has_the_real_quirks(tmp_path):
    text = (_write(tmp_path) / "list_attr_celeba.txt").read_text().splitlines()
    assert text[0] == "24"
    assert text[1].endswith("Young ")  # trailing space on the name line
    assert " -1  1" in text[2] or "  1 -1" in text[2]  # one or two spaces between values
    assert text[6].startswith("000005.jpg   ")  # extra spaces after some file names


def test_both_layouts_parse_to_the_same_tables(tmp_path):
    a = read_celeba(write_celeba_fixture(tmp_path / "a", layout="original", seed=3))
    b = read_celeba(write_celeba_fixture(tmp_path / "b", layout="kaggle", seed=3))
    pd.testing.assert_frame_equal(a.attributes, b.attributes)
    pd.testing.assert_series_equal(a.split, b.split)
    assert b.image_dir == tmp_path / "b" / "img_align_celeba" / "img_align_celeba"
    assert a.image_dir == tmp_path / "a" / "img_align_celeba"
    assert a.image_path("000003.jpg").is_file() and b.image_path("000003.jpg").is_file()


def test_kaggle_images_not_nested(tmp_path):
    celeba = read_celeba(write_celeba_fixture(tmp_path, layout="kaggle", nested=False, n=4))
    assert celeba.image_dir == tmp_path / "img_align_celeba"
    assert celeba.image_path("000001.jpg").is_file()


def test_subset_of_attributes_and_file_order(tmp_path):
    celeba = read_celeba(_write(tmp_path, attributes=SUBSET[::-1], n=10))
    assert celeba.names == list(SUBSET[::-1])  # header order, never sorted


def test_crlf_and_blank_lines(tmp_path):
    root = _write(tmp_path, n=6)
    path = root / "list_attr_celeba.txt"
    expected = read_celeba(root).attributes
    lines = path.read_text().splitlines()
    path.write_bytes(("\r\n".join(lines[:4] + [""] + lines[4:]) + "\r\n\r\n").encode())
    pd.testing.assert_frame_equal(read_celeba(root).attributes, expected)


@pytest.mark.parametrize("layout", ["original", "kaggle"])
def test_zero_one_and_categorical_values(tmp_path, layout):
    values = np.array([[0, 1, 2], [1, 0, 0], [0, 0, 1], [1, 1, 2]])
    celeba = read_celeba(_write(tmp_path, layout=layout, n=4, attributes=("A", "B", "Hair"),
                                values=values))
    np.testing.assert_array_equal(celeba.attributes.to_numpy(), values)
    # the same data written as 0/1 instead of -1/1
    path = next(p for p in (tmp_path / layout).iterdir() if p.name.startswith("list_attr"))
    text = path.read_text().replace("-1", "0")
    path.write_text(text)
    np.testing.assert_array_equal(read_celeba(tmp_path / layout).attributes.to_numpy(), values)


def test_missing_partition_gives_default_split_and_warning(tmp_path):
    root = _write(tmp_path, n=20, partition=False)
    with pytest.warns(UserWarning, match="80 % train"):
        celeba = read_celeba(root)
    assert celeba.split_source == "default 80/10/10"
    assert celeba.split.tolist() == [0] * 16 + [1] * 2 + [2] * 2
    assert celeba.split.dtype == np.int8


def test_anno_and_eval_subfolders(tmp_path):
    root = _write(tmp_path, n=5)
    (root / "Anno").mkdir()
    (root / "Eval").mkdir()
    (root / "list_attr_celeba.txt").rename(root / "Anno" / "list_attr_celeba.txt")
    (root / "list_eval_partition.txt").rename(root / "Eval" / "list_eval_partition.txt")
    assert read_celeba(root).split_source == "file"


# --------------------------------------------------------------------------- data folder


def test_resolve_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("FADER_DATA", raising=False)
    assert resolve_data_dir(tmp_path) == tmp_path
    assert resolve_data_dir(str(tmp_path)) == tmp_path
    monkeypatch.setenv("FADER_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    monkeypatch.delenv("FADER_DATA")
    assert resolve_data_dir() == default_data_dir()
    project = Path(faderlib.__file__).resolve().parent.parent
    assert default_data_dir() == project / "data" / "synthetic"


# --------------------------------------------------------------------------- errors


def test_missing_folder_explains_how_to_get_celeba(tmp_path):
    with pytest.raises(DataError) as err:
        read_celeba(tmp_path / "nowhere")
    msg = str(err.value)
    for needle in ("nowhere", "does not exist", "img_align_celeba", "list_attr_celeba.txt",
                   "mmlab.ie.cuhk.edu.hk/projects/CelebA.html", "img_align_celeba.zip",
                   "list_eval_partition.txt", "jessicali9530/celeba-dataset", "fader synth",
                   "FADER_DATA"):
        assert needle in msg, needle


def test_missing_files_are_listed_exactly(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(DataError) as err:
        read_celeba(tmp_path)
    missing = str(err.value).split("Missing:")[1].split("How to get")[0]
    assert "list_attr_celeba.txt" in missing and "img_align_celeba/" not in missing
    (tmp_path / "img_align_celeba").rmdir()
    (tmp_path / "list_attr_celeba.csv").write_text("image_id,Smiling\n000001.jpg,1\n")
    with pytest.raises(DataError) as err:
        read_celeba(tmp_path)
    missing = str(err.value).split("Missing:")[1].split("How to get")[0]
    assert "img_align_celeba" in missing and "list_attr_celeba" not in missing


def test_wrong_value_count_names_file_and_line(tmp_path):
    root = _write(tmp_path, n=8, attributes=SUBSET)
    path = root / "list_attr_celeba.txt"
    _replace_line(path, 6, "000004.jpg  1 -1  1 -1")  # 4 values, 5 expected
    with pytest.raises(DataError, match=r"list_attr_celeba\.txt, line 6: expected 5 values.*found 4"):
        read_celeba(root)
    _replace_line(path, 6, "000004.jpg  1 -1  1 -1  1  1")  # 6 values
    with pytest.raises(DataError, match=r"list_attr_celeba\.txt, line 6: expected 6 fields.*found 7"):
        read_celeba(root)


def test_wrong_value_count_kaggle(tmp_path):
    root = _write(tmp_path, n=8, attributes=SUBSET, layout="kaggle")
    path = root / "list_attr_celeba.csv"
    _replace_line(path, 4, "000003.jpg,1,-1,1,-1")
    with pytest.raises(DataError, match=r"list_attr_celeba\.csv, line 4: expected 5 values.*found 4"):
        read_celeba(root)
    _replace_line(path, 4, "000003.jpg,1,-1,1,-1,1,1")
    with pytest.raises(DataError, match=r"list_attr_celeba\.csv, line 4: expected 6 fields.*found 7"):
        read_celeba(root)


@pytest.mark.parametrize("layout", ["original", "kaggle"])
def test_bad_value_names_line_value_and_attribute(tmp_path, layout):
    root = _write(tmp_path, n=8, attributes=SUBSET, layout=layout)
    suffix = "txt" if layout == "original" else "csv"
    path = root / f"list_attr_celeba.{suffix}"
    lineno = 7 if layout == "original" else 6  # image 000005.jpg
    sep = " " if layout == "original" else ","
    _replace_line(path, lineno, sep.join(["000005.jpg", "1", "-1", "yes", "1", "-1"]))
    with pytest.raises(DataError) as err:
        read_celeba(root)
    msg = str(err.value)
    assert f"list_attr_celeba.{suffix}, line {lineno}" in msg
    assert "'yes'" in msg and "'Male'" in msg and "-1, 0, 1" in msg


def test_minus_one_mixed_with_other_values(tmp_path):
    root = _write(tmp_path, n=8, attributes=SUBSET)
    path = root / "list_attr_celeba.txt"
    _replace_line(path, 9, "000007.jpg 1 -1 2 1 -1")
    with pytest.raises(DataError, match=r"line 9: attribute 'Male' mixes -1 with 2"):
        read_celeba(root)


def test_header_count_must_match_rows(tmp_path):
    root = _write(tmp_path, n=8, attributes=SUBSET)
    path = root / "list_attr_celeba.txt"
    _replace_line(path, 1, "9")
    with pytest.raises(DataError, match=r"line 1 says there are 9 images, but the file has 8 rows"):
        read_celeba(root)
    _replace_line(path, 1, "Smiling")
    with pytest.raises(DataError, match=r"line 1: expected the number of images"):
        read_celeba(root)


@pytest.mark.parametrize("layout", ["original", "kaggle"])
def test_duplicate_file_names(tmp_path, layout):
    root = _write(tmp_path, n=8, attributes=SUBSET, layout=layout)
    path = next(root.glob("list_attr_celeba.*"))
    first = 3 if layout == "original" else 2
    text = path.read_text().replace("000006.jpg", "000002.jpg")
    path.write_text(text)
    with pytest.raises(DataError) as err:
        read_celeba(root)
    msg = str(err.value)
    assert path.name in msg and "'000002.jpg' appears more than once" in msg
    assert f"lines {first + 1}, {first + 5}" in msg


def test_partition_with_unknown_files(tmp_path):
    root = _write(tmp_path, n=8, attributes=SUBSET)
    path = root / "list_eval_partition.txt"
    path.write_text(path.read_text() + "000099.jpg 2\n")
    with pytest.raises(DataError) as err:
        read_celeba(root)
    msg = str(err.value)
    assert "list_eval_partition.txt" in msg and "'000099.jpg' at line 9" in msg
    assert "not in the attribute file" in msg


def test_partition_value_out_of_range(tmp_path):
    root = _write(tmp_path, n=8, attributes=SUBSET, layout="kaggle")
    path = root / "list_eval_partition.csv"
    _replace_line(path, 5, "000004.jpg,3")
    with pytest.raises(DataError, match=r"list_eval_partition\.csv, line 5: partition value 3 is not "
                                        r"0 \(train\), 1 \(valid\) or 2 \(test\)"):
        read_celeba(root)


def test_partition_missing_images(tmp_path):
    root = _write(tmp_path, n=8, attributes=SUBSET)
    path = root / "list_eval_partition.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-2]))
    with pytest.raises(DataError, match=r"2 image\(s\) of the attribute file have no partition, first "
                                        r"'000007.jpg'"):
        read_celeba(root)


def test_reading_is_quiet_with_a_partition(tmp_path):
    root = _write(tmp_path, n=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_celeba(root)
    assert re.search(r"24|4 images", repr(read_celeba(root)))


def test_partition_line_with_extra_field(tmp_path):
    root = _write(tmp_path, n=8, attributes=SUBSET)
    _replace_line(root / "list_eval_partition.txt", 3, "000003.jpg 0 1")
    with pytest.raises(DataError, match=r"list_eval_partition\.txt, line 3: expected 2 fields \(the file "
                                        r"name and its partition 0/1/2\), found 3"):
        read_celeba(root)
