"""The networks in tables: layer by layer with shapes and parameter counts (``fader summary``),
how y enters each decoder layer, which network a loss's gradient reaches, and a rough
memory budget of training.

The layer table and the gradient table are measured on the networks the code builds (a dummy
forward pass, a real backward pass), so they cannot disagree with the code; the decoder's
inputs are computed from the configuration and tested against the built decoder.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from .config import ModelConfig
from .models import AttributeClassifier, AutoEncoder, LatentDiscriminator, count_parameters


def describe(module: nn.Module) -> str:
    """A short description of a block, e.g. ``Conv2d 3->32 k4 s2 + LeakyReLU``."""
    parts = []
    for m in (module.children() if isinstance(module, nn.Sequential) else [module]):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            parts.append(f"{type(m).__name__} {m.in_channels}->{m.out_channels} k{m.kernel_size[0]} s{m.stride[0]}")
        elif isinstance(m, nn.Linear):
            parts.append(f"Linear {m.in_features}->{m.out_features}")
        elif isinstance(m, nn.Dropout):
            parts.append(f"Dropout {m.p:g}")
        elif isinstance(m, nn.LeakyReLU):
            parts.append(f"LeakyReLU {m.negative_slope:g}")
        else:
            parts.append(type(m).__name__)
    return " + ".join(parts)


def _blocks(network: str, model: nn.Module) -> list[tuple[str, nn.Module]]:
    if network == "encoder":
        return [(f"layers.{i}", m) for i, m in enumerate(model.layers)]
    if network == "decoder":
        return [(f"layers.{i}", m) for i, m in enumerate(model.layers)]
    rows = [(f"conv.{i}", m) for i, m in enumerate(model.conv)]
    rows += [(f"proj.{i}", m) for i, m in enumerate(model.proj) if not isinstance(m, nn.LeakyReLU)]
    return rows


def layer_table(config: ModelConfig) -> list[dict]:
    """One row per layer of every network: ``network``, ``layer``, ``what``, ``input``,
    ``output`` (shapes without the batch) and ``params``.

    Shapes are measured by running a dummy image through the networks, so the table
    cannot disagree with the code.
    """
    ae, dis, clf = AutoEncoder(config).eval(), LatentDiscriminator(config).eval(), AttributeClassifier(config).eval()
    rows: list[dict] = []
    hooks = []
    for network, model in (("encoder", ae.encoder), ("decoder", ae.decoder), ("latent_discriminator", dis),
                           ("classifier", clf)):
        for name, block in _blocks(network, model):
            row = {"network": network, "layer": name, "what": describe(block), "params": count_parameters(block)}
            rows.append(row)

            def hook(module, inputs, output, row=row):
                row["input"] = tuple(inputs[0].shape[1:])
                row["output"] = tuple(output.shape[1:])

            hooks.append(block.register_forward_hook(hook))
    x = torch.zeros(1, config.img_channels, config.image_size, config.image_size)
    y = torch.zeros(1, len(config.attributes), dtype=torch.long)
    with torch.no_grad():
        z, _ = ae(x, y)
        dis(z)
        clf(x)
    for h in hooks:
        h.remove()
    return rows


def parameter_counts(config: ModelConfig) -> dict[str, int]:
    """Parameter counts of each network, as ``fader summary --json`` prints them."""
    ae = AutoEncoder(config)
    return {
        "encoder": count_parameters(ae.encoder),
        "decoder": count_parameters(ae.decoder),
        "autoencoder": count_parameters(ae),
        "latent_discriminator": count_parameters(LatentDiscriminator(config)),
        "classifier": count_parameters(AttributeClassifier(config)),
    }


_TITLES = {
    "encoder": "Encoder E: z = E(x)",
    "decoder": "Decoder D: x_hat = D(z, y)  (input channels = features + attribute code)",
    "latent_discriminator": "Latent discriminator P: predicts y from z",
    "classifier": "Attribute classifier (evaluation only): predicts y from x",
}


def _shape(s: tuple) -> str:
    return "x".join(map(str, s))


def format_table(config: ModelConfig) -> str:
    """The human-readable table: one section per network, a total per network."""
    rows = layer_table(config)
    counts = parameter_counts(config)
    attrs = ", ".join(a.spec for a in config.attributes)
    lines = [
        f"Fader Network, preset {config.preset!r}, {config.image_size} px, attributes: {attrs}",
        f"latent z: {_shape(config.latent_shape)}; attribute code: {config.n_attr_channels} channels "
        "(concatenated to the input of every decoder layer)",
    ]
    w_layer = max(len(r["layer"]) for r in rows)
    w_what = max(len(r["what"]) for r in rows)
    for network, title in _TITLES.items():
        lines += ["", title]
        header = f"{'layer':<{w_layer}}  {'what':<{w_what}}  {'input':>13}  {'output':>13}  {'params':>11}"
        lines += [header, "-" * len(header)]
        for r in (r for r in rows if r["network"] == network):
            lines.append(f"{r['layer']:<{w_layer}}  {r['what']:<{w_what}}  {_shape(r['input']):>13}  "
                         f"{_shape(r['output']):>13}  {r['params']:>11,}")
        lines.append(f"{'total ' + network:>{len(header) - 13}}  {counts[network]:>11,}")
    lines += ["", f"autoencoder (encoder + decoder): {counts['autoencoder']:,} parameters"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- y in the decoder, gradients, memory
def decoder_inputs(config: ModelConfig) -> pd.DataFrame:
    """How y enters every decoder layer: for each layer, the feature channels coming from z
    (or the layer before), the attribute channels concatenated to them, their sum (the
    layer's input channels) and the output channels, with the spatial sides."""
    side = config.latent_shape[1]
    rows = []
    for k, i in enumerate(reversed(range(config.n_layers))):
        features = config.channels(i)
        out = config.img_channels if i == 0 else config.channels(i - 1)
        rows.append({
            "layer": f"layers.{k}",
            "input side": f"{side}x{side}",
            "features": features,
            "attribute code": config.n_attr_channels,
            "input channels": features + config.n_attr_channels,
            "output channels": out,
            "output side": f"{2 * side}x{2 * side}",
        })
        side *= 2
    return pd.DataFrame(rows).set_index("layer")


def gradient_table(loss: torch.Tensor, modules: Mapping[str, nn.Module], retain_graph: bool = True) -> pd.DataFrame:
    """Which networks a loss's gradient reaches: backpropagate ``loss`` alone and count, per
    module, the parameter tensors that got a non-zero gradient, and the gradient's norm.

    Gradients are cleared before and after (``.grad = None``), so the table shows this loss
    only and nothing leaks into a later optimiser step. ``retain_graph`` keeps the graph,
    so several losses of one forward pass can be examined in turn.
    """
    params = {name: [p for p in m.parameters()] for name, m in modules.items()}
    for ps in params.values():
        for p in ps:
            p.grad = None
    loss.backward(retain_graph=retain_graph)
    rows = {}
    for name, ps in params.items():
        grads = [p.grad for p in ps if p.grad is not None]
        reached = sum(1 for g in grads if bool(g.abs().sum() > 0))
        norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads)) if grads else 0.0
        rows[name] = {"parameter tensors": len(ps), "reached by the gradient": reached, "gradient norm": norm}
        for p in ps:
            p.grad = None
    table = pd.DataFrame(rows).T.astype({"parameter tensors": int, "reached by the gradient": int})
    table.index.name = "network"
    return table


def memory_estimate(config: ModelConfig, batch_size: int = 32) -> pd.DataFrame:
    """A rough GPU memory budget of training, in MiB (an estimate, not a measurement).

    * parameters: weights, gradients and Adam's two moments, 4 float32 copies, for the
      autoencoder and the latent discriminator;
    * activations: autograd keeps about three tensors per layer (the convolution's output,
      the normalised one, the activation) for the batch of the autoencoder step, which runs
      E, D and P; the discriminator step's are smaller (P only).

    CUDA's context (300-500 MiB) and the allocator's slack come on top.
    """
    counts = parameter_counts(config)
    rows = layer_table(config)
    per_image = sum(int(np.prod(r["output"])) for r in rows if r["network"] in ("encoder", "decoder",
                                                                                  "latent_discriminator"))
    mib = 2 ** 20
    params = counts["autoencoder"] + counts["latent_discriminator"]
    table = pd.DataFrame({
        "parameters": {"autoencoder + latent discriminator": params},
        "weights, gradients, Adam (MiB)": {"autoencoder + latent discriminator": 16 * params / mib},
        f"activations, batch {batch_size} (MiB)": {"autoencoder + latent discriminator":
                                                   3 * 4 * per_image * batch_size / mib},
    })
    table["total, rough (MiB)"] = table.iloc[:, 1] + table.iloc[:, 2]
    return table.round(1)
