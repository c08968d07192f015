"""Run folders that keep working when copied (a teacher handing runs/demo to a class): a run records
where its data is relative to itself and what identifies it, and finds it again in the new place;
resuming the copy reads the moved data; and with no data anywhere, the error says where it looked
and what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faderlib import run_data as run_data_module
from faderlib import runs as runs_module
from faderlib.errors import TrainingError
from faderlib.run_data import RunDataNotFoundError, resolve_run_data
from faderlib.runs import load_run, run_record
from faderlib.synth import generate
from faderlib.train import Trainer
from train_fixture import tiny

SETTINGS = dict(steps=6, checkpoint_every=3, eval_every=3, log_every=3, eval_images=8)


@pytest.fixture(autouse=True)
def _no_kit_data(tmp_path, monkeypatch):
    """Each test has its own "kit data folder" (data/synthetic of a checkout) and no FADER_DATA."""
    monkeypatch.delenv("FADER_DATA", raising=False)
    monkeypatch.setattr(run_data_module, "default_data_dir", lambda: tmp_path / "kit" / "data" / "synthetic")


@pytest.fixture(scope="module")
def moved(synthetic_dir, tmp_path_factory):
    """A checkout A with its data (data/faces) and a tiny run (runs/demo/fader), copied whole to a
    checkout B; A then renamed, so that the absolute paths the run recorded exist no more. Read-only."""
    base = tmp_path_factory.mktemp("portable")
    a, b = base / "a", base / "b"
    shutil.copytree(synthetic_dir, a / "data" / "faces", ignore=shutil.ignore_patterns("fader_cache", ".*"))
    run = a / "runs" / "demo" / "fader"
    Trainer(tiny(a / "data" / "faces", **SETTINGS), run, progress=False).train()
    record = json.loads((run / "config.json").read_text())
    shutil.copytree(a, b)  # the cache travels too (copytree keeps the files' times: it stays valid)
    a.rename(base / "a_gone")
    return {"old": a, "new": b, "run": b / "runs" / "demo" / "fader", "record": record}


def _copy_run(moved, dest: Path, with_data: bool = True) -> Path:
    """A writable copy of checkout B (or of its run folder alone, in the same place)."""
    if with_data:
        shutil.copytree(moved["new"], dest)
    else:
        shutil.copytree(moved["run"], dest / "runs" / "demo" / "fader")
    return dest / "runs" / "demo" / "fader"


# ------------------------------------------------------------------------------------- what a run records
def test_a_run_records_its_data_relative_to_itself_and_what_it_is(moved):
    record = moved["record"]
    assert record["data_root"] == str((moved["old"] / "data" / "faces").resolve())
    assert record["train"]["data_dir"] == str(moved["old"] / "data" / "faces")
    assert record["data_relative"] == "../../../data/faces"
    identity = record["data_identity"]
    assert identity["name"] == "faces" and identity["synthetic"] == {"version": 1, "n": 400, "seed": 0}
    assert identity["attribute_file"]["name"] == "list_attr_celeba.txt" and len(identity["attribute_file"]["sha1"]) == 40
    assert identity["partition_file"]["name"] == "list_eval_partition.txt"


def test_data_far_from_the_run_is_not_recorded_relative(tmp_path):
    data = generate(tmp_path / "x" / "y" / "z" / "w" / "faces", n=60, seed=1, progress=False)
    far = run_data_module.data_location(data, tmp_path / "q" / "r" / "s" / "t" / "u" / "run")
    assert far["data_relative"] is None and far["data_identity"]["synthetic"]["n"] == 60
    near = run_data_module.data_location(data, tmp_path / "x" / "y" / "runs" / "run")
    assert near["data_relative"] == "../../z/w/faces"


# ------------------------------------------------------------------------------------- a copied run reads the copied data
def test_a_copied_run_reads_the_copied_data(moved):
    assert not moved["old"].exists()
    new_data = (moved["new"] / "data" / "faces").resolve()
    run = load_run(moved["run"])
    assert Path(run.data_dir) == new_data and run.data_problem is None
    test = run.dataset("test")
    assert test.prepared.path.is_relative_to(new_data) and test.prepared.root == new_data
    assert len(test) == json.loads((new_data / "synth_faces.json").read_text())["split_sizes"][2]
    x, y = run.images(2)
    assert x.shape == (2, 3, 32, 32)
    record = run_record(moved["run"])  # what the course reads to train companions on the same data
    assert record["data_root"] == str(new_data) and record["recorded_data_root"] == moved["record"]["data_root"]


def test_a_copied_run_evaluates_and_gives_sample_photos_from_the_copy(moved, tmp_path):
    from faderlib.evaluate import evaluate

    result = evaluate(moved["run"], max_images=8, counterfactual_images=2, probe_images=0)
    assert result["test_images"] == 8
    assert set(result["counterfactual_psnr"]) == {"Male", "Smiling"}  # the ground truth of the moved faces
    run = load_run(moved["run"])
    test = run.dataset("test")
    assert test.prepared.meta["image_dir"].startswith(str(moved["old"]))  # the cache came along, unchanged
    name = test.prepared.filenames[test.rows[1]]
    photo = runs_module.sample_photo(run, tmp_path / "me.jpg", index=1)
    assert photo.read_bytes() == (moved["new"] / "data" / "faces" / "img_align_celeba" / name).read_bytes()


def test_the_data_is_found_by_name_in_the_kits_data_folder_or_fader_data(moved, tmp_path, monkeypatch):
    run = _copy_run(moved, tmp_path / "c", with_data=False)  # the run folder alone
    kit_data = tmp_path / "kit" / "data" / "faces"
    shutil.copytree(moved["new"] / "data" / "faces", kit_data, ignore=shutil.ignore_patterns("fader_cache"))
    assert resolve_run_data(run) == kit_data
    elsewhere = tmp_path / "mine" / "celeb_faces"
    elsewhere.parent.mkdir()
    kit_data.rename(elsewhere)
    monkeypatch.setenv("FADER_DATA", str(elsewhere))  # another name: FADER_DATA points at it
    assert resolve_run_data(run) == elsewhere
    assert Path(load_run(run).data_dir) == elsewhere


def test_a_data_set_of_the_same_name_but_other_faces_is_not_taken(moved, tmp_path):
    run = _copy_run(moved, tmp_path / "c", with_data=False)
    other = generate(tmp_path / "kit" / "data" / "faces", n=60, seed=0, progress=False)  # other faces, same name
    with pytest.raises(RunDataNotFoundError, match=r"kit/data/faces: holds another data set"):
        resolve_run_data(run)
    with pytest.warns(UserWarning, match="not the data set the run .* was trained on"):
        assert Path(load_run(run, data_dir=other).data_dir) == other  # named by hand: taken, with a warning


def test_with_no_data_anywhere_the_error_says_where_it_looked_and_what_to_do(moved, tmp_path):
    run = _copy_run(moved, tmp_path / "c", with_data=False)
    loaded = load_run(run)  # still loads: photos of your own can be edited
    with pytest.raises(RunDataNotFoundError) as caught:
        loaded.dataset("test", otherwise="upload a photo")
    text = str(caught.value)
    assert str(run) in text and moved["record"]["data_root"] in text  # the run folder and what it recorded
    assert f"{moved['record']['data_root']}: does not exist" in text
    assert f"{(run / '../../../data/faces').resolve()}: does not exist" in text  # beside the run
    assert f"{tmp_path / 'kit' / 'data' / 'faces'}: does not exist" in text  # by name in the kit's data folder
    assert "FADER_DATA=" in text and "data_dir=" in text and "--data DIR" in text
    assert f"fader synth {tmp_path / 'kit' / 'data' / 'faces'} --n 400 --seed 0" in text
    assert "upload a photo" in text
    assert isinstance(caught.value, FileNotFoundError)


def test_fader_synth_as_the_error_says_draws_the_very_same_data(moved, tmp_path):
    run = _copy_run(moved, tmp_path / "c", with_data=False)
    generate(tmp_path / "kit" / "data" / "faces", n=400, seed=0, progress=False)  # what the error advises
    assert resolve_run_data(run) == tmp_path / "kit" / "data" / "faces"


def test_a_run_folder_of_an_earlier_version_finds_data_of_its_name_with_a_warning(moved, tmp_path):
    run = _copy_run(moved, tmp_path / "c", with_data=False)
    record = json.loads((run / "config.json").read_text())
    for key in ("data_relative", "data_identity"):
        del record[key]
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(RunDataNotFoundError, match="does not exist"):
        resolve_run_data(run)
    shutil.copytree(moved["new"] / "data" / "faces", tmp_path / "kit" / "data" / "faces")
    with pytest.warns(UserWarning, match="cannot be checked"):
        assert resolve_run_data(run) == tmp_path / "kit" / "data" / "faces"


# ------------------------------------------------------------------------------------- resuming a copied run
def _train_steps(run: Path) -> list[int]:
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines() if r.strip()]
    return [r["step"] for r in rows if r["phase"] == "train"]


def test_resuming_a_copied_run_reads_the_moved_data_and_continues(moved, tmp_path):
    run = _copy_run(moved, tmp_path / "c")
    data = tmp_path / "c" / "data" / "faces"
    config = tiny(data, **{**SETTINGS, "steps": 9})
    # a checkpoint saved before the move names the old folder: it is still this run's
    best = Trainer(config, run, progress=False, resume_from="best.pt")
    assert best.step in (3, 6)
    best.close()
    trainer = Trainer(config, run, progress=False)
    assert trainer.step == 6  # resumed from the copied checkpoint, not started again
    trainer.train()
    trainer.close()
    assert _train_steps(run) == [3, 6, 9]
    record = json.loads((run / "config.json").read_text())
    assert record["data_root"] == str(data.resolve()) and record["train"]["data_dir"] == str(data)
    assert record["same_data_dirs"] == [moved["record"]["train"]["data_dir"]]  # where it read it before


def test_resuming_a_copied_run_on_other_data_is_refused(moved, tmp_path):
    run = _copy_run(moved, tmp_path / "c")
    other = generate(tmp_path / "c" / "data" / "other", n=400, seed=1, progress=False)
    with pytest.raises(TrainingError, match=r"differs in: data_dir: it was trained on .*holds another data set"):
        Trainer(tiny(other, **SETTINGS), run, progress=False)
    assert json.loads((run / "config.json").read_text())["data_root"] == moved["record"]["data_root"]  # unchanged
