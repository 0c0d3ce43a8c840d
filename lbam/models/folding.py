"""BatchNorm folding for inference: ``BN(conv(x))`` as one convolution (rewrite 1 of :mod:`lbam.models.fuse`)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["fold_conv_bn", "fold_batchnorm"]


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
