"""``python -m faderlib ...`` is the same as the ``fader`` command (and works under torchrun)."""

import os


def main(argv: list[str] | None = None) -> int:
    """The ``fader`` command: :func:`faderlib.cli.main`, PyTorch's CPU threads waiting passively.

    PyTorch's OpenMP threads spin while they wait for work. When another process holds a core
    (a notebook kernel, a browser) they fight over the CPU: on a 2-core machine one training
    step was measured 15x slower (1191 ms against 79 ms with passive waiting; 4 to 9x fewer
    images/s in benchmarks/wait_policy.py); waiting passively costs little when the machine
    is idle. libgomp reads ``OMP_WAIT_POLICY`` once, as torch loads it: so it is set here,
    before ``faderlib.cli`` imports torch. A value in the environment is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
