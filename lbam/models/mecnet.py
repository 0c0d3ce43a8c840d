"""MECNet: the multi-scale edge completion network (docs/ARCHITECTURE.md section 2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm as _spectral_norm

from .configs import MECNetConfig
from .smoothing import binomial_blur

SIDE_MULTIPLE = 32
MIN_SIDE = 96  # below this the 1/8-scale map is too small for the trunk's reflect padding
#: index ranges of ``MECNet.decoder`` holding its two upsampling stages (ConvT, InstanceNorm, ReLU)
DECODER_STAGES = ((0, 3), (3, 6))


def _unchanged(x: torch.Tensor) -> torch.Tensor:
    return x


class ResidualBlock(nn.Module):
    """x + IN(conv3x3(ReLU(IN(dilated conv3x3(x))))), reflect padding, convs without bias. (B, C, H, W) -> same."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(2),
            nn.Conv2d(channels, channels, 3, dilation=2, bias=False),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.InstanceNorm2d(c_out), nn.ReLU(inplace=True))


class MECNet(nn.Module):
    """Multi-scale edge completion.

    forward(gray (B,1,H,W) in [0,1], edges (B,1,H,W) in {0,1} Canny of the known region, hole (B,1,H,W) 1 = hole)
    -> edge_prob (B,1,H,W) in [0,1]. Masks its inputs itself. H and W must be multiples of 32 and at least 96.
    ``spectral_norm=True`` adds the paper's spectral normalization (training; published checkpoints).
    With ``config.smooth_upsampling`` the output of each of the five upsampling stages (after its ReLU) is blurred
    with the [1, 2, 1] binomial; the parameters are the same.
    """

    def __init__(self, config: MECNetConfig = MECNetConfig(), spectral_norm: bool = False) -> None:
        super().__init__()
        self.config = config
        w = config.base
        t = 4 * w
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, w, 7),
            nn.InstanceNorm2d(w),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.InstanceNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, t, 4, 2, 1),
            nn.InstanceNorm2d(t),
            nn.ReLU(inplace=True),
        )
        self.trunk = nn.Sequential(*(ResidualBlock(t) for _ in range(config.n_blocks)))
        self.up1 = _up(t, t)
        self.up2 = _up(2 * t, t)
        self.up3 = _up(2 * t, t)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * t, 2 * w, 4, 2, 1),
            nn.InstanceNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1),
            nn.InstanceNorm2d(w),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(3),
            nn.Conv2d(w, 1, 7),
        )
        if spectral_norm:
            for m in self.spectral_norm_modules():
                _spectral_norm(m)

    def spectral_norm_modules(self):
        """The convolutions that carry spectral normalization in the paper (encoder, trunk, first two decoder)."""
        mods = [self.encoder[1], self.encoder[4], self.encoder[7]]
        for block in self.trunk:
            mods += [block.conv_block[1], block.conv_block[5]]
        mods += [self.decoder[0], self.decoder[3]]
        return mods

    def remove_spectral_norm(self) -> None:
        """Fold spectral normalization into plain weights (weight = weight_orig / sigma)."""
        for m in self.spectral_norm_modules():
            if hasattr(m, "weight_orig"):
                torch.nn.utils.remove_spectral_norm(m)

    def forward(self, gray: torch.Tensor, edges: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        h, w = gray.shape[-2:]
        if h % SIDE_MULTIPLE or w % SIDE_MULTIPLE or min(h, w) < MIN_SIDE:
            raise ValueError(f"MECNet needs sides that are multiples of {SIDE_MULTIPLE} and >= {MIN_SIDE}, got {h}x{w}")
        known = 1 - hole
        x = torch.cat((gray * known + hole, edges * known, hole), dim=1)
        f64 = self.encoder(x)
        h, w = f64.shape[-2:]
        f8 = F.adaptive_avg_pool2d(f64, (h // 8, w // 8))
        f16 = F.adaptive_avg_pool2d(f64, (h // 4, w // 4))
        f32 = F.adaptive_avg_pool2d(f64, (h // 2, w // 2))
        f64, f8, f16, f32 = (self.trunk(f) for f in (f64, f8, f16, f32))
        smooth = binomial_blur if self.config.smooth_upsampling else _unchanged
        u16 = smooth(self.up1(f8))
        u32 = smooth(self.up2(torch.cat((f16, u16), dim=1)))
        u64 = smooth(self.up3(torch.cat((f32, u32), dim=1)))
        x = torch.cat((f64, u64), dim=1)
        for start, stop in DECODER_STAGES:  # the two upsampling stages of the decoder (ConvT, IN, ReLU)
            x = smooth(self.decoder[start:stop](x))
        return torch.sigmoid(self.decoder[DECODER_STAGES[-1][1]:](x))
