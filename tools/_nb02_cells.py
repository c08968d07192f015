"""One-off: put the pictures of faderlib.diagrams into notebook 02 (idempotent; delete it once run).

    python tools/_nb02_cells.py                    # edits notebooks/02_networks_and_losses.ipynb, then
                                                   # rewrites its teacher's copy (tools/solutions.py)
    python tools/_nb02_cells.py COPY.ipynb         # edits a copy only (to try it)

Four cells, placed by cell id; running it again first removes the cells it placed, so a second run
changes nothing:

* ``cell-arch-md`` and ``cell-arch`` right after ``cell-06`` (the cell that builds the course's model
  configuration ``config`` and prints its layer table): the architecture drawn from that ``config``;
* ``cell-game`` right after ``cell-targets`` (the flip and uniform targets side by side), then
  ``cell-game-md``: the two-player game for both targets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "02_networks_and_losses.ipynb"

ARCH_ANCHOR, GAME_ANCHOR = "cell-06", "cell-targets"

ARCH_MD = ("The same networks as a picture, drawn by `faderlib.diagrams.draw_architecture` from `config` (every "
           "shape on it is measured\non the real networks): the encoder down to $z$, the decoder back up with the "
           "code of $y$ entering each of its\nlayers, and $P$ reading $y$ from $z$.")
ARCH_CODE = ("from faderlib.diagrams import draw_architecture\n"
             "\n"
             "draw_architecture(config)")
GAME_CODE = ("from faderlib.diagrams import draw_game\n"
             "\n"
             "display(draw_game(\"flip\"), draw_game(\"uniform\"))   # the paper's target, then the uniform one")
GAME_MD = ("The discriminator's step (red) is the same in both games: only the adversarial term of the "
           "autoencoder's step\n(blue) changes its target. `draw_game(\"reverse\")` draws the third choice, "
           "gradient reversal.")

OWNED = ("cell-arch-md", "cell-arch", "cell-game", "cell-game-md")


def _index(cells, ident: str) -> int:
    for i, cell in enumerate(cells):
        if cell.get("id") == ident:
            return i
    raise SystemExit(f"error: the notebook has no cell {ident!r} to place the pictures after; the anchors are "
                     f"{ARCH_ANCHOR!r} (builds `config`) and {GAME_ANCHOR!r} (the two targets)")


def place(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.cells = [c for c in nb.cells if c.get("id") not in OWNED]
    arch = _index(nb.cells, ARCH_ANCHOR)
    if "config = " not in nb.cells[arch].source or "model_config()" not in nb.cells[arch].source:
        raise SystemExit(f"error: cell {ARCH_ANCHOR!r} no longer builds `config` (the course's model configuration); "
                         "choose the new anchor in tools/_nb02_cells.py")
    nb.cells[arch + 1:arch + 1] = [nbformat.v4.new_markdown_cell(ARCH_MD, id="cell-arch-md"),
                                   nbformat.v4.new_code_cell(ARCH_CODE, id="cell-arch")]
    game = _index(nb.cells, GAME_ANCHOR)
    nb.cells[game + 1:game + 1] = [nbformat.v4.new_code_cell(GAME_CODE, id="cell-game"),
                                   nbformat.v4.new_markdown_cell(GAME_MD, id="cell-game-md")]
    return nb


def main(argv: list[str]) -> int:
    path = Path(argv[0]).resolve() if argv else NOTEBOOK
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb) + "\n"
    text = nbformat.writes(place(nb)) + "\n"
    nbformat.validate(nbformat.reads(text, as_version=4))
    if text == before:
        print(f"unchanged: {path}")
    else:
        path.write_text(text, encoding="utf-8")
        print(f"written: {path}")
    if path == NOTEBOOK:  # the teacher's copy follows the course notebook
        return subprocess.call([sys.executable, str(ROOT / "tools" / "solutions.py"), NOTEBOOK.stem])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
