"""Every convolution shape of the presets, plain (oneDNN) against one matrix product (faderlib.fastconv).

For each preset (``paper``, ``official``) at 32, 64, 128 and 256 px, the networks a run trains
(encoder, decoder, latent discriminator) and the evaluation classifier are built, and the input
shape of each of their convolutions is recorded. Each distinct shape whose larger side is at most
16 pixels is then timed forward and backward (batch 32, float32, channels-last input as training
feeds it), the plain layer and the same layer on the matrix-product path alternated, three rounds,
the best kept, with one and with two threads. Layers on larger images stay plain (their im2col
would copy k*k times the image; the first rows of the table show the trend).

This is how :data:`faderlib.fastconv.MAX_SIDE` and ``MIN_CHANNELS`` were chosen (the label in
brackets: the path the kit takes). ``python benchmarks/bench_layers.py``:
about three minutes on 2 cores.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from faderlib.config import ModelConfig
from faderlib.fastconv import MAX_SIDE, MIN_CHANNELS, conv2d_gemm, conv_transpose2d_gemm
from faderlib.models import AttributeClassifier, AutoEncoder, LatentDiscriminator

BATCH = 32
ROUNDS = 2
LARGEST = 16
ATTRIBUTES = ["Smiling", "Eyeglasses", "Male"]


def layer_shapes() -> dict[tuple, set[str]]:
    """(kind, C_in, C_out, input side) -> where it occurs ("paper 64 px encoder", ...)."""
    shapes: dict[tuple, set[str]] = {}
    for preset in ("paper", "official"):
        for size in (32, 64, 128, 256):
            config = ModelConfig.from_preset(preset, size, ATTRIBUTES)
            nets = {"autoencoder": AutoEncoder(config), "discriminator": LatentDiscriminator(config),
                    "classifier": AttributeClassifier(config)}
            for net_name, net in nets.items():
                hooks = []
                for m in net.modules():
                    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                        def record(mod, inputs, _net=net_name, _p=preset, _s=size):
                            key = (type(mod).__name__, mod.in_channels, mod.out_channels, inputs[0].shape[-1])
                            shapes.setdefault(key, set()).add(f"{_p} {_s}")
                        hooks.append(m.register_forward_pre_hook(record))
                with torch.no_grad():
                    x = torch.zeros(1, 3, size, size)
                    if net_name == "autoencoder":
                        net.eval()(x, torch.zeros(1, 3, dtype=torch.long))
                    elif net_name == "discriminator":
                        net.eval()(nets["autoencoder"].eval().encode(x))
                    else:
                        net.eval()(x)
                for h in hooks:
                    h.remove()
    return shapes


class _Gemm(nn.Module):
    """The layer's matrix-product path, whatever its size (the timing of what MAX_SIDE decides)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer
        self.f = conv2d_gemm if isinstance(layer, nn.Conv2d) else conv_transpose2d_gemm

    def forward(self, x):
        return self.f(x, self.layer.weight, self.layer.bias, self.layer.stride, self.layer.padding)


def _time(layer: nn.Module, x: torch.Tensor, reps: int) -> float:
    """Seconds per forward + backward (best of the reps)."""
    best = float("inf")
    for _ in range(reps):
        xi = x.detach().requires_grad_(x.shape[1] > 3)
        t = time.perf_counter()
        out = layer(xi)
        out.backward(torch.ones_like(out))
        best = min(best, time.perf_counter() - t)
    return best


def run() -> list[dict]:
    rows = []
    shapes = {k: v for k, v in layer_shapes().items() if k[3] <= LARGEST}
    old = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for (kind, c_in, c_out, side), where in sorted(shapes.items(), key=lambda kv: (-kv[0][3], kv[0])):
                plain = (nn.Conv2d if kind == "Conv2d" else nn.ConvTranspose2d)(c_in, c_out, 4, 2, 1)
                fast = _Gemm(copy.deepcopy(plain))
                x = torch.randn(BATCH, c_in, side, side).contiguous(memory_format=torch.channels_last)
                reps = 2 if side >= 16 else 4
                best = {"plain": float("inf"), "gemm": float("inf")}
                for r in range(ROUNDS):
                    for name, layer in ((("plain", plain), ("gemm", fast)) if r % 2 == 0
                                        else (("gemm", fast), ("plain", plain))):
                        best[name] = min(best[name], _time(layer, x, reps))
                out_side = side // 2 if kind == "Conv2d" else side * 2
                setting = (f"{kind}({c_in}, {c_out}) {side}x{side} -> {out_side}x{out_side}, {threads} thr "
                           f"[{'gemm' if max(side, out_side) <= MAX_SIDE and min(c_in, c_out) >= MIN_CHANNELS else 'plain'}]")
                rows.append({"benchmark": "layers", "setting": setting + " plain ms",
                             "value": round(1000 * best["plain"], 2), "unit": "ms"})
                rows.append({"benchmark": "layers", "setting": setting + " plain / gemm",
                             "value": round(best["plain"] / best["gemm"], 2), "unit": "x"})
    finally:
        torch.set_num_threads(old)
    return rows


if __name__ == "__main__":
    from common import print_rows_main

    print_rows_main(run, __doc__.splitlines()[0], name_width=8, value_format=".2f")
