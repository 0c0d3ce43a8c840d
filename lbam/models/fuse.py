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
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .winograd import WinogradConv2d

__all__ = ["NarrowConv2d", "PhaseConvTranspose2d", "fast_mask_update", "fold_conv_bn", "fold_batchnorm",
           "fuse_for_inference", "is_fused"]

# Convolutions with at most this many output channels are rewritten as shifted sums. Measured: a win for
# one output channel (MECNet's 7x7 output layer); a loss for the 3-channel 3x3 stems of the generator.
NARROW_MAX_OUT = 1


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d (with bias) equal to ``bn(conv(x))`` for ``bn`` in eval mode (running statistics).

    The folded weights are computed in float64 and stored in ``conv``'s dtype and device.
    """
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"fold_conv_bn expects (nn.Conv2d, nn.BatchNorm2d), got ({type(conv).__name__}, "
                        f"{type(bn).__name__})")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("a BatchNorm without running statistics cannot be folded")
    if bn.num_features != conv.out_channels:
        raise ValueError(f"BatchNorm width {bn.num_features} != conv output channels {conv.out_channels}")
    w = conv.weight.detach().double()
    n = w.shape[0]
    b = conv.bias.detach().double() if conv.bias is not None else w.new_zeros(n)
    gamma = bn.weight.detach().double() if bn.weight is not None else w.new_ones(n)
    beta = bn.bias.detach().double() if bn.bias is not None else w.new_zeros(n)
    s = gamma / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(w * s.view(-1, 1, 1, 1))
        fused.bias.copy_((b - bn.running_mean.detach().double()) * s + beta)
    return fused


def _fold_sequential(seq: nn.Sequential) -> nn.Sequential:
    """The same Sequential with every (Conv2d, BatchNorm2d) pair replaced by one folded Conv2d."""
    mods = list(seq)
    out = []
    i = 0
    while i < len(mods):
        m = mods[i]
        nxt = mods[i + 1] if i + 1 < len(mods) else None
        if (type(m) is nn.Conv2d and isinstance(nxt, nn.BatchNorm2d) and nxt.running_mean is not None
                and nxt.num_features == m.out_channels):
            out.append(fold_conv_bn(m, nxt))
            i += 2
        else:
            out.append(m)
            i += 1
    return nn.Sequential(*out) if len(out) != len(mods) else seq


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """In place: fold every ``Conv2d -> BatchNorm2d`` pair of every ``nn.Sequential`` in ``model``. Returns it.

    Only valid for inference (BatchNorm in eval mode).
    """
    for name, child in list(model.named_children()):
        fold_batchnorm(child)
        if isinstance(child, nn.Sequential):
            new = _fold_sequential(child)
            if new is not child:
                setattr(model, name, new)
    return model


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


def _edge_out_conv(block: nn.Module) -> nn.Conv2d:
    """The convolution of an edge-guidance block's ``edge_out`` CBL (plain, or folded into one Conv2d)."""
    conv = block.edge_out[0]
    if type(conv) is not nn.Conv2d or tuple(conv.stride) != (1, 1) or tuple(conv.kernel_size) != (3, 3) \
            or tuple(conv.padding) != (1, 1) or tuple(conv.dilation) != (1, 1):
        raise ValueError(f"unexpected edge_out convolution {conv}")
    return conv


def _prune_generator(model: nn.Module) -> None:
    """Drop what the generator computes but never reads (in place; no-op for other models).

    * The edge outputs of the last forward and the last reverse edge-guidance block: replaced by Identity.
    * Three quarters of every other edge output: EG_{k+1} reads EG_k's edge output ``CBL_out(e')`` (level-k size)
      only through a nearest resize to half size, which keeps the pixels (2i, 2j). The 3x3 convolution (padding 1)
      of ``CBL_out`` then runs with stride 2, giving exactly those pixels (the BatchNorm and the LeakyReLU act per
      pixel); EG_{k+1} finds the edge feature at its own size and skips the resize. About 2.3 of the 10.9 GFLOP of
      the ``compact`` generator at 512x384.
    """
    from .edge_lbam import EdgeLBAM

    if isinstance(model, EdgeLBAM):
        for blocks in (model.forward_guidance, model.reverse_guidance):
            if len(blocks):
                for block in list(blocks)[:-1]:
                    _edge_out_conv(block).stride = (2, 2)
                blocks[-1].edge_out = nn.Identity()


_FUSED_CLASSES = {}


def _contiguous_output_class(cls):
    """A subclass of ``cls`` whose forward returns contiguous (NCHW) tensors. Cached per class."""
    if cls not in _FUSED_CLASSES:
        def forward(self, *args, **kwargs):
            out = cls.forward(self, *args, **kwargs)
            if isinstance(out, torch.Tensor):
                return out.contiguous()
            if isinstance(out, tuple):
                return tuple(o.contiguous() if isinstance(o, torch.Tensor) else o for o in out)
            return out

        _FUSED_CLASSES[cls] = type(cls.__name__, (cls,), {
            "forward": forward,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "_lbam_fused": True,
        })
    return _FUSED_CLASSES[cls]


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

    Same class (a subclass when ``channels_last``), same forward signature, same outputs (see the module
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
    if fold_bn:
        fold_batchnorm(m)
    if prune:
        _prune_generator(m)
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
        m.__class__ = _contiguous_output_class(type(m))
    m._lbam_fused_flags = {"fold_bn": fold_bn, "prune": prune, "fast_gm": fast_gm, "narrow_conv": narrow_conv,
                           "phase_deconv": phase_deconv, "winograd": winograd, "channels_last": bool(channels_last)}
    return m.eval()
