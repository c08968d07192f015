"""``python -m faderlib ...`` is the same as the ``fader`` command (and works under torchrun)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
