import math

import pytest
import torch

from faderlib.celeba_facts import CELEBA_ATTRIBUTES
from faderlib.config import ModelConfig
from faderlib.models import (AttributeClassifier, AutoEncoder, LatentDiscriminator, PatchDiscriminator,
                             attribute_code, count_parameters)
from faderlib.summary import layer_table


# Parameter counts of the reference implementation (docs/paper_notes.md, 'Networks').
def test_official_256_one_attribute_matches_reference():
    c = ModelConfig.from_preset("official", 256, ["Male"])
    ae = AutoEncoder(c)
    assert count_parameters(ae.encoder) == 6_985_568
    assert count_parameters(ae.decoder) == 7_014_944
    assert count_parameters(ae) == 14_000_512
    assert count_parameters(LatentDiscriminator(c)) == 8_655_362


def test_official_256_two_and_forty_attributes_match_reference():
    assert count_parameters(AutoEncoder(ModelConfig.from_preset("official", 256, ["Smiling", "Male"]))) == 14_032_352
    c40 = ModelConfig.from_preset("official", 256, list(CELEBA_ATTRIBUTES))
    assert count_parameters(AutoEncoder(c40)) == 15_242_272
    assert count_parameters(AttributeClassifier(c40)) == 15_680_944


def test_64_px_four_layers_matches_reference():
    c = ModelConfig(image_size=64, n_layers=4, attributes=["Male"])
    assert count_parameters(AutoEncoder(c)) == 1_388_416


def test_each_extra_attribute_channel_adds_15920_decoder_weights():
    one = count_parameters(AutoEncoder(ModelConfig.from_preset("official", 256, ["Male"])).decoder)
    cat3 = count_parameters(AutoEncoder(ModelConfig.from_preset("official", 256, ["Hair.3"])).decoder)
    assert cat3 - one == 15_920


@pytest.mark.parametrize("preset", ["paper", "official"])
@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_shapes_at_every_layer(preset, size):
    c = ModelConfig.from_preset(preset, size, ["Smiling", "Hair.3"])
    rows = layer_table(c)
    enc = [r for r in rows if r["network"] == "encoder"]
    dec = [r for r in rows if r["network"] == "decoder"]
    assert len(enc) == len(dec) == c.n_layers
    for i, r in enumerate(enc):
        side = size // 2 ** (i + 1)
        assert r["output"] == (c.channels(i), side, side)
    for k, r in enumerate(dec):
        i = c.n_layers - 1 - k  # decoder layer k mirrors encoder layer i
        side = size // 2 ** (i + 1)
        assert r["input"] == (c.channels(i) + 5, side, side)  # features + 2 + 3 attribute channels
        assert r["output"] == ((3 if i == 0 else c.channels(i - 1)), 2 * side, 2 * side)
    assert enc[-1]["output"] == c.latent_shape
    for network in ("latent_discriminator", "classifier"):
        convs = [r for r in rows if r["network"] == network and r["layer"].startswith("conv")]
        assert convs[-1]["output"][1:] == (1, 1)
        assert [r for r in rows if r["network"] == network][-1]["output"] == (5,)
    n_dis_convs = len([r for r in rows if r["network"] == "latent_discriminator" and r["layer"].startswith("conv")])
    assert n_dis_convs == int(math.log2(size)) - c.n_layers


@pytest.mark.parametrize("method", ["convtranspose", "upsampling", "pixelshuffle"])
def test_upsampling_methods_reach_full_size(method):
    c = ModelConfig.from_preset("official", 64, ["Smiling"], upsampling=method)
    ae = AutoEncoder(c).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    z, x_hat = ae(x, torch.tensor([[0], [1]]))
    assert x_hat.shape == x.shape
    assert x_hat.abs().max() <= 1  # tanh output


def test_decoder_output_depends_on_y():
    torch.manual_seed(0)
    c = ModelConfig.from_preset("official", 32, ["Smiling", "Male"])
    ae = AutoEncoder(c).eval()
    z = ae.encode(torch.randn(1, 3, 32, 32))
    with torch.no_grad():
        a = ae.decode(z, torch.tensor([[0, 0]]))
        b = ae.decode(z, torch.tensor([[1, 0]]))
        c_ = ae.decode(z, torch.tensor([[0, 1]]))
        again = ae.decode(z, torch.tensor([[0, 0]]))
    assert not torch.allclose(a, b) and not torch.allclose(a, c_)
    assert torch.equal(a, again)


def test_attribute_code_forms():
    c = ModelConfig.from_preset("official", 32, ["Smiling", "Hair.3"])
    code = attribute_code(torch.tensor([[1, 2], [0, 0]]), c)
    assert code.tolist() == [[0, 1, 0, 0, 1], [1, 0, 1, 0, 0]]
    b = ModelConfig.from_preset("official", 32, ["Smiling", "Male"])
    alpha = attribute_code(torch.tensor([[1.5, -0.5]]), b)  # sliders go beyond [0, 1]
    assert alpha.tolist() == [[-0.5, 1.5, 1.5, -0.5]]
    with pytest.raises(ValueError, match="5 channels"):
        attribute_code(torch.tensor([[0.5, 0.5]]), c)  # floats per attribute only for binary ones


def test_latent_discriminator_uses_dropout_03():
    d = LatentDiscriminator(ModelConfig.from_preset("official", 64, ["Male"]))
    ps = [m.p for m in d.modules() if isinstance(m, torch.nn.Dropout)]
    assert ps == [0.3, 0.3]


def test_patch_discriminator_gives_a_map_of_logits():
    c = ModelConfig.from_preset("official", 64, ["Male"])
    out = PatchDiscriminator(c)(torch.randn(2, 3, 64, 64))
    assert out.shape[:2] == (2, 1) and out.shape[2] > 1
