"""Small convolutions as one matrix product: an optimisation, not part of the method.

Bonus material, like :mod:`faderlib.fastdecoder`. The networks of :mod:`faderlib.models` are
built from plain ``nn.Conv2d`` and ``nn.ConvTranspose2d`` layers, and those are the ones to read.
This module computes the same layers differently where that is much faster on a CPU.

**Why.** The encoder's last layers, the decoder's first ones and the latent discriminator work
on tiny images (4x4, 2x2, 1x1) with many channels (256 to 512). PyTorch's CPU convolutions
(oneDNN) are slow on such shapes, their backward above all: the latent discriminator's
``Conv2d(256, 512, 4, stride 2, padding 1)`` on a 2x2 input took 55 ms of backward per call at
batch 32 on one thread, a third of the whole training iteration, for 134 million
multiply-adds that a matrix product does in 1 to 2 ms.

**How.** A convolution is a matrix product over patches (im2col):

* ``Conv2d``: ``F.unfold`` cuts the input into its k x k patches, one column each; the output
  is ``W (C_out, C_in k k) @ patches (C_in k k, L)``, L output positions;
* ``ConvTranspose2d``: each input pixel is multiplied by the weight as a matrix
  ``(C_in, C_out k k)``, and ``F.fold`` (col2im) adds the overlapping k x k blocks into the
  output.

Autograd differentiates both (the backward of ``unfold`` is ``fold`` and the other way
round), so training needs nothing more. The layers keep their class's parameters and
``state_dict`` keys: a checkpoint loads either way, and parameter counts do not change.

**Where.** :func:`use_gemm` swaps the class of every convolution of a network with at least
:data:`MIN_CHANNELS` input and output channels to :class:`GemmConv2d` / :class:`GemmConvTranspose2d`,
which take the matrix-product path when the layer's larger side (input or output) is at most
:data:`MAX_SIDE` pixels, and the plain layer otherwise; ``use_gemm(net, False)`` swaps them back.
Both limits were measured, layer shape by layer shape (``benchmarks/bench_layers.py``, forward
and backward, batch 32, one and two threads): at 2x2 and 4x4 the product won 1.1x to 5x for 128
channels and more, and lost (0.6x to 0.9x) for 64; at 8x8 and above oneDNN won or tied. A training run turns it on for the CPU
(``TrainConfig.fast_convs="auto"``, ``fader train --fast-convs``): measured by
``benchmarks/bench_layers.py`` for every layer shape of the presets. On CUDA ``"auto"``
leaves the plain layers (cuDNN has its own kernels for small shapes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The matrix-product path is taken when the layer's larger spatial side (input or output) is at
#: most this many pixels. Chosen by measuring every layer shape of the presets at 32 to 256 px,
#: forward and backward, batch 32, one and two threads (benchmarks/bench_layers.py; docs/speed.md).
MAX_SIDE = 4

#: ... and when the layer has at least this many input and output channels (fewer: oneDNN was faster).
MIN_CHANNELS = 128


def _larger_side(x: torch.Tensor, out_h: int, out_w: int) -> int:
    return max(x.shape[-2], x.shape[-1], out_h, out_w)


def _supported(layer: nn.Module) -> bool:
    """Large enough to gain (:data:`MIN_CHANNELS`), and what the matrix-product path computes: no
    dilation, no groups, zero padding, no output padding."""
    if min(layer.in_channels, layer.out_channels) < MIN_CHANNELS:
        return False
    if tuple(layer.dilation) != (1, 1) or layer.groups != 1 or getattr(layer, "padding_mode", "zeros") != "zeros":
        return False
    if isinstance(layer.padding, str):
        return False
    return tuple(getattr(layer, "output_padding", (0, 0))) == (0, 0)


def _channels_last(weight: torch.Tensor) -> bool:
    """Whether a 4-D weight is stored channels-last (a channels-last network's weights are)."""
    return not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last)


def conv2d_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` as im2col and one matrix product.

    A 1x1 output (the latent discriminator's first layer on a 2x2 code) is one window over the
    padded input: only the taps that meet the input (the 2x2 centre of a 4x4 kernel) are multiplied,
    a quarter of the products of the whole window.

    The weight is read as a matrix in the order it is stored: (C_out, C_in k k) for a contiguous
    weight, (C_out, k k C_in) for a channels-last one, and the patches are put in the same order,
    so that the (large) weight is never copied, only the (small) patches. The output comes out
    channels-last (a (B, H, W, C_out) product viewed as NCHW), the layout a channels-last network
    works in.
    """
    b, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    oh = (h + 2 * padding[0] - kh) // stride[0] + 1
    ow = (w + 2 * padding[1] - kw) // stride[1] + 1
    if oh == ow == 1:  # one window over the whole (padded) input: only the taps that meet the input count
        taps = weight[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]  # (C_out, C_in, h, w)
        out = x.reshape(b, -1) @ taps.reshape(c_out, -1).t()               # 4x fewer products at 2x2 -> 1x1
        out = out if bias is None else out + bias
        return out.view(b, c_out, 1, 1)
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)        # (B, C_in k k, L), L = oh ow
    if _channels_last(weight):
        matrix = weight.permute(0, 2, 3, 1).reshape(c_out, -1)          # (C_out, k k C_in): a view
        rows = cols.view(b, c_in, kh * kw, oh * ow).permute(0, 3, 2, 1).reshape(b * oh * ow, -1)
    else:
        matrix = weight.reshape(c_out, -1)                              # (C_out, C_in k k): a view
        rows = cols.transpose(1, 2).reshape(b * oh * ow, -1)
    out = rows @ matrix.t()                                             # (B L, C_out): one GEMM
    if bias is not None:
        out = out + bias
    return out.view(b, oh, ow, c_out).permute(0, 3, 1, 2)


def conv_transpose2d_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride,
                          padding) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride, padding)`` as one matrix product and col2im.

    Each input pixel times the weight read as a matrix (C_in, C_out k k), or (C_in, k k C_out)
    when the weight is stored channels-last (never copied), gives its k x k block of the output;
    ``F.fold`` adds the overlapping blocks.
    """
    b, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    oh = (h - 1) * stride[0] - 2 * padding[0] + kh
    ow = (w - 1) * stride[1] - 2 * padding[1] + kw
    rows = x.permute(0, 2, 3, 1).reshape(b * h * w, c_in)               # one row per input pixel
    if _channels_last(weight):
        blocks = rows @ weight.permute(0, 2, 3, 1).reshape(c_in, -1)    # (B H W, k k C_out): one GEMM
        cols = blocks.view(b, h * w, kh * kw, c_out).permute(0, 3, 2, 1).reshape(b, c_out * kh * kw, h * w)
    else:
        blocks = rows @ weight.reshape(c_in, -1)                        # (B H W, C_out k k): one GEMM
        cols = blocks.view(b, h * w, -1).transpose(1, 2)
    out = F.fold(cols, (oh, ow), (kh, kw), padding=padding, stride=stride)
    if bias is not None:
        out = out + bias[:, None, None]
    return out


class GemmConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` that computes small inputs as one matrix product (:func:`conv2d_gemm`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        oh = (x.shape[-2] + 2 * self.padding[0] - self.kernel_size[0]) // self.stride[0] + 1
        ow = (x.shape[-1] + 2 * self.padding[1] - self.kernel_size[1]) // self.stride[1] + 1
        if x.dim() == 4 and _larger_side(x, oh, ow) <= MAX_SIDE:
            return conv2d_gemm(x, self.weight, self.bias, self.stride, self.padding)
        return super().forward(x)


class GemmConvTranspose2d(nn.ConvTranspose2d):
    """An ``nn.ConvTranspose2d`` that computes small inputs as one matrix product and col2im
    (:func:`conv_transpose2d_gemm`)."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        oh = (x.shape[-2] - 1) * self.stride[0] - 2 * self.padding[0] + self.kernel_size[0]
        ow = (x.shape[-1] - 1) * self.stride[1] - 2 * self.padding[1] + self.kernel_size[1]
        if output_size is None and x.dim() == 4 and _larger_side(x, oh, ow) <= MAX_SIDE:
            return conv_transpose2d_gemm(x, self.weight, self.bias, self.stride, self.padding)
        return super().forward(x, output_size)


_FAST = {nn.Conv2d: GemmConv2d, nn.ConvTranspose2d: GemmConvTranspose2d}
_PLAIN = {fast: plain for plain, fast in _FAST.items()}


def use_gemm(net: nn.Module, enabled: bool = True) -> nn.Module:
    """Turn the matrix-product path of every supported convolution of ``net`` on (or off), in
    place; returns ``net``. Only the layers' classes change, and the memory layout of their weights
    (contiguous): the same parameters, values, buffers and ``state_dict``. Call it before an
    optimiser is made of the parameters, after any ``.to(memory_format=...)``."""
    for module in net.modules():
        kind = type(module)
        if enabled and kind in _FAST and _supported(module):
            module.__class__ = _FAST[kind]
            # a matrix product reads the weight as one matrix: stored contiguous (a channels-last weight
            # costs PyTorch's fused Adam a copy of it, there and back, at every step: 6 ms for the
            # discriminator's 512 x 256 x 4 x 4 weight)
            module.weight.data = module.weight.data.contiguous()
        elif not enabled and kind in _PLAIN:
            module.__class__ = _PLAIN[kind]
    return net


def uses_gemm(net: nn.Module) -> bool:
    """Whether any convolution of ``net`` takes the matrix-product path on small inputs."""
    return any(type(m) in _PLAIN for m in net.modules())


def choose_fast_convs(setting: str | bool, device: torch.device) -> bool:
    """The matrix-product path for a run: the setting itself, or for ``"auto"`` on a CPU only
    (measured there; cuDNN's kernels on a GPU are left as they are)."""
    if isinstance(setting, bool):
        return setting
    if setting != "auto":
        raise ValueError(f"fast_convs must be true, false or 'auto', got {setting!r}")
    return device.type == "cpu"
