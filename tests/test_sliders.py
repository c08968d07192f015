"""The slider app, driven headlessly (``throttle=False``: each move decodes in the callback),
and the fast decoder behind it, checked against the plain decoder."""

import datetime
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from faderlib.config import ModelConfig
from faderlib.devices import torch_threads
from faderlib.fastdecoder import FastDecoder
from faderlib.images import to_uint8
from faderlib.models import AutoEncoder, code_for
from faderlib.runs import Run, load_run
from faderlib.sliders import SliderApp, encode_image


@pytest.fixture(scope="module")
def run_dir(tiny_run_dir):
    return tiny_run_dir


@pytest.fixture
def app(run_dir):
    a = SliderApp.from_run_dir(run_dir, throttle=False)
    assert not a.errors, a.errors
    yield a
    a.close()


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _upload(app, content: bytes, name: str) -> None:
    """What the browser does when a file is chosen in the FileUpload widget."""
    app.upload.value = ({"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
                         "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


def _random_bn(ae: AutoEncoder, seed: int = 0) -> AutoEncoder:
    """BatchNorm statistics far from (0, 1), so that folding them is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in ae.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 2 + 0.3)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return ae.eval()


# --------------------------------------------------------------------------- FastDecoder


@pytest.mark.parametrize("preset,size,attrs", [("official", 32, ["Smiling"]),
                                               ("official", 64, ["Smiling", "Eyeglasses", "Male"]),
                                               ("paper", 64, ["Smiling", "Hair.3"]),
                                               ("official", 128, ["Male", "Eyeglasses"])])
def test_fast_decoder_equals_the_decoder(preset, size, attrs):
    torch.manual_seed(0)
    config = ModelConfig.from_preset(preset, size, attrs)
    ae = _random_bn(AutoEncoder(config))
    fast = FastDecoder(ae.decoder)
    assert fast.fast and [layer.kind for layer in fast.layers][-1] == "gemm"
    x = torch.rand(3, 3, size, size) * 2 - 1
    y = torch.stack([torch.randint(0, a.n_values, (3,)) for a in config.attributes], 1)
    with torch.no_grad():
        z = ae.encode(x)
        latent = fast.prepare(z)
        for changes in ({}, {0: 2.0}, {0: -1.0}, {0: 7.5}):
            code = code_for(config, y, changes)
            expected = ae.decoder(z, code)
            assert torch.allclose(fast.decode(latent, code), expected, atol=1e-5, rtol=0)
            # batch 1 (the sliders' case) runs another path (addmm)
            assert torch.allclose(fast.decode(fast.prepare(z[1:2]), code[1:2]), expected[1:2], atol=1e-5, rtol=0)


@pytest.mark.parametrize("overrides", [{"instance_norm": True}, {"upsampling": "upsampling"},
                                       {"upsampling": "pixelshuffle"}])
def test_fast_decoder_falls_back_to_the_decoder_when_it_cannot_fold(overrides):
    config = ModelConfig.from_preset("official", 32, ["Smiling"], **overrides)
    ae = AutoEncoder(config).eval()
    fast = FastDecoder(ae.decoder)
    assert not fast.fast
    z = ae.encode(torch.rand(1, 3, 32, 32))
    code = code_for(config, torch.tensor([[1]]), {0: 1.5})
    assert torch.equal(fast.decode(z, code), ae.decoder(z, code))


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_encode_image_formats():
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert encode_image(pixels, "jpeg")[:3] == b"\xff\xd8\xff"
    png = encode_image(pixels, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and np.array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)
    with pytest.raises(ValueError, match="jpeg"):
        encode_image(pixels, "gif")


# --------------------------------------------------------------------------------- app


def test_app_builds_one_slider_per_attribute_starting_at_the_true_values(app):
    import ipywidgets as w

    assert list(app.sliders) == ["Smiling", "Eyeglasses", "Male"]
    y = app.dataset[0][1]
    for j, s in enumerate(app.sliders.values()):
        assert isinstance(s, w.FloatSlider) and s.continuous_update
        assert (s.min, s.max, s.step) == (-1.0, 2.0, 0.05)
        assert s.value == float(y[j])
    assert app.encode_count == 1
    for image in (app.original, app.reconstruction, app.edited):
        assert isinstance(image, w.Image) and image.value[:3] == b"\xff\xd8\xff"
    assert app.edited.value == app.reconstruction.value  # at the true values, edit = reconstruction
    assert "ms" in app.readout.value
    assert isinstance(app.widget, w.Box)
    bundle = app._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == app.widget.model_id


def test_a_slider_move_changes_the_picture_and_moving_back_restores_it(app):
    before = app.edited.value
    app.sliders["Smiling"].value = 2.0
    moved = app.edited.value
    assert moved != before
    app.sliders["Eyeglasses"].value = -1.0
    assert app.edited.value not in (before, moved)
    app.sliders["Eyeglasses"].value = float(app.dataset[0][1][1])
    assert app.edited.value == moved
    assert app.encode_count == 1  # moves only decode
    assert app.decode_count >= 3 and not app.errors


def test_the_picture_is_the_decoder_at_the_slider_values(app):

    app.sliders["Male"].value = 1.5
    x, y = app.dataset[0]
    with torch.no_grad():
        z = app.ae.encode(x[None])
        expected = to_uint8(app.ae.decoder(z, code_for(app.config, y, app.values()))[0])
    shown = np.asarray(Image.open(io.BytesIO(encode_image(expected, app.image_format))))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(app.edited.value))), shown)


def test_choosing_another_image_encodes_once(app):
    app.index.value = 3  # what typing in the box does
    assert app.encode_count == 2
    assert app.sliders["Male"].value == float(app.dataset[3][1][2])
    for v in (0.5, 1.0, 1.5):
        app.sliders["Smiling"].value = v
    assert app.encode_count == 2
    app.select(5)
    assert app.encode_count == 3 and app.index.value == 5
    app.random_button.click()
    assert app.encode_count == 4 and not app.errors


def test_reset_restores_the_true_values(app):
    truth = app.values()
    original_bytes = app.edited.value
    app.sliders["Smiling"].value = -0.75
    app.sliders["Male"].value = 1.8
    app.reset_button.click()
    assert app.values() == truth
    assert app.edited.value == original_bytes


def test_errors_land_in_the_output_widget(app, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(app.fast, "decode", broken)
    app.sliders["Smiling"].value = 1.7  # must not raise
    assert isinstance(app.errors[-1], RuntimeError)
    text = "".join(o.get("text", "") for o in app.output.outputs)
    assert "decoder exploded" in text and "Traceback" in text  # an unexpected error keeps its traceback

    monkeypatch.undo()
    app.select(10**6)  # out of range: a clear message, no traceback
    assert "out of range" in app.output.outputs[-1]["text"] and "Traceback" not in app.output.outputs[-1]["text"]


def test_uploads_png_rgba_and_bad_files(app, tmp_path):
    rgba = Image.new("RGBA", (90, 70), (200, 30, 30, 128))
    _upload(app, _png(rgba), "face.png")
    assert app.encode_count == 2 and not app.errors
    assert app.values() == {"Smiling": 0.0, "Eyeglasses": 0.0, "Male": 0.0}  # uploads start at 0
    assert "face.png" in app.source.value and "centre-cropped" in app.notes.value
    assert "synthetic" in app.notes.value
    assert app.upload.value == ()  # cleared, so the same file can come again
    before = app.edited.value
    app.sliders["Eyeglasses"].value = 1.0
    assert app.edited.value != before

    _upload(app, b"this is not an image", "notes.txt")
    assert app.encode_count == 2  # the shown image is kept
    assert "notes.txt" in app.output.outputs[-1]["text"] and "JPEG or PNG" in app.output.outputs[-1]["text"]

    jpeg = tmp_path / "face.jpg"
    Image.new("RGB", (178, 218), (90, 120, 200)).save(jpeg)
    app.load_image(jpeg)  # a path works too; 178x218 takes the CelebA crop, without a note on alignment
    assert app.encode_count == 3 and "centre-cropped" not in app.notes.value


def test_categorical_attribute_gets_a_dropdown(tmp_path):
    import ipywidgets as w

    config = ModelConfig.from_preset("official", 32, ["Smiling", "Hair.3"])
    run = Run(tmp_path, config, {}, "", 0, AutoEncoder(config).eval())
    app = SliderApp(run, throttle=False, index=None)
    assert isinstance(app.sliders["Hair"], w.Dropdown) and app.sliders["Hair"].options == (("0", 0), ("1", 1), ("2", 2))
    app.load_image(Image.new("RGB", (40, 40), "green"))
    before = app.edited.value
    app.sliders["Hair"].value = 2
    assert app.edited.value != before and not app.errors


def test_throttle_merges_fast_moves_and_shows_the_latest(run_dir):
    """The worker thread: moves made during a decode are merged; the last values win."""
    app = SliderApp.from_run_dir(run_dir, throttle=True)
    assert app.wait(10)
    decode = app.fast.decode

    def slow(*args):
        time.sleep(0.05)
        return decode(*args)

    app.fast.decode = slow
    start = app.decode_count
    values = [round(-1 + 0.1 * k, 2) for k in range(25)]
    for v in values:
        app.sliders["Smiling"].value = v
    assert app.wait(10)
    assert 1 <= app.decode_count - start < len(values) and app.coalesced_count > 0
    assert app.values()["Smiling"] == values[-1]
    shown = app.edited.value
    sync = SliderApp.from_run_dir(run_dir, throttle=False)
    sync.sliders["Smiling"].value = values[-1]
    assert sync.edited.value == shown  # the picture is that of the latest values
    # an error in the worker thread is shown, not lost
    app.fast.decode = lambda *a: 1 / 0
    app.sliders["Smiling"].value = 0.25
    assert app.wait(10)
    assert "ZeroDivisionError" in app.output.outputs[-1]["text"]
    app.close()
    sync.close()


def test_missing_data_set_is_reported_and_uploads_still_work(run_dir, tmp_path):
    run = load_run(run_dir)
    run.data_dir = str(tmp_path / "gone")
    app = SliderApp(run, throttle=False)
    assert app.errors and "upload a photo instead" in app.output.outputs[-1]["text"]
    app.load_image(_png(Image.new("L", (50, 50), 128)))
    assert app.encode_count == 1 and app.edited.value


def test_slider_move_is_fast(app):
    """A loose bound (the benchmark measures properly): a 32 px move is well under 50 ms."""
    s, times = app.sliders["Smiling"], []
    for k in range(20):
        t = time.perf_counter()
        s.value = round(0.05 * k, 2)
        times.append(time.perf_counter() - t)
    assert sorted(times)[10] < 0.05


# --------------------------------------------------------------------------- a photo's starting values
def _rigged_classifier(folder, names=("Smiling", "Eyeglasses", "Male"), reads=(1, 0, 1)):
    """A classifier (in train_classifier's format) that reads ``reads`` from any image."""
    import json

    from faderlib import checkpoint as ckpt
    from faderlib.models import AttributeClassifier

    config = ModelConfig.from_preset("official", 32, list(names))
    clf = AttributeClassifier(config)
    last = clf.proj[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([[-10.0, 10.0] if r else [10.0, -10.0] for r in reads]).flatten())
    folder.mkdir(parents=True)
    ckpt.atomic_save({"format_version": 1, "model_config": config.to_dict(), "classifier": clf.state_dict()},
                     folder / "classifier.pt")
    (folder / "config.json").write_text(json.dumps({"model": config.to_dict()}))
    return folder


def _course(tmp_path, run_dir, layout: str):
    """The run in a course folder (RUN_DIR/fader beside RUN_DIR/classifier) or alone (<run>_classifier)."""
    if layout == "course":
        (tmp_path / "course").mkdir()
        (tmp_path / "course" / "fader").symlink_to(run_dir, target_is_directory=True)
        return tmp_path / "course" / "fader", tmp_path / "course" / "classifier"
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "run").symlink_to(run_dir, target_is_directory=True)
    return tmp_path / "alone" / "run", tmp_path / "alone" / "run_classifier"


@pytest.mark.parametrize("layout", ["course", "alone"])
def test_a_photo_starts_at_what_the_runs_classifier_reads(run_dir, tmp_path, layout):
    fader, classifier = _course(tmp_path, run_dir, layout)
    _rigged_classifier(classifier)
    app = SliderApp.from_run_dir(fader, throttle=False, index=None)
    app.load_image(_png(Image.new("RGB", (60, 60), (120, 90, 60))), name="me.png")
    assert not app.errors, app.errors
    assert app.values() == {"Smiling": 1.0, "Eyeglasses": 0.0, "Male": 1.0}
    assert "reads from the photo: Smiling 1, Eyeglasses 0, Male 1" in app.notes.value
    assert str(classifier) in app.notes.value
    # the reconstruction is the decoder at those values, as for a test image at its true values
    assert app.edited.value == app.reconstruction.value
    app.close()


def test_a_photo_starts_at_0_and_says_why_without_a_classifier(run_dir, tmp_path):
    fader, classifier = _course(tmp_path, run_dir, "course")
    app = SliderApp.from_run_dir(fader, throttle=False, index=None)
    app.load_image(_png(Image.new("RGB", (60, 60), (120, 90, 60))))
    assert app.values() == {"Smiling": 0.0, "Eyeglasses": 0.0, "Male": 0.0}
    assert "no attribute classifier" in app.notes.value and "was found" in app.notes.value
    assert str(classifier) in app.notes.value and "every slider starts at 0" in app.notes.value
    # a classifier of other attributes is not used
    _rigged_classifier(classifier, names=("Smiling", "Young"), reads=(1, 1))
    app.load_image(_png(Image.new("RGB", (60, 60), (120, 90, 60))))
    assert app.values()["Smiling"] == 0.0 and "was found" in app.notes.value
    app.close()
    # classifier=None: at 0 even with one at hand, and said so
    _rigged_classifier(tmp_path / "course" / "classifier2")
    app = SliderApp.from_run_dir(fader, throttle=False, index=None, classifier=None)
    app.load_image(_png(Image.new("RGB", (60, 60), (120, 90, 60))))
    assert app.values()["Male"] == 0.0 and "classifier=None" in app.notes.value
    app.close()
    # a classifier given by folder
    app = SliderApp.from_run_dir(fader, throttle=False, index=None, classifier=tmp_path / "course" / "classifier2")
    app.load_image(_png(Image.new("RGB", (60, 60), (120, 90, 60))))
    assert app.values()["Male"] == 1.0 and "classifier2" in app.notes.value
    app.close()
    with pytest.raises(TypeError, match="classifier=3"):
        SliderApp.from_run_dir(fader, throttle=False, index=None, classifier=3)


def test_the_photo_app_on_the_sample_has_no_domain_note(run_dir, tmp_path):
    from faderlib.runs import sample_photo

    app = SliderApp.from_run_dir(run_dir, throttle=False)
    app.load_image(sample_photo(app.run, tmp_path / "sample_photo.jpg"))
    assert not app.errors and "synthetic" not in app.notes.value and "centre-cropped" not in app.notes.value
    app.close()
