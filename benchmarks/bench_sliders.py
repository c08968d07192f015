"""Slider latency on CPU: from a slider move to the bytes of the edited picture.

At 64, 128 and 256 px (untrained ``official`` models with three attributes: latency does
not depend on training), a :class:`faderlib.sliders.SliderApp` (``throttle=False``, so
each move decodes in the callback) is driven through many moves; each move is timed from
setting the slider's value to the new JPEG bytes in the ``edited`` Image widget:
the attribute code, D(z, y) with the cached z, and the encoding. p50 and p95.

Against it, in the same run, the cell a student would write first: on every move encode
the image again, decode, ``plt.imshow`` and ``fig.savefig`` to PNG bytes (Agg backend),
at the same number of torch threads. Then what each ingredient is worth at 256 px: the
plain decoder against :class:`~faderlib.sliders.FastDecoder`, one thread against two,
JPEG against PNG.

Targets (2 cores): p50 <= 30 ms at 256 px, <= 10 ms at 128 px, and at least 3 times
faster than the naive cell. Wall-clock times depend on what else runs on the machine
(the first row gives the load average); the CPU time of a move is what it costs on an
idle machine. Run ``python benchmarks/bench_sliders.py`` (or ``make bench``); about one
to two minutes.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import torch

from faderlib.config import ModelConfig
from faderlib.devices import torch_threads
from faderlib.fastdecoder import FastDecoder
from faderlib.images import to_uint8
from faderlib.models import AutoEncoder, code_for
from faderlib.runs import Run
from faderlib.sliders import SliderApp, encode_image

ATTRIBUTES = ["Smiling", "Eyeglasses", "Male"]
MOVES = {64: 200, 128: 200, 256: 60}
NAIVE_MOVES = {64: 60, 128: 40, 256: 20}
TARGET_P50_MS = {128: 10.0, 256: 30.0}
TARGET_SPEEDUP = 3.0
THREADS = 1  # the app's default


def untrained_run(size: int) -> Run:
    torch.manual_seed(0)
    config = ModelConfig.from_preset("official", size, ATTRIBUTES)
    return Run(Path("."), config, {}, "", 0, AutoEncoder(config).eval())


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = 1e3 * np.asarray(times)
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def slider_moves(n: int) -> list[float]:
    """A drag back and forth over -1..2, in steps of the slider (0.05)."""
    ramp = [round(-1 + 0.05 * k, 2) for k in range(61)]
    path = ramp + ramp[-2:0:-1]
    return [path[k % len(path)] for k in range(1, n + 1)]


def app_latency(run: Run, n: int) -> tuple[list[float], list[float]]:
    """Seconds from ``slider.value = alpha`` to the new bytes in ``app.edited``: wall-clock
    time, and the CPU time of this thread (what the move costs on an idle machine: with one
    torch thread all the work runs in this thread)."""
    size = run.model_config.image_size
    app = SliderApp(run, throttle=False, threads=THREADS, index=None)
    noise = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    app.load_image(_png(noise), name="noise.png")
    assert not app.errors, app.errors
    slider, times, cpu = app.sliders["Smiling"], [], []
    for k, alpha in enumerate([0.3, 0.4, 0.5] + slider_moves(n)):
        before = app.edited.value
        t, c = time.perf_counter(), time.thread_time()
        slider.value = alpha
        dt, dc = time.perf_counter() - t, time.thread_time() - c
        assert app.edited.value is not before and not app.errors
        if k >= 3:  # warm-up moves
            times.append(dt)
            cpu.append(dc)
    app.close()
    return times, cpu


def naive_latency(run: Run, n: int) -> list[float]:
    """The first cell a student writes: everything again, and matplotlib, on each move."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ae, size = run.autoencoder, run.model_config.image_size
    x = torch.rand(1, 3, size, size) * 2 - 1
    times = []
    with torch_threads(THREADS):
        for k, alpha in enumerate([0.3, 0.4] + slider_moves(n)):
            t = time.perf_counter()
            with torch.no_grad():
                x_hat = ae.decode(ae.encode(x), torch.tensor([[alpha, 0.0, 1.0]]))
            fig, ax = plt.subplots(figsize=(3, 3))
            ax.imshow(to_uint8(x_hat[0]))
            ax.axis("off")
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            plt.close(fig)
            if k >= 2:
                times.append(time.perf_counter() - t)
    return times


def decode_latency(run: Run, fast: bool, threads: int, n: int, fmt: str | None = None) -> list[float]:
    """Seconds for D(z, y) alone (and the encoding to ``fmt`` bytes when given)."""
    ae, config = run.autoencoder, run.model_config
    x = torch.rand(1, 3, config.image_size, config.image_size) * 2 - 1
    decoder = FastDecoder(ae.decoder)
    with torch.inference_mode():
        z = ae.encode(x)
        latent = decoder.prepare(z)
    times = []
    y = torch.zeros(1, 3, dtype=torch.long)
    with torch_threads(threads):
        for k, alpha in enumerate([0.3, 0.4, 0.5] + slider_moves(n)):
            t = time.perf_counter()
            code = code_for(config, y, {0: alpha})
            if fast:
                x_hat = decoder.decode(latent, code)
            else:
                with torch.no_grad():
                    x_hat = ae.decoder(z, code)
            if fmt:
                encode_image(to_uint8(x_hat[0]), fmt)
            if k >= 3:
                times.append(time.perf_counter() - t)
    return times


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def run() -> list[dict]:
    rows = []

    def row(setting, value, unit):
        rows.append({"benchmark": "sliders", "setting": setting, "value": value, "unit": unit})

    row("load average over the last minute at the start (2 cores: above 1 means contention)",
        round(os.getloadavg()[0], 2), "")
    for size, n in MOVES.items():
        r = untrained_run(size)
        wall, cpu = app_latency(r, n)
        p50, p95 = percentiles(wall)
        n50, _ = percentiles(naive_latency(r, NAIVE_MOVES[size]))
        target = f" (target <= {TARGET_P50_MS[size]:g})" if size in TARGET_P50_MS else ""
        row(f"{size} px, slider -> JPEG bytes, p50{target}, {n} moves", round(p50, 2), "ms")
        row(f"{size} px, slider -> JPEG bytes, p95", round(p95, 2), "ms")
        row(f"{size} px, slider -> JPEG bytes, CPU time of the move, p50 (no wait for a core)",
            round(percentiles(cpu)[0], 2), "ms")
        row(f"{size} px, naive cell (encode+decode+matplotlib), p50", round(n50, 1), "ms")
        row(f"{size} px, speed-up over the naive cell (target >= {TARGET_SPEEDUP:g})", round(n50 / p50, 1), "x")
        if size in TARGET_P50_MS:
            met = p50 <= TARGET_P50_MS[size] and n50 / p50 >= TARGET_SPEEDUP
            row(f"{size} px, targets met", "yes" if met else "NO", "")

    r = untrained_run(256)
    for setting, fast, threads, fmt in (("plain decoder, 1 thread", False, 1, None),
                                        ("FastDecoder, 1 thread", True, 1, None),
                                        ("plain decoder, 2 threads", False, 2, None),
                                        ("FastDecoder, 2 threads", True, 2, None),
                                        ("FastDecoder + JPEG q90, 1 thread", True, 1, "jpeg"),
                                        ("FastDecoder + PNG (level 1), 1 thread", True, 1, "png")):
        p50, p95 = percentiles(decode_latency(r, fast, threads, 40, fmt))
        row(f"256 px, {setting}, p50 / p95", f"{p50:.1f} / {p95:.1f}", "ms")
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r['setting']:<72} {r['value']:>12} {r['unit']}")
