"""Pictures of the method, drawn from a model's own configuration (matplotlib only, headless).

* :func:`draw_architecture`: the encoder E layer by layer down to the latent z, the decoder D back
  up to x_hat with the attribute code of y entering **every** one of its layers, and the latent
  discriminator P reading y from z. Every shape on it is measured by running the real networks of
  :mod:`faderlib.models` on a dummy image (:func:`network_shapes`), so the picture cannot disagree
  with the code, whatever the preset, image size or attributes.
* :func:`draw_game`: the two-player game of training (paper, section 3; docs/paper_notes.md,
  'The method and its losses'): P minimises its loss (1) on a z that carries no gradient back to E; E and D minimise
  the reconstruction plus lambda_E times the adversarial term, whose target depends on
  ``TrainConfig.adversary`` (:data:`faderlib.losses.ADVERSARIES`). Arrows show which network each
  loss's gradient reaches; the equations are those of the docstrings of :mod:`faderlib.losses`.

Both return a ``matplotlib.figure.Figure`` made without pyplot (Jupyter shows it when it ends a
cell; ``fig.savefig`` writes it), or draw into the ``ax`` given and return its figure. Shapes are
written ``channels×height×width``.
"""

from __future__ import annotations

import math
import textwrap

import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from torch import nn

from .config import ModelConfig
from .errors import ConfigError, did_you_mean
from .losses import ADVERSARIES
from .models import AutoEncoder, LatentDiscriminator, count_parameters

__all__ = ["network_shapes", "shape_text", "draw_architecture", "draw_game", "check_adversary", "GAME_TARGETS"]

# colours: one per network, the same in both pictures
_E, _D, _P, _Y, _Z = "#cfe2f3", "#d9ead3", "#f4cccc", "#fff2cc", "#e6d5f0"
_EDGE = "#444444"
_AE_GRAD, _DIS_GRAD = "#1f5fbf", "#c0392b"


def shape_text(shape) -> str:
    """``(32, 16, 16)`` -> ``"32×16×16"``, as the pictures write a shape."""
    return "×".join(str(int(s)) for s in shape)


# ----------------------------------------------------------------------------- measured shapes
def network_shapes(config: ModelConfig) -> dict:
    """The shapes (without the batch) the networks of ``config`` produce on one dummy image.

    Keys: ``input`` (the image x); ``encoder``, the output of each encoder layer (the last is z);
    ``code``, the attribute code concatenated to the input of each decoder layer, broadcast over
    that input's height and width, in the decoder's order; ``decoder``, the output of each decoder
    layer (the last is x_hat); ``discriminator``, the output of each convolution of P (none when z
    is already 1×1), then ``hidden`` and ``logits``, its two fully connected layers. Also ``layers``:
    a short name of each layer of each network (``"C16 BN LReLU"``), for the picture.
    """
    with torch.random.fork_rng(devices=[]):  # building the networks draws their weights: leave the caller's seed alone
        ae, dis = AutoEncoder(config).eval(), LatentDiscriminator(config).eval()
    found: dict[str, list] = {"encoder": [], "decoder_in": [], "decoder": [], "discriminator": [], "proj": []}
    hooks = []

    def record(key, inputs_too=False):
        def hook(module, inputs, output):
            if inputs_too:
                found["decoder_in"].append(tuple(inputs[0].shape[1:]))
            found[key].append(tuple(output.shape[1:]))
        return hook

    for layer in ae.encoder.layers:
        hooks.append(layer.register_forward_hook(record("encoder")))
    for layer in ae.decoder.layers:
        hooks.append(layer.register_forward_hook(record("decoder", inputs_too=True)))
    for layer in dis.conv:
        hooks.append(layer.register_forward_hook(record("discriminator")))
    for layer in dis.proj:
        if isinstance(layer, nn.Linear):
            hooks.append(layer.register_forward_hook(record("proj")))
    x = torch.zeros(1, config.img_channels, config.image_size, config.image_size)
    y = torch.zeros(1, len(config.attributes), dtype=torch.long)
    try:
        with torch.no_grad():
            z, _ = ae(x, y)
            dis(z)
    finally:
        for h in hooks:
            h.remove()
    features = [found["encoder"][-1]] + found["decoder"][:-1]  # what each decoder layer gets before y
    code = [(inp[0] - h[0], inp[1], inp[2]) for inp, h in zip(found["decoder_in"], features)]
    return {
        "input": tuple(x.shape[1:]),
        "encoder": found["encoder"],
        "code": code,
        "decoder": found["decoder"],
        "discriminator": found["discriminator"],
        "hidden": found["proj"][0],
        "logits": found["proj"][1],
        "layers": {"encoder": [_layer_name(m) for m in ae.encoder.layers],
                   "decoder": [_layer_name(m) for m in ae.decoder.layers],
                   "discriminator": [_layer_name(m) for m in dis.conv]},
        "parameters": {"encoder": count_parameters(ae.encoder), "decoder": count_parameters(ae.decoder),
                       "discriminator": count_parameters(dis)},
    }


#: The short name of each plain layer in a box's caption (LeakyReLU before ReLU: neither subclasses the other).
_LABELS = ((nn.Upsample, "Up×2"), (nn.PixelShuffle, "Shuffle"), (nn.BatchNorm2d, "BN"), (nn.InstanceNorm2d, "IN"),
           (nn.LeakyReLU, "LReLU"), (nn.ReLU, "ReLU"), (nn.Tanh, "tanh"))


def _layer_name(block: nn.Module) -> str:
    """A short name of one layer: ``C32 BN LReLU``, ``ConvT64 BN ReLU``, ``Up C3 tanh``."""
    parts = []
    for m in (block.children() if isinstance(block, nn.Sequential) else [block]):
        if isinstance(m, nn.ConvTranspose2d):
            parts.append(f"ConvT{m.out_channels}")
        elif isinstance(m, nn.Conv2d):
            parts.append(f"C{m.out_channels}" if m.kernel_size[0] == 4 else f"Conv{m.out_channels}")
        elif isinstance(m, nn.Dropout):
            parts.append(f"drop {m.p:g}")
        else:
            parts.extend(label for kind, label in _LABELS if isinstance(m, kind))
    return " ".join(parts)


# ----------------------------------------------------------------------------- drawing helpers
def _canvas(ax, size: tuple[float, float], xlim, ylim):
    """A figure of ``size`` inches whose single axes fill it (or the ``ax`` given), data units kept square."""
    if ax is None:
        fig = Figure(figsize=size)
        ax = fig.add_axes((0, 0, 1, 1))
    else:
        fig = ax.figure
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig, ax


def _box(ax, x, y, w, h, text, fc, fontsize=8, ec=_EDGE, lw=0.9, weight="normal", gid=None, round_=0.06,
         ls="-", color="black", z=2):
    """A rounded box centred on (x, y), its text centred in it; returns the text artist."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=f"round,pad=0,rounding_size={round_}",
                                fc=fc, ec=ec, lw=lw, ls=ls, zorder=z))
    t = ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, weight=weight, color=color, zorder=z + 1)
    if gid:
        t.set_gid(gid)
    return t


def _arrow(ax, start, end, color=_EDGE, lw=1.0, ls="-", style="-|>", connection="arc3", shrink=0.0, z=1,
           mutation=9):
    ax.annotate("", xy=end, xytext=start, zorder=z,
                arrowprops=dict(arrowstyle=style, color=color, lw=lw, ls=ls, connectionstyle=connection,
                                shrinkA=shrink, shrinkB=shrink, mutation_scale=mutation))


def _names(config: ModelConfig, width: int = 26, max_lines: int = 3) -> str:
    """The attributes, wrapped; a long list is cut with the count."""
    text = ", ".join(a.spec for a in config.attributes)
    lines = textwrap.wrap(text, width)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(",") + f" … ({len(config.attributes)} in all)"
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the architecture
def _width(side: int) -> float:
    """A tensor's box is wider for a larger side (log scale): the encoder narrows like a funnel."""
    return 0.95 + 0.34 * math.log2(max(side, 1))


def _height(channels: int) -> float:
    """... and taller for more channels (log scale)."""
    return 0.30 + 0.045 * math.log2(max(channels, 1))


def draw_architecture(model_config: ModelConfig, ax=None) -> Figure:
    """The networks of ``model_config`` as a block diagram, every shape measured on the real networks.

    Left, top to bottom, the encoder E: the image x, then the output of each of its layers
    (channels×height×width; a box's width grows with the side, its height with the channels), down
    to the latent z. Right, bottom to top, the decoder D from z back to x_hat; the attributes y,
    as their code ``[1 - y, y]`` (2 channels per binary attribute, K per K-valued one), broadcast
    over height and width and concatenated (⊕) to the input of **each** decoder layer, with the
    code's shape there. Below z, the latent discriminator P: its convolutions down to 1×1, two fully
    connected layers, and one logit per attribute value, trained to predict y (loss (1)).

    >>> fig = draw_architecture(ModelConfig.from_preset("paper", 64, ["Smiling", "Male"]))
    """
    if not isinstance(model_config, ModelConfig):
        raise ConfigError(f"draw_architecture needs a ModelConfig (e.g. TrainConfig.from_recipe('course', ...)"
                          f".model_config()), got {type(model_config).__name__}")
    config = model_config
    s = network_shapes(config)
    n, n_p = config.n_layers, len(s["discriminator"])
    zs = s["encoder"][-1]
    z_w, z_h = _width(zs[1]) + 0.5, _height(zs[0]) + 0.05
    xe, xd = 0.0, 6.3
    xz = (xe + xd) / 2
    xbus = xd + 2.75
    row = 1.0
    level = lambda k: -k * row  # noqa: E731 - the y coordinate of level k (0 at the top)
    bottom = level(n + n_p + 2) - 1.45
    fig, ax = _canvas(ax, None if ax is not None else (0.62 * 13.3, 0.62 * (-bottom + 2.0)),
                      (xe - 2.15, xbus + 1.9), (bottom, 1.95))

    # titles, column shading
    ax.text(xz, 1.55, f"Fader network: preset {config.preset!r}, {config.image_size} px, "
            f"{len(config.attributes)} attribute(s), {config.upsampling} decoder",
            ha="center", va="center", fontsize=10, weight="bold")
    p = s["parameters"]
    for x, name, what, params, fc in ((xe, "encoder E", "z = E(x)", p["encoder"], _E),
                                      (xd, "decoder D", r"$\hat{x}$ = D(z, y)", p["decoder"], _D)):
        ax.text(x, 0.9, f"{name}:  {what}\n{params:,} parameters", ha="center", va="center", fontsize=8.5)
        ax.add_patch(FancyBboxPatch((x - 2.0, level(n - 1) - 0.6), 4.0, -level(n - 1) + 1.05,
                                    boxstyle="round,pad=0,rounding_size=0.2", fc=fc, ec="none", alpha=0.35, zorder=0))

    # the encoder: x, then each layer's output; the last one is z
    shapes_e = [s["input"]] + s["encoder"][:-1]
    for k, shp in enumerate(shapes_e):
        text = f"x  {shape_text(shp)}" if k == 0 else shape_text(shp)
        _box(ax, xe, level(k), _width(shp[1]), _height(shp[0]), text, _E, weight="bold" if k == 0 else "normal")
    for i, name in enumerate(s["layers"]["encoder"]):
        top = level(i) - _height(shapes_e[i][0]) / 2
        if i < n - 1:
            end = level(i + 1) + _height(shapes_e[i + 1][0]) / 2
            _arrow(ax, (xe, top), (xe, end))
            ax.text(xe + 0.1, (top + end) / 2, name, ha="left", va="center", fontsize=7, color="#333333")
        else:  # down, then right into z
            _arrow(ax, (xe, top), (xz - z_w / 2, level(n)), connection="angle,angleA=-90,angleB=180,rad=0")
            ax.text(xe + 0.1, (top + level(n) + z_h / 2) / 2, name, ha="left", va="center", fontsize=7,
                    color="#333333")

    _box(ax, xz, level(n), z_w, z_h, f"z  {shape_text(zs)}", _Z, fontsize=8.5, weight="bold")

    # the decoder: from z up to x_hat; y's code enters every layer
    outs = s["decoder"]
    for k, shp in enumerate(outs):
        lvl = n - 1 - k
        last = k == len(outs) - 1
        _box(ax, xd, level(lvl), _width(shp[1]), _height(shp[0]),
             (r"$\hat{x}$  " + shape_text(shp)) if last else shape_text(shp), _D, weight="bold" if last else "normal")
    ax.plot([xbus, xbus], [level(n + n_p + 2) + 0.45, level(0.5)], color="#b08900", lw=1.6, zorder=1)
    for k, (name, code) in enumerate(zip(s["layers"]["decoder"], s["code"])):
        lvl = n - 1 - k
        end = level(lvl) - _height(outs[k][0]) / 2
        if k == 0:  # from z: right, then up
            _arrow(ax, (xz + z_w / 2, level(n)), (xd, end), connection="angle,angleA=0,angleB=-90,rad=0")
            mid = (level(n) + z_h / 2 + end) / 2
        else:
            start = level(lvl + 1) + _height(outs[k - 1][0]) / 2
            _arrow(ax, (xd, start), (xd, end))
            mid = (start + end) / 2
        ax.text(xd - 0.24, mid, name, ha="right", va="center", fontsize=7, color="#333333")
        # y's code, concatenated to this layer's input
        _arrow(ax, (xbus, mid), (xd + 0.15, mid), color="#b08900", lw=1.2)
        ax.text(xd, mid, "⊕", ha="center", va="center", fontsize=11, color="#b08900", zorder=4,
                bbox=dict(boxstyle="circle,pad=0.0", fc="white", ec="none"))
        t = ax.text((xd + xbus) / 2 + 0.1, mid + 0.04, f"y {shape_text(code)}", ha="center", va="bottom",
                    fontsize=7, color="#7a5f00")
        t.set_gid("decoder-code")

    # the latent discriminator P below z
    chain = s["discriminator"] + [s["hidden"], s["logits"]]
    names = s["layers"]["discriminator"] + ["FC", "FC"]
    prev_bottom = level(n) - z_h / 2
    for j, (shp, name) in enumerate(zip(chain, names)):
        lvl = n + 1 + j
        is_vec = len(shp) == 1
        w = 1.5 if is_vec else _width(shp[1])
        h = 0.34 if is_vec else _height(shp[0])
        logits = j == len(chain) - 1
        if logits:
            label = f"{shp[0]} logits: p(y | z)"
            w = 2.2
        else:
            label = f"{shp[0]} units" if is_vec else shape_text(shp)
        _box(ax, xz, level(lvl), w, h, label, _P, weight="bold" if logits else "normal")
        top = level(lvl) + h / 2
        _arrow(ax, (xz, prev_bottom), (xz, top))
        ax.text(xz + 0.1, (prev_bottom + top) / 2, name, ha="left", va="center", fontsize=7, color="#333333")
        prev_bottom = level(lvl) - h / 2
    y_top, y_bottom = level(n + 0.55), level(n + n_p + 2) - 0.45
    ax.add_patch(FancyBboxPatch((xz - 2.0, y_bottom), 4.0, y_top - y_bottom, boxstyle="round,pad=0,rounding_size=0.2",
                                fc=_P, ec="none", alpha=0.3, zorder=0))
    ax.text(xz - 2.15, y_top - 0.1, f"latent discriminator P\nreads y from z\n{p['discriminator']:,} parameters",
            ha="right", va="top", fontsize=8.5)

    # y: the attributes, their code, and where they go
    ly = level(n + n_p + 2)
    code_ch = config.n_attr_channels
    _box(ax, xbus, ly, 3.3, 0.9 + 0.17 * _names(config).count("\n"),
         f"attributes y:\n{_names(config)}\ncode [1 − y, y]: {code_ch} channels", _Y, fontsize=7.5)
    _arrow(ax, (xbus - 1.65, ly), (xz + 1.1, ly), color=_DIS_GRAD, ls="--", lw=1.1)
    ax.text((xbus - 1.65 + xz + 1.1) / 2, ly + 0.08, "P's target: y (1)", ha="center", va="bottom", fontsize=7,
            color=_DIS_GRAD)
    ax.text(xbus + 0.12, level(0.5), f"y enters every\ndecoder layer ({n})", ha="left", va="center", fontsize=7,
            color="#7a5f00")

    up = {"convtranspose": "ConvTk: transposed convolution, k filters 4×4, stride 2 (doubles the side)",
          "upsampling": "Up×2: nearest-neighbour upsampling (doubles the side), Convk: k filters 3×3",
          "pixelshuffle": "Convk: k filters 3×3, then Shuffle: PixelShuffle(2) (k/4 channels, doubles the side)",
          }[config.upsampling]
    norm = "IN: InstanceNorm" if config.instance_norm else "BN: BatchNorm"
    ax.text(xz, bottom + 0.55, f"Ck: convolution, k filters 4×4, stride 2 (halves the side)   {norm}   LReLU: "
            f"LeakyReLU(0.2)\n{up}\n⊕: concatenation over channels   box width ~ log(side), height ~ log(channels)",
            ha="center", va="center", fontsize=7, color="#555555", linespacing=1.4)
    return fig


# ----------------------------------------------------------------------------- the game
#: What the encoder wants P to predict, for each adversary (the words the game's picture shows).
GAME_TARGETS = {
    "flip": "target: the flipped attributes 1 − y",
    "uniform": "target: the uniform distribution, 1/K for each of an attribute's K values",
    "reverse": "target: none; minus P's own loss (1) on the true y (gradient reversal)",
}

_ADVERSARIAL_TERMS = {
    "flip": r"$\mathcal{L}_{adv} = -\log\ p_P(1 - y \mid E(x))$",
    "uniform": r"$\mathcal{L}_{adv} = -\frac{1}{K}\ \Sigma_k\ \log\ p_P(k \mid E(x))$",
    "reverse": r"$\mathcal{L}_{adv} = -\mathcal{L}_{dis} = \log\ p_P(y \mid E(x))$",
}

_OPTIMUM = {
    "flip": "least when P is sure of the wrong value: z read backwards",
    "uniform": "least when P says 1/K for every value: z tells P nothing",
    "reverse": "no least value: pushes p_P(y | z) towards 0 without end",
}


def check_adversary(adversary: str) -> str:
    """``adversary`` if it is one of :data:`faderlib.losses.ADVERSARIES`, else a :class:`ConfigError` naming the choices."""
    if adversary not in ADVERSARIES:
        raise ConfigError(f"unknown adversary {adversary!r}; choose one of {', '.join(ADVERSARIES)}."
                          f"{did_you_mean(str(adversary), ADVERSARIES)}")
    return adversary


def draw_game(adversary: str = "flip", ax=None) -> Figure:
    """The two-player game of a Fader network for ``adversary`` (``"flip"``, the paper's;
    ``"uniform"``; ``"reverse"``: :data:`faderlib.losses.ADVERSARIES`).

    The networks (E, D, P) and what flows between them (x, z, y, x_hat, P's prediction); the two
    losses with their equations; arrows from each loss to the networks its gradient reaches: the
    discriminator's loss (1) steps P only, on a z detached from E; the autoencoder's loss steps E and
    D, its adversarial term passing through P, which is frozen in that step.
    """
    check_adversary(adversary)
    fig, ax = _canvas(ax, (12.4, 7.3), (-0.5, 18.5), (-0.6, 10.6))
    ax.text(9.0, 10.25, f"The two-player game (adversary = {adversary!r})", ha="center", va="center",
            fontsize=12.5, weight="bold")
    ax.text(9.0, 9.8, GAME_TARGETS[adversary], ha="center", va="center", fontsize=10, color=_AE_GRAD, gid="target")

    # the data flow: x -> E -> z -> D -> x_hat, y into D, z -> P -> P's prediction
    yr = 5.8
    _box(ax, 0.6, yr, 1.1, 0.8, "x", "white", fontsize=12, lw=0.8)
    _box(ax, 2.8, yr, 1.6, 1.2, "E", _E, fontsize=13, weight="bold")
    _box(ax, 5.2, yr, 1.1, 0.8, "z", _Z, fontsize=12, weight="bold")
    _box(ax, 7.6, yr, 1.6, 1.2, "D", _D, fontsize=13, weight="bold")
    _box(ax, 9.8, yr, 1.1, 0.8, r"$\hat{x}$", "white", fontsize=12, lw=0.8)
    _box(ax, 7.6, 4.25, 1.1, 0.65, "y", _Y, fontsize=12)
    _box(ax, 5.2, 2.7, 1.6, 1.2, "P", _P, fontsize=13, weight="bold")
    _box(ax, 8.3, 2.7, 2.3, 0.8, r"$p_P(\cdot \mid z)$", "white", fontsize=11, lw=0.8)
    for a, b in (((1.15, yr), (2.0, yr)), ((3.6, yr), (4.65, yr)), ((5.75, yr), (6.8, yr)), ((8.4, yr), (9.25, yr)),
                 ((7.6, 4.58), (7.6, 5.2)), ((5.2, 5.4), (5.2, 3.3)), ((6.0, 2.7), (7.15, 2.7))):
        _arrow(ax, a, b, lw=1.3, mutation=12)
    ax.text(7.75, 4.88, "into every layer", ha="left", va="center", fontsize=8, color="#555555")

    # the autoencoder's loss (3), above: it steps E and D
    bx, by = 7.0, 8.25
    ax.add_patch(FancyBboxPatch((bx - 5.5, by - 1.15), 11.0, 2.3, boxstyle="round,pad=0,rounding_size=0.2",
                                fc="#eef3fb", ec=_AE_GRAD, lw=1.2, zorder=0))
    ax.text(bx, by + 0.87, "the autoencoder (E, D) minimises (3)", ha="center", va="center", fontsize=10,
            weight="bold", color=_AE_GRAD)
    ax.text(bx, by + 0.35, r"$\mathcal{L}_{AE} = \Vert D(E(x), y) - x \Vert_2^2 + \lambda_E\ \mathcal{L}_{adv}$",
            ha="center", va="center", fontsize=12)
    ax.text(bx, by - 0.3, _ADVERSARIAL_TERMS[adversary], ha="center", va="center", fontsize=12)
    ax.text(bx, by - 0.88, _OPTIMUM[adversary] + "  (summed over attributes, averaged over the batch)",
            ha="center", va="center", fontsize=8, color="#333333")
    for x, what in ((2.8, r"$\nabla_{\theta_{enc}}$"), (7.6, r"$\nabla_{\theta_{dec}}$")):
        _arrow(ax, (x, by - 1.15), (x, yr + 0.65), color=_AE_GRAD, lw=2.0, mutation=14)
        ax.text(x + 0.15, (by - 1.15 + yr + 0.65) / 2, what, ha="left", va="center", fontsize=11, color=_AE_GRAD)
    ax.text(bx + 5.6, by - 0.1, "steps E and D\n(Adam on E and D only)", ha="left", va="center", fontsize=8.5,
            color=_AE_GRAD)
    # its adversarial term acts on P's prediction and flows back through P (frozen) and z into E
    _arrow(ax, (bx + 5.2, by - 1.15), (9.5, 2.9), color=_AE_GRAD, lw=1.3, ls=":", connection="arc3,rad=-0.2",
           mutation=11)
    ax.text(12.3, 5.3, r"$\mathcal{L}_{adv}$ reaches E back through" + "\nP's prediction, P and z\n"
            "(P is frozen in this step: not updated)", ha="left", va="center", fontsize=8.5, color=_AE_GRAD)

    # the discriminator's loss (1), right: it steps P only
    dx, dy = 14.6, 2.7
    ax.add_patch(FancyBboxPatch((dx - 3.55, dy - 1.2), 7.1, 2.4, boxstyle="round,pad=0,rounding_size=0.2",
                                fc="#fbeeee", ec=_DIS_GRAD, lw=1.2, zorder=0))
    ax.text(dx, dy + 0.85, "the discriminator P minimises (1)", ha="center", va="center", fontsize=10,
            weight="bold", color=_DIS_GRAD)
    ax.text(dx, dy + 0.15, r"$\mathcal{L}_{dis} = -\log\ p_P(y \mid E(x))$", ha="center", va="center", fontsize=12)
    ax.text(dx, dy - 0.7, "cross-entropy against the TRUE y,\non z = E(x) detached: its gradient stops at z",
            ha="center", va="center", fontsize=8, color="#333333")
    _arrow(ax, (dx - 3.55, dy - 0.6), (5.2, 2.05), color=_DIS_GRAD, lw=2.0, connection="arc3,rad=-0.3",
           mutation=14)
    ax.text(8.3, 0.95, r"$\nabla_{\theta_{dis}}$: steps P only", ha="center", va="center", fontsize=11,
            color=_DIS_GRAD)
    # ... and never E
    _arrow(ax, (4.45, 3.3), (2.9, 5.15), color=_DIS_GRAD, lw=1.3, ls="--", style="-", mutation=10)
    ax.text(3.68, 4.22, "✕", ha="center", va="center", fontsize=16, color=_DIS_GRAD, weight="bold")
    ax.text(-0.3, 3.6, "no gradient of (1)\nreaches E (z detached)", ha="left", va="center", fontsize=8.5,
            color=_DIS_GRAD)

    ax.text(9.0, -0.25, "Training alternates the two steps, each on its own batch: P's step (1), then the "
            "autoencoder's step (3); lambda_E grows from 0 over the first steps.", ha="center", va="center",
            fontsize=8.5, color="#555555")
    return fig
