"""What a cache's proof costs (faderlib.cache): the checks at open, a full verification, the checksums
at build, the reserved space, and the stat pass of the source's fingerprint.

On N faces at 64 px (20,000 by default: a 246 MB images.npy):

* ``load_prepared`` as a new process meets it (the per-process memory of checked caches cleared,
  the page cache warm): the tables read and checked, their SHA-256, the sampled chunks of images.npy;
  then a second open in the same process (nothing hashed again); then ``verify=True`` (every chunk);
* the same read of the tables without any check, as before the checksums, for comparison;
* the checksums written at build (every chunk hashed, ``workers`` threads);
* reserving the space of images.npy with ``posix_fallocate`` against a sparse ``ftruncate``;
* one ``os.scandir`` pass that stats every image (warm), and that cost scaled to CelebA's 202,599.

Run ``python benchmarks/bench_cache.py [--data DIR] [--n N]``: without ``--data`` it writes N small
CelebA-format JPEGs in a temporary folder first (about a minute for 20,000 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import celeba_fixture  # benchmarks/common.py (python benchmarks/X.py and run.py put benchmarks/ first on sys.path)

HERE = Path(__file__).resolve().parent
N = 20_000
SIZE = 64
CELEBA = 202_599


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(data: str | os.PathLike | None = None, n: int = N) -> list[dict]:
    from faderlib import cache, cache_check
    from faderlib.celeba import read_celeba

    rows = []

    def row(setting, value, unit):
        rows.append({"benchmark": "cache check", "setting": setting, "value": value, "unit": unit})

    with tempfile.TemporaryDirectory() as tmp:
        if data is None:
            data = celeba_fixture().write_celeba_fixture(Path(tmp) / "celeba", n=n, noise=0.0, quality=75)
        data = Path(data)
        celeba = read_celeba(data)
        n = len(celeba)
        base = Path(tmp) / "caches"

        t = time.perf_counter()
        path = cache.prepare(data, SIZE, cache_dir=base, progress=False)
        row(f"prepare {n} faces at {SIZE} px, all cores", round(time.perf_counter() - t, 1), "s")
        meta = json.loads((path / "meta.json").read_text())
        size_mb = (path / "images.npy").stat().st_size / 1e6
        chunks = len(meta["checksums"]["images.npy"]["chunks"])
        workers = os.cpu_count() or 1
        offset = meta["checksums"]["images.npy"]["data_offset"]
        row(f"checksums at build ({size_mb:.0f} MB, {chunks} chunks, {workers} threads)",
            round(_best(lambda: cache_check.checksums(path, offset, workers)), 3), "s")

        def fresh_open():
            cache_check.CHECKED.clear()
            cache.load_prepared(path)

        row("open, first time in a process (tables checked and hashed, 4 chunks)", round(_best(fresh_open), 3), "s")
        row("open again in the same process", round(_best(lambda: cache.load_prepared(path)), 4), "s")
        def unchecked():
            table = pd.read_csv(path / "attributes.csv", index_col=0, dtype={"image_id": str}).astype(np.int8)
            return table, np.load(path / "split.npy"), table.index.to_numpy(dtype=object).tolist()

        row("open without any check (the tables read, as before the checksums)", round(_best(unchecked), 3), "s")
        row(f"open with verify=True (all {chunks} chunks)",
            round(_best(lambda: cache.load_prepared(path, verify=True)), 3), "s")

        for name, folder in (("this disk", Path(tmp)), ("tmpfs /dev/shm", Path("/dev/shm"))):
            if not folder.is_dir():
                continue
            target = folder / f"bench-cache-{os.getpid()}.npy"
            try:
                reserve = _best(lambda: cache._create_npy(target, (n, 3, SIZE, SIZE)))

                def sparse():
                    with open(target, "wb") as f:
                        f.truncate(n * 3 * SIZE * SIZE + offset)

                row(f"posix_fallocate of images.npy, {name}", round(reserve, 4), "s")
                row(f"sparse ftruncate of images.npy, {name}", round(_best(sparse), 4), "s")
            finally:
                target.unlink(missing_ok=True)

        stat_pass = statistics.median(_stat_times(cache, celeba))
        row(f"stat every image, one os.scandir pass ({n} files, warm)", round(stat_pass, 3), "s")
        row(f"the same scaled to CelebA's {CELEBA:,} files", round(stat_pass * CELEBA / n, 2), "s")
    return rows


def _stat_times(cache, celeba, repeat: int = 5) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        cache._image_stamps(celeba)
        times.append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="a CelebA-format data folder (default: N written here)")
    parser.add_argument("--n", type=int, default=N, help=f"faces to write without --data (default {N})")
    args = parser.parse_args(argv)
    for r in run(args.data, args.n):
        print(f"{r['setting']:<75} {r['value']:>9} {r['unit']}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    raise SystemExit(main())
