"""Run folders (faderlib.runs): the course's layout, finding a run, its speed, a sample photo."""

from PIL import Image

from faderlib import runs as runs_module
from faderlib.runs import load_run


def test_course_layout_for_a_course_folder_and_a_run_folder(course_dir, tmp_path):
    runs = runs_module.course_runs(tmp_path / "course")
    assert (runs.fader.name, runs.classifier.name, runs.ablation.name, runs.unbalanced.name) == \
        ("fader", "classifier", "ablation_lambda0", "unbalanced")
    bare = runs_module.course_runs(course_dir.fader)  # a run made by `fader train --out`
    assert bare.fader == course_dir.fader and bare.classifier == course_dir.fader.with_name("fader_classifier")


def test_find_run_prefers_run_dir_then_the_demo(course_dir, tmp_path):
    assert runs_module.find_run(tmp_path / "empty") is None
    demo_root = course_dir.fader.parent
    found = runs_module.find_run(tmp_path / "mine", demo_dir=demo_root)
    assert found.fader == course_dir.fader and "demo" in found.source
    assert found.classifier == course_dir.classifier  # the demo's classifier exists: reuse it
    assert found.unbalanced == tmp_path / "mine" / "unbalanced"  # new runs go to RUN_DIR, not the demo
    assert runs_module.find_run(demo_root, demo_dir=tmp_path / "elsewhere").fader == course_dir.fader


def test_speed_report_reads_the_log(course_dir):
    text = runs_module.speed_report(course_dir.fader)
    assert "images/s" in text and "epoch of 50,000 images" in text


def test_sample_photo_copies_an_original_file(course_dir, tmp_path):
    run = load_run(course_dir.fader)
    path = runs_module.sample_photo(run, tmp_path / "photos" / "me.jpg", index=1)
    with Image.open(path) as im:
        assert im.size == (178, 218)
