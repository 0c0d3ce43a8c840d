"""Inference-time rewrites of MECNet and the Edge-LBAM generator that keep their outputs.

``fuse_for_inference(model)`` returns an optimised deep copy of a network (the original is untouched): same
class, same ``forward`` signature, same outputs up to float rounding (max abs difference < 1e-4 in fp32 against
the original in eval mode; about 1e-6 in practice, 4e-6 with the Winograd convolutions). Rewrites, each exact
in real arithmetic:

1. **BatchNorm folding** (``fold_bn``). In eval mode ``BN(conv(x)) = conv'(x)`` with ``W' = W * s`` per output
   channel and ``b' = (b - mean) * s + beta``, ``s = gamma / sqrt(var + eps)`` (computed in float64). Applied to
   every ``Conv2d -> BatchNorm2d`` pair inside an ``nn.Sequential``: the ``cbl`` blocks of the generator (the
   mask and edge stems, the four convolutions of every edge-guidance block; 60 BatchNorms at paper size).
   The BatchNorms that follow a product (``conv * attention`` in the forward attention layers,
   ``cat(skip, ConvT(d)) * map`` in the decoder) stay: folding them would need the skip feature rescaled back,
   which costs as much as it saves. MECNet has InstanceNorm only (statistics of the input): nothing to fold.
2. **Dead-branch removal** (``prune``). The edge output ``CBL_out(e')`` of the last forward edge-guidance block
   (EG_7) and of the last reverse one (EGr_6) is never read by the generator; it is replaced by ``Identity``.
   The other edge outputs are read by the next block only through a nearest resize to half size (pixels
   (2i, 2j)): their 3x3 convolution runs with stride 2 and computes just those pixels (4x fewer operations;
   21 % of the ``compact`` generator's arithmetic).
3. **Mask update without pow** (``fast_gm``): g_M(x) = ReLU(x)^0.8 of the forward-attention and reverse-mask
   layers as exp(0.8 log max(x, 1e-30)) (:func:`fast_mask_update`; 2.6x faster than ``pow`` for that op;
   1e-24 instead of 0 for x <= 0).
4. **One-channel convolutions as shifted sums** (``narrow_conv``). oneDNN runs a convolution with a single
   output channel far below peak (MECNet's last layer, 7x7 to one channel: ~30 GFLOP/s against several
   hundred for the trunk). Such a layer (stride 1) becomes one 1x1 convolution to ``kh*kw`` channels in
   channels-last (a well-shaped GEMM) followed by ``kh*kw`` shifted additions: 2.4x faster for that layer at
   paper size (5.8 against 13.8 ms at 256x256). An earlier form (one GEMM per kernel row, NCHW) was 3x *slower*
   than the plain convolution at paper size. (Tried and dropped for the 3-channel 3x3 stems of the generator.)
   With fewer than 32 input channels (``compact``'s 12) the shifted sums lost to one plain convolution in
   channels-last (13.7 against 30.4 ms at 512x384), which such a layer runs instead.
5. **Large transposed convolutions on small inputs as four 2x2 convolutions** (``phase_deconv``,
   :class:`PhaseConvTranspose2d`): the deep decoder layers of the paper-size generator.
6. **Winograd minimal filtering for the wide 3x3 convolutions** (``winograd``, :mod:`lbam.models.winograd`):
   stride-1 3x3 convolutions with at least 128 input and output channels (MECNet's residual trunk, plain and
   dilated, and the edge-guidance convolutions of the paper-size generator) run as F(4x4, 3x3) or F(2x2, 3x3)
   on maps large enough to pay (2x fewer multiplications and ~2x faster for the 256-channel trunk on 64x64;
   measured on the 2-core AVX2 CPU with the CPU otherwise idle, ms per 256 crop: paper-size MECNet 1136
   without it, 830 with it (plain eager 1196); the generator 643 -> 599). Float32 on the CPU only; the
   outputs differ from the direct convolution by float rounding (about 4e-6 on MECNet's edge probabilities).
   ``compact`` has no layer wide enough: unchanged.
7. **Channels-last weights** (``channels_last``): convolutions run in NHWC (oneDNN's preferred layout on CPU).
   ``None`` (default) picks what measured faster on CPU: on for the Edge-LBAM generator (~1.2x), off for MECNet
   (its InstanceNorms are slower in NHWC; ~0.9x). The output is returned in the usual contiguous layout.

Measured and rejected (no gain on the CPU measured, see ``benchmarks/README.md``): merging the two
convolutions that read the same edge tensor inside an edge-guidance block into one (slower in channels-last
at batch > 1, because of the channel split), and a one-``exp`` form of the Gaussian attention (~8 % on that
op, nothing end to end).

The copy is in eval mode with ``requires_grad=False`` everywhere. Spectral normalization (MECNet trained with
``spectral_norm=True``) is folded into plain weights first.

Where the pieces live: :mod:`~lbam.models.folding` (rewrite 1), the ``edge_stride`` / ``edge_output`` options of
:class:`~lbam.models.attention.EdgeGuidance` (2), :mod:`~lbam.models.fast_layers` (4, 5),
:mod:`~lbam.models.winograd` (6); this module applies them (and re-exports the public names).
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn

from .fast_layers import NarrowConv2d, PhaseConvTranspose2d
from .folding import fold_batchnorm, fold_conv_bn
from .winograd import WinogradConv2d

__all__ = ["NarrowConv2d", "PhaseConvTranspose2d", "fast_mask_update", "fold_conv_bn", "fold_batchnorm",
           "fuse_for_inference", "is_fused"]

G_M_FLOOR = 1e-30


def fast_mask_update(x: torch.Tensor) -> torch.Tensor:
    """The mask update g_M(x) = ReLU(x) ** 0.8 as exp(0.8 * log(max(x, 1e-30))), for inference.

    ``pow`` with a fractional exponent is the slowest elementwise op of the generator on the CPU (4.3 ms for
    (1, 16, 192, 256) on 2 cores); the clamp / log / scale / exp chain takes 1.7 ms. Positive x agree to float
    rounding (relative 6e-7 measured); x <= 0 give 1e-24 instead of 0. (B, C, H, W) -> same, a new tensor.
    """
    return x.clamp_min(G_M_FLOOR).log_().mul_(0.8).exp_()


def _use_fast_mask_update(model: nn.Module) -> None:
    """In place: every forward-attention and reverse-mask layer computes g_M with :func:`fast_mask_update`."""
    from .attention import ForwardAttention, ReverseAttention

    for mod in model.modules():
        if isinstance(mod, (ForwardAttention, ReverseAttention)):
            mod.g_M = fast_mask_update


def _replace_layers(model: nn.Module, rewrite) -> None:
    """In place: replace every layer ``rewrite.applies_to`` accepts by ``rewrite.from_conv(layer)``.

    ``rewrite`` is one of the layer classes above (NarrowConv2d, PhaseConvTranspose2d, WinogradConv2d); a
    replaced layer's children are not visited.
    """
    for name, child in list(model.named_children()):
        if rewrite.applies_to(child):
            setattr(model, name, rewrite.from_conv(child))
        else:
            _replace_layers(child, rewrite)


def _prune_generator(model: nn.Module) -> None:
    """Drop what the generator computes but never reads (in place; no-op for other models).

    * The edge outputs of the last forward and the last reverse edge-guidance block: the blocks are rebuilt with
      ``edge_output=False``.
    * Three quarters of every other edge output: EG_{k+1} reads EG_k's edge output ``CBL_out(e')`` (level-k size)
      only through a nearest resize to half size, which keeps the pixels (2i, 2j). The blocks are rebuilt with
      ``edge_stride=2``: the 3x3 convolution (padding 1) of ``CBL_out`` then gives exactly those pixels (the
      BatchNorm and the LeakyReLU act per pixel), and EG_{k+1} finds the edge feature at its own size and skips
      the resize. About 2.3 of the 10.9 GFLOP of the ``compact`` generator at 512x384.
    Runs before BatchNorm folding (the rebuilt blocks take the original state dicts).
    """
    from .attention import EdgeGuidance
    from .edge_lbam import EdgeLBAM

    if not isinstance(model, EdgeLBAM):
        return
    for blocks in (model.forward_guidance, model.reverse_guidance):
        for i, block in enumerate(blocks):
            last = i == len(blocks) - 1
            with torch.device("meta"):  # no initialisation: no memory, no draw from the global random stream
                new = EdgeGuidance(block.c_in, block.c_out, edge_stride=1 if last else 2, edge_output=not last)
            state = {k: v for k, v in block.state_dict().items() if not (last and k.startswith("edge_out."))}
            new.load_state_dict(state, assign=True)
            blocks[i] = new.eval()


def _contiguous_outputs(module: nn.Module, args, output):
    """Forward hook of a channels-last copy: its outputs come back in the usual contiguous (NCHW) layout."""
    if isinstance(output, torch.Tensor):
        return output.contiguous()
    if isinstance(output, tuple):
        return tuple(o.contiguous() if isinstance(o, torch.Tensor) else o for o in output)
    return output


def default_channels_last(model: nn.Module) -> bool:
    """The measured choice for ``channels_last=None``: True for the Edge-LBAM generator, False otherwise."""
    from .edge_lbam import EdgeLBAM

    return isinstance(model, EdgeLBAM)


def is_fused(model: nn.Module) -> bool:
    """Whether ``model`` came out of :func:`fuse_for_inference`."""
    return bool(getattr(model, "_lbam_fused_flags", None))


def fuse_for_inference(model: nn.Module, *, channels_last: Optional[bool] = None, fold_bn: bool = True,
                       prune: bool = True, fast_gm: bool = True, narrow_conv: bool = True,
                       phase_deconv: bool = True, winograd: bool = True) -> nn.Module:
    """An optimised deep copy of ``model`` (MECNet, EdgeLBAM, or any module built from the same blocks).

    Same class, same forward signature, same outputs (see the module
    docstring for the rewrites). ``channels_last=None`` applies the measured default for the model type. The
    flags switch single rewrites off, for measuring them. The copy is in eval mode with gradients off; the
    original is not modified.
    """
    m = copy.deepcopy(model).eval()
    if any(hasattr(mod, "weight_orig") for mod in m.modules()):
        remove = getattr(m, "remove_spectral_norm", None)
        if remove is None:
            raise ValueError("remove spectral normalization from the model before fusing it")
        remove()
    if prune:
        _prune_generator(m)
    if fold_bn:
        fold_batchnorm(m)
    if fast_gm:
        _use_fast_mask_update(m)
    for enabled, rewrite in ((narrow_conv, NarrowConv2d), (phase_deconv, PhaseConvTranspose2d),
                             (winograd, WinogradConv2d)):
        if enabled:
            _replace_layers(m, rewrite)
    for p in m.parameters():
        p.requires_grad_(False)
    if channels_last is None:
        channels_last = default_channels_last(model)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        m.register_forward_hook(_contiguous_outputs)
    m._lbam_fused_flags = {"fold_bn": fold_bn, "prune": prune, "fast_gm": fast_gm, "narrow_conv": narrow_conv,
                           "phase_deconv": phase_deconv, "winograd": winograd, "channels_last": bool(channels_last)}
    return m.eval()
