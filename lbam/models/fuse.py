"""Inference-time rewrites of MECNet and the Edge-LBAM generator that keep their outputs.

``fuse_for_inference(model)`` returns an optimised deep copy of a network (the original is untouched) with
the same ``forward`` signature and the same outputs up to float rounding (max abs difference < 1e-4 in fp32,
eval mode). What it does, in order, each step exact in real arithmetic:

1. **BatchNorm folding.** In eval mode ``BN(conv(x)) = conv'(x)`` with ``W' = W * s`` (per output channel) and
   ``b' = (b - mean) * s + beta``, ``s = gamma / sqrt(var + eps)``. Applied to every ``Conv -> BN`` pair of an
   ``nn.Sequential`` (the ``cbl`` blocks: the mask and edge stems and the four convolutions of each edge
   guidance block). The BatchNorms that follow a product (``conv * attention`` in the forward attention layers,
   ``cat(skip, ConvT(d)) * map`` in the decoder) are left alone: folding them would need the skip feature to be
   rescaled back, which costs what it saves.
2. **Dead-branch removal.** The edge output of the last forward edge-guidance block (EG_7) and of the last
   reverse one (EGr_6) is never read by the generator; the fused blocks skip that convolution.
3. **Shared-input merge.** Inside an edge-guidance block, the edge branch ``CBL(e')`` and the edge output
   ``CBL_out(e')`` read the same tensor: after folding they become one convolution with ``c_in + c_out``
   output channels followed by one LeakyReLU, then a channel split (one larger GEMM instead of two).
4. **Faster Gaussian attention.** ``g_A`` is evaluated with one ``exp`` instead of two
   (the exponent's rate is selected per element first); bit-for-bit the same branch values.
5. Optionally **channels-last** weights (``channels_last=True``), which makes the convolutions run in NHWC.
   Off by default: on the CPUs measured (see ``benchmarks/README.md``) it did not pay for the layout changes
   around the many small element-wise ops of this model; try it on yours with ``lbam bench``.

Parameters of the copy have ``requires_grad=False`` and the copy is in eval mode. Training-mode BatchNorm
(batch statistics) cannot be folded: call this on models used for inference only.
"""
from __future__ import annotations

import copy
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import A_RANGE, MU_RANGE, SIGMA_RANGE, EdgeGuidance, GaussianAttention

__all__ = ["fold_conv_bn", "fuse_for_inference", "FusedEdgeGuidance", "FastGaussianAttention"]


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d equal to ``bn(conv(x))`` with ``bn`` in eval mode (running statistics). Computed in float64."""
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise TypeError("fold_conv_bn expects (nn.Conv2d, nn.BatchNorm2d)")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("BatchNorm without running statistics cannot be folded")
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64,
                                                                               device=w.device)
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(b)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(b)
    s = gamma / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_((w * s.view(-1, *([1] * (w.dim() - 1)))).to(conv.weight.dtype))
        fused.bias.copy_(((b - bn.running_mean.detach().double()) * s + beta).to(conv.weight.dtype))
    return fused


def _fold_sequential(seq: nn.Sequential) -> nn.Sequential:
    """Rebuild a Sequential with every (Conv2d, BatchNorm2d) pair replaced by one folded Conv2d."""
    mods = list(seq)
    out = []
    i = 0
    while i < len(mods):
        m = mods[i]
        if (isinstance(m, nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d)
                and mods[i + 1].running_mean is not None):
            out.append(fold_conv_bn(m, mods[i + 1]))
            i += 2
        else:
            out.append(m)
            i += 1
    return nn.Sequential(*out)


def _conv_of(block: nn.Sequential) -> Tuple[nn.Conv2d, float]:
    """(folded conv, LeakyReLU slope) of a ``cbl`` block (Conv -> BN -> LeakyReLU)."""
    folded = _fold_sequential(block)
    convs = [m for m in folded if isinstance(m, nn.Conv2d)]
    acts = [m for m in folded if isinstance(m, nn.LeakyReLU)]
    if len(folded) != 2 or len(convs) != 1 or len(acts) != 1:
        raise ValueError(f"expected Conv -> BN -> LeakyReLU, got {block}")
    return convs[0], float(acts[0].negative_slope)


class FusedEdgeGuidance(nn.Module):
    """Drop-in replacement of :class:`lbam.models.attention.EdgeGuidance` with folded BatchNorms.

    forward(m, e) -> (mask_out, edge_out), same values as the original block. The edge branch and the edge
    output convolutions (same input) run as one convolution. With ``need_edge=False`` the edge output is not
    computed and ``edge_out`` is returned as the resized edge input (for a block whose edge output is unused).
    """

    def __init__(self, block: EdgeGuidance, need_edge: bool = True) -> None:
        super().__init__()
        self.need_edge = need_edge
        self.mask_conv, self.slope = _conv_of(block.mask_branch)
        self.coincide, _ = _conv_of(block.coincide)
        edge_conv, _ = _conv_of(block.edge_branch)
        self.c_in = edge_conv.out_channels
        if need_edge:
            out_conv, _ = _conv_of(block.edge_out)
            merged = nn.Conv2d(edge_conv.in_channels, edge_conv.out_channels + out_conv.out_channels, 3, padding=1,
                               bias=True, device=edge_conv.weight.device, dtype=edge_conv.weight.dtype)
            with torch.no_grad():
                merged.weight.copy_(torch.cat((edge_conv.weight, out_conv.weight)))
                merged.bias.copy_(torch.cat((edge_conv.bias, out_conv.bias)))
            self.edge_conv = merged
        else:
            self.edge_conv = edge_conv

    def forward(self, m: torch.Tensor, e: torch.Tensor):
        if e.shape[-2:] != m.shape[-2:]:
            e = F.interpolate(e, size=m.shape[-2:], mode="nearest")
        a = F.leaky_relu(self.mask_conv(m), self.slope)
        ge = F.leaky_relu(self.edge_conv(e), self.slope)
        if self.need_edge:
            g, edge_out = ge[:, : self.c_in], ge[:, self.c_in:]
        else:
            g, edge_out = ge, e
        k = F.leaky_relu(self.coincide(torch.cat((g, m), dim=1)), self.slope)
        return torch.addcmul(m, a, k), edge_out


class FastGaussianAttention(nn.Module):
    """g_A with one exponential: rate = sigma1 where x < mu else sigma2; left/right branches as the original."""

    def __init__(self, att: GaussianAttention) -> None:
        super().__init__()
        self.a = nn.Parameter(att.a.detach().clone(), requires_grad=False)
        self.mu = nn.Parameter(att.mu.detach().clone(), requires_grad=False)
        self.sigma1 = nn.Parameter(att.sigma1.detach().clone(), requires_grad=False)
        self.sigma2 = nn.Parameter(att.sigma2.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a.clamp(*A_RANGE)
        mu = self.mu.clamp(*MU_RANGE)
        s1 = self.sigma1.clamp(*SIGMA_RANGE)
        s2 = self.sigma2.clamp(*SIGMA_RANGE)
        left = x < mu
        rate = torch.where(left, s1, s2)
        if torch.is_grad_enabled() and x.requires_grad:  # keep autograd happy: no in-place ops
            ex = torch.exp(-rate * (x - mu).square())
            return torch.where(left, ex * a, 1 + (a - 1) * ex)
        ex = torch.exp((x - mu).square_().mul_(-rate))
        return torch.where(left, ex * a, ex.mul_(a - 1).add_(1))


def _replace(model: nn.Module, *, fold_bn: bool, prune: bool, merge: bool, fast_attention: bool) -> None:
    from .edge_lbam import EdgeLBAM

    last_edges = set()
    if isinstance(model, EdgeLBAM) and prune:
        last_edges = {id(model.forward_guidance[-1]), id(model.reverse_guidance[-1])}
    for name, child in list(model.named_children()):
        new = child
        if fold_bn and isinstance(child, EdgeGuidance) and merge:
            new = FusedEdgeGuidance(child, need_edge=id(child) not in last_edges)
        elif fast_attention and isinstance(child, GaussianAttention):
            new = FastGaussianAttention(child)
        elif fold_bn and isinstance(child, nn.Sequential):
            _replace(child, fold_bn=fold_bn, prune=prune, merge=merge, fast_attention=fast_attention)
            new = _fold_sequential(child)
        else:
            _replace(child, fold_bn=fold_bn, prune=prune, merge=merge, fast_attention=fast_attention)
        if new is not child:
            setattr(model, name, new)


def fuse_for_inference(model: nn.Module, *, channels_last: bool = False, fold_bn: bool = True, prune: bool = True,
                       merge: bool = True, fast_attention: bool = True,
                       dtype: Optional[torch.dtype] = None) -> nn.Module:
    """An optimised deep copy of ``model`` (MECNet, EdgeLBAM or any module built from their blocks).

    Same forward signature and outputs (see the module docstring for what is rewritten). The copy is in eval
    mode with gradients off. ``channels_last`` converts 4-D weights to NHWC; ``dtype`` casts the copy's floating
    point parameters after folding (folding itself is done in float64). The other flags switch single rewrites
    off (for measuring them). ``merge`` requires ``fold_bn``.
    """
    m = copy.deepcopy(model).eval()
    if any(hasattr(mod, "weight_orig") for mod in m.modules()):
        remove = getattr(m, "remove_spectral_norm", None)
        if remove is None:
            raise ValueError("remove spectral normalization before fusing")
        remove()
    _replace(m, fold_bn=fold_bn, prune=prune, merge=merge and fold_bn, fast_attention=fast_attention)
    for p in m.parameters():
        p.requires_grad_(False)
    if dtype is not None:
        m = m.to(dtype)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m.eval()
