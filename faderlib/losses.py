"""The three losses of a Fader Network and the lambda_E schedule (the paper, section 3;
docs/paper_notes.md, 'The method and its losses').

With the encoder E, decoder D and latent discriminator P (parameters theta_enc,
theta_dec, theta_dis), over a batch of images x with attributes y (the numbers (1) to (3)
are the kit's, used in the code and the notebooks; docs/paper_notes.md says how they relate
to the paper's):

* equation (1), the discriminator's objective: P learns to predict y from z = E(x),
  ``L_dis = -log p_P(y | E(x))``, summed over attributes: :func:`discriminator_loss`;
* equation (2), the reconstruction: ``||D(E(x), y) - x||^2``: :func:`reconstruction_loss`;
* equation (3), the encoder-decoder's objective: reconstruct, *and* make P predict the
  flipped attributes 1 - y: ``L_ae = ||D(E(x), y) - x||^2 - lambda_E log p_P(1 - y | E(x))``:
  :func:`adversarial_loss` gives the second term (without lambda_E). The kit offers two other
  targets for this term (``TrainConfig.adversary``, :data:`ADVERSARIES`): the uniform
  distribution (:func:`uniform_adversarial_loss`) and the reversed discriminator loss
  (:func:`reversed_adversarial_loss`, gradient reversal).

Attributes are integer class indices of shape (batch, n_attr); the discriminator's
output holds one block of logits per attribute (2 for a binary one, K for a K-valued one);
the predictions read from them, and how many are right, are measures: :mod:`faderlib.metrics`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import ModelConfig
from .errors import ConfigError, did_you_mean


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Equation (2): mean squared error over all pixels, images in [-1, 1] (as the reference code)."""
    return F.mse_loss(x_hat, x)


def attribute_cross_entropy(logits: torch.Tensor, y: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Cross-entropy of each attribute's block of logits against the class indices y,
    averaged over the batch and *summed* over attributes."""
    loss = logits.new_zeros(())
    for j, block in enumerate(config.attribute_blocks):
        loss = loss + F.cross_entropy(logits[:, block], y[:, j].long())
    return loss


def discriminator_loss(logits: torch.Tensor, y: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Equation (1): the latent discriminator's loss against the TRUE attributes y."""
    return attribute_cross_entropy(logits, y, config)


def flip_attributes(y: torch.Tensor, config: ModelConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """The attributes the encoder wants the discriminator to believe.

    A binary attribute becomes 1 - y; a K-valued one becomes a different value drawn
    uniformly among the K - 1 others (y + U{1..K-1} mod K), never the true one. The draws
    are decided by ``generator`` and made where y is (:func:`uniform_shifts`): nothing is
    copied to the device, and the host never waits for it.
    """
    flipped = y.clone().long()
    for j, attr in enumerate(config.attributes):
        if attr.is_binary:
            flipped[:, j] = 1 - flipped[:, j]
        else:
            shift = uniform_shifts(attr.n_values, y.shape[0], generator, y.device)
            flipped[:, j] = (flipped[:, j] + shift) % attr.n_values
    return flipped


def uniform_shifts(k: int, n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """``n`` draws of U{1..k-1} (int64) on ``device``, decided by ``generator``.

    On the CPU, or with a generator of ``device`` (or None: that device's default generator),
    they are drawn directly: on the CPU the same numbers as ever. With a CPU generator for
    another device (the Trainer's, on a GPU), one number drawn from it seeds a generator of
    that device, which draws the shifts there: the CPU generator still decides every draw (a
    checkpoint of its state resumes them exactly), and no draw is copied to the device, a copy
    that made the host wait for the GPU inside every autoencoder step.
    """
    if device.type == "cpu" or generator is None or generator.device == device:
        return torch.randint(1, k, (n,), generator=generator, device=device)
    seed = int(torch.randint(0, 2**62, (), generator=generator))  # on the CPU: no wait for the device
    return torch.randint(1, k, (n,), generator=_device_generator(device, seed), device=device)


_DEVICE_GENERATORS: dict[torch.device, torch.Generator] = {}


def _device_generator(device: torch.device, seed: int) -> torch.Generator:
    """One generator per device, reseeded at each call (no new generator in every step)."""
    if device not in _DEVICE_GENERATORS:
        _DEVICE_GENERATORS[device] = torch.Generator(device=device)
    return _DEVICE_GENERATORS[device].manual_seed(seed)


#: The targets the encoder may give the discriminator's prediction, the adversarial term of
#: equation (3) (``TrainConfig.adversary``, ``fader train --adversary``). Each is minimised by the
#: encoder only; the discriminator always learns the true y (equation (1)).
ADVERSARIES = {
    "flip": "the paper's: make P predict the flipped attributes 1 - y",
    "uniform": "make P's prediction uniform over each attribute's values (it can tell nothing)",
    "reverse": "gradient reversal: maximise P's own loss (1) on the true y",
}


def adversarial_loss(logits: torch.Tensor, y: torch.Tensor, config: ModelConfig,
                     generator: torch.Generator | None = None, target: str = "flip") -> torch.Tensor:
    """The adversarial term of equation (3), before lambda_E, for the target ``target`` of
    :data:`ADVERSARIES`; by default the paper's: the cross-entropy of the discriminator's
    prediction against the flipped attributes (:func:`flip_attributes`, drawn with ``generator``
    for a K-valued attribute), summed over attributes, averaged over the batch::

        L_flip = -1/m sum_i sum_j log p_P(y'_ij | z_i),   y' = 1 - y (binary)

    Minimised by the encoder, it is meant to push z towards carrying no information about y. Its gradient
    with respect to one attribute's logits is ``(softmax(logits) - onehot(y')) / m``: it is zero
    only when P predicts y' with certainty. When P is fooled (a binary prediction at 1/2) it
    still pushes, towards a z that P reads backwards, which carries y as well as one read right.
    """
    if target == "flip":
        return attribute_cross_entropy(logits, flip_attributes(y, config, generator), config)
    if target == "uniform":
        return uniform_adversarial_loss(logits, config)
    if target == "reverse":
        return reversed_adversarial_loss(logits, y, config)
    raise ConfigError(f"unknown adversary {target!r}; choose one of {', '.join(ADVERSARIES)}."
                      f"{did_you_mean(str(target), ADVERSARIES)}")


def uniform_adversarial_loss(logits: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """The adversarial term with the uniform target: the cross-entropy of the discriminator's
    prediction against the uniform distribution over each attribute's K values, summed over
    attributes, averaged over the batch::

        L_uniform = 1/m sum_i sum_j -(1/K_j) sum_k log p_P(k | z_i)  =  sum_j (log K_j + KL(u_K || p))

    Its least value, sum_j log K_j, is reached exactly when P's prediction is uniform (it says
    nothing). Its gradient with respect to one attribute's logits is ``(softmax(logits) - 1/K) / m``:
    zero exactly at the uniform prediction, so once P is fooled the encoder is no longer pushed,
    and a z read backwards (p far from uniform) costs as much as one read right. Roy & Boddeti
    (CVPR 2019) make the adversary's prediction uninformative by maximising its entropy H(p), which
    has the same optimum (p uniform); this cross-entropy form is its simplest relative, with the
    gradient above (that of -H(p) also vanishes at the uniform prediction, but also where p is certain).
    """
    loss = logits.new_zeros(())
    for block in config.attribute_blocks:
        log_p = F.log_softmax(logits[:, block], dim=1)
        loss = loss - log_p.mean(dim=1).mean()  # mean over the K values is the 1/K sum
    return loss


def reversed_adversarial_loss(logits: torch.Tensor, y: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """The adversarial term as gradient reversal (Ganin & Lempitsky, ICML 2015): minus the
    discriminator's own loss (1) on the TRUE attributes, so that the encoder gets exactly the
    discriminator's gradient with its sign reversed::

        L_reverse = -L_dis = 1/m sum_i sum_j log p_P(y_ij | z_i)

    Its gradient with respect to one attribute's logits is ``(onehot(y) - softmax(logits)) / m``:
    it pushes p_P(y | z) towards 0 without end (the loss has no lower bound), so, like the flip, it
    rewards a z read backwards once P is fooled.
    """
    return -discriminator_loss(logits, y, config)


def patch_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """The optional image-space patch discriminator's loss (the reference code has such a
    discriminator; the method the paper describes does not): binary cross-entropy of its real/fake
    logits, one per patch, against "real" (1) or "fake" (0). The discriminator learns real photos -> 1 and
    reconstructions -> 0; the autoencoder, weighted by ``patch_weight``, wants its
    reconstructions read as real."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def lambda_e(step: int, lambda_max: float = 1e-4, ramp_steps: int = 500_000) -> float:
    """The weight lambda_E of the adversarial term at autoencoder step ``step`` (0-based).

    It grows linearly from 0 to ``lambda_max`` over ``ramp_steps`` steps, then stays
    (the paper's schedule: 0 to 1e-4 over 500,000 iterations). ``ramp_steps=0`` means
    constant from the start.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if ramp_steps <= 0:
        return float(lambda_max)
    return float(lambda_max) * min(step, ramp_steps) / ramp_steps


def learning_rate(step: int, lr: float, total_steps: int, decay: float = 0.0) -> float:
    """The learning rate at step ``step`` (0-based) of a run of ``total_steps``.

    Constant (the paper's schedule) when ``decay`` is 0; otherwise it falls linearly to 0 over
    the last ``decay`` share of the steps (0.5: from half-way). A short run ends on the noise
    of its last steps; the decay lets it settle: on the course's recipe it gained 0.4 dB of
    reconstruction (4,000 x 32, seed 0: 25.7 -> 26.1 dB; docs/results.md).
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"decay is a share of the steps, in [0, 1], got {decay}")
    start = total_steps * (1.0 - decay)
    if decay == 0.0 or step < start:
        return float(lr)
    return float(lr) * max(0.0, (total_steps - step) / (total_steps - start))
