"""The fixed [1, 2, 1] binomial blur: smooth upsampling in the networks, and the smoothing of edge decoding.

A stride-2 transposed convolution computes the four output phases (2i + a, 2j + b) with four different sub-kernels,
so unless training balances them exactly its output carries a period-2 pattern (the checkerboard), and stacked
stages repeat it at periods 4, 8 and 16 in the image (the blocks of a large hole's fill). The separable binomial
[1, 2, 1] / 4 has zero response at period 2 and passes smooth content almost untouched (gain cos^2(pi f / 2) at
frequency f cycles per pixel). ``smooth_upsampling`` configurations apply it to the output of every upsampling
stage, so that pattern cannot reach the next stage. It has no parameters: weights trained without it load as
they are.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: taps of the binomial filter, before normalisation
BINOMIAL_TAPS = (1.0, 2.0, 1.0)


def binomial_blur(x: torch.Tensor) -> torch.Tensor:
    """Blur every channel with the separable [1, 2, 1] / 4 filter, replicate border. (B, C, H, W) -> same shape.

    A constant map comes back unchanged; a pattern alternating every pixel along a row or a column comes back 0.
    """
    c = x.shape[1]
    k = x.new_tensor(BINOMIAL_TAPS) / sum(BINOMIAL_TAPS)
    x = F.pad(x, (1, 1, 1, 1), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, 3).expand(c, 1, 1, 3), groups=c)
    return F.conv2d(x, k.view(1, 1, 3, 1).expand(c, 1, 3, 1), groups=c)
