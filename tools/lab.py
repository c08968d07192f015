"""`make lab`: JupyterLab on the course's notebooks, opened at the first one, without the news toast.

    python tools/lab.py                  # install the settings below, then start JupyterLab
    python tools/lab.py --settings-only  # only install the settings (what `make install` does)
    python tools/lab.py --print          # print the command line, start nothing
    python tools/lab.py --port 9999      # any other option goes to `jupyter lab` as it is

Three things a plain ``jupyter lab notebooks`` gets wrong on first contact:

* it opens on a bare Launcher: this one opens ``notebooks/01_data_and_attributes.ipynb``
  (``--LabApp.default_url``; the printed URL goes there too, for a browser on another machine);
* it asks "Would you like to get notified about official Jupyter news?": the kit's JupyterLab
  never fetches news nor checks for updates (a classroom projector shows the notebook, not a
  toast; a lab machine may have no internet). The switch is a settings override,
  ``<app dir>/settings/overrides.json`` (the app dir is ``<sys.prefix>/share/jupyter/lab``, or
  ``$JUPYTERLAB_DIR``), merged into one that is already there: a value you set yourself is kept;
* as root (a Docker image, a lab container) it refuses to start: this one adds ``--allow-root``
  then, and says so.

And the kernels it starts wait passively for work (``OMP_WAIT_POLICY=PASSIVE``, unless set: see
``faderlib/__main__.py``): a kernel inherits the server's environment, and libgomp reads the
variable as torch loads, which a notebook's first import does.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
FIRST_NOTEBOOK = "01_data_and_attributes.ipynb"

#: The settings the kit's JupyterLab starts with (the plugin's schema:
#: share/jupyter/lab/schemas/@jupyterlab/apputils-extension/notification.json).
#: fetchNews is a string there: "true" (Always), "false" (Never), "none" (Ask: the toast).
NOTIFICATION_PLUGIN = "@jupyterlab/apputils-extension:notification"
SETTINGS = {NOTIFICATION_PLUGIN: {"fetchNews": "false", "checkForUpdates": False}}

ROOT_NOTE = ("note: running as root (uid 0; a Docker image or a lab container, most likely): JupyterLab "
             "refuses that unless told, so --allow-root is added. Outside a container, run `make lab` "
             "as your own user instead.")


class SettingsError(Exception):
    """An overrides.json that cannot be merged into (unreadable, not JSON, not an object)."""


def settings_dir() -> Path:
    """The folder JupyterLab reads ``overrides.json`` from: ``<app dir>/settings``, the app dir being
    what this environment's JupyterLab uses (``$JUPYTERLAB_DIR``, else ``<sys.prefix>/share/jupyter/lab``)."""
    try:
        from jupyterlab.commands import get_app_dir
    except ImportError:  # JupyterLab not installed (yet): where it will look
        app_dir = os.environ.get("JUPYTERLAB_DIR") or os.path.join(sys.prefix, "share", "jupyter", "lab")
    else:
        app_dir = get_app_dir()
    return Path(app_dir) / "settings"


def merge_overrides(existing: dict, settings: dict = SETTINGS) -> tuple[dict, list[str]]:
    """``existing`` overrides with ``settings`` added, and notes on what was kept: a plugin's setting
    already there (a choice of the machine's owner) wins over the kit's."""
    merged = {plugin: dict(values) if isinstance(values, dict) else values for plugin, values in existing.items()}
    notes = []
    for plugin, values in settings.items():
        theirs = merged.setdefault(plugin, {})
        if not isinstance(theirs, dict):
            notes.append(f"{plugin} is not a JSON object in overrides.json: left as it is")
            continue
        for key, value in values.items():
            if key not in theirs:
                theirs[key] = value
            elif theirs[key] != value:
                notes.append(f"{plugin} {key} is {json.dumps(theirs[key])} in overrides.json: kept "
                             f"(the kit would set {json.dumps(value)})")
    return merged, notes


def install_settings(folder: str | os.PathLike | None = None, settings: dict = SETTINGS) -> tuple[Path, list[str]]:
    """Merge ``settings`` into ``<folder>/overrides.json`` (default :func:`settings_dir`), creating it if
    needed; the file is rewritten only when something is added. Returns its path and notes.

    Raises :class:`SettingsError`, naming the file, when an existing one is not a JSON object: it is
    never overwritten then.
    """
    path = Path(folder if folder is not None else settings_dir()) / "overrides.json"
    existing = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError) as e:
            raise SettingsError(f"{path} cannot be read as JSON ({e}); it was left as it is. Fix it, or "
                                f"remove it to let `make lab` write the kit's settings") from None
        if not isinstance(existing, dict):
            raise SettingsError(f"{path} holds a JSON {type(existing).__name__}, not an object; it was left as "
                                "it is. Fix it, or remove it to let `make lab` write the kit's settings")
    merged, notes = merge_overrides(existing, settings)
    if merged != existing:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return path, notes


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(extra: list[str] | tuple[str, ...] = (), as_root: bool | None = None,
                jupyter: str | os.PathLike | None = None) -> list[str]:
    """The command line of ``make lab``: this environment's ``jupyter lab`` on ``notebooks/``, opened at
    the first notebook, ``--allow-root`` when ``as_root`` (default: when this process is root), then ``extra``."""
    if jupyter is None:
        jupyter = Path(sys.executable).with_name("jupyter")
    cmd = [str(jupyter), "lab", f"--ServerApp.root_dir={NOTEBOOKS}", f"--LabApp.default_url=/lab/tree/{FIRST_NOTEBOOK}"]
    if running_as_root() if as_root is None else as_root:
        cmd.append("--allow-root")
    return cmd + list(extra)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    settings_only = "--settings-only" in args
    print_only = "--print" in args
    extra = [a for a in args if a not in ("--settings-only", "--print")]
    try:
        path, notes = install_settings()
    except (SettingsError, OSError) as e:
        print(f"warning: the kit's JupyterLab settings (no news toast) were not installed: {e}", file=sys.stderr)
    else:
        for note in notes:
            print(f"note: {path}: {note}", file=sys.stderr)
        if settings_only:
            print(f"JupyterLab settings: {path} (news and update checks off)")
    if settings_only:
        return 0
    cmd = lab_command(extra)
    if print_only:
        print(shlex.join(cmd))
        return 0
    if "--allow-root" in cmd:
        print(ROOT_NOTE, file=sys.stderr)
    if not Path(cmd[0]).exists():
        print(f"error: {cmd[0]} not found: install the kit first (`make install`)", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # for the kernels: PyTorch's threads do not spin
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(cmd[0], cmd)  # JupyterLab takes this process's place (Ctrl-C stops it as before)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
