"""Layer-by-layer tables of the networks, and their parameter counts (``fader summary``)."""

from __future__ import annotations

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
