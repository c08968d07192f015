"""Write the exercises into the course notebooks and the teacher's copies, notebooks/solutions/, from one source.

    python tools/solutions.py             # update the exercise cells of notebooks/NN_*.ipynb and write
                                          # notebooks/solutions/NN_*.ipynb, for every tools/exercises/NN_*.txt
    python tools/solutions.py --check     # change nothing; exit 1 (and say what) if anything is out of date
    python tools/solutions.py 02_networks_and_losses    # only these notebooks

**The one source.** ``tools/exercises/NN_name.txt`` holds every cell of the exercises of
``notebooks/NN_name.ipynb``: the student's cells (a markdown prompt, a code cell with a ``...``
placeholder and its check), each exercise's solution, and model answers to open questions.
Everything else of the notebook is the notebook itself. The tool puts the student's cells into the
course notebook (at the places the source names), and writes the teacher's copy: the same notebook
with every exercise cell's source replaced by its solution and the model answers added. So the two
versions cannot drift: ``--check`` fails when either is not what the tool would write.

**The format.** A line ``#%% KIND ID [after ANCHOR]`` starts a block; the block is the lines up to
the next such line (leading and trailing blank lines dropped). Lines before the first block are
comments. KIND is one of:

* ``markdown ID``: a markdown cell of the course notebook (and so of the solutions);
* ``exercise ID``: a code cell of the course notebook, tagged ``exercise``: the placeholder (``...``,
  ``# YOUR CODE``) and the check's call. Its ID must have a ``solution``;
* ``solution ID``: the source of exercise ID's cell in the solutions (tagged ``solution`` there); it must
  call the same checks as the exercise;
* ``answer ID``: a markdown cell of the solutions only (tagged ``solution-only``): a model answer.

IDs are cell ids: ``ex-...`` for the student's cells (markdown, exercise), ``ans-...`` for answers. A
markdown or exercise cell goes right after ``ANCHOR`` (a cell id of the notebook or of an earlier
block), or without ``after``, right after the previous markdown or exercise block. An answer goes after
its ANCHOR, or after the previous block. A cell of the course notebook whose id starts with ``ex-`` and
that the source does not declare is removed.

**The solutions run from notebooks/solutions/.** The tool rewrites the relative paths of their
parameters cell (``"../runs/course"`` becomes ``"../../runs/course"``), so that they name the same
folders as the course notebooks', and adds a note under the title.
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this tree's faderlib, whichever is installed
    sys.path.insert(0, str(ROOT))

from faderlib.exercises.checking import checks_called, without_magics  # noqa: E402 (after the path)

KINDS = ("markdown", "exercise", "solution", "answer")
HEADER = re.compile(r"^#%%\s+(?P<kind>\w+)\s+(?P<id>[A-Za-z0-9_-]+)(?:\s+after\s+(?P<after>[A-Za-z0-9_-]+))?\s*$")
NOTE_ID = "ans-solutions-note"


class SourceError(ValueError):
    """A mistake in an exercises source file or in its notebook (named, with what to do)."""


@dataclass
class Block:
    kind: str
    id: str
    after: str | None
    source: str
    line: int


def parse(text: str, name: str = "<source>") -> list[Block]:
    """The blocks of an exercises source (see the module's docstring), checked."""
    blocks: list[Block] = []
    current: Block | None = None
    lines: list[str] = []

    def close():
        if current is not None:
            current.source = "\n".join(lines).strip("\n")
            blocks.append(current)

    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#%%"):
            m = HEADER.match(line)
            if not m or m["kind"] not in KINDS:
                raise SourceError(f"{name}:{number}: {line!r} is not a block header; write "
                                  f"'#%% KIND ID [after ANCHOR]' with KIND one of {', '.join(KINDS)}")
            close()
            current, lines = Block(m["kind"], m["id"], m["after"], "", number), []
        elif current is not None:
            lines.append(line)
    close()
    _validate(blocks, name)
    return blocks


def _validate(blocks: list[Block], name: str) -> None:
    seen: dict[tuple[str, str], Block] = {}
    for b in blocks:
        where = f"{name}:{b.line}"
        prefix = "ans-" if b.kind == "answer" else "ex-"
        if not b.id.startswith(prefix):
            raise SourceError(f"{where}: the id of a {b.kind} block must start with {prefix!r}, got {b.id!r}")
        key = ("solution" if b.kind == "solution" else "cell", b.id)
        if key in seen:
            raise SourceError(f"{where}: {b.id!r} is declared twice (also line {seen[key].line})")
        seen[key] = b
        if b.kind == "solution" and b.after:
            raise SourceError(f"{where}: a solution replaces its exercise's cell: drop 'after {b.after}'")
        if not b.source.strip():
            raise SourceError(f"{where}: the {b.kind} block {b.id!r} is empty")
        if b.kind in ("exercise", "solution"):
            try:
                tree = ast.parse(without_magics(b.source))
            except SyntaxError as e:
                raise SourceError(f"{where}: the {b.kind} {b.id!r} is not valid Python ({e.msg}, its line "
                                  f"{e.lineno})") from None
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    raise SourceError(f"{where}: the {b.kind} {b.id!r} defines {node.name}: the notebooks define "
                                      "no function or class (a lambda is fine)")
    exercises = {b.id: b for b in blocks if b.kind == "exercise"}
    solutions = {b.id: b for b in blocks if b.kind == "solution"}
    for ident, b in exercises.items():
        if ident not in solutions:
            raise SourceError(f"{name}:{b.line}: the exercise {ident!r} has no '#%% solution {ident}' block")
        if "..." not in b.source and "YOUR CODE" not in b.source:
            raise SourceError(f"{name}:{b.line}: the exercise {ident!r} has no placeholder ('...' or '# YOUR CODE')")
        if not checks_called(b.source):
            raise SourceError(f"{name}:{b.line}: the exercise {ident!r} calls no check (faderlib.exercises.check_...)")
        if checks_called(b.source) != checks_called(solutions[ident].source):
            raise SourceError(f"{name}:{solutions[ident].line}: the solution of {ident!r} calls "
                              f"{checks_called(solutions[ident].source)}, its exercise {checks_called(b.source)}: "
                              "both must call the same checks")
    for ident, b in solutions.items():
        if ident not in exercises:
            raise SourceError(f"{name}:{b.line}: the solution {ident!r} has no '#%% exercise {ident}' block")


# ----------------------------------------------------------------------------- building the notebooks
def _index(cells, ident: str, what: str, name: str) -> int:
    for i, cell in enumerate(cells):
        if cell.get("id") == ident:
            return i
    raise SourceError(f"{name}: {what} is placed after {ident!r}, which is not a cell of the notebook; name an "
                      "existing cell id (or an earlier block's)")


def _place(cells, blocks: list[Block], make, name: str) -> None:
    previous = None
    for b in blocks:
        anchor = b.after or previous
        if anchor is None:
            raise SourceError(f"{name}:{b.line}: the first block needs 'after ANCHOR' (the id of a notebook cell)")
        cells.insert(_index(cells, anchor, f"{b.kind} {b.id!r}", name) + 1, make(b))
        previous = b.id


def student_notebook(nb: nbformat.NotebookNode, blocks: list[Block], name: str) -> nbformat.NotebookNode:
    """The course notebook with its exercise cells as the source declares them (a new notebook)."""
    nb = copy.deepcopy(nb)
    declared = {b.id for b in blocks if b.kind in ("markdown", "exercise")}
    for cell in nb.cells:
        ident = cell.get("id", "")
        if not ident.startswith("ex-") and (ident in declared or ident.startswith("ans-")):
            raise SourceError(f"{name}: the notebook already has a cell {ident!r} that the tool does not own")
    nb.cells = [c for c in nb.cells if not c.get("id", "").startswith("ex-")]

    def make(b: Block):
        if b.kind == "markdown":
            return nbformat.v4.new_markdown_cell(b.source, id=b.id)
        return nbformat.v4.new_code_cell(b.source, id=b.id, metadata={"tags": ["exercise"]})

    _place(nb.cells, [b for b in blocks if b.kind in ("markdown", "exercise")], make, name)
    return nb


def solution_notebook(student: nbformat.NotebookNode, blocks: list[Block], name: str,
                      source_name: str) -> nbformat.NotebookNode:
    """The teacher's copy of a course notebook (as :func:`student_notebook` returns it)."""
    nb = copy.deepcopy(student)
    solutions = {b.id: b.source for b in blocks if b.kind == "solution"}
    for cell in nb.cells:
        if cell.get("id") in solutions:
            cell.source = solutions[cell.id]
            cell.metadata["tags"] = ["solution"]
        elif "parameters" in cell.metadata.get("tags", []):
            cell.source = rewrite_paths(cell.source)
    note = nbformat.v4.new_markdown_cell(textwrap.fill(
        "**The teacher's copy, with the exercises answered.** Its exercise cells hold their solutions, and "
        "model answers to the open questions follow them. It runs from `notebooks/solutions/`: the relative "
        "paths of the parameters cell point one folder further up than the course notebook's, to the same "
        f"folders. Written by `tools/solutions.py` from `notebooks/{name}.ipynb` and `{source_name}`: edit "
        "those, then run `python tools/solutions.py`, never this file.", 100, break_on_hyphens=False,
        break_long_words=False), id=NOTE_ID, metadata={"tags": ["solution-only"]})
    nb.cells.insert(1, note)

    def make(b: Block):
        return nbformat.v4.new_markdown_cell(b.source, id=b.id, metadata={"tags": ["solution-only"]})

    previous = None
    for b in blocks:  # answers after their anchor, or after the block before them
        if b.kind == "answer":
            anchor = b.after or previous
            if anchor is None:
                raise SourceError(f"{name}:{b.line}: the answer {b.id!r} needs 'after ANCHOR'")
            nb.cells.insert(_index(nb.cells, anchor, f"answer {b.id!r}", name) + 1, make(b))
        previous = b.id
    return nb


_RELATIVE = re.compile(r"""^(?P<lead>\s*[A-Za-z_]\w*\s*=\s*)(?P<q>["'])\.\./""")


_PADDING = re.compile(r"(?<=\S)( {4,})(?=#)")


def rewrite_paths(source: str) -> str:
    """A parameters cell whose relative paths (string literals starting with ``../``) point one
    folder further up: what ``notebooks/`` names, from ``notebooks/solutions/`` (a comment aligned
    with the others stays aligned)."""
    lines = []
    for line in source.splitlines():
        new = _RELATIVE.sub(lambda m: f"{m['lead']}{m['q']}../../", line)
        if new != line:
            new = _PADDING.sub(lambda m: m[1][3:], new, count=1)
        lines.append(new)
    return "\n".join(lines)


def text_of(nb: nbformat.NotebookNode) -> str:
    """A notebook as the course commits it (tools/strip_notebooks.py writes the same)."""
    return nbformat.writes(nb) + "\n"


# ----------------------------------------------------------------------------- the command
def sources(root: Path) -> dict[str, Path]:
    """notebook name -> its exercises source, for every tools/exercises/*.txt."""
    return {p.stem: p for p in sorted((root / "tools" / "exercises").glob("*.txt"))}


def build(root: Path, name: str, source: Path) -> tuple[str, str]:
    """The texts the course notebook ``name`` and its solution should have."""
    path = root / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        raise SourceError(f"{source}: there is no notebook {path} for it; name the file after a notebook of "
                          "notebooks/")
    shown = source.relative_to(root).as_posix() if source.is_relative_to(root) else str(source)
    blocks = parse(source.read_text(encoding="utf-8"), shown)
    nb = nbformat.read(path, as_version=4)
    student = student_notebook(nb, blocks, name)
    solution = solution_notebook(student, blocks, name, shown)
    nbformat.validate(student)
    nbformat.validate(solution)
    return text_of(student), text_of(solution)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks (default: every one with a source in tools/exercises/)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)  # tests: a copy of the tree
    args = parser.parse_args(argv)
    root = args.root.resolve()
    found = sources(root)
    names = args.names or list(found)
    unknown = [n for n in names if n not in found]
    if unknown:
        print(f"no exercises source for {', '.join(unknown)} in {root / 'tools' / 'exercises'} (there are: "
              f"{', '.join(found) or 'none'})", file=sys.stderr)
        return 2
    stale = [] if args.names else [p for p in sorted((root / "notebooks" / "solutions").glob("*.ipynb"))
                                   if p.stem not in found]
    problems, written = [], []
    for name in names:
        try:
            student, solution = build(root, name, found[name])
        except SourceError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for path, text, what in ((root / "notebooks" / f"{name}.ipynb", student, "its exercise cells"),
                                 (root / "notebooks" / "solutions" / f"{name}.ipynb", solution, "the solutions")):
            old = path.read_text(encoding="utf-8") if path.is_file() else None
            if old == text:
                continue
            if args.check:
                problems.append(f"out of date: {path.relative_to(root)} ({what}: run python tools/solutions.py)")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                written.append(path)
    for path in stale:
        problems.append(f"no source: {path.relative_to(root)} has no tools/exercises/{path.stem}.txt; delete it "
                        "or restore its source")
    for path in written:
        print(f"written: {path.relative_to(root)}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
