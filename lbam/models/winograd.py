"""Winograd minimal filtering for the wide 3x3 convolutions (inference only).

A stride-1 3x3 convolution computes every output tile of m x m pixels from an (m+2) x (m+2) input tile.
Winograd's F(m x m, 3 x 3) (Lavin & Gray, "Fast algorithms for convolutional neural networks", 2016) does it
with (m+2)^2 multiplications per tile and channel pair instead of 9 m^2:

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A

summed over input channels, so that the channel sums become (m+2)^2 independent GEMMs of
(tiles x C_in) @ (C_in x C_out). F(2x2, 3x3) needs 2.25x fewer multiplications than the direct convolution,
F(4x4, 3x3) 4x. The transforms B^T d B and A^T M A are additions over strided views of the (B, H, W, C) input
and output (channels innermost), so their cost is memory traffic; they pay off where the GEMMs are large
(C_in, C_out >= ``MIN_CHANNELS``, maps large enough: :meth:`WinogradConv2d.tile_for`) and lose on small maps.
A dilated convolution (dilation d) is d*d interleaved plain convolutions (one per output phase): the tiles
are gathered with stride d, which the same code handles.

Exact in real arithmetic; in float32 the outputs differ from ``F.conv2d`` by rounding (relative 1e-6 for F(2),
1e-5 for F(4): measured max abs difference 2.6e-5 / 1.1e-4 on outputs of magnitude 12). The transformed
weights are computed in float64, once per layer and tile size.

Measured on the 2-core AVX2 CPU, one 256 crop, idle machine, medians of 7 (ms, direct / F(2) / F(4)):
256 channels: 64x64 map 32-34 / 25 / 17.4, 32x32 8.1 / 5.0 / 5.0, 16x16 2.9 / 2.3 / 3.2, 8x8 1.05 / 1.24 / -;
512 channels: 32x32 35.2 / 18.3 / 15.3, 16x16 11.1 / 6.1 / 6.9, 8x8 5.1 / 3.3 / 5.5;
128 channels: 128x128 34.1 / 68.5 / 26.6, 64x64 8.9 / 7.5 / 8.2; 64 channels on 256x256: F(2) 2.3x slower
than direct. Hence the rules of :meth:`WinogradConv2d.tile_for`.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WinogradConv2d", "winograd_filter", "winograd_conv_nhwc"]

# (B^T, G, A^T) of F(m x m, 3 x 3) for m = 2 (points 0, 1, -1) and m = 4 (points 0, 1, -1, 2, -2).
_MATRICES: Dict[int, tuple] = {
    2: (
        ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1)),
        ((1, 1, 1, 0), (0, 1, -1, -1)),
    ),
    4: (
        ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
         (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1)),
        ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
         (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)),
        ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1)),
    ),
}


def winograd_filter(weight: torch.Tensor, m: int) -> torch.Tensor:
    """(C_out, C_in, 3, 3) weights -> ((m+2)^2, C_in, C_out) transformed filters G g G^T (computed in float64)."""
    g = torch.tensor(_MATRICES[m][1], dtype=torch.float64)
    u = torch.einsum("ia,ocab,jb->ijco", g, weight.detach().double(), g)
    a = m + 2
    return u.reshape(a * a, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def _combine(coefs: Sequence[float], terms: List[torch.Tensor], out: torch.Tensor) -> torch.Tensor:
    """out = sum_k coefs[k] * terms[k] (zero coefficients skipped), written into ``out``."""
    pairs = [(c, t) for c, t in zip(coefs, terms) if c != 0]
    (c0, t0), rest = pairs[0], pairs[1:]
    if not rest:
        return out.copy_(t0) if c0 == 1 else torch.mul(t0, c0, out=out)
    (c1, t1), rest = rest[0], rest[1:]
    if c0 == 1:
        torch.add(t0, t1, alpha=c1, out=out)
    elif c1 == 1:
        torch.add(t1, t0, alpha=c0, out=out)
    else:
        torch.mul(t0, c0, out=out).add_(t1, alpha=c1)
    for c, t in rest:
        out.add_(t, alpha=c)
    return out


def _taps(x: torch.Tensor, dim: int, count: int, m: int, d: int, a: int) -> List[torch.Tensor]:
    """The ``a`` tap views of ``x`` along ``dim`` for tiles of m outputs at dilation d.

    Tap k of tile n, phase p reads index p + d*k + d*m*n; each view replaces ``dim`` by (count, d) = (n, p).
    """
    size, stride = list(x.shape), list(x.stride())
    shape = size[:dim] + [count, d] + size[dim + 1:]
    strides = stride[:dim] + [d * m * stride[dim], stride[dim]] + stride[dim + 1:]
    base = x.storage_offset()
    return [x.as_strided(shape, strides, base + d * k * stride[dim]) for k in range(a)]


def winograd_conv_nhwc(x: torch.Tensor, u: torch.Tensor, m: int, dilation: int = 1) -> torch.Tensor:
    """Valid 3x3 convolution of a padded channels-innermost input by Winograd F(m x m, 3 x 3).

    x: (B, H + 2d, W + 2d, C_in) with H and W multiples of m*d; u: ((m+2)^2, C_in, C_out) from
    :func:`winograd_filter`; dilation d. Returns (B, H, W, C_out), contiguous.
    """
    bt, _, at = _MATRICES[m]
    a, d = m + 2, dilation
    b, hp, wp, c = x.shape
    h, w = hp - 2 * d, wp - 2 * d
    nh, nw = h // (m * d), w // (m * d)
    co = u.shape[2]
    # Row transform: R_i = sum_k B^T[i, k] * rows of tap k -> (B, nh, d, Wp, C) each.
    rows = _taps(x, 1, nh, m, d, a)
    r_all = x.new_empty(a, b, nh, d, wp, c)
    for i in range(a):
        _combine(bt[i], rows, r_all[i])
    # Column transform into V (a*a, B, nh, d, nw, d, C): one GEMM operand per (i, j).
    v = x.new_empty(a * a, b, nh, d, nw, d, c)
    for i in range(a):
        cols = _taps(r_all[i], 3, nw, m, d, a)
        for j in range(a):
            _combine(bt[j], cols, v[i * a + j])
    del r_all
    prod = torch.bmm(v.view(a * a, -1, c), u).view(a, a, b, nh, d, nw, d, co)
    del v
    # Output transform: Y[s, t] = sum_ij A^T[s, i] A^T[t, j] M_ij, interleaved into rows n*m*d + s*d + p.
    y = x.new_empty(b, nh, m, d, nw, m, d, co)
    s_all = x.new_empty(m, a, b, nh, d, nw, d, co)
    for s in range(m):
        _combine(at[s], list(prod), s_all[s])
    for s in range(m):
        parts = list(s_all[s])
        for t in range(m):
            _combine(at[t], parts, y[:, :, s, :, :, t])
    return y.view(b, h, w, co)


class WinogradConv2d(nn.Module):
    """A 3x3 stride-1 Conv2d (any zero padding, dilation 1 or 2, groups 1) run by Winograd where it pays.

    forward(x (B, C_in, H, W), any memory format) -> (B, C_out, H', W') equal to the original convolution up to
    float rounding. The output is a channels-last tensor (a permuted view of the (B, H', W', C_out) result).
    Maps where :meth:`tile_for` says 0 (small maps, sides the tiles do not divide), inputs that need
    gradients, and anything but float32 on the CPU outside autocast (GPUs have their own fast kernels; F(4)
    loses too much precision in half types) use ``F.conv2d`` with the original weight. The transformed filters
    are made on first use of each tile size (16 / 36 values per 3x3 kernel: 1.8x / 4x the layer's weight
    memory) and kept for that device and dtype.
    """

    MIN_CHANNELS = 128

    def __init__(self, weight: torch.Tensor, bias: Optional[torch.Tensor], padding, dilation) -> None:
        super().__init__()
        self.padding, self.dilation = tuple(padding), int(dilation[0])
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)
        self._filters: Dict[tuple, torch.Tensor] = {}

    def filters(self, m: int) -> torch.Tensor:
        """The F(m x m, 3 x 3) filters of the current weight, computed on first use for its device and dtype."""
        key = (m, self.weight.device, self.weight.dtype, self.weight._version)
        u = self._filters.get(key)
        if u is None:
            self._filters = {k: v for k, v in self._filters.items() if k[1:] == key[1:]}
            u = self._filters[key] = winograd_filter(self.weight, m)
        return u

    @classmethod
    def applies_to(cls, conv: nn.Module) -> bool:
        return (type(conv) is nn.Conv2d and tuple(conv.kernel_size) == (3, 3) and tuple(conv.stride) == (1, 1)
                and conv.groups == 1 and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
                and conv.dilation[0] == conv.dilation[1] and conv.dilation[0] in (1, 2)
                and conv.padding[0] == conv.padding[1]
                and min(conv.in_channels, conv.out_channels) >= cls.MIN_CHANNELS)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> "WinogradConv2d":
        if not cls.applies_to(conv):
            raise ValueError(f"not a wide 3x3 stride-1 convolution: {conv}")
        return cls(conv.weight, conv.bias, conv.padding, conv.dilation)

    def tile_for(self, h: int, w: int) -> int:
        """Output tile side for an (h, w) output map: 4, 2, or 0 (direct convolution).

        The rule follows the measurements in the module docstring: F(4) on large maps (and on 32x32 with 512
        channels), F(2) on mid-size maps when the channel GEMMs are big enough, direct below.
        """
        d, c, px = self.dilation, min(self.weight.shape[:2]), h * w
        if px >= 48 * 48 or (px >= 32 * 32 and c >= 512):
            m = 4
        elif (px >= 16 * 16 and c >= 256) or (px >= 8 * 8 and c >= 512):
            m = 2
        else:
            return 0
        while m and (h % (m * d) or w % (m * d)):
            m -= 2
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, d = self.padding[0], self.dilation
        h, w = x.shape[-2] + 2 * p - 2 * d, x.shape[-1] + 2 * p - 2 * d
        m = self.tile_for(h, w)
        if (m == 0 or x.requires_grad or x.device.type != "cpu" or x.dtype != torch.float32
                or torch.is_autocast_enabled(x.device.type)):
            return F.conv2d(x, self.weight, self.bias, padding=self.padding, dilation=d)
        xn = x.permute(0, 2, 3, 1)
        if p:
            xn = F.pad(xn, (0, 0, p, p, p, p))
        xn = xn.contiguous()
        y = winograd_conv_nhwc(xn, self.filters(m), m, d)
        if self.bias is not None:
            y.add_(self.bias)
        return y.permute(0, 3, 1, 2)
