"""Discriminators used for training (docs/ARCHITECTURE.md section 5).

* :class:`TwoColumnDiscriminator` - LBAM's WGAN-GP critic for Edge-LBAM: one column looks at the
  known region, the other at the (filled) hole region.
* :class:`PatchDiscriminator` - EdgeConnect's 70x70 PatchGAN with spectral norm, used for MECNet on
  (edge, gray) pairs with a non-saturating loss plus feature matching, and (4 channels: image and hole) as the
  generator's CPU-sized ``patch`` critic (``TrainConfig.critic``).

Images are ``(B, C, H, W)`` in [0, 1]; hole masks ``(B, 1, H, W)`` with 1 = hole.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn as nn
from torch.nn.utils import spectral_norm

__all__ = ["PatchDiscriminator", "TwoColumnDiscriminator"]


def _column(in_channels: int, base: int) -> nn.Sequential:
    """Six k4 s2 p1 convolutions with LeakyReLU(0.2), widths b, 2b, 4b, 8b, 8b, 8b; no normalisation."""
    widths = (base, 2 * base, 4 * base, 8 * base, 8 * base, 8 * base)
    layers: List[nn.Module] = []
    cin = in_channels
    for w in widths:
        layers += [nn.Conv2d(cin, w, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        cin = w
    return nn.Sequential(*layers)


class TwoColumnDiscriminator(nn.Module):
    """LBAM's two-column WGAN-GP critic.

    The *known* column sees ``image * (1 - hole)``, the *hole* column sees ``image * hole``; each is
    six strided convolutions (k4 s2 p1, LeakyReLU 0.2, widths ``base, 2b, 4b, 8b, 8b, 8b``; no
    normalisation, as usual for WGAN-GP critics, so the per-sample gradient penalty stays valid).
    The two ``(B, 8b, H/64, W/64)`` maps are concatenated along channels and one more convolution
    (k3 s1 p1) maps them to a ``(B, 1, H/64, W/64)`` score map, averaged to one score per image.
    Any H, W >= 64 works (multiples of 64 give exact maps, e.g. 2x2 at 128 and 4x4 at 256).
    The reference ends in BatchNorm and a sigmoid; both are dropped here because they are at odds
    with the Wasserstein objective.

    forward(image ``(B, C, H, W)`` in [0, 1], hole ``(B, 1, H, W)`` 1 = hole) -> raw scores ``(B,)``
    (higher = more real).
    """

    def __init__(self, in_channels: int = 3, base: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.known_column = _column(in_channels, base)
        self.hole_column = _column(in_channels, base)
        self.fusion = nn.Conv2d(16 * base, 1, kernel_size=3, stride=1, padding=1)

    def score_map(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Per-location scores ``(B, 1, H/64, W/64)`` before spatial averaging."""
        if image.dim() != 4 or image.shape[1] != self.in_channels:
            raise ValueError(f"expected image (B, {self.in_channels}, H, W), got {tuple(image.shape)}")
        if min(image.shape[-2:]) < 64:
            raise ValueError(f"TwoColumnDiscriminator needs H, W >= 64, got {tuple(image.shape[-2:])}")
        hole = hole.to(image.dtype)
        known = self.known_column(image * (1.0 - hole))
        filled = self.hole_column(image * hole)
        return self.fusion(torch.cat([known, filled], dim=1))

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        return self.score_map(image, hole).mean(dim=(1, 2, 3))


class PatchDiscriminator(nn.Module):
    """EdgeConnect's 70x70 PatchGAN (spectral norm) for MECNet on (edge, gray) pairs.

    Five k4 convolutions with strides 2, 2, 2, 1, 1 (padding 1) and widths ``base, 2b, 4b, 8b, 1``,
    each wrapped in :func:`torch.nn.utils.spectral_norm` (no bias, as in EdgeConnect); LeakyReLU 0.2
    after the first four. No sigmoid: pair with :func:`lbam.training.losses.ns_d_loss` (BCE with
    logits).

    forward(x ``(B, in_channels, H, W)``, e.g. ``cat([edge, gray], 1)`` in [0, 1]) ->
    ``(logits (B, 1, H/8 - 2, W/8 - 2), [f1, f2, f3, f4, logits])`` - the five layer outputs for
    :func:`lbam.training.losses.feature_matching_loss`. At 256 the logits are 30x30, at 128 14x14.
    """

    def __init__(self, in_channels: int = 2, base: int = 64) -> None:
        super().__init__()
        widths = (base, 2 * base, 4 * base, 8 * base, 1)
        strides = (2, 2, 2, 1, 1)
        blocks: List[nn.Module] = []
        cin = in_channels
        for i, (w, s) in enumerate(zip(widths, strides)):
            conv = spectral_norm(nn.Conv2d(cin, w, kernel_size=4, stride=s, padding=1, bias=False))
            blocks.append(nn.Sequential(conv, nn.LeakyReLU(0.2)) if i < 4 else nn.Sequential(conv))
            cin = w
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        feats: List[torch.Tensor] = []
        h = x
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        return h, feats
