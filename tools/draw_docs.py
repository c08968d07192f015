"""Draw the pictures of the method that the documentation shows, from the library itself.

    python tools/draw_docs.py          # writes docs/architecture.png and docs/game.png

* ``docs/architecture.png``: :func:`faderlib.diagrams.draw_architecture` of the course's networks
  (``TrainConfig.from_recipe("course", ...)``'s model configuration at 64 px, attributes Smiling,
  Eyeglasses and Male), every shape measured on the real networks;
* ``docs/game.png``: :func:`faderlib.diagrams.draw_game` for the paper's adversary (``"flip"``).

Run it again after a change to the networks or to the pictures; both files stay under 150 KB.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this tree's faderlib, whichever is installed
    sys.path.insert(0, str(ROOT))

from faderlib.diagrams import draw_architecture, draw_game  # noqa: E402 (after the path)
from faderlib.train import TrainConfig  # noqa: E402

IMAGE_SIZE = 64
ATTRIBUTES = ["Smiling", "Eyeglasses", "Male"]
DPI = 100
LIMIT = 150_000  # bytes


def main() -> int:
    config = TrainConfig.from_recipe("course", image_size=IMAGE_SIZE, attributes=ATTRIBUTES).model_config()
    pictures = {"architecture.png": draw_architecture(config), "game.png": draw_game("flip")}
    for name, fig in pictures.items():
        path = ROOT / "docs" / name
        fig.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: the same bytes on every run
        size = path.stat().st_size
        print(f"written: {path.relative_to(ROOT)} ({size / 1000:.0f} KB)")
        if size > LIMIT:
            print(f"error: {path.relative_to(ROOT)} is {size / 1000:.0f} KB, over the {LIMIT // 1000} KB the "
                  "repository allows; lower DPI in tools/draw_docs.py", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
