"""The small convolutions as one matrix product (faderlib/fastconv.py) compute what the plain layers do."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faderlib.cli import main
from faderlib.config import ModelConfig
from faderlib.errors import ConfigError
from faderlib.fastconv import (MAX_SIDE, MIN_CHANNELS, GemmConv2d, GemmConvTranspose2d, choose_fast_convs,
                               conv2d_gemm, conv_transpose2d_gemm, use_gemm, uses_gemm)
from faderlib.models import AttributeClassifier, AutoEncoder, LatentDiscriminator, count_parameters
from faderlib.train import TrainConfig, Trainer

ATTRIBUTES = ["Smiling", "Eyeglasses", "Male"]


@pytest.mark.parametrize("stride,padding,kernel,side", [(2, 1, 4, 2), (2, 1, 4, 4), (1, 0, 3, 5), (2, 1, 3, 3),
                                                        (1, 1, 2, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_functions_equal_torch_s_convolutions_for_any_stride_padding_and_layout(stride, padding, kernel, side,
                                                                                 channels_last):
    torch.manual_seed(0)
    x = torch.randn(3, 5, side, side)
    w = torch.randn(7, 5, kernel, kernel)
    wt = torch.randn(5, 7, kernel, kernel)
    b = torch.randn(7)
    if channels_last:
        x, w, wt = (t.contiguous(memory_format=torch.channels_last) for t in (x, w, wt))
    s, p = (stride, stride), (padding, padding)
    torch.testing.assert_close(conv2d_gemm(x, w, b, s, p), F.conv2d(x, w, b, stride, padding))
    torch.testing.assert_close(conv2d_gemm(x, w, None, s, p), F.conv2d(x, w, None, stride, padding))
    torch.testing.assert_close(conv_transpose2d_gemm(x, wt, b, s, p), F.conv_transpose2d(x, wt, b, stride, padding))


def _networks(preset: str, size: int) -> dict[str, nn.Module]:
    config = ModelConfig.from_preset(preset, size, ATTRIBUTES)
    torch.manual_seed(0)
    return {"autoencoder": AutoEncoder(config), "discriminator": LatentDiscriminator(config),
            "classifier": AttributeClassifier(config)}


def _layer_shapes() -> set[tuple]:
    """(layer class, C_in, C_out, input side) of every convolution the presets use at 32 to 256 px."""
    shapes = set()
    for preset in ("paper", "official"):
        for size in (32, 64, 128, 256):
            nets = _networks(preset, size)
            hooks = [m.register_forward_pre_hook(
                lambda mod, inp: shapes.add((type(mod), mod.in_channels, mod.out_channels, inp[0].shape[-1])))
                for net in nets.values() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
            x = torch.zeros(1, 3, size, size)
            with torch.no_grad():
                z = nets["autoencoder"].eval().encode(x)
                nets["autoencoder"].decode(z, torch.zeros(1, 3, dtype=torch.long))
                nets["discriminator"].eval()(z)
                nets["classifier"].eval()(x)
            for h in hooks:
                h.remove()
    return shapes


#: the layer shapes that take the matrix-product path
FAST_SHAPES = sorted(((kind, c_in, c_out, side) for kind, c_in, c_out, side in _layer_shapes()
                      if min(c_in, c_out) >= MIN_CHANNELS
                      and max(side, side // 2 if kind is nn.Conv2d else 2 * side) <= MAX_SIDE),
                     key=lambda s: (s[0].__name__, s[1:]))


def test_the_presets_have_layers_on_the_matrix_product_path():
    names = {(kind.__name__, c_in, c_out, side) for kind, c_in, c_out, side in FAST_SHAPES}
    assert ("Conv2d", 256, 512, 2) in names and ("ConvTranspose2d", 262, 128, 2) in names
    assert ("Conv2d", 512, 512, 4) in names and ("ConvTranspose2d", 518, 512, 2) in names


@pytest.mark.parametrize("kind,c_in,c_out,side", FAST_SHAPES,
                         ids=[f"{k.__name__}-{a}-{b}-{s}x{s}" for k, a, b, s in FAST_SHAPES])
def test_every_fast_layer_shape_of_the_presets_gives_the_same_output_and_gradients(kind, c_in, c_out, side):
    """float32, channels-last as training runs it: the output, the input's gradient and the weight's
    and bias's gradients of the layer on the matrix-product path equal the plain layer's."""
    torch.manual_seed(0)
    plain = kind(c_in, c_out, 4, 2, 1).to(memory_format=torch.channels_last)
    fast = use_gemm(copy.deepcopy(plain))
    assert type(fast) is not kind
    x = torch.randn(16, c_in, side, side).contiguous(memory_format=torch.channels_last)
    results = []
    for layer in (plain, fast):
        xi = x.clone().requires_grad_()
        out = layer(xi)
        out.backward(torch.cos(torch.arange(out.numel(), dtype=torch.float32)).reshape(out.shape))
        results.append([out, xi.grad, layer.weight.grad, layer.bias.grad])
    for a, b in zip(*results):
        a, b = a.detach(), b.detach()
        assert float((a - b).abs().max()) <= 1e-5 * float(a.abs().max())


@pytest.mark.parametrize("preset", ["paper", "official"])
@pytest.mark.parametrize("size", [32, 64, 128, 256])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_whole_networks_give_the_same_outputs_and_gradients(preset, size, mode):
    """The networks with the matrix-product path against the plain ones, in float64 (in float32 a
    BatchNorm over a few values in train mode turns rounding into different ReLU decisions, for either
    computation): outputs, the input's gradient and every parameter's gradient."""
    batch = 2 if size == 256 else 4
    for name, plain in _networks(preset, size).items():
        plain = plain.double().to(memory_format=torch.channels_last).train(mode == "train")
        fast = use_gemm(copy.deepcopy(plain))
        torch.manual_seed(2)
        x = torch.randn(batch, 3, size, size, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 2, (batch, 3))
        if name == "discriminator":  # its input: a latent code
            with torch.no_grad():
                x = _networks(preset, size)["autoencoder"].double().eval().encode(x)
        results = []
        for net in (plain, fast):
            xi = x.clone().requires_grad_()
            torch.manual_seed(3)  # the same dropout masks
            out = net(xi, y)[1] if name == "autoencoder" else net(xi)
            out.backward(torch.cos(torch.arange(out.numel(), dtype=out.dtype)).reshape(out.shape))
            results.append([out, xi.grad] + [p.grad for p in net.parameters()])
            net.zero_grad(set_to_none=True)
        # relative to the largest value of each kind (outputs, gradients): a convolution's bias before a
        # BatchNorm in train mode has a gradient of 0 in exact arithmetic, rounding noise either way
        results = [[t.detach() for t in r] for r in results]
        out_scale = float(results[0][0].abs().max())
        grad_scale = max(float(g.abs().max()) for g in results[0][1:])
        for i, (a, b) in enumerate(zip(*results)):
            assert float((a - b).abs().max()) <= 1e-10 * (out_scale if i == 0 else grad_scale), name


def test_the_fast_layers_keep_parameters_state_dict_and_counts():
    for name, plain in _networks("paper", 64).items():
        fast = use_gemm(copy.deepcopy(plain))
        assert uses_gemm(fast) and not uses_gemm(plain)
        assert count_parameters(fast) == count_parameters(plain)
        assert list(fast.state_dict()) == list(plain.state_dict())
        plain.load_state_dict(fast.state_dict())  # a checkpoint loads either way
        fast.load_state_dict(plain.state_dict())
        back = use_gemm(fast, False)
        assert not uses_gemm(back)
        assert {type(m) for m in back.modules()} == {type(m) for m in plain.modules()}


def test_only_layers_with_enough_channels_are_swapped():
    small = use_gemm(nn.Conv2d(MIN_CHANNELS // 2, MIN_CHANNELS, 4, 2, 1))
    big = use_gemm(nn.Conv2d(MIN_CHANNELS, MIN_CHANNELS, 4, 2, 1))
    dilated = use_gemm(nn.Conv2d(MIN_CHANNELS, MIN_CHANNELS, 3, 1, 2, dilation=2))
    assert type(small) is nn.Conv2d and type(dilated) is nn.Conv2d and type(big) is GemmConv2d


def test_the_course_networks_take_the_matrix_product_path_where_it_was_measured_faster():
    """The course recipe at 64 px: encoder 4x4 -> 2x2 (128 -> 256 channels), discriminator 2x2 -> 1x1,
    decoder 2x2 -> 4x4 (262 -> 128); the 64-channel layers and the larger images stay plain."""
    nets = _networks("paper", 64)
    fast = {name: use_gemm(net) for name, net in nets.items()}
    shapes = []
    for name, net in fast.items():
        for m in net.modules():
            if isinstance(m, (GemmConv2d, GemmConvTranspose2d)):
                m.register_forward_pre_hook(
                    lambda mod, inp, _n=name: shapes.append((_n, type(mod).__name__, mod.in_channels,
                                                            mod.out_channels, inp[0].shape[-1])))
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        fast["discriminator"].eval()(fast["autoencoder"].eval().encode(x))
        fast["autoencoder"].decode(torch.zeros(1, 256, 2, 2), torch.zeros(1, 3, dtype=torch.long))
        fast["classifier"].eval()(x)
    assert ("autoencoder", "GemmConv2d", 128, 256, 4) in shapes
    assert ("autoencoder", "GemmConvTranspose2d", 262, 128, 2) in shapes
    assert ("discriminator", "GemmConv2d", 256, 512, 2) in shapes
    assert all(min(c_in, c_out) >= MIN_CHANNELS for *_, c_in, c_out, _ in shapes)


def test_auto_means_the_cpu_only_and_bad_values_are_refused():
    assert choose_fast_convs("auto", torch.device("cpu")) is True
    assert choose_fast_convs("auto", torch.device("cuda")) is False
    assert choose_fast_convs(False, torch.device("cpu")) is False
    with pytest.raises(ValueError, match="fast_convs"):
        choose_fast_convs("yes", torch.device("cpu"))
    with pytest.raises(ConfigError, match="fast_convs"):
        TrainConfig(fast_convs="fast")


def test_a_short_training_run_matches_with_and_without_the_fast_path(synthetic_dir, tmp_path):
    """The same losses, step by step: equal to 1e-4 over the first steps; then float rounding, amplified
    by a BatchNorm over 8 values and Adam's normalised steps, lets them drift apart slowly (measured:
    0.5 % after 12 steps), as it does between any two ways of computing a convolution."""
    settings = dict(data_dir=str(synthetic_dir), attributes=("Male", "Smiling"), image_size=32, steps=12,
                    batch_size=8, lambda_e=0.05, lambda_ramp=4, checkpoint_every=12, eval_every=12, eval_images=16,
                    log_every=1, device="cpu")
    rows = {}
    for fast in (True, False):  # one after the other: a Trainer seeds the generator of its dropout masks
        trainer = Trainer(TrainConfig(fast_convs=fast, **settings), tmp_path / str(fast), progress=False)
        assert uses_gemm(trainer.dis) is fast and uses_gemm(trainer.ae) is False  # 32 px: 64-channel layers
        rows[fast] = [r for r in trainer.train() if r["phase"] == "train"]
        trainer.close()
    assert len(rows[True]) == len(rows[False]) == 12
    for a, b in zip(rows[True], rows[False]):
        for k in ("rec_loss", "dis_loss", "adv_loss"):
            assert a[k] == pytest.approx(b[k], rel=1e-4 if a["step"] <= 3 else 2e-2), (a["step"], k)


def test_fader_train_takes_the_fast_convs_flag(synthetic_dir, tmp_path, capsys):
    args = ["train", "--data", str(synthetic_dir), "--recipe", "tiny", "--steps", "2", "--batch-size", "4",
            "--device", "cpu", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "off"), "--fast-convs", "off"]) == 0
    import json
    recorded = json.loads((tmp_path / "off" / "config.json").read_text())
    assert recorded["train"]["fast_convs"] is False
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(args + ["--out", str(tmp_path / "bad"), "--fast-convs", "sometimes"])
    assert e.value.code == 2
    assert "--fast-convs" in capsys.readouterr().err
