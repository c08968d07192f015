"""The slider app in a real browser: JupyterLab 4 + headless Chromium, driven by Playwright.

Checks what headless widget tests cannot: the sliders render as widgets (not as their
text repr), the kernel the notebook runs in is this venv's, and a slider moved with the
keyboard changes the displayed picture, the update coming from the app's worker thread
(``throttle=True``) through the kernel's comm.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and the ``playwright``
package (``pip install -e .[dev]``); never ``playwright install``: the browser is the
system's. Skipped, saying so, when either is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = Path(__file__).with_name("browser_notebook.ipynb")

if not Path(CHROMIUM).exists():
    pytest.skip(f"no {CHROMIUM}: install it with `apt-get install -y chromium` to run the browser test",
                allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="no playwright package: `pip install -e .[dev]` to run the browser test "
                                  "(never `playwright install`: the test uses the system's Chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(run_dir: Path, path: Path) -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    for c in nb.cells:
        if "parameters" in c.metadata.get("tags", []):
            c.source = f"run_dir = {str(run_dir)!r}"
    nbformat.write(nb, path)


@pytest.fixture
def lab(synthetic_dir, tmp_path):
    """JupyterLab on 127.0.0.1 with a notebook that builds a SliderApp on a tiny run."""
    from faderlib.train import TrainConfig, Trainer

    config = TrainConfig(data_dir=str(synthetic_dir), attributes=("Smiling", "Eyeglasses"), image_size=32,
                         steps=1, batch_size=4, eval_every=1, eval_images=4, device="cpu")
    Trainer(config, tmp_path / "run", progress=False).train()
    root = tmp_path / "lab"
    root.mkdir()
    _notebook(tmp_path / "run", root / "sliders.ipynb")

    # Jupyter state of its own, and a python3 kernel that is this interpreter, whatever the machine has
    home = tmp_path / "jupyter"
    kernel = home / "data" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "PYTHONUNBUFFERED": "1"}
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "jupyter.log", "w")
    server = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start: {(tmp_path / 'jupyter.log').read_text()[-3000:]}")
                time.sleep(0.25)
        yield {"url": url, "token": token, "notebook": "sliders.ipynb", "tmp": tmp_path}
    finally:
        server.terminate()  # our own server, by its PID
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()


@pytest.mark.slow
def test_sliders_render_and_update_in_jupyterlab(lab):
    t0 = time.monotonic()
    shot = lab["tmp"] / "browser.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{lab['url']}/lab/tree/{lab['notebook']}?reset&token={lab['token']}")
            panel = page.locator(".jp-NotebookPanel:visible")
            panel.wait_for(timeout=60_000)
            # the status bar names the kernel once it is connected (the toolbar says idle before)
            page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=60_000)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()

            panel.locator(".widget-slider").first.wait_for(timeout=60_000)
            images = panel.locator(".widget-image")
            page.wait_for_function(
                """() => { const im = [...document.querySelectorAll('.jp-NotebookPanel .widget-image')];
                           return im.length >= 3 && im.every(i => i.src && i.complete && i.naturalWidth > 0); }""",
                timeout=30_000)
            outputs = panel.locator(".jp-OutputArea-output").all_inner_texts()
            text = "\n".join(outputs)
            assert "FloatSlider(" not in text and "Box(children=" not in text, text
            assert f"kernel: {sys.executable}" in text, text  # the venv's interpreter runs the notebook
            assert "Error" not in text, text
            assert panel.locator(".widget-slider").count() == 2

            before = images.nth(2).get_attribute("src")  # original, reconstruction, edited
            handle = panel.locator(".noUi-handle").first
            handle.focus()
            for _ in range(6):
                page.keyboard.press("ArrowRight")
            page.wait_for_function(
                """(old) => { const im = document.querySelectorAll('.jp-NotebookPanel .widget-image');
                              return im[2].src !== old && im[2].complete && im[2].naturalWidth > 0; }""",
                arg=before, timeout=30_000)
            readout = panel.locator(".widget-slider .widget-readout").first.inner_text()
            assert float(readout) > 0.0, readout  # Smiling moved up from its true value
            page.screenshot(path=str(shot))
        except Exception as e:
            page.screenshot(path=str(shot))
            raise AssertionError(f"browser test failed after {time.monotonic() - t0:.0f} s; "
                                 f"screenshot: {shot}, server log: {lab['tmp'] / 'jupyter.log'}: {e}") from e
        finally:
            browser.close()
    if os.environ.get("FADER_BROWSER_SHOT"):
        shutil.copy(shot, os.environ["FADER_BROWSER_SHOT"])
