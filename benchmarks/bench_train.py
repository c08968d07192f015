"""Training throughput on CPU (images/s, both steps of an iteration counted).

At 64, 128 and 256 px (the ``official`` preset, three attributes, batch 32), each with
and without the channels-last memory layout, since the faster layout depends on the size
on CPU. Reports the throughput of the default (``channels_last="auto"``) against the
plainest configuration (contiguous NCHW) as a ratio measured in the same run.

Run ``python benchmarks/bench_train.py`` (or ``make bench``). About two minutes on 2 cores.
"""

from __future__ import annotations

import time

import torch

from faderlib.config import ModelConfig
from faderlib.losses import adversarial_loss, discriminator_loss, reconstruction_loss
from faderlib.models import AutoEncoder, LatentDiscriminator
from faderlib.train import use_channels_last

ATTRIBUTES = ["Smiling", "Eyeglasses", "Male"]
BATCH = 32
ITERATIONS = {64: 12, 128: 5, 256: 2}


def iteration_time(size: int, channels_last: bool, iterations: int) -> float:
    """Seconds per iteration (one discriminator step + one autoencoder step), as in Trainer."""
    torch.manual_seed(0)
    config = ModelConfig.from_preset("official", size, ATTRIBUTES)
    ae, dis = AutoEncoder(config), LatentDiscriminator(config)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    ae.to(memory_format=fmt)
    dis.to(memory_format=fmt)
    opt_ae, opt_dis = torch.optim.Adam(ae.parameters()), torch.optim.Adam(dis.parameters())
    x = (torch.rand(BATCH, 3, size, size) * 2 - 1).contiguous(memory_format=fmt)
    y = torch.randint(0, 2, (BATCH, len(ATTRIBUTES)))

    def step():
        ae.eval()
        with torch.no_grad():
            z = ae.encode(x)
        loss = discriminator_loss(dis(z), y, config)
        opt_dis.zero_grad()
        loss.backward()
        opt_dis.step()
        ae.train()
        dis.requires_grad_(False)
        z, x_hat = ae(x, y)
        loss = reconstruction_loss(x_hat, x) + 1e-4 * adversarial_loss(dis(z), y, config)
        opt_ae.zero_grad()
        loss.backward()
        opt_ae.step()
        dis.requires_grad_(True)

    step()  # warm-up
    t = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - t) / iterations


def run() -> list[dict]:
    rows = []
    for size, n in ITERATIONS.items():
        speed = {cl: 2 * BATCH / iteration_time(size, cl, n) for cl in (False, True)}
        default = use_channels_last("auto", torch.device("cpu"), size)
        for cl in (False, True):
            rows.append({"benchmark": "train", "setting": f"{size} px, {'channels-last' if cl else 'NCHW'}"
                         + (" (default)" if cl == default else ""), "value": round(speed[cl], 1), "unit": "images/s"})
        rows.append({"benchmark": "train", "setting": f"{size} px, default / plainest",
                     "value": round(speed[default] / speed[False], 2), "unit": "x"})
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r['setting']:<40} {r['value']:>10} {r['unit']}")
