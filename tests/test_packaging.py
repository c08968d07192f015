"""The two ways to install (pip via pyproject.toml, conda via environment.yml) must agree."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {CONDA_NAMES.get(_name(r), _name(r)) for r in project["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    conda_names = {_name(d) for d in conda} - {"python", "pip"}
    assert conda_names == pip_names
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section


def test_console_script_points_at_the_cli():
    """``fader`` is ``python -m faderlib``: faderlib.__main__.main, which sets the OpenMP wait
    policy before it imports faderlib.cli (and torch) and calls its main."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["fader"] == "faderlib.__main__:main"


def test_every_document_the_kit_cites_is_in_the_repository():
    """The code, the notebooks, the README and the docs cite files of the repository only:
    nothing outside it (the kit is cloned alone), and headings of docs/paper_notes.md that exist.

    docs/paper_notes.md, 'How the kit cites': a number is always a section of the paper; the
    page's own headings are unnumbered and cited by their title, ``docs/paper_notes.md, 'Training'``."""
    sources = [*ROOT.glob("faderlib/**/*.py"), *ROOT.glob("notebooks/**/*.ipynb"), ROOT / "README.md",
               *ROOT.glob("docs/*.md"), *ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py")]
    notes = (ROOT / "docs" / "paper_notes.md").read_text()
    headings = set(re.findall(r"^#{2,3} (.+?)\s*$", notes, flags=re.M))
    assert not any(re.match(r"\d", h) for h in headings), "paper_notes.md's headings carry no numbers"
    assert {"Networks", "Training", "Evaluation", "How the kit cites"} <= headings
    cited = 0
    for path in sources:
        text = path.read_text()
        if path.name == "test_packaging.py":
            continue
        assert "REFERENCE" + ".md" not in text and "../" + "shared" not in text, f"{path} cites a file outside the kit"
        for doc in re.findall(r"docs/[\w./-]+\.(?:md|png)", text):
            assert (ROOT / doc).is_file(), f"{path} cites {doc}, which is not in the repository"
        numbered = re.findall(r"(?:paper_notes\.md\)?`?|paper notes),? sections? \d", text)
        assert not numbered, f"{path} cites docs/paper_notes.md by number ({numbered[0]!r}): cite its heading's title"
        for title in re.findall(r"paper_notes\.md\)?`?,? '([^']+)'", text):
            assert title in headings, f"{path} cites '{title}' of docs/paper_notes.md, which has no such heading"
            cited += 1
    assert cited >= 10  # the docstrings do cite it
