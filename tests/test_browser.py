"""The slider app in a real browser: JupyterLab 4 and Voila, headless Chromium driven by Playwright.

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
import http.client
import os
import re
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
from servers import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOK = Path(__file__).with_name("browser_notebook.ipynb")
APP = Path(__file__).resolve().parents[1] / "notebooks" / "apps" / "slider_app.ipynb"
TOOLS = Path(__file__).resolve().parents[1] / "tools"

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


def _notebook(run_dir: Path, path: Path, source: Path = NOTEBOOK) -> None:
    """Copy a notebook, its parameters cell pointing at run_dir (as papermill would)."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    for c in nb.cells:
        if "parameters" in c.metadata.get("tags", []):
            c.source = (f"run_dir = {str(run_dir)!r}" if source == NOTEBOOK
                        else f"RUN_DIR = {str(run_dir)!r}\nDEMO_DIR = None")
    nbformat.write(nb, path)


def _tiny_run_notebook(synthetic_dir, tmp_path, source: Path = NOTEBOOK) -> Path:
    """A folder with sliders.ipynb, a SliderApp on a 1-step run made here."""
    from faderlib.train import TrainConfig, Trainer

    config = TrainConfig(data_dir=str(synthetic_dir), attributes=("Smiling", "Eyeglasses"), image_size=32,
                         steps=1, batch_size=4, eval_every=1, eval_images=4, device="cpu")
    Trainer(config, tmp_path / "run", progress=False).train()
    root = tmp_path / "app"
    root.mkdir()
    _notebook(tmp_path / "run", root / "sliders.ipynb", source)
    return root


def _jupyter_env(tmp_path) -> dict:
    """Jupyter state of its own, and a python3 kernel that is this interpreter, whatever the machine has."""
    home = tmp_path / "jupyter"
    kernel = home / "data" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))
    return {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def lab(synthetic_dir, tmp_path):
    """JupyterLab on 127.0.0.1 with a notebook that builds a SliderApp on a tiny run."""
    root = _tiny_run_notebook(synthetic_dir, tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    yield from _serve_info(cmd, root, tmp_path, port, token, "JupyterLab")


@pytest.fixture
def voila(synthetic_dir, tmp_path):
    """Voila serving the course's app notebook (what `make app` serves) on a tiny run."""
    pytest.importorskip("voila", reason="no voila package: `pip install -e .[dev]` to run the Voila test")
    root = _tiny_run_notebook(synthetic_dir, tmp_path, APP)
    port = _free_port()
    cmd = [sys.executable, str(TOOLS / "app.py"), "sliders.ipynb", "--no-browser", f"--port={port}",
           "--Voila.ip=127.0.0.1", "--show_tracebacks=True"]  # as `make app` starts it: a token of its own
    for info in _serve_info(cmd, root, tmp_path, port, None, "Voila"):
        found = re.search(r"http://localhost:(\d+)/\?token=(\S+)", info["log"].read_text())
        assert found and int(found.group(1)) == port, f"no address with a token printed: {info['log'].read_text()}"
        yield {**info, "token": found.group(2)}


def _serve_info(cmd, root, tmp_path, port, token, what):
    env = _jupyter_env(tmp_path)
    log = tmp_path / f"{what.lower()}.log"
    for _ in serve(cmd, root, env, port, log, what):
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "notebook": "sliders.ipynb", "tmp": tmp_path,
               "log": log}


def _check_sliders(page, scope: str, kernel_line: bool = True) -> None:
    """Sliders rendered as widgets, the venv's kernel, and a keyboard move that changes the edited image."""
    panel = page.locator(scope)
    panel.locator(".widget-slider").first.wait_for(timeout=90_000)
    images = panel.locator(".widget-image")
    page.wait_for_function(
        """(scope) => { const im = [...document.querySelectorAll(scope + ' .widget-image')];
                        return im.length >= 3 && im.every(i => i.src && i.complete && i.naturalWidth > 0); }""",
        arg=scope, timeout=30_000)
    text = panel.inner_text()
    assert "FloatSlider(" not in text and "Box(children=" not in text, text
    if kernel_line:
        assert f"kernel: {sys.executable}" in text, text  # the venv's interpreter runs the notebook
    assert "Error" not in text, text
    assert panel.locator(".widget-slider").count() == 2
    # each picture on screen at 256 px or more, its pixels enlarged as squares (never smoothed)
    shown = page.evaluate(
        """(scope) => [...document.querySelectorAll(scope + ' .widget-image')].map(i => {
               const r = i.getBoundingClientRect();
               return [r.width, r.height, getComputedStyle(i).imageRendering, i.naturalWidth]; })""", scope)
    assert len(shown) == 3 and all(w >= 256 and h >= 256 and how == "pixelated" and natural == 32
                                   for w, h, how, natural in shown), shown

    before = images.nth(2).get_attribute("src")  # original, reconstruction, edited
    handle = panel.locator(".noUi-handle").first
    handle.focus()
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        """([scope, old]) => { const im = document.querySelectorAll(scope + ' .widget-image');
                               return im[2].src !== old && im[2].complete && im[2].naturalWidth > 0; }""",
        arg=[scope, before], timeout=30_000)
    readout = panel.locator(".widget-slider .widget-readout").first.inner_text()
    assert float(readout) > 0.0, readout  # Smiling moved up from its true value


def _in_browser(server, url: str, drive) -> None:
    t0 = time.monotonic()
    shot = server["tmp"] / "browser.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            drive(page)
            page.screenshot(path=str(shot))
        except Exception as e:
            page.screenshot(path=str(shot))
            raise AssertionError(f"browser test failed after {time.monotonic() - t0:.0f} s; "
                                 f"screenshot: {shot}, server log: {server['log']}: {e}") from e
        finally:
            browser.close()
    if os.environ.get("FADER_BROWSER_SHOT"):
        shutil.copy(shot, os.environ["FADER_BROWSER_SHOT"])


@pytest.mark.slow
def test_sliders_render_and_update_in_jupyterlab(lab):
    def drive(page):
        page.locator(".jp-NotebookPanel:visible").wait_for(timeout=60_000)
        # the status bar names the kernel once it is connected (the toolbar says idle before)
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=60_000)
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        _check_sliders(page, ".jp-NotebookPanel")
        # the interpolation grid of the last cell (7 columns of 32 px faces): on screen as wide as its
        # PNG (each face 256 px, the grid 1856 px), wider than the 1400 px window: JupyterLab scrolls it
        grid = page.locator(".jp-NotebookPanel .jp-RenderedImage img").last
        grid.wait_for(timeout=60_000)
        page.wait_for_function("(i) => i.complete && i.naturalWidth > 0", arg=grid.element_handle(), timeout=30_000)
        width, natural = grid.evaluate("i => [i.getBoundingClientRect().width, i.naturalWidth]")
        assert width == natural == (7 * 66 + 2) * 4, (width, natural)

    _in_browser(lab, f"{lab['url']}/lab/tree/{lab['notebook']}?reset&token={lab['token']}", drive)


@pytest.mark.slow
def test_sliders_render_and_update_in_voila(voila):
    # Voila runs the notebook itself, then shows its outputs only
    _in_browser(voila, f"{voila['url']}/?token={voila['token']}",
                lambda page: _check_sliders(page, "body", kernel_line=False))


def test_the_app_is_served_only_with_its_token(voila):
    """`make app` serves a notebook that accepts uploads: without the printed token, another user of
    the machine gets a refusal or the login page, never the app."""
    host, port = "127.0.0.1", int(voila["url"].rsplit(":", 1)[1])

    def get(path):
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.getheader("Location") or "", response.read().decode(errors="replace")
        finally:
            conn.close()

    for path in ("/", "/voila/render/sliders.ipynb", "/?token=wrong"):
        status, location, body = get(path)
        assert status == 403 or (status in (301, 302) and "/login" in location), (path, status, location)
        assert "widget" not in body.lower()
    status, _, body = get(f"/?token={voila['token']}")
    assert status == 200 and "Voil" in body
