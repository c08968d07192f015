"""torchvision against the kit's own code, where torchvision has a function for the same job.

torchvision is a declared dependency; the kit uses one of its functions only where it gives the
same pixels and costs nothing more. This measures both, on 200 synthetic faces (the kit's
178 x 218 JPEGs, ``faderlib.synth.generate``):

* **the cache's preprocessing** (:func:`faderlib.images.decode_image`: Pillow decodes the JPEG,
  keeps rows 20..197, resizes with the area filter) against ``torchvision.io.decode_jpeg`` then
  ``torchvision.transforms.v2.functional.resize`` (bilinear, antialias), at 64 and 128 px:
  images/s of each step and of the whole path, one core, the two alternated twice; and how
  many pixels are equal, for the decoding alone and for the whole path;
* **grids**: :func:`faderlib.visual.tile` against ``torchvision.utils.make_grid`` (the same
  layout: every pixel compared, one-cell and ragged grids included);
* **conversions**: :func:`faderlib.images.to_float` / :func:`~faderlib.images.to_uint8` against
  ``to_dtype(scale=True)`` and ``normalize``, over the 256 values, both memory layouts, and a
  dense sweep of floats for the way back; flips against ``horizontal_flip``;
* **the import**: CPU seconds that ``import torchvision`` adds to a process that has imported
  ``faderlib.cli`` (every ``fader`` command, every notebook's first cell), in fresh subprocesses.

Run ``python benchmarks/bench_torchvision.py`` (or ``python benchmarks/run.py torchvision``);
``run()`` returns the rows ``{"benchmark", "setting", "value", "unit"}``. About a minute on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import print_rows_main  # benchmarks/common.py (python benchmarks/X.py and run.py put benchmarks/ first on sys.path)

N_FACES = 200
SIZES = (64, 128)
ROUNDS = 2  # each variant timed this many times, alternated


def _row(benchmark, setting, value, unit):
    return {"benchmark": benchmark, "setting": setting, "value": round(float(value), 4), "unit": unit}


# ----------------------------------------------------------------------------- the cache's preprocessing
def bench_preprocessing(paths: list[Path]) -> list[dict]:
    from PIL import Image
    from torchvision.io import decode_jpeg, read_file
    from torchvision.transforms.v2.functional import resize

    from faderlib.celeba_facts import CROP_BOTTOM, CROP_TOP
    from faderlib.images import crop_and_resize, decode_image

    def pil_decode(path):
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")

    def tv_decode(path):
        return decode_jpeg(read_file(str(path)))

    def tv_resize(decoded, size):
        return resize(decoded[:, CROP_TOP:CROP_BOTTOM], [size, size], antialias=True)

    rows = []
    pil_images = [pil_decode(p) for p in paths]
    tv_images = [tv_decode(p) for p in paths]
    same = sum(int(np.array_equal(np.asarray(a).transpose(2, 0, 1), b.numpy())) for a, b in zip(pil_images, tv_images))
    diff = max(int(np.abs(np.asarray(a).transpose(2, 0, 1).astype(int) - b.numpy()).max())
               for a, b in zip(pil_images, tv_images))
    rows.append(_row("JPEG decoding: same pixels", f"decode_jpeg vs Pillow, {len(paths)} faces", same, "images"))
    rows.append(_row("JPEG decoding: largest difference", f"decode_jpeg vs Pillow, {len(paths)} faces", diff, "levels"))

    def rate(fn, items):
        t = time.perf_counter()
        for item in items:
            fn(item)
        return len(items) / (time.perf_counter() - t)

    variants = {
        "decode: Pillow": lambda: rate(pil_decode, paths),
        "decode: torchvision.io.decode_jpeg": lambda: rate(tv_decode, paths),
    }
    for size in SIZES:
        variants[f"resize {size} px: Pillow area filter (crop_and_resize)"] = \
            lambda s=size: rate(lambda im: crop_and_resize(im, s), pil_images)
        variants[f"resize {size} px: torchvision resize, bilinear antialias"] = \
            lambda s=size: rate(lambda im: tv_resize(im, s), tv_images)
        variants[f"whole path {size} px: decode_image (the cache's)"] = \
            lambda s=size: rate(lambda p: decode_image(p, s), paths)
        variants[f"whole path {size} px: decode_jpeg + resize"] = \
            lambda s=size: rate(lambda p: tv_resize(tv_decode(p), s), paths)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as one worker process of the cache: Pillow uses one core too
    try:
        times = {name: [] for name in variants}
        for _ in range(ROUNDS):
            for name, fn in variants.items():
                times[name].append(fn())
    finally:
        torch.set_num_threads(threads)
    for name, values in times.items():
        rows.append(_row("preprocessing throughput", f"{name}, 1 thread (best of {ROUNDS})", max(values), "images/s"))

    for size in SIZES:
        ours = [decode_image(p, size) for p in paths]
        theirs = [tv_resize(tv_decode(p), size).numpy() for p in paths]
        equal = sum(int(np.array_equal(a, b)) for a, b in zip(ours, theirs))
        share = np.mean([np.mean(a == b) for a, b in zip(ours, theirs)])
        worst = max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(ours, theirs))
        setting = f"{size} px, decode_jpeg + resize vs decode_image"
        rows.append(_row("whole path: same images", setting, equal, f"of {len(paths)}"))
        rows.append(_row("whole path: same pixel values", setting, 100 * share, "%"))
        rows.append(_row("whole path: largest difference", setting, worst, "levels"))
    return rows


# ----------------------------------------------------------------------------- grids
def make_grid_tile(rows, pad=2, fill=255, *, scale=1, cols=None, top=0, left=0) -> np.ndarray:
    """:func:`faderlib.visual.tile`'s canvas drawn by ``torchvision.utils.make_grid``."""
    from torchvision.utils import make_grid

    from faderlib.visual import pixels

    n_cols = cols if cols is not None else max(len(r) for r in rows)
    cells = []
    for row in rows:
        row = [torch.from_numpy(pixels(image, scale)).permute(2, 0, 1) for image in row]
        cells += row + [torch.full_like(row[0], fill)] * (n_cols - len(row))  # a short row: blank cells
    grid = make_grid(torch.stack(cells), nrow=n_cols, padding=pad, pad_value=fill)
    if len(cells) == 1:  # make_grid returns a single image as it is, without its gutter
        grid = torch.nn.functional.pad(grid, (pad, pad, pad, pad), value=fill)
    grid = torch.nn.functional.pad(grid, (left, 0, top, 0), value=fill)
    return grid.permute(1, 2, 0).numpy()


def bench_grids() -> list[dict]:
    from faderlib.visual import tile

    g = torch.Generator().manual_seed(0)
    t = [torch.rand(3, 32, 32, generator=g) * 2 - 1 for _ in range(8)]
    u = [(torch.rand(3, 32, 32, generator=g) * 255).to(torch.uint8).numpy() for _ in range(8)]
    cases = {
        "6 x 7, 32 px x2": (([t[:7]] * 6,), {"scale": 2, "top": 28}),
        "ragged, cols, margins": (([[t[0], u[0]], [u[1]]],), {"pad": 2, "fill": 128, "scale": 2, "top": 5, "left": 3,
                                                                "cols": 3}),
        "one cell": (([[t[0]]],), {}),
        "one column, pad 0": (([[u[0]], [u[1]], [u[2]]],), {"pad": 0, "fill": 0, "scale": 3}),
    }
    rows = []
    for name, (args, kwargs) in cases.items():
        same = np.array_equal(np.asarray(tile(*args, **kwargs)), make_grid_tile(*args, **kwargs))
        rows.append(_row("grid: same pixels", f"make_grid vs tile, {name}", same, "bool"))
    args, kwargs = cases["6 x 7, 32 px x2"]
    variants = {"tile": lambda: tile(*args, **kwargs), "make_grid": lambda: make_grid_tile(*args, **kwargs)}
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(3):  # alternated
        for name, fn in variants.items():
            t0 = time.perf_counter()
            for _ in range(20):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / 20)
    for name, seconds in best.items():
        rows.append(_row("grid time", f"{name}, 6 x 7 cells of 64 px (best of 3, alternated)", 1000 * seconds, "ms"))
    return rows


# ----------------------------------------------------------------------------- conversions
def bench_conversions() -> list[dict]:
    import torchvision.transforms.v2.functional as F

    from faderlib.images import to_float, to_uint8

    rows = []
    p = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).repeat(2, 3, 1, 1)
    for layout, q in (("NCHW", p), ("channels last", p.contiguous(memory_format=torch.channels_last))):
        theirs = F.normalize(F.to_dtype(q, torch.float32, scale=True), [0.5] * 3, [0.5] * 3)
        differ = int((to_float(q) != theirs).sum())
        rows.append(_row("uint8 -> x: values that differ", f"normalize(to_dtype(scale=True)) vs to_float, {layout}",
                         differ, f"of {q.numel()}"))
    x = torch.linspace(-1, 1, 100_001).reshape(1, 1, 1, -1).repeat(1, 3, 1, 1)
    ours = torch.from_numpy(to_uint8(x)).movedim(-1, -3)
    theirs = F.to_dtype((x + 1) / 2, torch.uint8, scale=True)
    rows.append(_row("x -> uint8: values that differ", "to_dtype(scale=True) vs to_uint8, a sweep of [-1, 1]",
                     100 * float((ours != theirs).float().mean()), "%"))
    exact = torch.from_numpy(to_uint8(to_float(p))).movedim(-1, -3)
    rows.append(_row("x -> uint8: values that differ", "to_dtype(scale=True) vs to_uint8, the 256 pixel values",
                     int((exact != F.to_dtype((to_float(p) + 1) / 2, torch.uint8, scale=True)).sum()), f"of {p.numel()}"))
    q = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    same = torch.equal(F.horizontal_flip(q), q.flip(-1)) and np.array_equal(F.horizontal_flip(q).numpy(),
                                                                            q.numpy()[..., ::-1])
    rows.append(_row("flip: same pixels", "horizontal_flip vs tensor.flip(-1) and numpy [..., ::-1]", same, "bool"))
    return rows


# ----------------------------------------------------------------------------- the import
_IMPORT = r"""
import resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c = cpu(); import faderlib.cli; kit = cpu() - c
c = cpu(); import torchvision; tv = cpu() - c
print(kit, tv)
"""


def bench_import() -> list[dict]:
    kit, tv = [], []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", _IMPORT], capture_output=True, text=True, check=True).stdout
        a, b = map(float, out.split())
        kit.append(a)
        tv.append(b)
    return [_row("import CPU time", "import faderlib.cli (median of 3 processes)", np.median(kit), "s"),
            _row("import CPU time", "import torchvision after it (median of 3 processes)", np.median(tv), "s")]


def run() -> list[dict]:
    from faderlib.synth import generate

    with tempfile.TemporaryDirectory(prefix="fader-bench-tv-") as tmp:
        root = generate(Path(tmp) / "faces", n=N_FACES, seed=0, progress=False)
        paths = sorted((Path(root) / "img_align_celeba").glob("*.jpg"))
        rows = bench_preprocessing(paths)
    rows += bench_grids()
    rows += bench_conversions()
    rows += bench_import()
    return rows


def main(argv=None) -> None:
    print_rows_main(run, __doc__.splitlines()[0], argv, name_width=36, value_format=".4g")


if __name__ == "__main__":
    main()
