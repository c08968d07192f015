"""The networks in tables (faderlib.summary): how y enters the decoder, where a loss's gradient
goes, and the memory budget, each checked against the networks the code builds."""

import pytest
import torch

from faderlib import summary
from faderlib.config import ModelConfig
from faderlib.losses import adversarial_loss, discriminator_loss, reconstruction_loss
from faderlib.models import AutoEncoder, LatentDiscriminator
from faderlib.summary import parameter_counts

ATTRS = ("Smiling", "Eyeglasses", "Male")


def test_decoder_inputs_match_the_built_decoder():
    config = ModelConfig.from_preset("official", 64, list(ATTRS), init_fm=16)
    table = summary.decoder_inputs(config)
    layers = [m[0] for m in AutoEncoder(config).decoder.layers]
    assert list(table["input channels"]) == [m.in_channels for m in layers]
    assert list(table["output channels"]) == [m.out_channels for m in layers]
    assert (table["attribute code"] == 6).all()
    assert list(table["features"] + table["attribute code"]) == list(table["input channels"])
    assert table["input side"].iloc[0] == "4x4" and table["output side"].iloc[-1] == "64x64"


def test_gradient_table_says_which_network_each_loss_reaches():
    torch.manual_seed(0)
    config = ModelConfig.from_preset("official", 32, ["Smiling", "Male"], init_fm=8)
    ae, dis = AutoEncoder(config), LatentDiscriminator(config)
    x, y = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([[0, 1], [1, 0], [1, 1], [0, 0]])
    z, x_hat = ae(x, y)
    nets = {"E": ae.encoder, "D": ae.decoder, "P": dis}
    reached = lambda t: dict(t["reached by the gradient"])  # noqa: E731
    n = {k: len(list(m.parameters())) for k, m in nets.items()}

    assert reached(summary.gradient_table(reconstruction_loss(x_hat, x), nets)) == {"E": n["E"], "D": n["D"], "P": 0}
    assert reached(summary.gradient_table(adversarial_loss(dis(z), y, config), nets)) == {"E": n["E"], "D": 0,
                                                                                         "P": n["P"]}
    table = summary.gradient_table(discriminator_loss(dis(z.detach()), y, config), nets)
    assert reached(table) == {"E": 0, "D": 0, "P": n["P"]} and table.loc["P", "gradient norm"] > 0
    # nothing is left behind for an optimiser step
    assert all(p.grad is None for m in nets.values() for p in m.parameters())


def test_memory_estimate_counts_both_networks_and_scales_with_the_batch():
    config = ModelConfig.from_preset("official", 256, ["Male"])
    table = summary.memory_estimate(config, batch_size=32)
    counts = parameter_counts(config)
    params = counts["autoencoder"] + counts["latent_discriminator"]
    assert int(table.iloc[0]["parameters"]) == params == 14_000_512 + 8_655_362
    assert table.iloc[0]["weights, gradients, Adam (MiB)"] == pytest.approx(16 * params / 2**20, abs=0.1)
    doubled = summary.memory_estimate(config, batch_size=64).iloc[0]["activations, batch 64 (MiB)"]
    assert doubled == pytest.approx(2 * table.iloc[0]["activations, batch 32 (MiB)"], abs=0.2)
