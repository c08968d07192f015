"""The course notebooks: committed clean, and run top to bottom at a tiny size with papermill.

Every notebook runs on the synthetic faces (300 faces, 32 px, 12 training steps) in course
order, then 04 and 05 again on a fresh RUN_DIR (no notebook 03 before them: they train what
they need), then all five on a CelebA-format fixture (random-colour images in the Kaggle
layout). Notebooks execute from ``notebooks/`` (papermill's ``cwd``), as for a student, and
write their executed copies to a temporary folder: the committed files are never touched.
"""

import ast
import json
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from exercise_outputs import exercise_output_problems
from face_outputs import face_output_problems

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01_data_and_attributes", "02_networks_and_losses", "03_training", "04_interpolation_and_sliders",
         "05_evaluation"]
#: The parameter names the notebooks may use (one meaning each, across notebooks).
PARAMETER_NAMES = {"DATA_DIR", "CACHE_DIR", "IMAGE_SIZE", "ATTRIBUTES", "TRAIN_STEPS", "BATCH_SIZE", "DEVICE", "RUN_DIR",
                   "DEMO_DIR", "PHOTO", "COMPARE_BALANCE", "COMPARE_ADVERSARY"}
STEPS = 12
TINY = {"IMAGE_SIZE": 32, "ATTRIBUTES": ["Smiling", "Eyeglasses", "Male"], "TRAIN_STEPS": STEPS, "BATCH_SIZE": 8,
        "DEVICE": "cpu", "DEMO_DIR": None}


def read(name):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def parameters_cell(nb):
    return [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]


# ------------------------------------------------------------------------------------- committed files
def test_the_course_is_these_five_notebooks():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_clean(name):
    nb = read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3" and nb.metadata["kernelspec"]["language"] == "python"
    assert nb.metadata["language_info"]["name"] == "python"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a cell has outputs; clear them (python tools/strip_notebooks.py)"
            assert cell.execution_count is None, f"{name}: a cell has an execution count; clear it"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    opening = nb.cells[0].source
    for part in ("**What this notebook teaches.**", "**What it needs.**", "**How long.**"):
        assert part in opening, f"{name}: the opening cell says what it teaches, needs and takes ({part!r})"
    # it ends with its exercises, then a short summary that points further
    summary = nb.cells[-1]
    assert summary.cell_type == "markdown" and summary.source.startswith("## Summary"), f"{name}: ends with a summary"
    assert "**What you learnt.**" in summary.source and "docs/going_further.md" in summary.source
    assert "Exercises" in nb.cells[-2].source


@pytest.mark.parametrize("name", NAMES)
def test_one_parameters_cell_of_plain_literals(name):
    nb = read(name)
    cells = parameters_cell(nb)
    assert len(cells) == 1, f"{name}: exactly one cell must be tagged 'parameters'"
    names = []
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        names.append(node.targets[0].id)
        ast.literal_eval(node.value)  # a plain literal, so papermill can override it
    assert set(names) <= PARAMETER_NAMES, set(names) - PARAMETER_NAMES
    if "RUN_DIR" in names:
        assert ast.literal_eval(cells[0].source.split("RUN_DIR =")[1].split("#")[0].strip()).startswith("../")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_code_defines_nothing(name):
    """A notebook defines no function or class: they belong in faderlib, where they are tested."""
    for cell in read(name).cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)), \
                f"{name} defines {node.name}: move it to faderlib"


# ------------------------------------------------------------------------------------- execution
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("notebooks")


@pytest.fixture(scope="module")
def synthetic_data(work):
    from faderlib.synth import generate

    return generate(work / "faces", n=300, seed=0, progress=False)


@pytest.fixture(scope="module")
def celeba_data(work):
    from celeba_fixture import write_celeba_fixture

    return write_celeba_fixture(work / "celeba", n=120, layout="kaggle", seed=1)


def execute(name, out_dir, folder=NOTEBOOKS, expect=None, **parameters):
    """Run a committed notebook with papermill from its folder (notebooks/, or notebooks/solutions/
    for the teacher's copies); return the executed copy, after checking that every picture of faces
    in it is shown at 256 px per face or more (tests/face_outputs.py) and that every exercise check
    printed "not answered yet" (the course notebooks) or PASS (the solutions; tests/exercise_outputs.py).
    ``expect`` ("TODO" or "PASS") says which for a notebook of another folder (a hand-out's)."""
    import papermill

    folder = Path(folder)
    nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    (cell,) = parameters_cell(nb)
    declared = {n.targets[0].id for n in ast.parse(cell.source).body}
    given = {k: v for k, v in parameters.items() if k in declared}
    out = Path(out_dir) / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(folder / f"{name}.ipynb"), str(out), parameters=given, cwd=str(folder),
                               kernel_name="python3", progress_bar=False, log_output=False)
    nb = nbformat.read(out, as_version=4)
    problems = face_output_problems(nb)
    problems += exercise_output_problems(nb, expect or ("TODO" if folder == NOTEBOOKS else "PASS"))
    assert not problems, f"{name}:\n" + "\n".join(problems)
    return nb


def outputs(nb, kind=None):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if kind is None or out.output_type == kind:
                yield out


def text(nb):
    parts = []
    for out in outputs(nb):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def images(nb):
    return sum(1 for out in outputs(nb) if "image/png" in out.get("data", {}))


def widgets(nb):
    return sum(1 for out in outputs(nb) if "application/vnd.jupyter.widget-view+json" in out.get("data", {}))


def last_step(run_dir):
    return torch.load(Path(run_dir) / "checkpoints" / "last.pt", weights_only=True)["step"]


def test_notebooks_in_order_on_the_synthetic_faces(synthetic_data, work):
    out = work / "synthetic_out"
    course = work / "course"
    params = dict(TINY, DATA_DIR=str(synthetic_data), RUN_DIR=str(course))

    nb = execute("01_data_and_attributes", out, **params)
    # the kernel is this interpreter (the venv's), as the environment check prints it
    assert f"at {sys.executable}" in text(nb) and "[FAIL]" not in text(nb)
    assert images(nb) == 5  # crop, samples, counterfactuals, frequencies, correlation

    nb = execute("02_networks_and_losses", out, **params)
    assert "'autoencoder': 14000512" in text(nb)  # the reference count
    assert "L_dis = " in text(nb) and "L = " in text(nb)

    nb = execute("03_training", out, **params)
    assert f"stopped at step {STEPS // 2} of {STEPS}" in text(nb)
    assert f"resumed at step {STEPS // 2} of {STEPS}" in text(nb)
    assert last_step(course / "fader") == STEPS and last_step(course / "ablation_lambda0") == STEPS
    assert (course / "classifier" / "classifier.pt").is_file()
    assert json.loads((course / "ablation_lambda0" / "config.json").read_text())["train"]["lambda_e"] == 0.0
    assert "swap->1" in text(nb) and images(nb) >= 5

    before = (course / "fader" / "checkpoints" / "last.pt").read_bytes()
    nb = execute("04_interpolation_and_sliders", out, **params)
    assert f"trained in {course}" in text(nb)  # notebook 03's run, not a new one
    assert widgets(nb) >= 2  # the slider apps render as widget data, without a browser
    assert "encoded 1 time(s)" in text(nb)
    assert "EditNote" not in text(nb)  # the built-in sample photo is a synthetic face: no domain note
    # its edits keep the photo's own attributes: read by notebook 03's classifier, found with the run
    assert f"what the attribute classifier in {course / 'classifier'} reads from the photo" in text(nb)
    assert (course / "sample_photo.jpg").is_file() and images(nb) >= 6

    # both comparisons are False by default: asked for here
    nb = execute("05_evaluation", out, **params, COMPARE_BALANCE=True, COMPARE_ADVERSARY=True)
    assert f"trained in {course}" in text(nb)
    assert (course / "fader" / "checkpoints" / "last.pt").read_bytes() == before
    assert last_step(course / "unbalanced") == STEPS  # the other balancing choice
    assert json.loads((course / "unbalanced" / "config.json").read_text())["train"]["balance"] is None
    from faderlib.course import OTHER_ADVERSARY

    assert last_step(course / "other_adversary") == STEPS  # the other adversary, compared with the probe
    other = json.loads((course / "other_adversary" / "config.json").read_text())["train"]
    assert all(other[k] == v for k, v in OTHER_ADVERSARY.items()) and "probe balanced" in text(nb)
    assert "remove (1 -> 0)" in text(nb) and images(nb) >= 3


@pytest.mark.parametrize("name", ["04_interpolation_and_sliders", "05_evaluation"])
def test_notebook_without_notebook_03(name, synthetic_data, work):
    run_dir = work / f"fresh_{name[:2]}"
    nb = execute(name, work / "fresh_out", **TINY, DATA_DIR=str(synthetic_data), RUN_DIR=str(run_dir))
    assert "training one now" in text(nb)
    if name.startswith("04"):  # no classifier with this run: the edits say so
        assert "no attribute classifier of Smiling, Eyeglasses, Male was found" in text(nb)
    assert last_step(run_dir / "fader") == STEPS


def test_notebooks_on_a_celeba_format_folder(celeba_data, work):
    out = work / "celeba_out"
    course = work / "celeba_course"
    params = dict(TINY, DATA_DIR=str(celeba_data), RUN_DIR=str(course))
    nb = execute("01_data_and_attributes", out, **params)
    assert "layout='kaggle'" in text(nb) and "no ground truth" in text(nb)
    execute("02_networks_and_losses", out, **params)
    execute("03_training", out, **params)
    assert last_step(course / "fader") == STEPS
    nb = execute("04_interpolation_and_sliders", out, **params)
    assert widgets(nb) >= 2
    nb = execute("05_evaluation", out, **params)
    assert "trained on photographs" in text(nb)
    assert not (course / "unbalanced").exists()  # COMPARE_BALANCE = False by default: nothing more trained
    assert not (course / "other_adversary").exists() and "make demo-adversary` trains it" in text(nb)


# ------------------------------------------------------------------------------------- the app
APP = NOTEBOOKS / "apps" / "slider_app.ipynb"


def test_slider_app_notebook_is_clean_and_one_call(tmp_path, tiny_run_dir):
    """`make app` serves notebooks/apps/slider_app.ipynb in Voila (a browser test opens it there);
    here: committed clean, plain-literal parameters, and it runs with papermill to a slider app."""
    import papermill

    nb = nbformat.read(APP, as_version=4)
    (cell,) = parameters_cell(nb)
    for node in ast.parse(cell.source).body:
        ast.literal_eval(node.value)
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")
    out = tmp_path / "app.ipynb"
    papermill.execute_notebook(str(APP), str(out), parameters={"RUN_DIR": str(tiny_run_dir), "DEMO_DIR": None},
                               cwd=str(APP.parent), kernel_name="python3", progress_bar=False)
    executed = nbformat.read(out, as_version=4)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs(executed))


def test_slider_app_without_a_run_says_how_to_make_one(tmp_path):
    from faderlib.course import slider_app

    with pytest.raises(FileNotFoundError, match="make demo"):
        slider_app(tmp_path / "none", tmp_path / "neither")
