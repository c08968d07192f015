"""Benchmark: how fast faderlib.synth makes the default data set.

Times ``synth.generate`` writing 2,000 faces (JPEGs and text files, all cores), and
``synth.render`` alone in this one process. Run: ``python benchmarks/bench_synth.py``.
"""

import os
import tempfile
import time

from faderlib import synth


def run() -> list[dict]:
    """Return one row per measurement: benchmark, setting, value, unit."""
    n = 2000
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        synth.generate(os.path.join(tmp, "faces"), n=n, seed=0, progress=False)
        generate_rate = n / (time.perf_counter() - start)

    faces = [synth.face_params(1, i) for i in range(300)]
    start = time.perf_counter()
    for identity, attributes in faces:
        synth.render(identity, attributes)
    render_rate = len(faces) / (time.perf_counter() - start)

    return [
        {"benchmark": "synth", "setting": f"{n} faces", "value": round(generate_rate, 1),
         "unit": "faces/s"},
        {"benchmark": "synth", "setting": "render only, 1 process", "value": round(render_rate, 1),
         "unit": "faces/s"},
    ]


if __name__ == "__main__":
    print(f"{os.cpu_count()} cores")
    for row in run():
        print(f"{row['benchmark']}  {row['setting']:<24} {row['value']:>8} {row['unit']}")
