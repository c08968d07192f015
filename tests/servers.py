"""Starting a server for a test (JupyterLab, Voila) and stopping it, shared by the browser and
first-contact tests."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest


def serve(cmd: list[str], cwd: Path | None, env: dict, port: int, log_path: Path, what: str, wait_s: float = 60):
    """Start a server by its command line; wait until its port listens (or fail the test with the
    end of its log); stop it, by its own PID, after. A generator: ``for server in serve(...)``,
    ``yield from`` in a fixture, or ``contextlib.contextmanager(serve)``."""
    log = open(log_path, "w")
    server = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"{what} did not start: {log_path.read_text()[-3000:]}")
                time.sleep(0.25)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()
