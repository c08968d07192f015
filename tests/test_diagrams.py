"""The pictures of the method (faderlib/diagrams.py): the architecture shows exactly the shapes the
real networks produce, y enters every decoder layer, and the game names each adversary's target."""

import io
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from faderlib.config import ModelConfig
from faderlib.diagrams import GAME_TARGETS, draw_architecture, draw_game
from faderlib.errors import ConfigError
from faderlib.losses import ADVERSARIES
from faderlib.models import AutoEncoder, LatentDiscriminator

ROOT = Path(__file__).resolve().parent.parent
SHAPE = re.compile(r"\d+×\d+×\d+")
CODE_LABEL = re.compile(r"^y (\d+×\d+×\d+)$")


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def fmt(shape) -> str:
    return "×".join(map(str, shape))


def run_networks(config: ModelConfig) -> dict:
    """The shapes the networks produce, measured here with hooks (independently of faderlib.diagrams)."""
    ae, dis = AutoEncoder(config).eval(), LatentDiscriminator(config).eval()
    seen = {"encoder": [], "decoder_in": [], "decoder": [], "discriminator": []}
    def keep(key, inputs=None):
        def hook(module, i, o):  # returns None: the output is left as it is
            if inputs:
                seen[inputs].append(tuple(i[0].shape[1:]))
            seen[key].append(tuple(o.shape[1:]))
        return hook

    hooks = [m.register_forward_hook(keep("encoder")) for m in ae.encoder.layers]
    hooks += [m.register_forward_hook(keep("decoder", "decoder_in")) for m in ae.decoder.layers]
    hooks += [m.register_forward_hook(keep("discriminator")) for m in dis.conv]
    x = torch.rand(1, 3, config.image_size, config.image_size)
    with torch.no_grad():
        z, _ = ae(x, torch.zeros(1, len(config.attributes), dtype=torch.long))
        logits = dis(z)
    for h in hooks:
        h.remove()
    # y's code, broadcast over each decoder layer's input: what the input has beyond the features
    features = [seen["encoder"][-1]] + seen["decoder"][:-1]
    code = [(i[0] - f[0], i[1], i[2]) for i, f in zip(seen["decoder_in"], features)]
    assert all(c[0] == config.n_attr_channels for c in code)
    return {"x": tuple(x.shape[1:]), **seen, "code": code, "logits": logits.shape[1], "n_decoder": len(ae.decoder.layers)}


CONFIGS = [("paper", 32, ["Smiling", "Eyeglasses", "Male"]), ("paper", 128, ["Male"]),
           ("official", 32, ["Smiling", "Hair.3"]), ("official", 128, ["Smiling", "Eyeglasses", "Male"])]


@pytest.mark.parametrize("preset,size,attributes", CONFIGS)
def test_architecture_lists_exactly_the_shapes_of_the_networks(preset, size, attributes):
    config = ModelConfig.from_preset(preset, size, attributes)
    real = run_networks(config)
    fig = draw_architecture(config)
    labels = texts(fig)
    shown = Counter(m for t in labels for m in SHAPE.findall(t))
    expected = Counter(map(fmt, [real["x"], *real["encoder"], *real["decoder"], *real["code"], *real["discriminator"]]))
    assert shown == expected
    # named: the image, z, the reconstruction
    assert f"x  {fmt(real['x'])}" in labels and f"z  {fmt(real['encoder'][-1])}" in labels
    assert any(t.endswith(fmt(real["decoder"][-1])) and "hat{x}" in t for t in labels)
    assert f"{real['logits']} logits: p(y | z)" in labels


@pytest.mark.parametrize("preset,size,attributes", CONFIGS)
def test_y_enters_every_decoder_layer(preset, size, attributes):
    config = ModelConfig.from_preset(preset, size, attributes)
    real = run_networks(config)
    codes = [m.group(1) for t in texts(draw_architecture(config)) if (m := CODE_LABEL.match(t))]
    assert codes == [fmt(c) for c in real["code"]]  # one per decoder layer, in the decoder's order
    assert len(codes) == real["n_decoder"] == config.n_layers


@pytest.mark.parametrize("size", [32, 64, 256])
def test_architecture_of_every_size_and_many_attributes_renders(size):
    config = ModelConfig.from_preset("paper", size, [f"A{i}" for i in range(40)], upsampling="upsampling")
    fig = draw_architecture(config)
    fig.savefig(io.BytesIO(), format="png", dpi=40)  # headless, no pyplot
    assert any("(40 in all)" in t for t in texts(fig)) and "80 logits: p(y | z)" in texts(fig)


def test_the_pictures_draw_into_a_given_axes():
    fig = Figure(figsize=(8, 8))
    ax = fig.subplots()
    assert draw_architecture(ModelConfig.from_preset("official", 32, ["Male"]), ax=ax) is fig
    other = Figure()
    assert draw_game("uniform", ax=other.subplots()) is other


@pytest.mark.parametrize("adversary", list(ADVERSARIES))
def test_game_names_the_target_of_its_adversary(adversary):
    fig = draw_game(adversary)
    labels = texts(fig)
    assert GAME_TARGETS[adversary] in labels
    assert not [t for a, t in GAME_TARGETS.items() if a != adversary and t in labels]
    assert any(f"adversary = {adversary!r}" in t for t in labels)
    words = {"flip": "flipped attributes 1 − y", "uniform": "uniform distribution", "reverse": "gradient reversal"}
    assert words[adversary] in GAME_TARGETS[adversary]
    equations = "\n".join(labels)
    assert {"flip": r"p_P(1 - y \mid E(x))", "uniform": r"\frac{1}{K}",
            "reverse": r"-\mathcal{L}_{dis}"}[adversary] in equations
    # both losses, and where their gradients go
    assert r"$\mathcal{L}_{dis} = -\log\ p_P(y \mid E(x))$" in labels
    assert any("steps P only" in t for t in labels) and any("reaches E (z detached)" in t for t in labels)
    fig.savefig(io.BytesIO(), format="png", dpi=40)


def test_an_unknown_adversary_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"unknown adversary 'flop'; choose one of flip, uniform, reverse\. "
                                          r"Did you mean 'flip'\?"):
        draw_game("flop")


def test_the_documentation_pictures_are_committed_small():
    for name in ("architecture.png", "game.png"):
        path = ROOT / "docs" / name
        assert path.is_file() and path.stat().st_size < 150_000, name
    assert "docs/architecture.png" in (ROOT / "README.md").read_text()
