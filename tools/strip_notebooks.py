"""Clear the outputs of the course notebooks before committing them.

    python tools/strip_notebooks.py            # strip every notebook under notebooks/ in place
    python tools/strip_notebooks.py --check    # exit 1 (and name them) if any has outputs
    python tools/strip_notebooks.py a.ipynb    # only these files

Removes outputs, execution counts and the metadata that running a notebook adds (papermill's,
widget state, timings); keeps every cell's source, id and tags (the ``parameters`` tag included)
and the notebook's kernelspec.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CELL_KEYS_KEPT = ("tags",)
NOTEBOOK_KEYS_KEPT = ("kernelspec", "language_info")


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without outputs, execution counts or run metadata (changed in place)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = nbformat.NotebookNode({k: v for k, v in cell.metadata.items() if k in CELL_KEYS_KEPT})
    nb.metadata = nbformat.NotebookNode({k: v for k, v in nb.metadata.items() if k in NOTEBOOK_KEYS_KEPT})
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every .ipynb under notebooks/)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is not clean")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    dirty = []
    for path in paths:
        original = path.read_text(encoding="utf-8")
        nb = strip(nbformat.reads(original, as_version=4))
        cleaned = nbformat.writes(nb) + "\n"
        if cleaned != original:
            dirty.append(path)
            if not args.check:
                path.write_text(cleaned, encoding="utf-8")
    verb = "not clean" if args.check else "stripped"
    for path in dirty:
        print(f"{verb}: {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
