"""`make app`: the slider app served by Voila for you alone, behind a token, as JupyterLab is.

    python tools/app.py                         # notebooks/apps/slider_app.ipynb on port 8866
    python tools/app.py --port=9999             # any option goes to `voila` as it is
    python tools/app.py other.ipynb --no-browser

The app accepts uploads and runs code in a kernel: served without a token, anyone else logged in
to the same machine could use it. A fresh random token is made for each start and given to Voila
through ``JUPYTER_TOKEN`` (in the environment, which other users cannot read; a command-line token
would show in their ``ps``); the address to open, token included, is printed first (Voila itself
prints ``?token=...``).
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

APP = "notebooks/apps/slider_app.ipynb"
PORT = 8866


def app_command(args: list[str] | tuple[str, ...] = ()) -> tuple[list[str], int]:
    """Voila's command line for ``args`` (a notebook, then options) and the port it will listen on:
    the one of a ``--port=N`` option, or 8866, never another one silently (``port_retries=0``)."""
    args = list(args)
    notebook = [a for a in args if not a.startswith("-")][:1] or [APP]
    options = [a for a in args if a.startswith("-")]
    port = PORT
    for a in options:
        found = re.fullmatch(r"--(?:Voila\.)?port=(\d+)", a)
        if found:
            port = int(found.group(1))
    if not any(re.match(r"--(?:Voila\.)?port=", a) for a in options):
        options.append(f"--port={port}")
    voila = str(Path(sys.executable).with_name("voila"))
    return [voila, *notebook, "--token", "--Voila.port_retries=0", *options], port


def main(argv: list[str] | None = None) -> int:
    cmd, port = app_command(sys.argv[1:] if argv is None else argv)
    if not Path(cmd[0]).exists():
        print(f"error: {cmd[0]} not found: install the kit first (`make install`)", file=sys.stderr)
        return 2
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "JUPYTER_TOKEN": token}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # for the kernel: PyTorch's threads do not spin
    print("The slider app, for you alone: open this address (its token keeps other users of this machine out):")
    print(f"    http://localhost:{port}/?token={token}")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)  # Voila takes this process's place (Ctrl-C stops it as before)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
