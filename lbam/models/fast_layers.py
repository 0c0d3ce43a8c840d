"""Faster layers with the outputs of the ones they replace (rewrites 4 and 5 of :mod:`lbam.models.fuse`).

Each class is built from the layer it replaces (``from_conv``) and says which layers it can replace
(``applies_to``); :func:`lbam.models.fuse.fuse_for_inference` swaps them in.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NARROW_MAX_OUT", "NarrowConv2d", "PhaseConvTranspose2d"]

# Convolutions with at most this many output channels are rewritten as shifted sums. Measured: a win for
# one output channel (MECNet's 7x7 output layer); a loss for the 3-channel 3x3 stems of the generator.
NARROW_MAX_OUT = 1


class NarrowConv2d(nn.Module):
    """A stride-1 Conv2d with few output channels computed as one 1x1 convolution plus shifted sums.

    Built from a Conv2d (``from_conv``); forward(x (B, C, H, W)) -> (B, out, H', W') equal to the original up to
    float rounding (the sum over taps runs in a different order). z = conv1x1(pad(x)) with the kh*kw taps as
    kh*kw*out output channels, run in channels-last (one well-shaped GEMM); then
    y = bias + sum over (dy, dx) of z[tap (dy, dx)][..., dy:dy+H', dx:dx+W'] (dilation respected). Output rows
    go one image and one band at a time so that z stays under ``MAX_BAND_BYTES`` (in cache). With fewer than
    ``MIN_IN_FOR_SUMS`` input channels (the ``compact`` MECNet's 12) the layer is one plain convolution in
    channels-last instead, which measured faster there.
    """

    MAX_BAND_BYTES = 8 * 2**20  # measured best of 1-16 MiB (a band of z that stays in cache)
    # Below this many input channels the layer runs as one plain convolution in channels-last instead. Measured
    # (7x7 to one channel, 2-core AVX2 CPU, ms): 12 inputs at 512x384 direct NCHW 33.9, shifted sums 30.4,
    # direct channels-last 13.7 (at 256x256: 11.4 / 9.4 / 4.6); 64 inputs at 256x256 44.3 / 14.1 / 23.6.
    MIN_IN_FOR_SUMS = 32

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], padding, dilation) -> None:
        super().__init__()
        oc, ic, kh, kw = weight.shape
        self.out_channels, self.in_channels, self.kernel_size = oc, ic, (kh, kw)
        self.padding, self.dilation = tuple(padding), tuple(dilation)
        self.direct = ic < self.MIN_IN_FOR_SUMS  # few inputs: the plain convolution in channels-last
        if self.direct:
            w = weight.detach().contiguous(memory_format=torch.channels_last)
        else:
            w = weight.detach().permute(2, 3, 0, 1).reshape(kh * kw * oc, ic, 1, 1).contiguous()
        self.weight = nn.Parameter(w, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    @staticmethod
    def applies_to(conv: nn.Module) -> bool:
        if type(conv) is not nn.Conv2d or conv.groups != 1 or conv.padding_mode != "zeros":
            return False
        if isinstance(conv.padding, str) or tuple(conv.stride) != (1, 1):
            return False
        kh, kw = conv.kernel_size
        return kh * kw > 1 and conv.out_channels <= NARROW_MAX_OUT

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> "NarrowConv2d":
        if not cls.applies_to(conv):
            raise ValueError(f"not a narrow stride-1 convolution: {conv}")
        return cls(conv.weight, conv.bias, conv.padding, conv.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        x = x.contiguous(memory_format=torch.channels_last)
        if self.direct:
            return F.conv2d(x, self.weight, self.bias, dilation=self.dilation).contiguous()
        oc, (kh, kw), (dh, dw) = self.out_channels, self.kernel_size, self.dilation
        reach_h, reach_w = dh * (kh - 1), dw * (kw - 1)
        h, w = x.shape[-2] - reach_h, x.shape[-1] - reach_w
        y = x.new_empty(x.shape[0], oc, h, w)
        row_bytes = kh * kw * oc * x.shape[-1] * x.element_size()
        band = max(1, self.MAX_BAND_BYTES // row_bytes - reach_h)
        for b in range(x.shape[0]):  # one image and one band of rows at a time: z stays in cache
            for r0 in range(0, h, band):
                r1 = min(h, r0 + band)
                z = F.conv2d(x[b:b + 1, :, r0:r1 + reach_h], self.weight).contiguous()  # (1, kh*kw*oc, rows, W+)
                out = y[b:b + 1, :, r0:r1]
                for k in range(kh * kw):
                    dy, dx = divmod(k, kw)
                    part = z[:, k * oc:(k + 1) * oc, dy * dh:dy * dh + r1 - r0, dx * dw:dx * dw + w]
                    if k == 0:
                        out.copy_(part)
                    else:
                        out.add_(part)
        if self.bias is not None:
            y = y.add_(self.bias.view(1, -1, 1, 1))
        return y


class PhaseConvTranspose2d(nn.Module):
    """A ConvTranspose2d(kernel 4, stride 2, padding 1) that runs on small inputs as four 2x2 convolutions.

    Output pixel (2m + a, 2n + b) of such a layer reads input rows {m - 1, m} (a = 0, kernel rows 3, 1) or
    {m, m + 1} (a = 1, kernel rows 2, 0), and likewise for columns: each of the four output phases is a plain
    2x2 convolution over the input padded by one. Where the weights are large and the input small (the deep
    decoder layers of the paper-size generator, where the cost is the weights, not the arithmetic) the four
    convolutions are faster and far steadier than oneDNN's transposed convolution (measured at 1024->512
    channels, one 256 crop: 2.7-2.9 against 3.4-50 ms on 4x4, 4.4-4.9 against 5.5-55 ms on 8x8); with small
    weights (256->256 and below: every ``compact`` layer) or inputs above ``MAX_PIXELS`` positions they are
    slower, so only layers with at least ``MIN_WEIGHT_BYTES`` of weights are rewritten, and those call
    ``conv_transpose2d`` as before on larger inputs. forward(x (B, C_in, H, W)) -> (B, C_out, 2H, 2W), equal to
    the original up to float rounding, in x's memory format. Holds both weight layouts (for the paper-size
    generator about 130 MB more than the original layers).
    """

    MAX_PIXELS = 8 * 8
    MIN_WEIGHT_BYTES = 8 * 2**20
    _TAPS = ((3, 1), (2, 0))  # kernel index of the first and second input row (column) read by phase 0 / 1

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> None:
        super().__init__()
        w = weight.detach()  # (C_in, C_out, 4, 4)
        self.weight = nn.Parameter(w.clone(), requires_grad=False)
        phases = []
        for a in (0, 1):
            for b in (0, 1):
                rows = w[:, :, list(self._TAPS[a])]  # (C_in, C_out, 2, 4)
                phases.append(rows[:, :, :, list(self._TAPS[b])].transpose(0, 1).contiguous())  # (C_out, C_in, 2, 2)
        # four (C_out, C_in, 2, 2) weights, phases (0, 0), (0, 1), (1, 0), (1, 1)
        self.phase_weights = nn.ParameterList(nn.Parameter(p, requires_grad=False) for p in phases)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    @staticmethod
    def applies_to(m: nn.Module) -> bool:
        return (type(m) is nn.ConvTranspose2d and tuple(m.kernel_size) == (4, 4) and tuple(m.stride) == (2, 2)
                and tuple(m.padding) == (1, 1) and tuple(m.output_padding) == (0, 0)
                and tuple(m.dilation) == (1, 1) and m.groups == 1 and m.padding_mode == "zeros"
                and m.weight.numel() * m.weight.element_size() >= PhaseConvTranspose2d.MIN_WEIGHT_BYTES)

    @classmethod
    def from_conv(cls, m: nn.ConvTranspose2d) -> "PhaseConvTranspose2d":
        if not cls.applies_to(m):
            raise ValueError(f"not a ConvTranspose2d(kernel 4, stride 2, padding 1): {m}")
        return cls(m.weight, m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        if h * w > self.MAX_PIXELS:
            return F.conv_transpose2d(x, self.weight, self.bias, stride=2, padding=1)
        cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        xp = F.pad(x, (1, 1, 1, 1))
        out = torch.empty(b, self.weight.shape[1], 2 * h, 2 * w, dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last if cl else torch.contiguous_format)
        for k, (a, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            out[:, :, a::2, c::2] = F.conv2d(xp[:, :, a:a + h + 1, c:c + w + 1], self.phase_weights[k], self.bias)
        return out
