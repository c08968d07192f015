"""The notebooks' start-up glue (faderlib.course): the environment check, then the data, a run
and its classifier, each made once and reused."""

import json

import pytest
import torch

from faderlib import course
from faderlib.course import CourseRuns
from faderlib.errors import DataError
from faderlib.runs import load_run
from faderlib.synth import is_synthetic

ATTRS = ("Smiling", "Eyeglasses", "Male")


def test_environment_check_reports_ok_fail_and_the_device():
    report = course.environment_check()
    assert report.ok
    text = str(report)
    assert text.count("[  OK]") == len(course.REQUIREMENTS) + 1  # python and every package
    assert "torch" in text and "device: cpu" in text  # conftest hides any GPU
    import sys

    assert sys.executable in text  # the kernel's interpreter: the first thing to check when imports fail

    bad = course.environment_check([("json", "no-such-distribution-xyz", "1.0"), ("numpy", "numpy", "999.0")])
    assert not bad.ok
    lines = str(bad).splitlines()
    assert lines[1].startswith("[FAIL] no-such-distribution-xyz is not installed") and "pip install" in lines[1]
    assert lines[2].startswith("[FAIL] numpy") and ">=999.0" in lines[2]
    assert "make install" in str(bad)


def test_ensure_data_uses_a_synthetic_set_as_it_is(synthetic_dir):
    assert course.ensure_data(synthetic_dir) == synthetic_dir.resolve()


def test_ensure_data_draws_the_default_set_once(tmp_path, monkeypatch, capsys):
    import faderlib.celeba

    monkeypatch.delenv("FADER_DATA", raising=False)
    monkeypatch.setattr(faderlib.celeba, "default_data_dir", lambda: tmp_path / "data" / "synthetic")
    path = course.ensure_data(None, n_faces=12, progress=False)
    assert path == (tmp_path / "data" / "synthetic").resolve() and is_synthetic(path)
    assert "drawing 12 synthetic faces" in capsys.readouterr().out
    assert course.ensure_data(None, n_faces=12, progress=False) == path
    assert capsys.readouterr().out == ""


def test_ensure_data_accepts_celeba_and_explains_a_missing_folder(celeba_dir, tmp_path):
    assert course.ensure_data(celeba_dir) == celeba_dir.resolve()
    with pytest.raises(DataError, match="How to get CelebA"):
        course.ensure_data(tmp_path / "nothing_here")


def test_ensure_run_trains_once_then_reuses(course_dir, capsys):
    state = torch.load(course_dir.fader / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 6 and state["train_config"]["balance"] == "Eyeglasses"
    before = (course_dir.fader / "checkpoints" / "last.pt").stat().st_mtime_ns
    again = course.ensure_run(course_dir.fader.parent, None, ATTRS, 32, 6, 4, "cpu", progress=False)
    assert again.fader == course_dir.fader and "trained in" in capsys.readouterr().out
    assert (course_dir.fader / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_ensure_classifier_reuses_and_refuses_a_mismatch(course_dir, tmp_path):
    assert course.ensure_classifier(course_dir) == course_dir.classifier
    record = json.loads((course_dir.classifier / "config.json").read_text())
    assert record["model"]["image_size"] == 32 and record["train"]["steps"] == 6
    other = CourseRuns(course_dir.fader, tmp_path / "clf", tmp_path / "a", tmp_path / "b", tmp_path / "c", "test")
    (tmp_path / "clf").mkdir()
    (tmp_path / "clf" / "classifier.pt").write_bytes(b"")
    (tmp_path / "clf" / "config.json").write_text(json.dumps({"model": {"image_size": 64, "attributes": ["Male"]}}))
    with pytest.raises(FileExistsError, match="delete"):
        course.ensure_classifier(other)


def test_train_variant_changes_only_what_is_asked(course_dir, tmp_path):
    out = course.train_variant(course_dir.fader, tmp_path / "lambda0", progress=False, lambda_e=0.0)
    a = json.loads((course_dir.fader / "config.json").read_text())["train"]
    b = json.loads((out / "config.json").read_text())["train"]
    assert b["lambda_e"] == 0.0
    assert {k for k in a if a[k] != b[k]} <= {"lambda_e", "data_dir"}
    assert load_run(out).step == a["steps"]
    mtime = (out / "checkpoints" / "last.pt").stat().st_mtime_ns
    course.train_variant(course_dir.fader, out, progress=False, lambda_e=0.0)  # done already: nothing to train
    assert (out / "checkpoints" / "last.pt").stat().st_mtime_ns == mtime


# ------------------------------------------------------------------------------------- the course's folder of runs
def test_course_layout_for_a_course_folder_and_a_run_folder(course_dir, tmp_path):
    runs = course.course_runs(tmp_path / "course")
    assert (runs.fader.name, runs.classifier.name, runs.ablation.name, runs.unbalanced.name,
            runs.other_adversary.name) == ("fader", "classifier", "ablation_lambda0", "unbalanced", "other_adversary")
    bare = course.course_runs(course_dir.fader)  # a run made by `fader train --out`
    assert bare.fader == course_dir.fader and bare.classifier == course_dir.fader.with_name("fader_classifier")


def test_find_run_prefers_run_dir_then_the_demo(course_dir, tmp_path):
    assert course.find_run(tmp_path / "empty") is None
    demo_root = course_dir.fader.parent
    found = course.find_run(tmp_path / "mine", demo_dir=demo_root)
    assert found.fader == course_dir.fader and "demo" in found.source
    assert found.classifier == course_dir.classifier  # the demo's classifier exists: reuse it
    assert found.unbalanced == tmp_path / "mine" / "unbalanced"  # new runs go to RUN_DIR, not the demo
    assert found.other_adversary == tmp_path / "mine" / "other_adversary"  # the demo has none
    assert course.find_run(demo_root, demo_dir=tmp_path / "elsewhere").fader == course_dir.fader
