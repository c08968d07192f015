"""Which image outputs of an executed notebook are pictures of faces, and whether each is shown
with every face at least 256 px on screen (used by test_notebooks.py, checked by test_display.py).

A face picture is told from a plot by the code of its cell: an image output of a cell that
calls one of :data:`FACE_FUNCTIONS` is a picture of faces and must carry the display metadata of
``faderlib.visual`` (``face_px`` in its ``image/png`` metadata, at least :data:`FACE_PX`, the PNG
as large as the ``width`` and ``height`` it is shown at, ``unconfined`` so that JupyterLab does
not shrink it); one of a cell that calls one of :data:`PLOT_FUNCTIONS` is a plot and needs
nothing; an image output of any other cell is reported, so that a new picture is classified
here rather than slipping through.
"""

from __future__ import annotations

import ast
import base64
import io

from PIL import Image

FACE_PX = 256

#: The kit's functions whose pictures show faces (grids, edits, and figures of faces).
FACE_FUNCTIONS = frozenset({
    "interpolation_grid", "interpolation_grid_2d", "edit_image", "edit_grid", "tile", "side_by_side",
    "counterfactual_figure", "failure_figure", "sample_grid", "crop_figure", "toggle_figure",
})

#: The kit's functions whose pictures are plots (curves, bars, heatmaps): no face in them.
PLOT_FUNCTIONS = frozenset({
    "plot_training", "LiveLossPlot", "plot_lambda_schedule", "plot_frequencies", "plot_correlation",
    "draw_architecture", "draw_game", "plot_adversaries",
})


def called(source: str) -> set[str]:
    """The names of the functions a cell's code calls (``f(...)``, ``module.f(...)``)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                names.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
    return names


def face_output_problems(nb, min_px: int = FACE_PX) -> list[str]:
    """One line per image output of ``nb`` (an executed nbformat notebook) that breaks the rule
    of the module docstring; empty when every picture of faces is shown large enough."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        if not images:
            continue
        calls = called(cell.source)
        faces = sorted(calls & FACE_FUNCTIONS)
        where = f"cell {i} ({cell.source.strip().splitlines()[0][:60]!r})"
        if not faces:
            if not calls & PLOT_FUNCTIONS:
                problems.append(f"{where} shows an image but calls none of the known face or plot functions: "
                                "add the function to FACE_FUNCTIONS or PLOT_FUNCTIONS in tests/face_outputs.py")
            continue
        for out in images:
            meta = out.get("metadata", {}).get("image/png", {})
            if "face_px" not in meta:
                problems.append(f"{where}: a picture of faces ({', '.join(faces)}) without its display size "
                                "(no face_px in its metadata): it is shown at its own pixels")
                continue
            if meta["face_px"] is None:  # a figure of faces that has none to show (e.g. no failure)
                continue
            if meta["face_px"] < min_px:
                problems.append(f"{where}: faces shown at {meta['face_px']} px, under {min_px} px")
            if meta.get("unconfined") is not True:
                problems.append(f"{where}: not unconfined: JupyterLab would shrink it to the cell's width")
            png = Image.open(io.BytesIO(base64.b64decode(out["data"]["image/png"])))
            if png.size != (meta.get("width"), meta.get("height")):
                problems.append(f"{where}: a {png.width}x{png.height} PNG shown at {meta.get('width')}x"
                                f"{meta.get('height')}: the browser would resize (and smooth) it")
    return problems
