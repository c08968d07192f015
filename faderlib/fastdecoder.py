"""A faster D(z, y) for the sliders: an optimisation, not part of the method.

Bonus material. The plain decoder (:class:`faderlib.models.Decoder`) is the one to read; this
module computes the same numbers (to float rounding, tested in ``tests/test_sliders.py``)
in less time for one image decoded with many attribute values, which is what a slider
does. Three tricks, each exact:

1. **BatchNorm folding**: in eval mode BatchNorm is a fixed affine map, folded into the
   transposed convolution before it (W' = W * gamma / sqrt(var + eps),
   b' = beta - mean * gamma / sqrt(var + eps));
2. **the split first layer**: ConvT(cat(z, c)) = ConvT_z(z) + ConvT_c(c). The z part, the
   layer that reads the most weights (17 MB at 256 px) for the least work, is computed once
   per image (:meth:`FastDecoder.prepare`); the code part is a small matrix product;
3. **GEMM + col2im**: layers on small inputs (8x8 and below) and the last one (3 output
   channels) run as one matrix product and a col2im (``F.fold``), where the attribute code
   becomes a bias of the product instead of channels concatenated to h.

Measured by ``make bench`` (benchmarks/bench_sliders.py): at 128 px a slider move decodes
in about 5 ms on one CPU thread, several times faster than the plain decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .config import ModelConfig
from .models import Decoder


@dataclass
class _Layer:
    kind: str               # "gemm" (matrix product + col2im) or "convT" (oneDNN transposed convolution)
    n_h: int                # channels of h (the attribute code adds n_attr_channels more)
    w: torch.Tensor         # BatchNorm-folded weight (C_in, C_out, 4, 4)
    w_h: torch.Tensor       # (C_out*16, n_h): the weight as a matrix, for h
    w_c: torch.Tensor       # (n_attr_channels, C_out*16): the same, for the code
    bias: torch.Tensor      # (C_out,) the folded BatchNorm shift
    last: bool              # tanh instead of ReLU


@dataclass
class Latent:
    """What :meth:`FastDecoder.prepare` keeps of one z: z itself and the part of the first
    layer that does not depend on y."""

    z: torch.Tensor
    first: torch.Tensor | None


class FastDecoder:
    """D(z, y) of an eval-mode :class:`~faderlib.models.Decoder`, for one z and many y.

    Same numbers as ``decoder(z, code)`` (to float rounding), computed differently:

    1. BatchNorm folded into the transposed convolution before it (eval statistics are
       constants): W' = W * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps);
    2. the first layer is split: ConvT(cat(z, c)) = ConvT_z(z) + ConvT_c(c). The z part
       is computed once per image (:meth:`prepare`): it is the layer that reads the most
       weights (17 MB at 256 px) for the least work;
    3. layers on small inputs (8x8 and below) and the last one (3 output channels) run as
       one matrix product and a col2im (``F.fold``), where the attribute code becomes a
       bias of the product instead of channels concatenated to h; the other layers use
       PyTorch's transposed convolution;
    4. :meth:`decode` runs under ``torch.inference_mode``.

    The weights are copied when it is built: rebuild it after training further.
    Configurations other than transposed convolutions with BatchNorm (InstanceNorm,
    upsampling, pixel shuffle) fall back to the plain decoder.
    """

    def __init__(self, decoder: Decoder):
        self.decoder = decoder
        self.config: ModelConfig = decoder.config
        self.fast = self.supports(self.config)
        self.layers: list[_Layer] = []
        if not self.fast:
            return
        n_c = self.config.n_attr_channels
        with torch.no_grad():
            for seq in decoder.layers:
                conv = seq[0]
                bn = next((m for m in seq if isinstance(m, nn.BatchNorm2d)), None)
                if bn is not None:
                    conv = fuse_conv_bn_eval(conv.eval(), bn.eval(), transpose=True)
                w = conv.weight.detach().clone()
                n_in, n_out = w.shape[:2]
                # made where the layer lives, in its dtype (a CPU bias beside GPU weights fails at decode)
                bias = conv.bias.detach().clone() if conv.bias is not None else w.new_zeros(n_out)
                w_mat = w.reshape(n_in, n_out * 16)
                self.layers.append(_Layer("convT", n_in - n_c, w, w_mat[:n_in - n_c].t().contiguous(),
                                          w_mat[n_in - n_c:].contiguous(), bias, bn is None))
        # First layer, code part: ConvT_c(c) is linear in c; keep one map per code channel.
        first, side = self.layers[0], self.config.latent_shape[1]
        n_out = first.w.shape[1]
        cols = first.w_c[:, :, None].expand(-1, -1, side * side)
        self._first_code_maps = F.fold(cols, (2 * side, 2 * side), 4, stride=2, padding=1).reshape(n_c, -1)
        for i, layer in enumerate(self.layers):
            side_in = side * 2 ** i
            if i > 0 and (side_in * side_in <= 64 or layer.w.shape[1] < 8):
                layer.kind = "gemm"
        self._first_shape = (n_out, 2 * side, 2 * side)

    @staticmethod
    def supports(config: ModelConfig) -> bool:
        """Whether the fast path applies (else :meth:`decode` is the plain decoder)."""
        return config.upsampling == "convtranspose" and not config.instance_norm

    @torch.inference_mode()
    def prepare(self, z: torch.Tensor) -> Latent:
        """Keep z = E(x) and the first layer's z part, ConvT_z(z) + b (done once per image)."""
        if not self.fast:
            return Latent(z, None)
        first = self.layers[0]
        b, _, h, w = z.shape
        cols = torch.matmul(first.w_h, z.reshape(b, first.n_h, h * w))
        out = F.fold(cols, (2 * h, 2 * w), 4, stride=2, padding=1)
        return Latent(z, out.add_(first.bias[None, :, None, None]))

    @torch.inference_mode()
    def decode(self, latent: Latent | torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """x_hat = D(z, code): (B, 3, S, S) in [-1, 1]; ``code`` (B, n_attr_channels), see
        :func:`faderlib.models.code_for`."""
        if not isinstance(latent, Latent):
            latent = self.prepare(latent)
        code = code.to(device=latent.z.device, dtype=latent.z.dtype)
        if not self.fast:
            return self.decoder(latent.z, code)
        first = latent.first
        code_part = (code @ self._first_code_maps).reshape(code.shape[0], *self._first_shape)
        h = (first + code_part).relu_()
        for layer in self.layers[1:]:
            b, _, side, _ = h.shape
            if layer.kind == "gemm":
                bias_cols = code @ layer.w_c  # the code as a bias of the product (B, C_out*16)
                flat = h.reshape(b, layer.n_h, side * side)
                if b == 1:
                    cols = torch.addmm(bias_cols[0, :, None], layer.w_h, flat[0])[None]
                else:
                    cols = torch.baddbmm(bias_cols[:, :, None], layer.w_h.expand(b, -1, -1), flat)
                out = F.fold(cols, (2 * side, 2 * side), 4, stride=2, padding=1)
                out.add_(layer.bias[None, :, None, None])
            else:
                inp = torch.cat([h, code[:, :, None, None].expand(-1, -1, side, side)], dim=1)
                out = F.conv_transpose2d(inp, layer.w, layer.bias, stride=2, padding=1)
            h = out.tanh_() if layer.last else out.relu_()
        return h
