import math

import pytest
import torch

from faderlib.config import ModelConfig
from faderlib.losses import (adversarial_loss, discriminator_loss, flip_attributes, lambda_e, learning_rate,
                             patch_loss, reconstruction_loss)
from faderlib.models import AutoEncoder, LatentDiscriminator


def _ce(logits, target):
    """Cross-entropy written out: -log softmax(logits)[target]."""
    return -(logits[target] - math.log(sum(math.exp(v) for v in logits)))


def test_losses_by_hand_on_a_tiny_tensor():
    c = ModelConfig(image_size=32, n_layers=3, attributes=["Smiling", "Hair.3"])
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, -0.5],
                           [0.0, 1.0, -1.0, 2.0, 0.0]])
    y = torch.tensor([[0, 2], [1, 1]])
    expected_smiling = (_ce([2.0, -1.0], 0) + _ce([0.0, 1.0], 1)) / 2
    expected_hair = (_ce([0.5, 0.0, -0.5], 2) + _ce([-1.0, 2.0, 0.0], 1)) / 2
    assert discriminator_loss(logits, y, c).item() == pytest.approx(expected_smiling + expected_hair, rel=1e-6)

    # adversarial loss for a binary attribute is the cross-entropy against 1 - y
    cb = ModelConfig(image_size=32, n_layers=3, attributes=["Smiling"])
    lb = torch.tensor([[2.0, -1.0], [0.0, 1.0]])
    yb = torch.tensor([[0], [1]])
    expected = (_ce([2.0, -1.0], 1) + _ce([0.0, 1.0], 0)) / 2
    assert adversarial_loss(lb, yb, cb).item() == pytest.approx(expected, rel=1e-6)

    x = torch.tensor([[0.0, 1.0], [-1.0, 0.5]])
    x_hat = torch.tensor([[0.5, 1.0], [-1.0, -0.5]])
    assert reconstruction_loss(x_hat, x).item() == pytest.approx((0.25 + 0 + 0 + 1.0) / 4)


def test_flip_never_returns_the_true_value_and_is_uniform_over_the_others():
    c = ModelConfig(image_size=32, n_layers=3, attributes=["Smiling", "Hair.4"])
    n = 40_000
    y = torch.stack([torch.randint(0, 2, (n,)), torch.full((n,), 2)], dim=1)
    g = torch.Generator().manual_seed(0)
    f = flip_attributes(y, c, generator=g)
    assert torch.equal(f[:, 0], 1 - y[:, 0])
    assert (f[:, 1] != 2).all()
    counts = torch.bincount(f[:, 1], minlength=4).float() / n
    assert counts[2] == 0
    for k in (0, 1, 3):
        assert counts[k].item() == pytest.approx(1 / 3, abs=0.015)


def test_lambda_schedule():
    assert lambda_e(0, 1e-4, 1000) == 0.0
    assert lambda_e(500, 1e-4, 1000) == pytest.approx(5e-5)
    assert lambda_e(1000, 1e-4, 1000) == pytest.approx(1e-4)
    assert lambda_e(10_000, 1e-4, 1000) == pytest.approx(1e-4)
    assert lambda_e(0, 1e-4, 0) == pytest.approx(1e-4)  # no ramp: constant
    with pytest.raises(ValueError):
        lambda_e(-1)


def test_learning_rate_schedule():
    assert learning_rate(0, 1e-3, 100) == learning_rate(99, 1e-3, 100) == 1e-3  # no decay: the paper's constant
    assert learning_rate(49, 1e-3, 100, decay=0.5) == 1e-3                       # constant for the first half
    assert learning_rate(50, 1e-3, 100, decay=0.5) == pytest.approx(1e-3)
    assert learning_rate(75, 1e-3, 100, decay=0.5) == pytest.approx(5e-4)        # then linearly down
    assert learning_rate(99, 1e-3, 100, decay=0.5) == pytest.approx(2e-5)
    assert learning_rate(0, 1e-3, 100, decay=1.0) == pytest.approx(1e-3)
    assert learning_rate(100, 1e-3, 100, decay=0.5) == 0.0 == learning_rate(150, 1e-3, 100, decay=0.5)
    with pytest.raises(ValueError, match="share of the steps"):
        learning_rate(0, 1e-3, 100, decay=1.5)


def test_patch_loss_is_binary_cross_entropy_per_patch():
    logits = torch.tensor([[[[0.0, 2.0], [-1.0, 0.5]]]])
    sig = torch.sigmoid(logits)
    assert patch_loss(logits, True) == pytest.approx(float(-torch.log(sig).mean()))
    assert patch_loss(logits, False) == pytest.approx(float(-torch.log(1 - sig).mean()))


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    return [k for k, v in module.state_dict().items() if not torch.equal(before[k], v)]


def test_gradient_isolation_between_the_two_steps():
    torch.manual_seed(0)
    c = ModelConfig(image_size=32, n_layers=3, attributes=["Smiling"])
    ae, dis = AutoEncoder(c), LatentDiscriminator(c)
    opt_ae = torch.optim.Adam(ae.parameters(), lr=1e-2)
    opt_dis = torch.optim.Adam(dis.parameters(), lr=1e-2)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y = torch.tensor([[0], [1], [0], [1]])

    # discriminator step: z is computed without gradient, encoder in eval mode
    ae_before, dis_before = _snapshot(ae), _snapshot(dis)
    ae.eval()
    dis.train()
    with torch.no_grad():
        z = ae.encode(x)
    opt_dis.zero_grad()
    discriminator_loss(dis(z), y, c).backward()
    opt_dis.step()
    assert _changed(ae_before, ae) == []
    assert _changed(dis_before, dis) != []

    # autoencoder step: only the autoencoder's parameters are stepped
    ae_before, dis_before = _snapshot(ae), _snapshot(dis)
    ae.train()
    dis.eval()
    opt_ae.zero_grad()
    z, x_hat = ae(x, y)
    loss = reconstruction_loss(x_hat, x) + 0.1 * adversarial_loss(dis(z), y, c)
    loss.backward()
    opt_ae.step()
    assert _changed(dis_before, dis) == []
    assert any(k.startswith("encoder") for k in _changed(ae_before, ae))
    assert any(k.startswith("decoder") for k in _changed(ae_before, ae))
    # and the adversarial term does send gradient into the encoder
    assert all(p.grad is not None for p in ae.encoder.parameters())
