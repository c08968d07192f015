"""Pictures of faces on screen: every face the kit shows in a notebook or the slider app is at
least 256 px, enlarged by repeating pixels (never smoothed), labelled; saved files keep the
native pixels. And the check of executed notebooks (tests/face_outputs.py) catches a face shown
small."""

import base64
import io

import nbformat
import numpy as np
import pytest
import torch
from PIL import Image

from face_outputs import FACE_PX, face_output_problems
from faderlib import analysis, plots
from faderlib.cache import prepared
from faderlib.celeba import read_celeba
from faderlib.edit import EditNote, edit_image
from faderlib.interpolate import LINE, interpolation_grid, interpolation_grid_2d
from faderlib.runs import load_run, sample_photo
from faderlib.sliders import FACE_CLASS, SliderApp
from faderlib.visual import FaceFigure, Picture, display_scale, edit_grid, tile, write

PAD = 2
ATTRS = ["Smiling", "Eyeglasses", "Male"]


def shown(picture: Picture) -> tuple[np.ndarray, dict]:
    """What Jupyter gets from a Picture: the PNG's pixels and the output's metadata."""
    data, meta = picture._repr_png_()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), meta


def ink(a: np.ndarray) -> bool:
    return bool((a.min(axis=-1) < 100).any())


# ------------------------------------------------------------------------------------- the scale
def test_display_scale_is_the_smallest_whole_factor_reaching_256_px():
    assert [display_scale(s) for s in (32, 64, 100, 128, 256, 512)] == [8, 4, 3, 2, 1, 1]
    assert display_scale(64, 300) == 5
    with pytest.raises(ValueError, match="at least 1 pixel"):
        display_scale(0)


# ------------------------------------------------------------------------------------- Picture
def test_a_grid_saves_its_own_pixels_and_shows_them_repeated(tiny_run_dir, tmp_path):
    grid = interpolation_grid(tiny_run_dir, attribute="Smiling", alphas=(0, 1, 2), n=2, scale=1)
    assert isinstance(grid, Picture) and isinstance(grid.image, Image.Image)
    native = np.asarray(grid)
    assert grid.size == (5 * (32 + PAD) + PAD, 2 * LINE + 2 * (32 + PAD) + PAD)  # unchanged
    grid.save(tmp_path / "g.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "g.png")), native)  # saved: the native pixels

    big, meta = shown(grid)
    k = 8  # 32 px faces, shown at 256
    assert big.shape == (native.shape[0] * k, native.shape[1] * k, 3)
    assert meta == {"width": big.shape[1], "height": big.shape[0], "unconfined": True, "face_px": 256}
    for row in range(2):
        for col in range(5):
            y, x = 2 * LINE + PAD + row * (32 + PAD), PAD + col * (32 + PAD)
            face = native[y:y + 32, x:x + 32]
            block = big[y * k:(y + 32) * k, x * k:(x + 32) * k]
            # nearest neighbour: each pixel a k x k square of its own colour, nothing smoothed
            assert np.array_equal(block, face.repeat(k, 0).repeat(k, 1))
    # the labels are typeset again at the larger size, not blown up: sharp, and present
    band = big[LINE * k:2 * LINE * k]
    assert ink(band) and not np.array_equal(band, native[LINE:2 * LINE].repeat(k, 0).repeat(k, 1))
    assert not hasattr(grid, "_repr_jpeg_")  # one PNG only


def test_jupyter_gets_one_png_with_the_display_size(tiny_run_dir):
    from IPython.core.formatters import DisplayFormatter

    grid = interpolation_grid_2d(tiny_run_dir, "Smiling", "Male", (0, 1), (0, 1), scale=1)
    data, meta = DisplayFormatter().format(grid)
    assert set(data) == {"image/png", "text/plain"}
    assert meta["image/png"]["face_px"] == 256 and meta["image/png"]["unconfined"] is True
    assert Image.open(io.BytesIO(data["image/png"])).size == (meta["image/png"]["width"], meta["image/png"]["height"])


def test_64_px_faces_are_shown_4_times_larger():
    cells = [[np.full((3, 64, 64), v, np.uint8) for v in (0, 90, 180)]]
    grid = tile(cells)
    assert grid.face_px == 64 and grid.display_scale == 4
    big, meta = shown(grid)
    assert meta["face_px"] == 256 and big.shape[1] == grid.width * 4


def test_a_picture_stays_a_picture_through_copy_and_pickle():
    import copy
    import pickle

    grid = tile([[np.zeros((3, 32, 32), np.uint8)]], top=LINE)
    write(grid, "label", (0, 0, grid.width, LINE))
    for other in (copy.deepcopy(grid), pickle.loads(pickle.dumps(grid))):
        assert isinstance(other, Picture) and other.face_px == 32 and len(other.labels) == 1
        assert np.array_equal(shown(other)[0], shown(grid)[0])
    assert type(grid.convert("L")) is Image.Image  # a derived image is a plain one, at its own size
    with pytest.raises(TypeError, match="PIL image"):
        Picture(np.zeros((4, 4, 3), np.uint8))


def test_the_compare_strip_is_captioned_on_screen_and_saved_bare(tiny_run_dir, synthetic_dir, tmp_path):
    photo = sample_photo(load_run(tiny_run_dir), tmp_path / "sample.jpg")
    strip = edit_image(tiny_run_dir, photo, {"Smiling": 1.5}, compare=True)
    assert strip.size == (2 * 32 + 2, 32)  # the saved strip: the two faces, nothing else
    strip.save(tmp_path / "strip.png")
    assert Image.open(tmp_path / "strip.png").size == (66, 32)
    big, meta = shown(strip)
    k = 8
    assert meta["face_px"] == 256 and big.shape == ((2 * LINE + 32) * k, 66 * k, 3)
    assert ink(big[:LINE * k])                           # the change, on top
    assert ink(big[LINE * k:2 * LINE * k, :32 * k])      # "input"
    assert ink(big[LINE * k:2 * LINE * k, 34 * k:])      # "edited"
    assert [c[0] for c in strip.captions] == ["Smiling = 1.5", "input", "edited"]
    assert np.array_equal(big[2 * LINE * k::k, ::k], np.asarray(strip))  # below the captions: the strip


def test_a_single_edit_is_shown_at_256_px(tiny_run_dir, tmp_path):
    photo = sample_photo(load_run(tiny_run_dir), tmp_path / "sample.jpg")
    edited = edit_image(tiny_run_dir, photo, {"Male": 1})
    assert edited.size == (32, 32) and shown(edited)[1]["face_px"] == 256


def test_edit_grid_captions_its_columns_on_screen(tiny_run_dir):
    run = load_run(tiny_run_dir)
    x, y = run.images(2)
    grid = edit_grid(run.autoencoder, x, y)
    assert grid.size == (5 * (32 + PAD) + PAD, 2 * (32 + PAD) + PAD)  # saved samples unchanged
    assert [c[0] for c in grid.captions] == ["original", "reconstr.", "Smiling changed", "Eyeglasses changed",
                                             "Male changed"]
    big, meta = shown(grid)
    assert meta["face_px"] == 256 and ink(big[:LINE * 8])


# ------------------------------------------------------------------------------------- figures of faces
def _figures(synthetic_dir, course_dir):
    run = load_run(course_dir.fader)
    data = prepared(synthetic_dir, 32, progress=False)
    celeba = read_celeba(synthetic_dir)
    grid = interpolation_grid(run, attribute="Smiling", n=2)
    with pytest.warns(EditNote):  # not a synthetic face: a plain image
        grey = Image.new("RGB", (40, 40), "grey")
        edits = {f"Smiling = {a}": edit_image(run, grey, {"Smiling": a}) for a in (0, 1, 2)}
    return {
        "sample_grid": analysis.sample_grid(data, ATTRS, n=6),
        "sample_grid n=2": analysis.sample_grid(data, ATTRS, n=2),
        "crop_figure": analysis.crop_figure(celeba.image_path(celeba.filenames[0]), sizes=(64, 32)),
        "toggle_figure": analysis.toggle_figure(synthetic_dir, 0, ATTRS, size=32),
        "counterfactual_figure": plots.counterfactual_figure(run, "Smiling", n=2),
        "failure_figure": plots.failure_figure(run, course_dir.classifier, "Eyeglasses", target=1, n=3, max_images=20),
        "side_by_side grids": plots.side_by_side({"a": grid, "b": grid}),
        "side_by_side edits": plots.side_by_side(edits, width=2.2),
    }


def test_every_figure_of_faces_shows_them_at_256_px_at_its_dpi(synthetic_dir, course_dir):
    for name, fig in _figures(synthetic_dir, course_dir).items():
        assert isinstance(fig, FaceFigure), name
        assert fig.face_axes, f"{name}: no face recorded"
        px = fig.face_px()  # at the figure's own dpi, without the display's safety net
        assert px >= FACE_PX, f"{name}: faces of {px:.0f} px at {fig.dpi} dpi"
        for ax, _, _ in fig.face_axes:
            assert [im.get_interpolation() for im in ax.images] == ["nearest"], name
        data, meta = fig.display_png()
        assert meta["face_px"] >= FACE_PX and meta["unconfined"] is True, name
        assert Image.open(io.BytesIO(data)).size == (meta["width"], meta["height"]), name


def test_side_by_side_puts_wide_grids_under_each_other_and_checks_its_arguments(tiny_run_dir):
    grid = interpolation_grid(tiny_run_dir, n=2)
    fig = plots.side_by_side({"a": grid, "b": grid})
    (a, b) = fig.axes
    assert a.get_position().y0 > b.get_position().y1 - 1e-6  # one under the other: 2 x 7 faces is too wide
    assert len(plots.side_by_side({"a": grid, "b": grid}, columns=2).axes) == 2
    with pytest.raises(ValueError, match="at least one image"):
        plots.side_by_side({})
    with pytest.raises(ValueError, match="at least 1 panel"):
        plots.side_by_side({"a": grid}, columns=0)


def test_a_figure_too_small_for_its_faces_is_drawn_larger_on_screen():
    fig = FaceFigure(figsize=(2, 2))
    fig.show_face(fig.add_subplot(), np.zeros((32, 32, 3), np.uint8), "tiny")
    assert fig.face_px() < FACE_PX  # 2 inches at 100 dpi: too small ...
    data, meta = fig.display_png()
    assert meta["face_px"] >= FACE_PX  # ... so the display draws it at a higher dpi
    assert FaceFigure().face_px() is None and FaceFigure().display_png()[1]["face_px"] is None


def test_a_face_figure_publishes_its_png_with_the_metadata(monkeypatch):
    import IPython.display

    published = []
    monkeypatch.setattr(IPython.display, "publish_display_data",
                        lambda data, metadata=None, **kw: published.append((data, metadata)))
    fig = FaceFigure(figsize=(3, 3))
    fig.show_face(fig.add_subplot(), np.zeros((64, 64, 3), np.uint8))
    fig._ipython_display_()
    ((data, metadata),) = published
    png = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    assert metadata["image/png"]["face_px"] >= FACE_PX and png.size == (metadata["image/png"]["width"],
                                                                           metadata["image/png"]["height"])


# ------------------------------------------------------------------------------------- the slider app
def test_the_slider_app_shows_its_pictures_at_256_px_without_smoothing(tiny_run_dir):
    app = SliderApp.from_run_dir(tiny_run_dir, throttle=False)
    try:
        assert app.display_scale == 8
        for image in (app.original, app.reconstruction, app.edited):
            assert (image.width, image.height) == ("256", "256")
            assert FACE_CLASS in image._dom_classes
            assert Image.open(io.BytesIO(image.value)).size == (32, 32)  # the model's pixels travel
        style = app.widget.children[0].value
        assert f"img.{FACE_CLASS}" in style and "image-rendering: pixelated" in style and "max-width: none" in style
    finally:
        app.close()
    big = SliderApp.from_run_dir(tiny_run_dir, throttle=False, display_px=300)
    assert big.edited.width == "320" and big.display_scale == 10
    big.close()
    with pytest.raises(ValueError, match="at least 1 pixel"):
        SliderApp.from_run_dir(tiny_run_dir, throttle=False, display_px=0)


# ------------------------------------------------------------------------------------- the notebook check
def _notebook(source: str, outputs: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = outputs
    nb.cells = [cell]
    return nb


def _output(obj) -> nbformat.NotebookNode:
    """The output ipykernel writes for ``obj`` ending a cell."""
    from IPython.core.formatters import DisplayFormatter

    data, meta = DisplayFormatter().format(obj)
    data = {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in data.items()}
    return nbformat.v4.new_output("execute_result", data=data, metadata=meta, execution_count=1)


def test_the_notebook_check_fails_on_a_face_shown_small(tiny_run_dir):
    grid = interpolation_grid(tiny_run_dir, n=1, scale=1)
    assert face_output_problems(_notebook("interpolation_grid(run)", [_output(grid)])) == []

    plain = Image.fromarray(np.asarray(grid))  # what the kit returned before: a plain PIL image
    problems = face_output_problems(_notebook("interpolation_grid(run)", [_output(plain)]))
    assert len(problems) == 1 and "without its display size" in problems[0]

    grid.target_px = 64  # shown at 64 px
    problems = face_output_problems(_notebook("display(interpolation_grid(run))", [_output(grid)]))
    assert any("under 256 px" in p for p in problems)

    # a plot needs no display size; an image from a function the check does not know is reported
    assert face_output_problems(_notebook("plot_training(read_metrics(run))", [_output(plain)])) == []
    problems = face_output_problems(_notebook("my_new_picture(run)", [_output(plain)]))
    assert len(problems) == 1 and "FACE_FUNCTIONS" in problems[0]


def test_the_notebook_check_wants_the_png_at_the_size_it_is_shown(tiny_run_dir):
    out = _output(interpolation_grid(tiny_run_dir, n=1, scale=1))
    out.metadata["image/png"]["width"] //= 2  # a PNG the browser would shrink (and smooth)
    problems = face_output_problems(_notebook("interpolation_grid(run)", [out]))
    assert len(problems) == 1 and "the browser would resize" in problems[0]
    del out.metadata["image/png"]["unconfined"]
    out.metadata["image/png"]["width"] *= 2
    assert "unconfined" in face_output_problems(_notebook("interpolation_grid(run)", [out]))[0]
