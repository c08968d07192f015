"""Benchmarks of the data pipeline (faderlib.cache, faderlib.data).

Measures, on generated 178 x 218 JPEG faces (quality 90, about 7.5 kB each, like CelebA's):

* preparation throughput (images/s) at 64, 128 and 256 px, all cores;
* loader throughput from the cache vs decoding the JPEGs per item (crop + resize
  every time), and their ratio, in the same run;
* the host's share of feeding a training step at 256 px: the float path against the uint8
  path of faderlib.feed, alternated in the same run;
* peak resident memory over one whole epoch for two data set sizes, measured in a
  fresh subprocess (VmHWM reset after the imports and a first batch): it must not
  grow with N. The same run without the page release shows what it would cost.

Run ``python benchmarks/bench_data.py`` (or ``make bench``); ``run()`` returns the rows
``{"benchmark", "setting", "value", "unit"}``. About a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from common import celeba_fixture, print_rows_main  # benchmarks/common.py (python benchmarks/X.py and run.py put benchmarks/ first on sys.path)

HERE = Path(__file__).resolve().parent
N_PREPARE = 2000
N_MEMORY = (2000, 8000)
BATCH = 64


def _write_images(args):
    folder, start, stop = args
    fixture = celeba_fixture()
    for i in range(start, stop):
        fixture.fixture_image(i).save(Path(folder) / f"{i + 1:06d}.jpg", quality=90)


def _make_data(root: Path, n: int, image_dir: Path | None = None) -> Path:
    """A CelebA folder of n images; with image_dir, its images are linked, not written."""
    fixture = celeba_fixture()
    fixture.write_celeba_fixture(root, n=n, images=False)
    if image_dir is not None:
        (root / "img_align_celeba").rmdir()
        (root / "img_align_celeba").symlink_to(image_dir, target_is_directory=True)
        return root
    step = -(-n // (os.cpu_count() or 1))
    jobs = [(str(root / "img_align_celeba"), a, min(a + step, n)) for a in range(0, n, step)]
    with ProcessPoolExecutor(len(jobs)) as pool:
        list(pool.map(_write_images, jobs))
    return root


def _row(benchmark, setting, value, unit):
    return {"benchmark": benchmark, "setting": setting, "value": round(float(value), 3), "unit": unit}


def bench_prepare(root: Path, cache: Path, sizes=(64, 128, 256)) -> list[dict]:
    from faderlib.cache import prepare

    rows, workers = [], os.cpu_count() or 1
    for size in sizes:
        t = time.perf_counter()
        prepare(root, size, cache_dir=cache, progress=False, workers=workers, force=True)
        seconds = time.perf_counter() - t
        n = len((root / "list_eval_partition.txt").read_text().splitlines())
        setting = f"{size} px, {n} images, {workers} workers"
        rows.append(_row("prepare throughput", setting, n / seconds, "images/s"))
    return rows


def bench_loader(root: Path, cache: Path, size: int = 64) -> list[dict]:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, Dataset

    from faderlib.cache import load_prepared, prepare
    from faderlib.images import decode_image
    from faderlib.celeba import read_celeba
    from faderlib.data import FaderDataset, make_loader

    class JpegDataset(Dataset):
        """The slow way: open, crop and resize the JPEG at every access."""

        def __init__(self, celeba):
            self.paths = [celeba.image_path(f) for f in celeba.filenames]
            self.y = torch.tensor(celeba.attributes[["Smiling"]].to_numpy(np.int64))

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            image = decode_image(self.paths[i], size)
            if torch.rand(()) < 0.5:
                image = image[..., ::-1]
            return torch.from_numpy(image / np.float32(127.5) - np.float32(1)), self.y[i]

    def throughput(loader, epochs=1):
        t, n = time.perf_counter(), 0
        for _ in range(epochs):
            for x, _ in loader:
                n += len(x)
        return n / (time.perf_counter() - t)

    torch.manual_seed(0)
    prep = load_prepared(prepare(root, size, cache_dir=cache, progress=False))
    cached = FaderDataset(prep, "all", ("Smiling",))
    list(make_loader(cached, BATCH))  # warm the page cache, as in training
    fast = throughput(make_loader(cached, BATCH), epochs=3)
    slow = throughput(DataLoader(JpegDataset(read_celeba(root)), BATCH, shuffle=True, drop_last=True))
    g = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for _ in range(100):
        cached.sample(BATCH, g)
    batch_api = 100 * BATCH / (time.perf_counter() - t)
    setting = f"{size} px, batch {BATCH}, num_workers=0"
    return [
        _row("loader throughput", f"cache (memmap), {setting}", fast, "images/s"),
        _row("loader throughput", f"JPEG decode per item, {setting}", slow, "images/s"),
        _row("loader speed-up", f"cache / JPEG decode, {setting}", fast / slow, "x"),
        _row("batch API throughput", f"dataset.sample(), {setting}", batch_api, "images/s"),
    ]


_CHILD = r"""
import json, sys, time
import faderlib.cache as cache
from faderlib.data import FaderDataset, make_loader

if sys.argv[2] == "no-release":
    cache.RELEASE_EVERY_BYTES = float("inf")
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])  # kB
ds = FaderDataset(cache.load_prepared(sys.argv[1]), "all", ("Smiling",), flip=True)
loader = make_loader(ds, batch_size=64, num_workers=0)
it = iter(loader); next(it); del it  # imports, allocator and the first batch are the baseline
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current resident size
base = status("VmRSS")
n = 0
for x, y in loader:
    n += len(x)
print(json.dumps({"base_kb": base, "peak_kb": status("VmHWM"), "images": n}))
"""


def bench_memory(roots: dict[int, Path], cache: Path, size: int = 64) -> list[dict]:
    from faderlib.cache import prepare

    rows = []
    if not Path("/proc/self/clear_refs").exists():
        return [_row("epoch peak RSS growth", "skipped: needs Linux /proc", float("nan"), "MB")]
    for mode in ("release", "no-release"):
        for n, root in roots.items():
            path = prepare(root, size, cache_dir=cache / str(n), progress=False)
            out = subprocess.run([sys.executable, "-c", _CHILD, str(path), mode], capture_output=True,
                                 text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            r = json.loads(out.stdout.strip().splitlines()[-1])
            data_mb = n * 3 * size * size / 1e6
            label = "pages released" if mode == "release" else "no release (for comparison)"
            setting = f"N={n} ({data_mb:.0f} MB of images), {size} px, memmap, {label}"
            rows.append(_row("epoch peak RSS growth", setting, (r["peak_kb"] - r["base_kb"]) / 1e3, "MB"))
    return rows


def bench_host_feed(root: Path, cache: Path, size: int = 256, batch: int = 32, batches: int = 60,
                    rounds: int = 3) -> list[dict]:
    """The host's share of feeding a training step at ``size`` px, two ways, alternated in one run:

    * float path (the Trainer before the uint8 feed): draw, read the rows, mirror and scale to
      float32 on the host (``dataset.sample``), then a float32 batch to copy (4 bytes a pixel);
    * uint8 path (faderlib.feed, the pinned feed of a GPU): draw, read the rows as uint8 into a
      reused buffer (pinned where a CUDA GPU is present), ready to copy; mirroring and scaling
      happen on the device, off the host.
    """
    import numpy as np
    import torch

    from faderlib.cache import load_prepared, prepare
    from faderlib.data import FaderDataset

    data = FaderDataset(load_prepared(prepare(root, size, cache_dir=cache, progress=False)), "all",
                        ("Smiling",), flip=True)
    pinned = torch.cuda.is_available()
    buffer = torch.empty((batch, 3, size, size), dtype=torch.uint8, pin_memory=pinned)
    out: np.ndarray = buffer.numpy()

    def float_path(g):
        data.sample(batch, g)

    def uint8_path(g):
        idx, _ = data.draw(batch, g)
        data.read(idx, out=out)

    for f in (float_path, uint8_path):  # the page cache warm for both
        f(torch.Generator().manual_seed(0))
    best = {float_path: 0.0, uint8_path: 0.0}
    for _ in range(rounds):
        for f in (float_path, uint8_path):
            g = torch.Generator().manual_seed(1)
            t = time.perf_counter()
            for _ in range(batches):
                f(g)
            best[f] = max(best[f], batches * batch / (time.perf_counter() - t))
    where = "pinned buffer" if pinned else "reused buffer (pinned on a CUDA machine)"
    setting = f"{size} px, batch {batch}, {len(data)} images in the page cache, best of {rounds}"
    return [
        _row("host feed", f"float path: read, mirror, scale on the host; {setting}", best[float_path], "images/s"),
        _row("host feed", f"uint8 path: read into a {where}; {setting}", best[uint8_path], "images/s"),
        _row("host feed", f"uint8 / float, {size} px", best[uint8_path] / best[float_path], "x"),
    ]


def run() -> list[dict]:
    """All data benchmarks; a list of {"benchmark", "setting", "value", "unit"} rows."""
    with tempfile.TemporaryDirectory(prefix="fader-bench-") as tmp:
        tmp = Path(tmp)
        big = max(N_MEMORY + (N_PREPARE,))
        roots = {big: _make_data(tmp / f"celeba{big}", big)}
        image_dir = roots[big] / "img_align_celeba"  # the smaller sets link to its images
        for n in set(N_MEMORY + (N_PREPARE,)) - {big}:
            roots[n] = _make_data(tmp / f"celeba{n}", n, image_dir)
        prep_root = roots[N_PREPARE]
        rows = bench_prepare(prep_root, tmp / "cache-prepare")
        rows += bench_loader(prep_root, tmp / "cache-loader")
        rows += bench_host_feed(prep_root, tmp / "cache-prepare")
        rows += bench_memory({n: roots[n] for n in N_MEMORY}, tmp / "cache-memory")
    return rows


def main(argv=None) -> None:
    print_rows_main(run, __doc__.splitlines()[0], argv, name_width=24, value_format=".1f")


if __name__ == "__main__":
    main()
