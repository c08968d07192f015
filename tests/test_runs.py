"""A run and its folder (faderlib.runs): a sample photo; a folder or checkpoint of another format
is refused (the training side: tests/test_train.py)."""

from PIL import Image

from faderlib import runs as runs_module
from faderlib.runs import load_run


def test_sample_photo_copies_an_original_file(course_dir, tmp_path):
    run = load_run(course_dir.fader)
    path = runs_module.sample_photo(run, tmp_path / "photos" / "me.jpg", index=1)
    with Image.open(path) as im:
        assert im.size == (178, 218)
