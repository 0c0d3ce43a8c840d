"""Building blocks of the Edge-LBAM generator (docs/ARCHITECTURE.md section 3).

Names follow the paper: the learnable Gaussian attention g_A, the mask update g_M, the edge guidance
block EG, the forward attention layer FA, the reverse mask layer RM and the bidirectional decoder
attention DA. All tensors are (B, C, H, W) float.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .smoothing import binomial_blur

# Clamp ranges the reference applies to the attention scalars before use.
A_RANGE = (1.01, 6.0)
MU_RANGE = (0.1, 3.0)
SIGMA_RANGE = (0.5, 2.0)
FORWARD_INIT = (1.1, 2.0, 1.0, 1.0)
REVERSE_INIT = (1.1, 1.0, 0.5, 0.5)


class GaussianAttention(nn.Module):
    """Learnable asymmetric Gaussian g_A with scalars a, mu, sigma1, sigma2.

    x < mu: a * exp(-sigma1 (x - mu)^2);  x >= mu: 1 + (a - 1) * exp(-sigma2 (x - mu)^2).
    Maps any real tensor to positive attention weights of the same shape.
    """

    def __init__(self, init: Tuple[float, float, float, float] = FORWARD_INIT) -> None:
        super().__init__()
        a, mu, s1, s2 = init
        self.a = nn.Parameter(torch.tensor(float(a)))
        self.mu = nn.Parameter(torch.tensor(float(mu)))
        self.sigma1 = nn.Parameter(torch.tensor(float(s1)))
        self.sigma2 = nn.Parameter(torch.tensor(float(s2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a.clamp(*A_RANGE)
        mu = self.mu.clamp(*MU_RANGE)
        s1 = self.sigma1.clamp(*SIGMA_RANGE)
        s2 = self.sigma2.clamp(*SIGMA_RANGE)
        d2 = (x - mu).square()
        left = a * torch.exp(-s1 * d2)
        right = 1 + (a - 1) * torch.exp(-s2 * d2)
        return torch.where(x < mu, left, right)


def mask_update(x: torch.Tensor) -> torch.Tensor:
    """g_M(x) = ReLU(x) ** 0.8: the updated (soft) mask passed to the next layer."""
    return F.relu(x).pow(0.8)


def cbl(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (no bias, 'same' padding) -> BatchNorm -> LeakyReLU(0.2). Keys: ``0.weight``, ``1.*``.

    stride 2 gives the pixels (2i, 2j) of the stride-1 output."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )


class EdgeGuidance(nn.Module):
    """Edge guidance block EG(c_in, c_out) on a mask m (B, c_in, h, w) and an edge feature e (B, *, H', W').

    e' = nearest-resize(e) to (h, w); mask_out = CBL(m) * CBL1(cat(CBL(e'), m)) + m; edge_out = CBL_out(e').
    Returns (mask_out (B, c_in, h, w), edge_out (B, c_out, h, w)).

    Two options for inference copies (``lbam.models.fuse``), the same weights either way:
    ``edge_stride=2`` computes only the pixels (2i, 2j) of edge_out, (B, c_out, h/2, w/2) (all that the next
    block reads through its nearest resize); ``edge_output=False`` drops CBL_out (the last block of a path,
    whose edge output nobody reads) and returns e' in its place.
    """

    def __init__(self, c_in: int, c_out: int, edge_stride: int = 1, edge_output: bool = True) -> None:
        super().__init__()
        self.c_in, self.c_out, self.edge_stride = c_in, c_out, edge_stride
        self.mask_branch = cbl(c_in, c_in)
        self.edge_branch = cbl(c_in, c_in)
        self.coincide = cbl(2 * c_in, 1, kernel=1)
        self.edge_out = cbl(c_in, c_out, stride=edge_stride) if edge_output else nn.Identity()

    def forward(self, m: torch.Tensor, e: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if e.shape[-2:] != m.shape[-2:]:
            e = F.interpolate(e, size=m.shape[-2:], mode="nearest")
        a = self.mask_branch(m)
        g = self.edge_branch(e)
        k = self.coincide(torch.cat((g, m), dim=1))
        return a * k + m, self.edge_out(e)


class ForwardAttention(nn.Module):
    """Forward attention layer FA_k: a stride-2 4x4 conv of the features, gated by g_A of a conv of the mask.

    forward(f (B, c_in, H, W), m (B, c_mask, H, W)) -> (out, skip, attention, new_mask), each (B, c_out, H/2, W/2):
    out = LReLU(BN(conv(f) * g_A(mc))) (no BN for the first layer); skip = conv(f); attention = g_A(mc);
    new_mask = g_M(mc) with mc = mask_conv(m).
    """

    g_M = staticmethod(mask_update)  # the inference copy (lbam.models.fuse) swaps in a faster form

    def __init__(self, c_in: int, c_mask: int, c_out: int, bn: bool = True) -> None:
        super().__init__()
        self.feature_conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)
        self.mask_conv = nn.Conv2d(c_mask, c_out, 4, 2, 1, bias=False)
        self.attention = GaussianAttention(FORWARD_INIT)
        self.bn = nn.BatchNorm2d(c_out) if bn else None

    def forward(self, f: torch.Tensor, m: torch.Tensor):
        skip = self.feature_conv(f)
        mc = self.mask_conv(m)
        att = self.attention(mc)
        out = skip * att
        if self.bn is not None:
            out = self.bn(out)
        return F.leaky_relu(out, 0.2), skip, att, self.g_M(mc)


class ReverseAttention(nn.Module):
    """Reverse mask layer RM_k on the reverse mask r (B, c_in, H, W).

    Returns (reverse map B_k = g_A(rc), new reverse mask g_M(rc)), both (B, c_out, H/2, W/2), rc = conv(r).
    """

    g_M = staticmethod(mask_update)  # the inference copy (lbam.models.fuse) swaps in a faster form

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.mask_conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)
        self.attention = GaussianAttention(REVERSE_INIT)

    def forward(self, r: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        rc = self.mask_conv(r)
        return self.attention(rc), self.g_M(rc)


class DecoderAttention(nn.Module):
    """Bidirectional decoder layer DA(s, d, A_k, B_k) = LReLU(BN(cat(s, ConvT(d)) * cat(A_k, B_k))).

    s: skip (B, c_out, 2h, 2w); d: decoder input (B, c_in, h, w); forward_map A_k and reverse_map B_k:
    (B, c_out, 2h, 2w) each. Returns (B, 2*c_out, 2h, 2w). Computed as cat(s * A_k, ConvT(d) * B_k) (the same
    products), without gradients written straight into one output tensor (no concatenation copies).
    smooth: ConvT(d) is blurred with the [1, 2, 1] binomial (``binomial_blur``) before the product (the
    ``smooth_upsampling`` configurations; no parameters, so the state dict is the same either way).
    """

    def __init__(self, c_in: int, c_out: int, smooth: bool = False) -> None:
        super().__init__()
        self.smooth = smooth
        self.up = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * c_out)

    def forward(self, s: torch.Tensor, d: torch.Tensor, forward_map: torch.Tensor,
                reverse_map: torch.Tensor) -> torch.Tensor:
        u = self.up(d)
        if self.smooth:
            u = binomial_blur(u)
        if torch.is_grad_enabled():
            x = torch.cat((s * forward_map, u * reverse_map), dim=1)
        else:
            c = s.shape[1]
            cl = s.is_contiguous(memory_format=torch.channels_last) and not s.is_contiguous()
            dtype = torch.promote_types(torch.result_type(s, forward_map), torch.result_type(u, reverse_map))
            x = torch.empty((s.shape[0], 2 * c) + tuple(s.shape[2:]), dtype=dtype, device=s.device,
                            memory_format=torch.channels_last if cl else torch.contiguous_format)
            torch.mul(s, forward_map, out=x[:, :c])
            torch.mul(u, reverse_map, out=x[:, c:])
        return F.leaky_relu(self.bn(x), 0.2)
