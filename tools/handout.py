"""Write the student hand-out: this repository without the answers to its exercises.

    python tools/handout.py OUT        # or: make handout (OUT=handout by default, a git-ignored folder)

**What it holds.** The repository's files (``git ls-files`` in a git checkout, the working copy of
each; elsewhere every file but the virtualenv, runs, caches, data sets and build outputs), less:

* the answers: ``notebooks/solutions/`` (the teacher's copies), ``tools/exercises/`` (the one source
  of the exercises and their solutions) and ``tools/solutions.py`` (the tool that needs them);
* the tests that need the answers: a ``tests/*.py`` file whose code (docstrings aside) names one of
  those paths, as ``ROOT / "tools" / "solutions.py"`` does. The hand-out's ``make test`` runs the
  others, its notebooks included: they hold the placeholders, so every check prints ``TODO``.

The library (``faderlib/``), the course notebooks, the docs, the Makefile and pyproject.toml ship
as they are, so the hand-out installs and runs like the repository.

**A last check.** Before writing anything, every file to ship is searched for the lines of the
solutions and model answers in ``tools/exercises/`` (those of 25 characters or more that the
student's cells do not hold); a hit is an error naming the file and the line, and nothing is
written. A line the library itself holds (``faderlib/``, which ships by design) is code the
student reads anyway, not a leak.

It writes into a new or empty folder only, and prints what it wrote. ``tests/test_handout.py``
builds one and runs its notebooks.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent

#: The answers: folders (ending in /) and files the hand-out never holds.
ANSWERS = ("notebooks/solutions/", "tools/exercises/", "tools/solutions.py")

#: Without git: folders never walked (anywhere in the tree), and files never shipped.
SKIP_DIRS = {".git", ".venv", "venv", "runs", "handout", "__pycache__", ".pytest_cache", ".ipynb_checkpoints",
             "build", "dist", "node_modules", "fader_cache"}
SKIP_FILES = {"benchmarks/results.md", "gpu_check.json"}
SKIP_SUFFIXES = (".pt", ".pyc", ".egg-info")

#: Solution lines this short are too common to mean anything ("import numpy as np").
MIN_LINE = 25


class HandoutError(Exception):
    """A hand-out that cannot be written; the message says why and what to do."""


# ----------------------------------------------------------------------------- which files
def repository_files(root: Path) -> list[str]:
    """The files of the repository, as POSIX paths relative to ``root``."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is not None and Path(top.strip()).resolve() == root.resolve():
        listed = _git(root, "ls-files", "-z")
        return sorted(p for p in listed.split("\0") if p and (root / p).is_file())
    files = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        rel = here.relative_to(root).as_posix()
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        if rel == "data":  # data sets are made on each machine: only the folder's README ships
            dirs[:] = []
            names = [n for n in names if n == "README.md"]
        for name in sorted(names):
            path = name if rel == "." else f"{rel}/{name}"
            if path not in SKIP_FILES and not name.endswith(SKIP_SUFFIXES):
                files.append(path)
    return sorted(files)


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    except OSError:  # no git on this machine
        return None
    return done.stdout if done.returncode == 0 else None


def is_answer(path: str) -> bool:
    return any(path == a or (a.endswith("/") and path.startswith(a)) for a in ANSWERS)


def names_an_answer(source: str) -> bool:
    """Whether Python ``source`` names an answer path in its code: all the parts of one of
    :data:`ANSWERS` among its string constants (``"tools" / "solutions.py"``, ``"tools/exercises"``).
    Docstrings do not count: a test may say what it does not need."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    parts = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            parts.update(p for p in node.value.split("/") if p)
    return any(set(PurePosixPath(a).parts) <= parts for a in ANSWERS)


def plan(root: Path = ROOT) -> tuple[list[str], dict[str, list[str]]]:
    """The files the hand-out ships, and those left out by reason."""
    ship, left = [], {"the answers": [], "tests that need the answers": []}
    for path in repository_files(root):
        if is_answer(path):
            left["the answers"].append(path)
        elif path.startswith("tests/") and path.endswith(".py") and names_an_answer(_read(root / path)):
            left["tests that need the answers"].append(path)
        else:
            ship.append(path)
    return ship, left


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return ""


# ----------------------------------------------------------------------------- the last check
def _imports(line: str) -> bool:
    """An import names a module of the library or of Python, which the student reads anyway: no answer."""
    return line.startswith("import ") or (line.startswith("from ") and " import " in line)


def solution_lines(root: Path) -> dict[str, str]:
    """``{line: block id}``: the lines of the solutions and model answers of ``tools/exercises/*.txt``
    (:data:`MIN_LINE` characters or more, stripped) that none of the student's cells of the same
    source holds, less those the library ``faderlib/`` holds and the imports. Empty where the sources are absent
    (a hand-out of a hand-out)."""
    tool = root / "tools" / "solutions.py"
    sources = sorted((root / "tools" / "exercises").glob("*.txt"))
    if not tool.is_file() or not sources:
        return {}
    spec = importlib.util.spec_from_file_location("fader_solutions_for_handout", tool)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    library = "\n".join(_read(p) for p in sorted((root / "faderlib").rglob("*.py")))
    library_lines = {line.strip() for line in library.splitlines()}
    lines: dict[str, str] = {}
    for source in sources:
        blocks = module.parse(source.read_text(encoding="utf-8"), source.name)
        student = {line.strip() for b in blocks if b.kind in ("markdown", "exercise") for line in b.source.splitlines()}
        for b in blocks:
            if b.kind not in ("solution", "answer"):
                continue
            for line in b.source.splitlines():
                s = line.strip()
                if len(s) >= MIN_LINE and s not in student and s not in library_lines and not _imports(s):
                    lines.setdefault(s, b.id)
    return lines


def searchable_text(path: Path) -> str:
    """A file's text as the search reads it; a notebook's cells also as plain text (its JSON escapes quotes)."""
    text = _read(path)
    if path.suffix == ".ipynb" and text:
        import json

        try:
            cells = json.loads(text).get("cells", [])
        except ValueError:
            return text
        text += "\n" + "\n".join("".join(c.get("source", "")) for c in cells)
    return text


def leaks(root: Path, files: list[str]) -> list[str]:
    """``"path: holds a line of the solution of ID: ..."`` for each file to ship that holds one."""
    lines = solution_lines(root)
    found = []
    for path in files:
        text = searchable_text(root / path)
        for line, ident in lines.items():
            if line in text:
                found.append(f"{path}: holds a line of {ident}: {line[:70]!r}")
    return found


# ----------------------------------------------------------------------------- writing it
def write_handout(out: Path, root: Path = ROOT) -> dict:
    """Write the hand-out of ``root`` into ``out`` (new or empty); returns what was written:
    ``files`` (the paths), ``bytes``, ``left`` (left out, by reason)."""
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        what = "a folder that is not empty" if out.is_dir() else "a file"
        raise HandoutError(f"{out} is {what}: the hand-out is written into a new or empty folder only. Remove it "
                           f"(rm -r {out}) or name another (make handout OUT=... / python tools/handout.py OUT)")
    files, left = plan(root)
    files = [p for p in files if not (root / p).resolve().is_relative_to(out)]
    found = leaks(root, files)
    if found:
        raise HandoutError("these files would hand out a solution; nothing was written. Move the solution to "
                           "tools/exercises/, or leave the file out (tools/handout.py):\n  " + "\n  ".join(found))
    size = 0
    for path in files:
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / path, target)
        size += target.stat().st_size
    return {"files": files, "bytes": size, "left": left, "out": out}


def _summary(result: dict) -> str:
    lines = [f"wrote the hand-out: {len(result['files'])} files, {result['bytes'] / 1e6:.1f} MB, into {result['out']}"]
    for reason, paths in result["left"].items():
        if not paths:
            continue
        shown = []
        for a in ANSWERS:  # a folder of answers in one entry
            inside = [p for p in paths if a.endswith("/") and p.startswith(a)]
            if inside:
                shown.append(f"{a} ({len(inside)} files)")
        shown += [p for p in paths if not any(a.endswith("/") and p.startswith(a) for a in ANSWERS)]
        lines.append(f"left out, {reason}: {', '.join(shown)}")
    lines.append(f"next: hand out {result['out']} (a student runs `make lab` there; `make test` checks it)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write (new or empty)")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)  # tests: another tree
    args = parser.parse_args(argv)
    try:
        result = write_handout(args.out, args.root.resolve())
    except HandoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
