"""Tests of faderlib.synth.dataset and .drawing: CelebA's file format, determinism, counterfactuals, folders.

The samplers (attribute names, frequencies, splits) are tested in test_synth_sampling.py."""

import re

import numpy as np
import pytest
from PIL import Image

from faderlib import synth
from faderlib.celeba_facts import IMAGE_HEIGHT, IMAGE_WIDTH
from faderlib.synth import dataset

N = 40
SEED = 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One small synthetic set shared by the read-only tests."""
    return synth.generate(tmp_path_factory.mktemp("synth") / "set", n=N, seed=SEED,
                          workers=1, progress=False)


def read_bytes(folder):
    """Every file of a data set, by relative path: for byte-for-byte comparisons."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- the files, in CelebA's exact format ----------------------------------------------


def test_attribute_file_format(data_dir):
    text = (data_dir / "list_attr_celeba.txt").read_text()
    lines = text.split("\n")
    assert lines[0] == str(N)
    assert lines[1] == " ".join(synth.ATTRIBUTES) + " "          # trailing space, as CelebA
    rows = lines[2:-1]
    assert lines[-1] == "" and len(rows) == N
    k = len(synth.ATTRIBUTES)
    pattern = re.compile(r"\d{6}\.jpg(?: -1|  1){%d}" % k)          # right-aligned, width 3
    for i, row in enumerate(rows):
        assert pattern.fullmatch(row), row
        assert row.startswith(f"{i + 1:06d}.jpg")
    truth = synth.load_ground_truth(data_dir)
    for row, attributes in zip(rows, truth.attributes):
        values = [int(v) for v in row.split()[1:]]
        assert values == [2 * attributes[a] - 1 for a in synth.ATTRIBUTES]


def test_images_are_celeba_sized_jpegs(data_dir):
    files = sorted((data_dir / "img_align_celeba").iterdir())
    assert [f.name for f in files] == [f"{i:06d}.jpg" for i in range(1, N + 1)]
    for f in files[:5]:
        with Image.open(f) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (IMAGE_WIDTH, IMAGE_HEIGHT))


def test_partition_file(data_dir):
    lines = (data_dir / "list_eval_partition.txt").read_text().splitlines()
    assert len(lines) == N
    names, parts = zip(*(line.split(" ") for line in lines))
    assert list(names) == [f"{i:06d}.jpg" for i in range(1, N + 1)]
    parts = [int(p) for p in parts]
    assert parts == sorted(parts)                                      # contiguous, train first
    assert tuple(parts.count(k) for k in range(3)) == synth.split_sizes(N)


def test_ground_truth_holds_the_drawn_faces(data_dir):
    truth = synth.load_ground_truth(data_dir)
    assert (truth.seed, truth.n, truth.version) == (SEED, N, synth.FORMAT_VERSION)
    assert truth.filenames[0] == "000001.jpg" and len(truth.identities) == N
    for i in (0, 17, N - 1):
        assert (truth.identities[i], truth.attributes[i]) == synth.face_params(SEED, i)


# ---- determinism ----------------------------------------------------------------------


def test_same_seed_same_bytes_whatever_the_workers(tmp_path, data_dir):
    two_workers = synth.generate(tmp_path / "a", n=N, seed=SEED, workers=2, progress=False)
    assert read_bytes(two_workers) == read_bytes(data_dir)


def test_other_seed_other_faces(tmp_path, data_dir):
    other = synth.generate(tmp_path / "b", n=N, seed=SEED + 1, workers=1, progress=False)
    assert (other / "list_attr_celeba.txt").read_bytes() != (data_dir / "list_attr_celeba.txt").read_bytes()
    first = [(d / "img_align_celeba/000001.jpg").read_bytes() for d in (other, data_dir)]
    assert first[0] != first[1]


def test_render_is_pure():
    identity, attributes = synth.face_params(0, 5)
    a, b = synth.render(identity, attributes), synth.render(dict(identity), dict(attributes))
    assert (a.mode, a.size) == ("RGB", (IMAGE_WIDTH, IMAGE_HEIGHT))
    assert np.array_equal(np.asarray(a), np.asarray(b))


# ---- counterfactuals ------------------------------------------------------------------


def as_array(image):
    return np.asarray(image, dtype=np.float32)


def test_counterfactual_without_change_is_the_saved_face(data_dir):
    truth = synth.load_ground_truth(data_dir)
    for i in (0, 7, N - 1):
        name = f"{i + 1:06d}.jpg"
        again = as_array(synth.counterfactual(data_dir, name, {}))
        assert np.array_equal(again, as_array(synth.render(truth.identities[i], truth.attributes[i])))
        assert np.array_equal(again, as_array(synth.counterfactual(data_dir, i)))
        with Image.open(data_dir / "img_align_celeba" / name) as jpeg:
            assert np.abs(again - as_array(jpeg)).mean() < 4.0


def changed_rows(data_dir, i, name):
    """Share of the pixel change caused by flipping ``name``, per image row."""
    truth = synth.load_ground_truth(data_dir)
    before = as_array(synth.counterfactual(data_dir, i))
    after = as_array(synth.counterfactual(data_dir, i, {name: 1 - truth.attributes[i][name]}))
    per_row = np.abs(after - before).sum(axis=(1, 2))
    assert per_row.sum() > 0
    return per_row / per_row.sum()


@pytest.mark.parametrize("i", range(6))
def test_eyeglasses_change_the_eyes(data_dir, i):
    assert changed_rows(data_dir, i, "Eyeglasses")[88:134].sum() > 0.9   # eye line: row ~110


@pytest.mark.parametrize("i", range(6))
def test_smiling_changes_the_mouth(data_dir, i):
    assert changed_rows(data_dir, i, "Smiling")[130:180].sum() > 0.9     # mouth: row ~154


def test_hair_colours_exclude_each_other(data_dir):
    truth = synth.load_ground_truth(data_dir)
    i = next(k for k, a in enumerate(truth.attributes) if a["Black_Hair"])
    blond = synth.counterfactual(data_dir, i, {"Blond_Hair": 1})
    expected = synth.render(truth.identities[i], {**truth.attributes[i], "Black_Hair": 0, "Blond_Hair": 1})
    assert np.array_equal(as_array(blond), as_array(expected))


def test_in_between_values_give_in_between_faces(data_dir):
    faces = [as_array(synth.counterfactual(data_dir, 2, {"Eyeglasses": v})) for v in (0, 0.5, 1)]
    middle = (faces[0] + faces[2]) / 2
    assert np.abs(faces[1] - middle).mean() < 0.25 * np.abs(faces[2] - faces[0]).mean()


def test_unknown_attribute_names_the_closest(data_dir):
    with pytest.raises(ValueError) as err:
        synth.counterfactual(data_dir, 0, {"smilling": 1})
    message = str(err.value)
    assert "'smilling'" in message and "Did you mean 'Smiling'?" in message
    assert all(name in message for name in synth.ATTRIBUTES)
    with pytest.raises(ValueError, match="CelebA attribute, but the synthetic faces do not draw it"):
        synth.counterfactual(data_dir, 0, {"Bald": 1})
    with pytest.raises(ValueError, match="Did you mean 'Eyeglasses'"):
        synth.render(*synth.face_params(0, 0)[:1], {"Eyeglass": 1})


def test_bad_face_references(data_dir):
    with pytest.raises(IndexError, match=f"holds {N} faces"):
        synth.counterfactual(data_dir, f"{N + 1:06d}.jpg")
    with pytest.raises(IndexError):
        synth.counterfactual(data_dir, -1)
    with pytest.raises(ValueError, match="000042.jpg"):
        synth.counterfactual(data_dir, "face.png")


# ---- folders: refusing, reusing, recovering --------------------------------------------


def test_refuses_a_folder_with_foreign_files(tmp_path):
    (tmp_path / "thesis.txt").write_text("mine")
    with pytest.raises(FileExistsError) as err:
        synth.generate(tmp_path, n=5, progress=False)
    assert str(tmp_path) in str(err.value) and "thesis.txt" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.txt"]
    assert not synth.is_synthetic(tmp_path)
    with pytest.raises(FileExistsError):
        synth.ensure_synthetic(tmp_path, n=5, progress=False)
    with pytest.raises(NotADirectoryError):
        synth.generate(tmp_path / "thesis.txt", n=5, progress=False)


def test_reuse_and_mismatch(tmp_path):
    folder = tmp_path / "faces"
    assert not synth.is_synthetic(folder)
    synth.ensure_synthetic(folder, n=6, seed=1, progress=False)
    assert synth.is_synthetic(folder)
    first = folder / "img_align_celeba" / "000001.jpg"
    stamp = first.stat().st_mtime_ns
    assert synth.ensure_synthetic(folder, n=6, seed=1, progress=False) == folder
    assert synth.generate(folder, n=6, seed=1, progress=False) == folder
    assert first.stat().st_mtime_ns == stamp                           # reused, not redrawn
    with pytest.raises(FileExistsError, match=r"n=6, seed=1.*n=8, seed=1"):
        synth.ensure_synthetic(folder, n=8, seed=1, progress=False)
    assert synth.is_synthetic(folder) and first.exists()               # nothing deleted


def test_regenerating_over_an_older_synthetic_set_replaces_it(tmp_path):
    synth.generate(tmp_path, n=8, seed=0, workers=1, progress=False)
    (tmp_path / "notes.md").write_text("kept")
    with pytest.raises(FileExistsError, match=r"n=8, seed=0.*n=5, seed=0 was asked for.*--force"):
        synth.generate(tmp_path, n=5, seed=0, workers=1, progress=False)  # not without being asked
    assert len(list((tmp_path / "img_align_celeba").iterdir())) == 8
    synth.generate(tmp_path, n=5, seed=0, workers=1, progress=False, force=True)
    assert len(list((tmp_path / "img_align_celeba").iterdir())) == 5
    assert (tmp_path / "list_attr_celeba.txt").read_text().split("\n")[0] == "5"
    assert (tmp_path / "notes.md").read_text() == "kept"


def test_an_interrupted_run_is_not_complete_and_is_redone(tmp_path, monkeypatch):
    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset, "_write_ground_truth_csv", crash)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(tmp_path, n=5, workers=1, progress=False)
    assert (tmp_path / "img_align_celeba" / "000005.jpg").exists()
    assert not synth.is_synthetic(tmp_path)
    with pytest.raises(FileNotFoundError, match="generate"):
        synth.load_ground_truth(tmp_path)
    monkeypatch.undo()
    synth.ensure_synthetic(tmp_path, n=5, seed=0, progress=False)
    assert synth.is_synthetic(tmp_path)
    assert synth.load_ground_truth(tmp_path).n == 5


def test_two_writers_into_one_folder_never_mix_their_faces(tmp_path):
    """A second `fader synth` into a folder being drawn waits for the first, then refuses its other
    seed: every face on disk is the first one's (they once mixed 1,315 of 2,000 faces)."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    folder = tmp_path / "faces"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    draw = "from faderlib import synth; synth.generate({!r}, n=300, seed={}, workers=1, progress=False)"
    first = subprocess.Popen([sys.executable, "-c", draw.format(str(folder), 1)], env=env)
    deadline = time.time() + 60
    while not (folder / "synth_faces.json").exists() and time.time() < deadline:  # the first is drawing
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-c", draw.format(str(folder), 2)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert first.wait(timeout=300) == 0
    assert second.returncode != 0
    assert "waiting for" in second.stdout and "seed=1" in second.stderr and "seed=2" in second.stderr
    reference = synth.generate(tmp_path / "alone", n=300, seed=1, workers=1, progress=False)
    assert read_bytes(folder) == read_bytes(reference)
