"""First contact with the course: `make lab` (tools/lab.py) opens the first notebook, without the
"official Jupyter news?" toast, and starts as root (a container) with a note saying why."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from servers import serve

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "lab.py"
PLUGIN = "@jupyterlab/apputils-extension:notification"

_spec = importlib.util.spec_from_file_location("fader_lab_tool", TOOL)
lab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lab)


# ------------------------------------------------------------------------------------- the settings override
def test_the_override_turns_the_news_off(tmp_path):
    path, notes = lab.install_settings(tmp_path / "settings")
    assert path == tmp_path / "settings" / "overrides.json" and notes == []
    written = json.loads(path.read_text())
    assert written[PLUGIN]["fetchNews"] == "false"  # "Never" (a string in the schema: "none" asks)
    assert written[PLUGIN]["checkForUpdates"] is False


def test_the_setting_names_are_the_installed_jupyterlabs():
    """The keys and values written are the ones the installed JupyterLab's schema declares."""
    pytest.importorskip("jupyterlab", reason="no jupyterlab package: `pip install -e .[dev]`")
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    schema = json.loads((schemas / "@jupyterlab" / "apputils-extension" / "notification.json").read_text())
    props = schema["properties"]
    for key, value in lab.SETTINGS[PLUGIN].items():
        assert key in props, f"{key} is not a setting of {PLUGIN} in {schemas}"
    assert {"const": lab.SETTINGS[PLUGIN]["fetchNews"], "title": "Never"} in props["fetchNews"]["oneOf"]
    assert props["checkForUpdates"]["type"] == "boolean"


def test_the_override_goes_where_this_jupyterlab_reads_it():
    jupyterlab = pytest.importorskip("jupyterlab.labapp", reason="no jupyterlab package: `pip install -e .[dev]`")
    assert lab.settings_dir() == Path(jupyterlab.LabApp().app_settings_dir)


def test_an_existing_overrides_file_is_merged_and_its_owner_wins(tmp_path):
    folder = tmp_path / "settings"
    folder.mkdir()
    mine = {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
            PLUGIN: {"checkForUpdates": True, "doNotDisturbMode": True}}
    (folder / "overrides.json").write_text(json.dumps(mine))
    path, notes = lab.install_settings(folder)
    merged = json.loads(path.read_text())
    assert merged["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}  # untouched
    assert merged[PLUGIN] == {"checkForUpdates": True, "doNotDisturbMode": True, "fetchNews": "false"}
    assert len(notes) == 1 and "checkForUpdates" in notes[0] and "kept" in notes[0]
    stamp = path.stat().st_mtime_ns
    assert lab.install_settings(folder)[0].stat().st_mtime_ns == stamp  # nothing to add: not rewritten


def test_an_overrides_file_that_is_not_json_is_left_alone(tmp_path):
    folder = tmp_path / "settings"
    folder.mkdir()
    (folder / "overrides.json").write_text('{"a": 1,')  # a half-edited file of the machine's owner
    with pytest.raises(lab.SettingsError, match=r"overrides\.json cannot be read as JSON.*left as it is"):
        lab.install_settings(folder)
    assert (folder / "overrides.json").read_text() == '{"a": 1,'


# ------------------------------------------------------------------------------------- the command line
def _make_recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_make_lab_and_make_install_go_through_the_tool():
    assert _make_recipe("lab") == ["$(BIN)/python tools/lab.py $(LAB_ARGS)"]
    assert "$(BIN)/python tools/lab.py --settings-only" in _make_recipe("$(STAMP)")


def test_the_command_opens_the_first_notebook():
    cmd = lab.lab_command(as_root=False)
    assert cmd[1] == "lab" and Path(cmd[0]).name == "jupyter"
    assert f"--ServerApp.root_dir={ROOT / 'notebooks'}" in cmd
    assert "--LabApp.default_url=/lab/tree/01_data_and_attributes.ipynb" in cmd
    assert (ROOT / "notebooks" / "01_data_and_attributes.ipynb").is_file()
    assert "--allow-root" not in cmd
    assert lab.lab_command(["--port", "9999"], as_root=False)[-2:] == ["--port", "9999"]


def test_as_root_it_allows_root_and_says_why(monkeypatch, tmp_path, capsys):
    assert "--allow-root" in lab.lab_command(as_root=True)
    started = []
    monkeypatch.setattr(lab, "running_as_root", lambda: True)
    monkeypatch.setattr(lab, "settings_dir", lambda: tmp_path / "settings")
    monkeypatch.setattr(lab.os, "execv", lambda path, args: started.append(args))
    lab.main(["--no-browser"])
    assert started and "--allow-root" in started[0] and started[0][-1] == "--no-browser"
    err = capsys.readouterr().err
    assert "running as root" in err and "--allow-root" in err and "container" in err
    assert (tmp_path / "settings" / "overrides.json").is_file()  # installed before the start


def test_the_kernels_of_the_lab_wait_passively(monkeypatch, tmp_path):
    started = []
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(lab, "settings_dir", lambda: tmp_path / "settings")
    monkeypatch.setattr(lab.os, "execv", lambda path, args: started.append(os.environ.get("OMP_WAIT_POLICY")))
    lab.main([])
    assert started == ["PASSIVE"]  # JupyterLab, and the kernels it starts, inherit it
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    lab.main([])
    assert started == ["PASSIVE", "ACTIVE"]  # a value of the user's is kept


def test_print_shows_the_command_and_starts_nothing():
    r = subprocess.run([sys.executable, str(TOOL), "--print"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "lab --ServerApp.root_dir=" in r.stdout and "01_data_and_attributes.ipynb" in r.stdout
    assert ("--allow-root" in r.stdout) == (os.geteuid() == 0)


# ------------------------------------------------------------------------------------- a real JupyterLab
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.slow
def test_jupyterlab_serves_the_override_and_opens_the_first_notebook(tmp_path):
    """The command line of `make lab`, served on 127.0.0.1 with the override written here: the
    settings API reports the news off, and / leads to the first notebook."""
    pytest.importorskip("jupyterlab", reason="no jupyterlab package: `pip install -e .[dev]` to start JupyterLab")
    settings = tmp_path / "settings"
    lab.install_settings(settings)
    home = tmp_path / "jupyter"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(home / "user-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    port, token = _free_port(), secrets.token_hex(16)
    cmd = lab.lab_command(["--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
                           f"--LabApp.app_settings_dir={settings}"])
    log_path = tmp_path / "lab.log"
    with contextlib.contextmanager(serve)(cmd, None, env, port, log_path, "JupyterLab", wait_s=90):
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/lab/api/settings/{PLUGIN}?token={token}", timeout=30) as r:
            answer = json.load(r)
        props = answer["schema"]["properties"]
        assert props["fetchNews"]["default"] == "false", props["fetchNews"]  # "none" would ask
        assert props["checkForUpdates"]["default"] is False
        with pytest.raises(urllib.error.HTTPError) as redirect:
            urllib.request.build_opener(_NoRedirect).open(f"{url}/?token={token}", timeout=30)
        assert redirect.value.code == 302
        assert redirect.value.headers["Location"].startswith("/lab/tree/01_data_and_attributes.ipynb")
        with urllib.request.urlopen(f"{url}/api/contents/01_data_and_attributes.ipynb?content=0&token={token}",
                                    timeout=30) as r:
            assert json.load(r)["type"] == "notebook"  # served from notebooks/
    text = log_path.read_text()
    assert re.search(r"http://127\.0\.0\.1:\d+/lab/tree/01_data_and_attributes\.ipynb\?token=", text), text[-2000:]


# ------------------------------------------------------------------------------------- the loss plot, projected
def _log(attributes=("Smiling", "Eyeglasses", "Male")):
    import pandas as pd

    rows = []
    for step in range(0, 1001, 50):
        rows.append({"phase": "train", "step": step, "rec_loss": 0.05 / (1 + step / 300), "dis_loss": 1.0,
                     "dis_accuracy": 0.6, "lambda_e": min(step / 500, 1) * 0.02})
        if step % 250 == 0:
            rows.append({"phase": "valid", "step": step, "rec_loss": 0.06 / (1 + step / 300),
                         **{f"dis_accuracy/{a}": 0.5 + 0.01 * k for k, a in enumerate(attributes)}})
    return pd.DataFrame(rows)


def test_the_loss_plots_legends_are_readable_and_apart():
    """Close majority rates (Smiling 0.52, Male 0.55) used to write their labels over each other, in 7 pt,
    over the curves: now one entry per attribute, 9 pt, below the panel, no two texts overlapping."""
    from faderlib.plots import plot_training

    fig = plot_training(_log(), {"Smiling": 0.52, "Eyeglasses": 0.935, "Male": 0.55}, title="t")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    acc = fig.axes[2]
    legend = acc.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["train batches", "Smiling (majority 0.52)", "Eyeglasses (majority 0.94)", "Male (majority 0.55)"]
    assert all(t.get_fontsize() >= 9 for t in legend.get_texts())
    assert not acc.texts  # no labels written on the curves
    boxes = [t.get_window_extent(renderer) for t in legend.get_texts()]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    for ax in fig.axes:
        if ax.get_legend() is not None:  # under its panel, inside the figure
            box = ax.get_legend().get_window_extent(renderer)
            assert box.y1 <= ax.get_window_extent(renderer).y0
            assert all(t.get_window_extent(renderer).y0 >= 0 for t in ax.get_legend().get_texts())
            assert not box.overlaps(fig.axes[1 if ax is not fig.axes[1] else 0].get_window_extent(renderer))
    # an attribute's validation line and majority line share its colour
    colors = {line.get_color() for line in acc.lines if line.get_linestyle() == "--"}
    assert len(colors) == 3 and colors == {line.get_color() for line in acc.lines if line.get_marker() == "o"}
