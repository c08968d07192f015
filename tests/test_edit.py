"""Editing any photo: modes, sizes and crops, the notes, every error, and ``fader edit``."""

import io
import shutil
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from faderlib.cli import main
from faderlib.config import ModelConfig
from faderlib.edit import EditNote, edit_image, parse_changes
from faderlib.images import crop_and_resize, decode_image, prepare_photo, read_image, to_rgb
from faderlib.models import AutoEncoder, check_changes, code_for
from faderlib.runs import Run, load_run, sample_photo


@pytest.fixture(scope="module")
def run_dir(tiny_run_dir):
    return tiny_run_dir


def _gradient(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """One file per case the issue lists."""
    d = tmp_path_factory.mktemp("photos")
    rgb = Image.fromarray(_gradient(300, 200))
    files = {}
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))))
    files["rgba"] = d / "rgba.png"
    rgba.save(files["rgba"])
    files["grey"] = d / "grey.png"
    rgb.convert("L").save(files["grey"])
    files["palette"] = d / "palette.png"
    rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(files["palette"])
    files["i16"] = d / "i16.png"
    i16 = Image.fromarray(_gradient(120, 90)[..., 0].astype("<u2") * 257)
    assert i16.mode == "I;16"
    i16.save(files["i16"])
    files["cmyk"] = d / "cmyk.jpg"
    rgb.convert("CMYK").save(files["cmyk"], quality=95)
    files["tiny"] = d / "tiny.png"
    Image.fromarray(_gradient(5, 7)).save(files["tiny"])
    files["large"] = d / "large.jpg"
    Image.fromarray(_gradient(4000, 3000)).save(files["large"], quality=80)
    files["celeba"] = d / "000001.jpg"
    Image.fromarray(_gradient(178, 218)).save(files["celeba"], quality=95)
    files["text"] = d / "notes.txt"
    files["text"].write_text("not an image")
    files["truncated"] = d / "truncated.jpg"
    files["truncated"].write_bytes(files["celeba"].read_bytes()[:400])
    return files


@pytest.mark.parametrize("kind", ["rgba", "grey", "palette", "i16", "cmyk", "tiny", "large", "celeba"])
def test_edit_takes_any_mode_and_size(run_dir, photos, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EditNote)
        out = edit_image(run_dir, photos[kind], {"Smiling": 1.5, "Eyeglasses": 1})
    assert out.mode == "RGB" and out.size == (32, 32)
    x, crop = prepare_photo(photos[kind], 32)
    assert x.shape == (1, 3, 32, 32) and -1 <= x.min() and x.max() <= 1
    assert crop == ("celeba" if kind == "celeba" else "center")


def test_edit_input_forms_agree(run_dir, photos):
    run = load_run(run_dir)
    data = photos["grey"].read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EditNote)
        by_path = edit_image(run, photos["grey"], {"Male": 1})
        by_bytes = edit_image(run, data, {"Male": 1})
        by_pil = edit_image(run, Image.open(io.BytesIO(data)), {"Male": 1})
        other = edit_image(run, data, {"Male": -1})
    assert np.array_equal(np.asarray(by_path), np.asarray(by_bytes))
    assert np.array_equal(np.asarray(by_path), np.asarray(by_pil))
    assert not np.array_equal(np.asarray(by_path), np.asarray(other))


def test_crops_match_the_training_preprocessing(photos):
    # a 178x218 aligned image: exactly what the cache holds
    x, crop = prepare_photo(photos["celeba"], 64)
    cached = decode_image(photos["celeba"], 64)
    assert crop == "celeba" and np.array_equal(((x[0] + 1) * 127.5).round().byte().numpy(), cached)
    # another photo: the centred square, then the same resize
    x, crop = prepare_photo(photos["grey"], 32)
    square = Image.open(photos["grey"]).convert("RGB").crop((50, 0, 250, 200))
    assert crop == "center" and np.array_equal(((x[0] + 1) * 127.5).round().byte().numpy(),
                                               crop_and_resize(square, 32, None))
    # forcing the CelebA crop on a photo of other proportions is an error that says what to do
    with pytest.raises(ValueError, match="crop='center'"):
        prepare_photo(photos["grey"], 32, crop="celeba")
    with pytest.raises(ValueError, match="choose one of auto, celeba, center"):
        prepare_photo(photos["grey"], 32, crop="middle")


def test_modes_become_sensible_rgb(photos):
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert np.all(np.asarray(to_rgb(clear)) == 255)  # transparent composites on white
    half = np.asarray(to_rgb(Image.new("RGBA", (2, 2), (0, 0, 0, 128))))
    assert np.all(np.abs(half.astype(int) - 127) <= 1)
    i16 = np.asarray(to_rgb(read_image(photos["i16"])))
    assert i16.dtype == np.uint8 and i16.max() == 255 and i16.min() == 0  # 16-bit scaled, not clipped
    cmyk = np.asarray(to_rgb(read_image(photos["cmyk"])))
    ref = _gradient(300, 200)
    assert np.abs(cmyk.astype(int) - ref).mean() < 10


def test_notes_say_what_to_expect(run_dir, photos):
    with pytest.warns(EditNote) as record:
        edit_image(run_dir, photos["grey"], {})
    text = " ".join(str(w.message) for w in record)
    assert "aligned like the training data" in text and "300x200" in text
    assert "synthetic cartoon faces" in text and "out of the model's domain" in text
    with pytest.warns(EditNote) as record:
        edit_image(run_dir, photos["celeba"], {})
    assert not any("aligned like" in str(w.message) for w in record)


def test_errors_name_the_value_or_file(run_dir, photos, tmp_path):
    run = load_run(run_dir)
    with pytest.raises(ValueError, match=r"notes\.txt: not an image.*JPEG or PNG"):
        edit_image(run, photos["text"], {"Smiling": 1})
    with pytest.raises(ValueError, match=r"truncated\.jpg: cannot be read"):
        edit_image(run, photos["truncated"], {"Smiling": 1})
    with pytest.raises(FileNotFoundError, match="nothere.png"):
        edit_image(run, tmp_path / "nothere.png", {"Smiling": 1})
    with pytest.raises(ValueError, match=r"unknown attribute 'Smilng'.*Smiling, Eyeglasses, Male.*'Smiling'"):
        edit_image(run, photos["grey"], {"Smilng": 1})
    with pytest.raises(ValueError, match=r"Smiling=11 is out of range"):
        edit_image(run, photos["grey"], {"Smiling": 11})
    with pytest.raises(ValueError, match="finite"):
        check_changes(run.model_config, {"Male": float("nan")})
    with pytest.raises(ValueError, match="not a number"):
        parse_changes(["Smiling=abc"])
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        parse_changes(["Smiling"])
    assert parse_changes(["Smiling=1.5", "Male=-1"]) == {"Smiling": 1.5, "Male": -1.0}


def test_categorical_values_are_integers(tmp_path):
    config = ModelConfig.from_preset("official", 32, ["Smiling", "Hair.3"])
    run = Run(tmp_path, config, {}, "", 0, AutoEncoder(config).eval())
    with pytest.raises(ValueError, match=r"Hair is categorical with 3 values: expected an integer 0..2, got 1.5"):
        edit_image(run, Image.new("RGB", (40, 40)), {"Hair": 1.5})
    with pytest.raises(ValueError, match="got 3"):
        check_changes(config, {"Hair": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EditNote)
        assert edit_image(run, Image.new("RGB", (40, 40)), {"Hair": 2, "Smiling": 2.0}).size == (32, 32)
    code = code_for(config, torch.tensor([[1, 0]]), {"Hair": 2, "Smiling": 1.5})
    assert code.tolist() == [[-0.5, 1.5, 0.0, 0.0, 1.0]]


def test_compare_and_classifier_start(run_dir, photos, synthetic_dir, tmp_path):
    from faderlib.classifier import ClassifierConfig, load_classifier, train_classifier
    from faderlib.classifier import read_attributes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EditNote)
        side = edit_image(run_dir, photos["celeba"], {"Smiling": 1}, compare=True)
    assert side.size == (2 * 32 + 2, 32)
    train_classifier(ClassifierConfig(data_dir=str(synthetic_dir), image_size=32, steps=2, device="cpu",
                                      attributes=("Male", "Smiling", "Eyeglasses", "Young")), tmp_path / "clf",
                     progress=False)
    run = load_run(run_dir)
    x, _ = prepare_photo(photos["celeba"], 32)
    y = read_attributes(tmp_path / "clf", x, run.model_config)
    clf = load_classifier(tmp_path / "clf")
    raw = clf(x).detach()
    assert y.shape == (1, 3)  # reordered to the run's attributes: Smiling, Eyeglasses, Male
    from faderlib.metrics import predict_classes

    assert y[0].tolist() == predict_classes(raw, clf.config)[0, [1, 2, 0]].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EditNote)
        assert edit_image(run, photos["celeba"], {"Smiling": 1}, classifier=tmp_path / "clf").size == (32, 32)


@pytest.mark.parametrize("kind", ["rgba", "grey", "palette", "tiny", "large"])
def test_cli_edit(run_dir, photos, tmp_path, capsys, kind):
    out = tmp_path / f"{kind}.png"
    assert main(["edit", str(run_dir), str(photos[kind]), "--set", "Smiling=1.5", "--set", "Eyeglasses=1",
                 "--out", str(out)]) == 0
    assert Image.open(out).size == (32, 32)
    printed = capsys.readouterr().out
    assert "note: " in printed and "aligned like the training data" in printed and "edited image written" in printed


def test_cli_edit_compare_and_crop(run_dir, photos, tmp_path, capsys):
    out = tmp_path / "cmp.png"
    assert main(["edit", str(run_dir), str(photos["celeba"]), "--set", "Male=2", "--compare", "--crop", "celeba",
                 "--out", str(out)]) == 0
    assert Image.open(out).size == (66, 32)


@pytest.mark.parametrize("args,message", [
    (["--set", "Smilng=1"], "unknown attribute 'Smilng'"),
    (["--set", "Smiling=abc"], "'abc' is not a number"),
    (["--set", "Smiling"], "expected NAME=VALUE"),
    (["--set", "Smiling=-12"], "out of range"),
])
def test_cli_edit_errors_are_one_line(run_dir, photos, tmp_path, capsys, args, message):
    assert main(["edit", str(run_dir), str(photos["grey"]), *args, "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("fader edit: error:")


def test_cli_edit_bad_file(run_dir, photos, tmp_path, capsys):
    out = str(tmp_path / "o.png")
    assert main(["edit", str(run_dir), str(photos["text"]), "--set", "Smiling=1", "--out", out]) == 2
    assert "notes.txt" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- the domain note
def _real_photo() -> Image.Image:
    """A real photograph of a face (Grace Hopper, shipped with matplotlib), 512x600."""
    from matplotlib import cbook

    return Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")


def test_synthetic_faces_are_told_from_photos(synthetic_dir):
    from faderlib.synth import SYNTHETIC_FACE_THRESHOLD, counterfactual, synthetic_face_score

    faces = [Image.open(p) for p in sorted((synthetic_dir / "img_align_celeba").glob("*.jpg"))[:12]]
    scores = [synthetic_face_score(f) for f in faces] + [synthetic_face_score(counterfactual(synthetic_dir, 3))]
    assert min(scores) > 2 * SYNTHETIC_FACE_THRESHOLD
    photo = _real_photo()
    windows = [photo.crop((x, y, x + 178, y + 218)) for x in range(0, 334, 111) for y in range(0, 382, 127)]
    others = [synthetic_face_score(w) for w in windows + [photo.resize((178, 218))]]
    others.append(synthetic_face_score(Image.fromarray(_gradient(178, 218))))
    others.append(synthetic_face_score(faces[0].transpose(Image.Transpose.FLIP_LEFT_RIGHT)))  # same picture, mirrored
    assert max(others) < SYNTHETIC_FACE_THRESHOLD
    assert synthetic_face_score(photo) == 0.0  # not the renderer's size: cannot be one


def test_no_domain_note_for_a_face_of_the_training_domain(run_dir, tmp_path, synthetic_dir):
    from faderlib.synth import counterfactual

    run = load_run(run_dir)
    sample = sample_photo(run, tmp_path / "sample_photo.jpg")  # notebook 04's built-in sample
    with warnings.catch_warnings():
        warnings.simplefilter("error", EditNote)  # any note fails the test
        edit_image(run, sample, {"Smiling": 1.5}, compare=True)
        edit_image(run, counterfactual(synthetic_dir, 5, {"Eyeglasses": 1}), {"Smiling": 0})  # a fresh synthetic face


def test_the_domain_note_fires_for_a_real_photo(run_dir, tmp_path):
    run = load_run(run_dir)
    photo = tmp_path / "hopper.jpg"
    _real_photo().resize((178, 218)).save(photo, quality=90)  # CelebA's size: no crop note, only the domain
    with pytest.warns(EditNote) as record:
        edit_image(run, photo, {"Smiling": 1})
    (note,) = [str(w.message) for w in record]
    assert "synthetic cartoon faces" in note and "out of the model's domain" in note


def test_no_domain_note_on_a_model_trained_on_photos(celeba_dir, tmp_path):
    from faderlib import course

    runs = course.ensure_run(tmp_path / "celeba_runs", celeba_dir, ["Smiling"], 32, 1, 4, "cpu", progress=False)
    photo = tmp_path / "hopper.jpg"
    _real_photo().resize((178, 218)).save(photo, quality=90)
    with warnings.catch_warnings():
        warnings.simplefilter("error", EditNote)
        edit_image(runs.fader, photo, {"Smiling": 1})


# ------------------------------------------------------------------------------------- the attributes not set
def _decode(run, photo, y, changes):
    """D(E(x), y') computed here, for the photo as edit_image prepares it."""
    from faderlib.images import to_pil

    x, _ = prepare_photo(photo, run.model_config.image_size)
    ae = run.autoencoder.eval()
    index = {run.model_config.attribute_names.index(k): v for k, v in changes.items()}
    with torch.no_grad():
        return np.asarray(to_pil(ae.decoder(ae.encode(x), code_for(run.model_config, y, index))[0]))


@pytest.fixture
def notes(monkeypatch):
    """A fresh record of the notes edit_image printed (each is printed once per process)."""
    import faderlib.edit

    monkeypatch.setattr(faderlib.edit, "PRINTED_NOTES", set())


@pytest.fixture(scope="module")
def course_reading_ones(course_dir, tmp_path_factory):
    """A copy of the course folder whose classifier reads every attribute as present, whatever the
    image (its last layer rewritten), so that its reading cannot be mistaken for zeros."""
    import faderlib.checkpoint as ckpt

    root = tmp_path_factory.mktemp("ones") / "runs"
    shutil.copytree(course_dir.fader.parent, root)
    state = ckpt.load(root / "classifier" / "classifier.pt")
    weights = state["classifier"]
    last = max(k for k in weights if k.startswith("proj.") and k.endswith(".weight"))
    weights[last].zero_()
    bias = weights[last.replace("weight", "bias")]
    bias.copy_(torch.tensor([-50.0, 50.0]).repeat(len(bias) // 2))  # every pair: class 1
    ckpt.atomic_save(state, root / "classifier" / "classifier.pt")
    return root


def test_an_edit_keeps_what_the_runs_classifier_reads(course_reading_ones, tmp_path, capsys, notes):
    """notebook 04's edit of the sample photo: the attributes not set come from the classifier kept
    with the run (classifier="auto", as the slider app), and a note says which one."""
    run = load_run(course_reading_ones / "fader")
    photo = sample_photo(run, tmp_path / "sample_photo.jpg")
    ones, zeros = torch.ones(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long)
    assert not np.array_equal(_decode(run, photo, ones, {"Smiling": 1.5}), _decode(run, photo, zeros, {"Smiling": 1.5}))

    edited = edit_image(run, photo, {"Smiling": 1.5})
    assert np.array_equal(np.asarray(edited), _decode(run, photo, ones, {"Smiling": 1.5}))
    out = capsys.readouterr().out
    assert (f"note: the attributes not set keep what the attribute classifier in {course_reading_ones / 'classifier'} "
            "reads from the photo: Smiling 1, Eyeglasses 1, Male 1") in out
    edit_image(run, photo, {"Male": 0})  # the same note is not printed again
    assert capsys.readouterr().out == ""

    # classifier=None: the old behaviour, every attribute not set at 0, and nothing to say
    edited = edit_image(run, photo, {"Smiling": 1.5}, classifier=None)
    assert np.array_equal(np.asarray(edited), _decode(run, photo, zeros, {"Smiling": 1.5}))
    assert capsys.readouterr().out == ""
    # a folder given by name is used, and named (the same note as above: printed again once forgotten)
    import faderlib.edit

    faderlib.edit.PRINTED_NOTES.clear()
    edit_image(course_reading_ones / "fader", photo, {"Smiling": 0}, classifier=course_reading_ones / "classifier")
    assert f"classifier in {course_reading_ones / 'classifier'} reads" in capsys.readouterr().out


def test_an_edit_without_a_classifier_says_the_others_are_0(run_dir, tmp_path, capsys, notes):
    run = load_run(run_dir)
    photo = sample_photo(run, tmp_path / "sample_photo.jpg")
    edited = edit_image(run, photo, {"Eyeglasses": 1})
    zeros = torch.zeros(1, 3, dtype=torch.long)
    assert np.array_equal(np.asarray(edited), _decode(run, photo, zeros, {"Eyeglasses": 1}))
    out = capsys.readouterr().out
    assert "note: no attribute classifier of Smiling, Eyeglasses, Male was found with the run" in out
    assert "the attributes not set (Smiling, Male) are 0" in out and str(run_dir) in out
    assert "classifier=FOLDER" in out


def test_an_edit_that_sets_every_attribute_reads_nothing(course_reading_ones, tmp_path, capsys, notes):
    run = load_run(course_reading_ones / "fader")
    photo = sample_photo(run, tmp_path / "sample_photo.jpg")
    changes = {"Smiling": 1.5, "Eyeglasses": 0, "Male": 1}
    edited = edit_image(run, photo, changes)
    assert capsys.readouterr().out == ""
    assert np.array_equal(np.asarray(edited), _decode(run, photo, torch.zeros(1, 3, dtype=torch.long), changes))


def test_a_classifier_of_another_kind_is_refused(run_dir, photos):
    with pytest.raises(TypeError, match=r"classifier=3: give 'auto'.*a folder.*or None"):
        edit_image(run_dir, photos["celeba"], {"Smiling": 1}, classifier=3)
