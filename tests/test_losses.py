import math

import pytest
import torch
import torch.nn.functional as F

from faderlib.config import ModelConfig
from faderlib.errors import ConfigError
from faderlib.losses import (ADVERSARIES, adversarial_loss, discriminator_loss, flip_attributes, lambda_e,
                             learning_rate, patch_loss, reconstruction_loss, uniform_adversarial_loss)
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


# ----------------------------------------------------------------------------- the adversarial targets
def _two_attributes():
    """Logits for 2 samples of a binary attribute and a 3-valued one, and their true values."""
    c = ModelConfig(image_size=32, n_layers=3, attributes=["Smiling", "Hair.3"])
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, -0.5],
                           [0.0, 1.0, -1.0, 2.0, 0.0]])
    y = torch.tensor([[0, 2], [1, 1]])
    return c, logits, y


def _log_softmax(v):
    m = math.log(sum(math.exp(x) for x in v))
    return [x - m for x in v]


def test_the_uniform_target_by_hand():
    """Value: mean over the batch of the sum over attributes of -(1/K) sum_k log softmax_k;
    gradient: (softmax - 1/K) / batch, zero exactly for a uniform prediction."""
    c, logits, y = _two_attributes()
    rows = [[2.0, -1.0], [0.0, 1.0]], [[0.5, 0.0, -0.5], [-1.0, 2.0, 0.0]]
    expected = sum(-sum(_log_softmax(r)) / len(r) for block in rows for r in block) / 2
    logits.requires_grad_(True)
    loss = adversarial_loss(logits, y, c, target="uniform")
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert uniform_adversarial_loss(logits, c).item() == loss.item()  # y plays no part
    loss.backward()
    for block, k in ((slice(0, 2), 2), (slice(2, 5), 3)):
        by_hand = (torch.softmax(logits.detach()[:, block], 1) - 1 / k) / 2
        assert torch.allclose(logits.grad[:, block], by_hand, atol=1e-7)
    # at a uniform prediction: the least value, sum_j log K_j, and no gradient at all
    flat = torch.zeros(2, 5, requires_grad=True)
    at_uniform = adversarial_loss(flat, y, c, target="uniform")
    assert at_uniform.item() == pytest.approx(math.log(2) + math.log(3), rel=1e-6)
    at_uniform.backward()
    assert torch.allclose(flat.grad, torch.zeros(2, 5), atol=1e-7)  # 1/3 in float32


def test_the_flip_target_is_unchanged_bitwise_for_binary_and_k_valued_attributes():
    """The default target is the paper's: the cross-entropy against 1 - y (binary) and against y + a
    shift drawn uniformly in 1..K-1 (K-valued), the same draws from the same generator as ever."""
    c, logits, y = _two_attributes()
    flipped = y.clone()
    flipped[:, 0] = 1 - y[:, 0]
    flipped[:, 1] = (y[:, 1] + torch.randint(1, 3, (2,), generator=torch.Generator().manual_seed(7))) % 3
    by_hand = torch.zeros(()) + F.cross_entropy(logits[:, 0:2], flipped[:, 0]) + F.cross_entropy(logits[:, 2:5],
                                                                                               flipped[:, 1])
    default = adversarial_loss(logits, y, c, torch.Generator().manual_seed(7))
    named = adversarial_loss(logits, y, c, torch.Generator().manual_seed(7), target="flip")
    assert torch.equal(default, by_hand) and torch.equal(named, by_hand)
    expected = sum(_ce(logits[i, 0:2].tolist(), int(flipped[i, 0])) + _ce(logits[i, 2:5].tolist(), int(flipped[i, 1]))
                   for i in range(2)) / 2
    assert default.item() == pytest.approx(expected, rel=1e-6)


def test_the_reversed_target_is_minus_the_discriminator_loss():
    """Gradient reversal: -L_dis on the true y, gradient (onehot(y) - softmax) / batch."""
    c, logits, y = _two_attributes()
    logits.requires_grad_(True)
    loss = adversarial_loss(logits, y, c, target="reverse")
    assert torch.equal(loss, -discriminator_loss(logits, y, c))
    loss.backward()
    for j, block in enumerate((slice(0, 2), slice(2, 5))):
        onehot = F.one_hot(y[:, j], block.stop - block.start).float()
        assert torch.allclose(logits.grad[:, block], (onehot - torch.softmax(logits.detach()[:, block], 1)) / 2,
                              atol=1e-7)


def test_an_unknown_adversary_names_the_choices():
    c, logits, y = _two_attributes()
    with pytest.raises(ConfigError, match=r"unknown adversary 'unifrom'; choose one of flip, uniform, reverse\. "
                                          r"Did you mean 'uniform'\?"):
        adversarial_loss(logits, y, c, target="unifrom")
    assert set(ADVERSARIES) == {"flip", "uniform", "reverse"}
