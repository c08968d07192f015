"""The student hand-out (tools/handout.py, ``make handout``): the repository without the answers.

One hand-out is built per module from this checkout. It holds no line of any solution or model
answer of tools/exercises/ (found here independently of the tool's own check), none of the answer
files, no test that needs them; its tests still collect, and its five notebooks run top to bottom
from its own folder, on its own faderlib, every check printing TODO. A non-empty folder is refused
with one clear line.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_notebooks import NAMES, TINY, execute, text

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


handout_tool = _load("fader_handout_tool", ROOT / "tools" / "handout.py")
solutions_tool = _load("fader_solutions_tool_for_handout", ROOT / "tools" / "solutions.py")


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    out = tmp_path_factory.mktemp("handout") / "class"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert handout_tool.main([str(out)]) == 0
    return out, printed.getvalue()


def files_of(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_it_ships_the_course_and_leaves_out_the_answers(handout):
    out, printed = handout
    files = files_of(out)
    for path in ("Makefile", "pyproject.toml", "README.md", "faderlib/models.py", "faderlib/exercises/__init__.py",
                 "tests/test_notebooks.py", "tests/conftest.py", "tools/lab.py", *(f"notebooks/{n}.ipynb" for n in NAMES)):
        assert path in files, path
    assert not (out / "notebooks" / "solutions").exists()
    assert not (out / "tools" / "exercises").exists() and not (out / "tools" / "solutions.py").exists()
    assert "tests/test_exercises.py" not in files and "tests/test_handout.py" not in files
    # the course notebooks are the committed ones, placeholders and all
    for name in NAMES:
        assert (out / "notebooks" / f"{name}.ipynb").read_bytes() == (ROOT / "notebooks" / f"{name}.ipynb").read_bytes()
    size = sum((out / p).stat().st_size for p in files)
    assert f"wrote the hand-out: {len(files)} files, {size / 1e6:.1f} MB, into {out}" in printed
    assert "left out, the answers: notebooks/solutions/ (5 files), tools/exercises/ (5 files), tools/solutions.py" \
        in printed
    assert "left out, tests that need the answers: tests/test_exercises.py" in printed


def solution_lines() -> dict[str, str]:
    """Each distinctive line of a solution or model answer -> its block: 25 characters or more, not in
    the matching exercise block (an answer has none: not in any student cell of its source)."""
    lines = {}
    for source in sorted((ROOT / "tools" / "exercises").glob("*.txt")):
        blocks = solutions_tool.parse(source.read_text(encoding="utf-8"), source.name)
        exercises = {b.id: b.source for b in blocks if b.kind == "exercise"}
        student = "\n".join(b.source for b in blocks if b.kind in ("exercise", "markdown"))
        for b in blocks:
            if b.kind in ("solution", "answer"):
                given = {s.strip() for s in (exercises[b.id] if b.kind == "solution" else student).splitlines()}
                for line in b.source.splitlines():
                    s = line.strip()  # an import names a module the student reads anyway: no answer
                    if len(s) >= 25 and s not in given and not s.startswith(("import ", "from ")):
                        lines[line.strip()] = f"{source.name} {b.kind} {b.id}"
    return lines


def test_no_file_of_the_handout_holds_a_line_of_a_solution(handout):
    out, _ = handout
    lines = solution_lines()
    # the library ships by design: a solution line it holds is code the student reads anyway (a
    # standardisation of the probe's inputs); a few such lines at most, or the library gives answers away
    library = {s.strip() for p in (out / "faderlib").rglob("*.py") for s in p.read_text().splitlines()}
    shared = sorted(line for line in lines if line in library)
    assert len(shared) <= 3, shared
    lines = {line: where for line, where in lines.items() if line not in library}
    assert len(lines) >= 100  # the search has something to find
    found = []
    for path in sorted(files_of(out)):
        raw = (out / path).read_bytes().decode("utf-8", errors="ignore")
        texts = [raw]
        if path.endswith(".ipynb"):  # the JSON escapes quotes: the cells' plain text too
            texts += ["".join(c["source"]) for c in json.loads(raw)["cells"]]
        found += [f"{path}: {where}: {line!r}" for line in lines for t in texts if line in t]
    assert not found, "\n".join(found)


def test_the_tools_check_would_stop_a_solution_from_shipping():
    """The tool searches too: a file that holds solutions (this repository's test of the checks)
    is named by the check, and a test that reads the answer files is left out by the rule."""
    assert handout_tool.leaks(ROOT, ["tests/test_exercises.py"])
    assert not handout_tool.leaks(ROOT, ["tests/test_notebooks.py", "faderlib/evaluate.py"])
    assert handout_tool.names_an_answer((ROOT / "tests" / "test_exercises.py").read_text())
    assert handout_tool.names_an_answer('SOURCES = ROOT / "tools/exercises"')
    # a docstring may mention the solutions; the course's notebook test does
    assert not handout_tool.names_an_answer((ROOT / "tests" / "test_notebooks.py").read_text())


def test_a_handout_of_a_copy_without_git_skips_what_each_machine_makes(handout, tmp_path):
    """Outside a git checkout the tool walks the tree: the virtualenv, runs, data sets, caches and
    checkpoints stay out, and a hand-out of the hand-out is the same files."""
    out, _ = handout
    tree = tmp_path / "tree"
    shutil.copytree(out, tree)
    for junk in (".venv/bin/python", "runs/course/fader/checkpoints/last.pt", "data/synthetic/img_align_celeba/1.jpg",
                 "faderlib/__pycache__/models.cpython-311.pyc", "notebooks/.ipynb_checkpoints/x.ipynb", "model.pt",
                 ".pytest_cache/v", "faderlib.egg-info/PKG-INFO", "handout/README.md"):
        (tree / junk).parent.mkdir(parents=True, exist_ok=True)
        (tree / junk).write_text("made on this machine")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert handout_tool.main([str(tmp_path / "again"), "--root", str(tree)]) == 0
    assert files_of(tmp_path / "again") == files_of(out)


def test_a_folder_that_is_not_empty_is_refused_in_one_line(handout):
    out, _ = handout
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "handout.py"), str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert f"error: {out} is a folder that is not empty" in done.stderr and f"rm -r {out}" in done.stderr


def test_the_handout_tests_need_nothing_it_leaves_out(handout):
    """Its own `make test` runs what it ships: no shipped test names an answer file, and every module
    of the repository that a shipped test imports (a helper of tests/, faderlib) is in the hand-out."""
    out, _ = handout
    shipped = sorted((out / "tests").glob("*.py"))
    assert len(shipped) > 30
    for path in shipped:
        source = path.read_text()
        assert not handout_tool.names_an_answer(source), path.name
        for node in ast.walk(ast.parse(source)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                top = name.split(".")[0]
                for where in (f"tests/{top}.py", f"{top}/__init__.py"):
                    if (ROOT / where).is_file():
                        assert (out / where).is_file(), f"{path.name} imports {name}, which the hand-out lacks"


def test_the_handout_notebooks_run_with_their_placeholders(handout, synthetic_dir, course_dir, tmp_path, monkeypatch):
    """From the hand-out's notebooks/ on the hand-out's own faderlib, in course order: every exercise
    check prints TODO (test_notebooks.execute checks it) and no cell fails. Notebooks 04 and 05 open a
    copy of a tiny trained course folder (conftest's), so nothing trains here; notebook 03, whose
    training takes a minute, is the committed file test_notebooks.py runs (the hand-out's is the same
    bytes: test_it_ships_the_course_and_leaves_out_the_answers)."""
    out, _ = handout
    monkeypatch.setenv("PYTHONPATH", str(out))  # the kernels import the hand-out's faderlib
    runs = tmp_path / "runs"
    shutil.copytree(course_dir.fader.parent, runs)  # the notebooks may write beside the runs (04's sample photo)
    params = dict(TINY, DATA_DIR=str(synthetic_dir), RUN_DIR=str(runs), COMPARE_BALANCE=False)
    executed = {name: execute(name, tmp_path / "out", folder=out / "notebooks", expect="TODO", **params)
                for name in NAMES if not name.startswith("03")}
    assert len(executed) == 4
    assert f"trained in {runs}" in text(executed["05_evaluation"])  # the copied run, nothing trained
    assert "training one now" not in text(executed["04_interpolation_and_sliders"])


def test_make_handout_runs_the_tool_into_an_ignored_folder():
    makefile = (ROOT / "Makefile").read_text()
    assert "\nOUT    ?= handout\n" in makefile
    assert "\nhandout: $(STAMP)" in makefile and "\n\t$(BIN)/python tools/handout.py $(OUT)\n" in makefile
    assert "handout/" in (ROOT / ".gitignore").read_text().splitlines()
