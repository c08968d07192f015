"""The exercises that check themselves (faderlib/exercises/) and the teacher's notebooks
(tools/solutions.py, notebooks/solutions/).

For every check: a right answer passes, plausible wrong answers fail (each named by the mistake it
makes), and every kind of placeholder prints "not answered yet" without raising. Then the tool: its
``--check`` passes on the committed files and fails on each kind of drift, a solution notebook differs
from its course notebook only in its exercise cells (checked here independently of the tool), and the
sources waiting for notebooks 03 and 05 still apply to them. Last, the solution notebooks run top to
bottom at the tiny size from notebooks/solutions/, every check printing PASS (the course notebooks,
run by test_notebooks.py, print "not answered yet").
"""

from __future__ import annotations

import ast
import importlib.util
import random
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from faderlib import exercises
from faderlib.exercises import CHECKS, FAIL, PASS, TODO
from faderlib.exercises.checking import checks_called

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
SOURCES = ROOT / "tools" / "exercises"
COURSE = ["01_data_and_attributes", "02_networks_and_losses", "03_training", "04_interpolation_and_sliders",
          "05_evaluation"]

_spec = importlib.util.spec_from_file_location("fader_solutions_tool", ROOT / "tools" / "solutions.py")
tool = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = tool  # dataclasses look their module up
_spec.loader.exec_module(tool)


# ------------------------------------------------------------------------------------- the answers
@pytest.fixture(scope="module")
def ctx(tiny_run_dir, course_dir):
    """What the data-bound checks need: a training split, its rarest attribute, two runs."""
    from faderlib.analysis import rarest_attribute
    from faderlib.data import FaderDataset
    from faderlib.runs import load_run

    run = load_run(tiny_run_dir)
    names = run.model_config.attribute_names
    train = run.dataset("train")
    train = FaderDataset(train.prepared, "train", names)
    rare = rarest_attribute(train.prepared, names)
    labels = train.y[:, names.index(rare)].numpy()
    return {"run": run, "other_run": course_dir.fader, "train": train, "rare": rare, "labels": labels, "names": names}


def _decode_pair(run, j, n, alphas=(0.0, 1.0)):
    """Written here as a student would: decode n test images twice from one z (not the check's code)."""
    from faderlib.models import attribute_code

    x, y = run.images(n)
    with torch.no_grad():
        z = run.autoencoder.encode(x)
        outs = []
        for alpha in alphas:
            code = attribute_code(y, run.model_config)
            code[:, 2 * j], code[:, 2 * j + 1] = 1 - alpha, alpha
            outs.append(run.autoencoder.decode(z, code))
        reconstruction = run.autoencoder.decode(z, y)
    return x, y, outs[0], outs[1], reconstruction


def _flip_k(y, k):
    return (y + torch.randint(1, k, y.shape)) % k


def _cross_entropy(logits, y):
    return sum(-torch.log_softmax(logits[:, 2 * j:2 * j + 2], 1).gather(1, y[:, j:j + 1]).mean()
               for j in range(y.shape[1]))


def _balanced(predicted, labels):
    return float(np.mean([float((predicted[labels == c] == c).float().mean()) for c in labels.unique()]))


def _probe(run, attribute, n_train=2000, score_on_train=False, class_weights=True):
    """A logistic regression of `attribute` on the flattened codes, by hand."""
    from faderlib.evaluate import encode_split

    j = run.model_config.attribute_names.index(attribute)
    z_train, y_train = encode_split(run.autoencoder, run.dataset("train"), n_train)
    z_test, y_test = encode_split(run.autoencoder, run.dataset("test"), 1000)
    mean, std = z_train.mean(0), z_train.std(0).clamp(min=1e-6)
    a, b = (z_train - mean) / std, (z_test - mean) / std
    labels = y_train[:, j]
    counts = torch.bincount(labels, minlength=2).float()
    weight = counts.sum() / (2 * counts.clamp(min=1)) if class_weights else None
    probe = torch.nn.Linear(a.shape[1], 2)
    torch.nn.init.zeros_(probe.weight)
    torch.nn.init.zeros_(probe.bias)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05, weight_decay=1e-3)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(probe(a), labels, weight=weight).backward()
        opt.step()
    with torch.no_grad():
        if score_on_train:
            return _balanced(probe(a).argmax(1), labels)
        return _balanced(probe(b).argmax(1), y_test[:, j])


def _code_alpha(run, alpha, others="image", flip=False, block=0):
    from faderlib.models import attribute_code

    _, y = run.images(1)
    code = attribute_code(y, run.model_config) if others == "image" else torch.zeros(1, 2 * y.shape[1])
    pair = torch.tensor([alpha, 1 - alpha] if flip else [1 - alpha, alpha])
    code[:, 2 * block:2 * block + 2] = pair
    return code


def _changed(run, j, how):
    x, _, low, high, reconstruction = _decode_pair(run, j, 1)
    diff = high - low
    if how == "right":
        return int((diff.abs().amax(1) > 0.1).sum())
    if how == "channel values":
        return int((diff.abs() > 0.1).sum())
    if how == "signed":
        return int((diff.amax(1) > 0.1).sum())
    return int(((high - x).abs().amax(1) > 0.1).sum())  # against the original image


def _effect(run_dir, j, how="right"):
    from faderlib.runs import load_run

    run = load_run(run_dir)
    x, _, low, high, reconstruction = _decode_pair(run, j, 16)
    if how == "right":
        return float((high - low).abs().mean())
    if how == "signed":
        return float((high - low).mean())
    return float((reconstruction - x).abs().mean())  # the reconstruction error, not the slider


def _raises(*_):
    raise NotImplementedError


#: For every check: (a right answer, {mistake: a wrong answer}), each as a function of ctx -> the check's
#: arguments, and the positions of the arguments that are answers (placeholders go there).
CASES = {
    "check_01_constant_guess": (
        lambda c: (c["train"], c["rare"], np.bincount(c["labels"]).max() / len(c["labels"]), 0.5),
        {"the rarer value's share": lambda c: (c["train"], c["rare"],
                                               np.bincount(c["labels"]).min() / len(c["labels"]), 0.5),
         "balanced = plain accuracy": lambda c: (c["train"], c["rare"], np.bincount(c["labels"]).max() / len(
             c["labels"]), np.bincount(c["labels"]).max() / len(c["labels"])),
         "a percentage": lambda c: (c["train"], c["rare"], 100 * np.bincount(c["labels"]).max() / len(c["labels"]),
                                    0.5)},
        (2, 3)),
    "check_01_balanced_weights": (
        lambda c: (lambda labels: 1.0 / (np.bincount(labels)[labels] * 2),),
        {"not normalised": lambda c: (lambda labels: 1.0 / np.bincount(labels)[labels],),
         "uniform": lambda c: (lambda labels: np.full(len(labels), 1 / len(labels)),),
         "proportional to the count": lambda c: (lambda labels: np.bincount(labels)[labels] / len(labels) ** 2,),
         "one weight per class": lambda c: (lambda labels: 1.0 / (np.bincount(labels) * 2),)},
        (0,)),
    "check_01_positives_per_batch": (
        lambda c: (c["train"], c["rare"], 32 * (c["labels"] == 1).mean(), 16.0),
        {"balanced = uniform": lambda c: (c["train"], c["rare"], 32 * (c["labels"] == 1).mean(),
                                          32 * (c["labels"] == 1).mean()),
         "a share, not a count": lambda c: (c["train"], c["rare"], (c["labels"] == 1).mean(), 16.0),
         "a whole batch of positives": lambda c: (c["train"], c["rare"], 32 * (c["labels"] == 1).mean(), 32.0)},
        (2, 3)),
    "check_02_extra_attribute": (
        lambda c: (lambda cfg: 2 * 16 * int(_decoder_inputs(cfg)["output channels"].sum()),),
        {"one channel per attribute": lambda c: (lambda cfg: 16 * int(_decoder_inputs(cfg)["output channels"].sum()),),
         "only the first layer": lambda c: (lambda cfg: 2 * 16 * int(_decoder_inputs(cfg)["output channels"].iloc[0]),),
         "no 4x4 kernel": lambda c: (lambda cfg: 2 * int(_decoder_inputs(cfg)["output channels"].sum()),),
         "a hard-coded 256 px answer": lambda c: (lambda cfg: 31_840,)},
        (0,)),
    "check_02_code": (
        lambda c: (lambda a: torch.stack([1 - a, a], 2).flatten(1),),
        {"pair swapped": lambda c: (lambda a: torch.stack([a, 1 - a], 2).flatten(1),),
         "blocks not interleaved": lambda c: (lambda a: torch.cat([1 - a, a], 1),),
         "alpha alone": lambda c: (lambda a: a,)},
        (0,)),
    "check_02_cross_entropy": (
        lambda c: (_cross_entropy,),
        {"averaged over attributes": lambda c: (lambda lg, y: _cross_entropy(lg, y) / y.shape[1],),
         "against 1 - y": lambda c: (lambda lg, y: _cross_entropy(lg, 1 - y),),
         "summed over the batch": lambda c: (lambda lg, y: _cross_entropy(lg, y) * y.shape[0],),
         "the log-probability, not its negative": lambda c: (lambda lg, y: -_cross_entropy(lg, y),)},
        (0,)),
    "check_02_flip": (
        lambda c: (lambda y: 1 - y,),
        {"y itself": lambda c: (lambda y: y,),
         "minus y": lambda c: (lambda y: -y,),
         "y changed in place": lambda c: (lambda y: y.neg_().add_(1),),
         "random": lambda c: (lambda y: torch.randint(0, 2, y.shape),)},
        (0,)),
    "check_02_flip_categorical": (
        lambda c: (_flip_k,),
        {"always the next value": lambda c: (lambda y, k: (y + 1) % k,),
         "any value, the true one too": lambda c: (lambda y, k: torch.randint(0, k, y.shape),),
         "the mirror value": lambda c: (lambda y, k: k - 1 - y,),
         "the binary flip": lambda c: (lambda y, k: 1 - y,),
         "biased towards the next value": lambda c: (
             lambda y, k: (y + 1 + (torch.rand(y.shape) < 0.3).long() * (k > 2)) % k,)},
        (0,)),
    "check_03_lambda": (
        lambda c: (lambda s, m, r: m * min(s, r) / r,),
        {"off by one": lambda c: (lambda s, m, r: m * min(s + 1, r) / r,),
         "never capped": lambda c: (lambda s, m, r: m * s / r,),
         "the course's schedule hard-coded": lambda c: (lambda s, m, r: 0.02 * min(s, 1000) / 1000,),
         "constant": lambda c: (lambda s, m, r: m,)},
        (0,)),
    "check_03_slider_effect": (
        lambda c: (c["other_run"], _effect(c["other_run"], 0), "Smiling"),
        {"signed mean": lambda c: (c["other_run"], _effect(c["other_run"], 0, "signed"), "Smiling"),
         "the reconstruction error": lambda c: (c["other_run"], _effect(c["other_run"], 0, "reconstruction"),
                                                "Smiling"),
         "another attribute's effect": lambda c: (c["other_run"], _effect(c["other_run"], 2), "Smiling")},
        (1,)),
    "check_04_code": (
        lambda c: (c["run"], _code_alpha(c["run"], 2.0), "Smiling"),
        {"others at 0": lambda c: (c["run"], _code_alpha(c["run"], 2.0, others="zero"), "Smiling"),
         "pair swapped": lambda c: (c["run"], _code_alpha(c["run"], 2.0, flip=True), "Smiling"),
         "another attribute's pair": lambda c: (c["run"], _code_alpha(c["run"], 2.0, block=1), "Smiling"),
         "alpha = 1": lambda c: (c["run"], _code_alpha(c["run"], 1.0), "Smiling")},
        (1,)),
    "check_04_changed_pixels": (
        lambda c: (c["run"], _changed(c["run"], 0, "right"), "Smiling"),
        {"channel values counted": lambda c: (c["run"], _changed(c["run"], 0, "channel values"), "Smiling"),
         "only changes upwards": lambda c: (c["run"], _changed(c["run"], 0, "signed"), "Smiling"),
         "against the original": lambda c: (c["run"], _changed(c["run"], 0, "original"), "Smiling")},
        (1,)),
    "check_05_balanced_accuracy": (
        lambda c: (_balanced,),
        {"plain accuracy": lambda c: (lambda p, l: float((p == l).float().mean()),),
         "by predicted class": lambda c: (lambda p, l: _balanced(l, p),)},
        (0,)),
    "check_05_swap_accuracy": (
        lambda c: (lambda read, original, t: float((read[original != t] == t).float().mean()),),
        {"images already at the target counted": lambda c: (lambda read, original, t: float((read == t).float()
                                                                                              .mean()),),
         "read == original": lambda c: (lambda read, original, t: float((read[original != t] == original[
             original != t]).float().mean()),)},
        (0,)),
    "check_05_probe": (
        lambda c: (c["run"], "Smiling", _probe(c["run"], "Smiling", 60), 60),
        {"scored on its training codes": lambda c: (c["run"], "Smiling", _probe(c["run"], "Smiling", 60, True), 60)},
        (2,)),
}


def _decoder_inputs(config):
    from faderlib.summary import decoder_inputs

    return decoder_inputs(config)


def test_every_check_is_tested_here():
    assert set(CASES) == set(CHECKS)
    assert all(name.startswith("check_0") for name in CHECKS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_right_answer_passes(name, ctx, capsys):
    right, _, _ = CASES[name]
    result = CHECKS[name](*right(ctx))
    out = capsys.readouterr().out
    assert result.status == PASS and bool(result), out
    assert out.startswith(f"PASS  exercise {result.exercise} ") and out.count("\n") == 1


@pytest.mark.parametrize("name,mistake", [(n, m) for n in sorted(CASES) for m in CASES[n][1]])
def test_a_plausible_wrong_answer_fails(name, mistake, ctx, capsys):
    _, wrong, _ = CASES[name]
    result = CHECKS[name](*wrong[mistake](ctx))
    out = capsys.readouterr().out
    assert result.status == FAIL and not result, f"{mistake!r} was not caught:\n{out}"
    assert out.startswith(f"FAIL  exercise {result.exercise}") and "found:" in out and "Traceback" not in out


def _placeholders(name, ctx):
    """Every kind of unanswered exercise, in the answer's place(s)."""
    right, _, slots = CASES[name]
    args = right(ctx)
    values = [..., None]
    if all(callable(args[i]) and not isinstance(args[i], torch.nn.Module) for i in slots):
        values += [lambda *a: ..., lambda *a: None, _raises]
    for value in values:
        for i in slots:
            yield tuple(value if k == i else a for k, a in enumerate(args))
        yield tuple(value if k in slots else a for k, a in enumerate(args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_placeholder_is_not_answered_yet(name, ctx, capsys):
    for args in _placeholders(name, ctx):
        result = CHECKS[name](*args)
        out = capsys.readouterr().out
        assert result.status == TODO and not result.answered, out
        assert out.startswith(f"TODO  exercise {result.exercise}") and "not answered yet" in out


def test_an_answer_that_raises_fails_with_its_message(capsys):
    result = exercises.check_02_flip(lambda y: y.reshape(3, 7))
    out = capsys.readouterr().out
    assert result.status == FAIL and "your function raised RuntimeError: shape '[3, 7]' is invalid" in out
    assert "Traceback" not in out and out.count("\n") == 2


@pytest.mark.parametrize("call,message", [
    (lambda: exercises.check_02_flip(), "missing a required argument: 'my_flip'"),
    (lambda: exercises.check_02_flip(lambda y: 1 - y, 3), "too many positional arguments"),
    (lambda: exercises.check_02_flip(1 - torch.zeros(2)), "a function (a lambda, or a def)"),
    (lambda: exercises.check_04_code("/nowhere/run", torch.zeros(1, 6), "Smiling"), "cannot load the run in /nowhere"),
])
def test_a_wrong_call_fails_and_says_how_to_call(call, message, capsys):
    result = call()
    out = capsys.readouterr().out
    assert result.status == FAIL and message in out and "Traceback" not in out


def test_wrong_attributes_and_images_are_named(ctx, capsys):
    run = ctx["run"]
    assert not exercises.check_04_code(run, torch.zeros(1, 6), "Smilng")
    assert "attribute='Smilng' is not an attribute of this run (Smiling, Eyeglasses, Male)" in capsys.readouterr().out
    assert not exercises.check_04_changed_pixels(run, 10, "Smiling", index=10**6)
    assert "out of range" in capsys.readouterr().out
    assert not exercises.check_01_constant_guess(ctx["train"], "Smilng", 0.5, 0.5)
    assert "'Smilng' is not a column" in capsys.readouterr().out


def test_a_check_leaves_the_random_generators_as_they_were():
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    exercises.check_02_flip_categorical(_flip_k)  # draws thousands of numbers from torch's generator
    exercises.check_01_balanced_weights(lambda labels: np.random.rand(len(labels)))
    after = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(after[0], expected[0]) and np.array_equal(after[1], expected[1]) and after[2] == expected[2]


def test_a_check_shows_nothing_more_in_a_notebook():
    result = exercises.check_02_flip(lambda y: 1 - y)
    assert result._ipython_display_() is None and "PASS" in str(result) and result.passed


def test_the_walker_finds_the_checks_a_cell_calls_in_order():
    source = ("%time x = 1\n!ls\nr = exercises.check_02_flip(f) and check_02_code(check_01_x(g))\n"
              "my_check_02_flip(f), check_2_x(f), print(check_03_lambda)\ncheck_03_lambda(h)")
    assert checks_called(source) == ["check_02_flip", "check_02_code", "check_01_x", "check_03_lambda"]
    with pytest.raises(SyntaxError):
        checks_called("check_02_flip(")


def test_one_module_per_notebook_and_no_private_name_crosses_a_module():
    for name, check in CHECKS.items():
        assert check.__module__ == "faderlib.exercises." + {"01": "data", "02": "networks", "03": "training",
                                                            "04": "sliders", "05": "evaluation"}[name[6:8]], name
    for path in (ROOT / "faderlib" / "exercises").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not [a.name for a in node.names if a.name.startswith("_")], (path.name, node.module)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id != "self":
                assert not node.attr.startswith("_") or node.attr.startswith("__"), (path.name, node.attr)


# ------------------------------------------------------------------------------------- the sources
def _all_sources() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(SOURCES.glob("*.txt"))}
    return found


def test_every_course_notebook_has_two_checked_exercises_or_more():
    sources = _all_sources()
    assert sorted(sources) == COURSE
    used = []
    for name, path in sources.items():
        blocks = tool.parse(path.read_text(), path.name)
        checks = [c for b in blocks if b.kind == "exercise" for c in checks_called(b.source)]
        assert len(set(checks)) >= 2, f"{name}: {checks}"
        assert all(c.startswith(f"check_{name[:2]}_") for c in checks), checks
        used += checks
    assert sorted(set(used)) == sorted(CHECKS)  # every check is asked for by a notebook


def test_the_committed_files_are_up_to_date(capsys):
    assert tool.main(["--check"]) == 0, capsys.readouterr().err


def test_a_solution_differs_from_its_notebook_only_in_the_exercises():
    """Independent of the tool: drop the solutions-only cells, then cell by cell."""
    active = sorted(p.stem for p in SOURCES.glob("*.txt"))
    assert sorted(p.stem for p in SOLUTIONS.glob("*.ipynb")) == active
    for name in active:
        student = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        solution = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
        only = [c for c in solution.cells if "solution-only" in c.metadata.get("tags", [])]
        assert only and all(c.cell_type == "markdown" for c in only)
        kept = [c for c in solution.cells if "solution-only" not in c.metadata.get("tags", [])]
        assert [c.id for c in kept] == [c.id for c in student.cells], name
        assert student.metadata == solution.metadata
        n_exercises = 0
        for a, b in zip(student.cells, kept):
            tags_a, tags_b = a.metadata.get("tags", []), b.metadata.get("tags", [])
            assert a.cell_type == b.cell_type, (name, a.id)
            if "exercise" in tags_a:
                n_exercises += 1
                assert tags_b == ["solution"] and a.cell_type == "code", (name, a.id)
                assert a.source != b.source and ("..." in a.source or "YOUR CODE" in a.source)
            elif "parameters" in tags_a:
                assert tags_a == tags_b
                _same_folders(a.source, b.source)
            else:
                assert (a.source, tags_a) == (b.source, tags_b), f"{name}: cell {a.id} differs"
        assert n_exercises >= 2, name


def _same_folders(student: str, solution: str) -> None:
    """The solution's parameters name the same folders from notebooks/solutions/ as the student's
    from notebooks/ (and the same values otherwise)."""
    def values(source):
        return {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(source).body}

    a, b = values(student), values(solution)
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], str) and a[key].startswith("../"):
            assert (NOTEBOOKS / a[key]).resolve() == (SOLUTIONS / b[key]).resolve(), key
        else:
            assert a[key] == b[key], key


def test_the_solutions_are_committed_clean():
    strip = importlib.util.spec_from_file_location("fader_strip_tool", ROOT / "tools" / "strip_notebooks.py")
    module = importlib.util.module_from_spec(strip)
    strip.loader.exec_module(module)
    paths = sorted(SOLUTIONS.glob("*.ipynb"))
    assert paths and module.main(["--check", *map(str, paths)]) == 0
    for path in paths:  # and the default, every notebook under notebooks/, includes them
        assert path in sorted(module.NOTEBOOKS.rglob("*.ipynb"))


@pytest.fixture
def tree(tmp_path):
    """A copy of the notebooks and the tool's sources, for the tool to change."""
    shutil.copytree(NOTEBOOKS, tmp_path / "notebooks")
    shutil.copytree(ROOT / "tools", tmp_path / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_check_fails_on_every_kind_of_drift(tree, capsys):
    name = sorted(SOURCES.glob("*.txt"))[0].stem
    assert tool.main(["--check", "--root", str(tree)]) == 0
    solution = tree / "notebooks" / "solutions" / f"{name}.ipynb"
    original = solution.read_text()
    solution.write_text(original.replace("check_", "check__", 1))      # a solution edited by hand
    assert tool.main(["--check", "--root", str(tree)]) == 1
    assert f"out of date: notebooks/solutions/{name}.ipynb" in capsys.readouterr().err
    assert tool.main(["--root", str(tree)]) == 0 and solution.read_text() == original  # rewritten as it was

    student = tree / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(student, as_version=4)
    exercise = next(c for c in nb.cells if "exercise" in c.metadata.get("tags", []))
    exercise.source += "\nprint('moved on')"                              # an exercise cell edited in the notebook
    other = next(c for c in nb.cells if c.cell_type == "markdown" and not c.id.startswith("ex-"))
    other.source += "\n\nA new paragraph."                                # and a cell of the lesson
    student.write_text(nbformat.writes(nb) + "\n")
    assert tool.main(["--check", "--root", str(tree)]) == 1
    err = capsys.readouterr().err
    assert f"out of date: notebooks/{name}.ipynb" in err and f"out of date: notebooks/solutions/{name}.ipynb" in err
    assert tool.main(["--root", str(tree)]) == 0
    nb = nbformat.read(student, as_version=4)
    assert "moved on" not in nbformat.writes(nb)  # the source wins for exercise cells
    assert "A new paragraph." in nbformat.writes(nbformat.read(solution, as_version=4))  # the lesson reaches the copy

    (tree / "tools" / "exercises" / f"{name}.txt").unlink()
    assert tool.main(["--check", "--root", str(tree)]) == 1
    assert f"no source: notebooks/solutions/{name}.ipynb" in capsys.readouterr().err


@pytest.mark.parametrize("text,message", [
    ("#%% exercise ex-a after cell-00\nx = ...\ncheck_01_x(x)\n", "has no '#%% solution ex-a' block"),
    ("#%% exercise ex-a after cell-00\nx = 1\ncheck_01_x(x)\n#%% solution ex-a\nx = 1\ncheck_01_x(x)\n",
     "has no placeholder"),
    ("#%% exercise ex-a after nowhere\nx = ...\ncheck_01_x(x)\n#%% solution ex-a\nx = 1\ncheck_01_x(x)\n",
     "placed after 'nowhere', which is not a cell of the notebook"),
    ("#%% exercise ex-a after cell-00\nx = ...\ncheck_01_x(x)\n#%% solution ex-a\nx = 1\ncheck_01_y(x)\n",
     "both must call the same checks"),
    ("#%% exercise ex-a after cell-00\nx = ...\ncheck_01_x(x)\n#%% solution ex-a\ndef f():\n    pass\ncheck_01_x(f)\n",
     "defines f"),
    ("#%% markdown a after cell-00\ntext\n", "must start with 'ex-'"),
    ("#%% exercice ex-a after cell-00\ntext\n", "is not a block header"),
    ("#%% exercise ex-a after cell-00\nx = (...\n", "is not valid Python"),
])
def test_mistakes_in_a_source_are_named(tree, capsys, text, message):
    for path in (tree / "tools" / "exercises").glob("*.txt"):
        path.unlink()
    (tree / "tools" / "exercises" / "01_data_and_attributes.txt").write_text(text)
    assert tool.main(["--check", "--root", str(tree)]) == 2
    assert message in capsys.readouterr().err


def test_every_course_notebook_has_at_least_two_checked_exercises():
    assert sorted(p.stem for p in SOURCES.glob("*.txt")) == sorted(COURSE)
    for name in COURSE:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert sum("exercise" in c.metadata.get("tags", []) for c in nb.cells) >= 2, name
        assert "Exercises" in nb.cells[-2].source, name  # the notebook still ends with its exercises (then its summary)


def test_relative_parameters_point_one_folder_further_up():
    source = ('RUN_DIR = "../runs/course"       # a comment\nDEMO_DIR = \'../runs/demo\'  # close\n'
              'DATA_DIR = None                  # kept\nPHOTO = "me.jpg"')
    assert tool.rewrite_paths(source) == ('RUN_DIR = "../../runs/course"    # a comment\n'
                                          "DEMO_DIR = '../../runs/demo'  # close\n"
                                          'DATA_DIR = None                  # kept\nPHOTO = "me.jpg"')


# ------------------------------------------------------------------------------------- running them
def test_the_solution_notebooks_run_and_every_check_passes(synthetic_dir, tmp_path):
    """In course order, from notebooks/solutions/, at the tiny size (test_notebooks.py's settings):
    ``execute`` checks that each check cell printed one PASS per check and nothing else."""
    from test_notebooks import TINY, execute
    from exercise_outputs import statuses

    names = [n for n in COURSE if (SOLUTIONS / f"{n}.ipynb").is_file()]
    assert names
    for name in names:
        nb = execute(name, tmp_path / "out", folder=SOLUTIONS, **TINY, DATA_DIR=str(synthetic_dir),
                     RUN_DIR=str(tmp_path / "course"))
        calls = sum(len(checks_called(c.source)) for c in nb.cells if c.cell_type == "code")
        passed = sum(len(statuses(c)) for c in nb.cells if c.cell_type == "code")
        assert calls >= 2 and passed == calls, name


def test_the_output_check_catches_a_wrong_or_missing_status():
    from exercise_outputs import exercise_output_problems

    def notebook(*printed):
        cell = nbformat.v4.new_code_cell("check_02_flip(f)\ncheck_02_code(g)", id="c")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="".join(printed))]
        return nbformat.v4.new_notebook(cells=[cell])

    todo = "TODO  exercise 2.4 (x): not answered yet\n"
    assert exercise_output_problems(notebook(todo, todo.replace("2.4", "2.2")), "TODO") == []
    assert exercise_output_problems(notebook(todo), "TODO")  # one status line for two checks
    assert exercise_output_problems(notebook(todo, "PASS  exercise 2.2 (y): right\n"), "TODO")
    assert exercise_output_problems(notebook(todo, todo), "PASS")
