"""Image quality metrics on (B, 3, H, W) tensors in [0, 1]: PSNR, SSIM and mean L1, one value per image."""
from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB (peak 1.0), per image: (B,). Identical images give +inf."""
    mse = (a.double() - b.double()).square().flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image: (B,)."""
    return (a.double() - b.double()).abs().flatten(1).mean(1)


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    g = g / g.sum()
    return g


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (B,): Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, data range 1,
    computed per channel on the valid (unpadded) region and averaged -- the settings of Wang et al. 2004 and
    of scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=1, channel_axis=-1)``."""
    a, b = a.double(), b.double()
    c = a.shape[1]
    g = _gaussian_window(device=a.device)
    wx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    wy = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(x):
        return F.conv2d(F.conv2d(x, wx, groups=c), wy, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    saa = blur(a * a) - mu_a.square()
    sbb = blur(b * b) - mu_b.square()
    sab = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a.square() + mu_b.square() + c1) * (saa + sbb + c2))
    return s.flatten(1).mean(1)


# --------------------------------------------------------------------------------------------------
# Image statistics shared by the defect metrics (defects.py) and the training losses (losses.py)
# --------------------------------------------------------------------------------------------------
_SOBEL = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
#: side of the windows over which the grid (checkerboard) response is averaged
GRID_WINDOW = 8


def sobel_gradients(gray: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(gx, gy), each (B,1,H,W), of a gray image (B,1,H,W) in [0,1]: 3x3 Sobel divided by 8 (a step of 1
    between two flat regions gives 0.5 on the two pixels beside it), replicate border; x right, y down."""
    k = torch.tensor(_SOBEL, dtype=gray.dtype, device=gray.device) / 8
    x = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(x, k.view(1, 1, 3, 3)), F.conv2d(x, k.t().contiguous().view(1, 1, 3, 3))


def sobel_magnitude(gray: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude (B,1,H,W) of a gray image (B,1,H,W) in [0,1] (``sobel_gradients``)."""
    gx, gy = sobel_gradients(gray)
    return (gx.square() + gy.square() + 1e-12).sqrt()


def grid_energy(x: torch.Tensor, period: int = 2) -> torch.Tensor:
    """Energy of a periodic grid pattern of ``period`` pixels (2: the transposed-convolution checkerboard).

    x (B,C,H,W) in [0,1]; for ``period`` 2**k the image is first averaged over 2**(k-1) pixel blocks. The
    second differences along x, along y and across both kill flat areas and linear ramps; multiplying them by
    (-1)^x, (-1)^y and (-1)^(x+y) moves the grid frequency to zero, and a ``GRID_WINDOW``-pixel box average
    keeps what is consistent across the window (a grid) while random texture averages out. Returns
    (B,1,H',W') (H' = H/(period/2) - GRID_WINDOW + 1): the sum over the three patterns and the channels of the
    absolute windowed response. A 0/1 checkerboard gives 8 per channel, a flat image or a linear ramp 0,
    uniform noise about 0.7 per channel; natural photos much less.
    """
    if period < 2 or period & (period - 1):
        raise ValueError(f"period must be a power of two >= 2, got {period}")
    if period > 2:
        x = F.avg_pool2d(x, period // 2)
    b, c, h, w = x.shape
    ys = torch.arange(h, device=x.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, 1, w)
    sx = (1 - 2 * (xs % 2)).to(x.dtype)
    sy = (1 - 2 * (ys % 2)).to(x.dtype)
    d2x = x[..., :, :-2] - 2 * x[..., :, 1:-1] + x[..., :, 2:]
    d2y = x[..., :-2, :] - 2 * x[..., 1:-1, :] + x[..., 2:, :]
    dxy = d2x[..., :-2, :] - 2 * d2x[..., 1:-1, :] + d2x[..., 2:, :]
    parts = (
        (d2x[..., 1:-1, :] * sx[..., 1:-1]),
        (d2y[..., :, 1:-1] * sy[..., 1:-1, :]),
        (dxy * (sx[..., 1:-1] * sy[..., 1:-1, :])),
    )
    k = GRID_WINDOW
    return sum(F.avg_pool2d(p, k, 1).abs().sum(1, keepdim=True) for p in parts)


def window_fraction(hole: torch.Tensor, period: int = 2) -> torch.Tensor:
    """Share of hole pixels (B,1,H',W') in each window of ``grid_energy`` (same geometry). hole (B,1,H,W)."""
    if period > 2:
        hole = F.avg_pool2d(hole, period // 2)
    return F.avg_pool2d(hole[..., 1:-1, 1:-1], GRID_WINDOW, 1)


#: lattice windows are LATTICE_REPEATS periods on a side, so every phase of the lattice is averaged over
#: LATTICE_REPEATS**2 pixels in each window
LATTICE_REPEATS = 4


def lattice_energy(x: torch.Tensor, period: int):
    """How much of an image's fine detail is locked to a ``period``-pixel lattice of pixel positions.

    A network's upsampling stages repeat their own artefacts at fixed pixel positions (the checkerboard of a
    stride-2 transposed convolution at period 2, blocks of the deeper stages at periods 4 and 8); texture does
    not. x (B,C,H,W) in [0,1] is averaged over its channels, its detail d = gray - (``period`` x ``period``
    moving average) keeps every zero-mean pattern of that period whole. The image is cut into non-overlapping windows of
    ``LATTICE_REPEATS * period`` pixels aligned with the top-left corner (where the networks' lattice starts); in
    each window d is averaged over the pixels of each of the period**2 lattice phases (y mod P, x mod P).
    Returns (locked, detail), each (B,1,H//w,W//w) for windows of side w: ``locked`` the mean square of those
    phase averages (less their mean), ``detail`` the mean square of d. A pattern repeating every ``period``
    pixels (or a divisor of it) is all locked; random texture gives locked about detail / LATTICE_REPEATS**2.
    """
    if period < 2:
        raise ValueError(f"period must be at least 2, got {period}")
    gray = x.mean(1, keepdim=True) if x.shape[1] != 1 else x
    lo, hi = (period - 1) // 2, period // 2
    smooth = F.avg_pool2d(F.pad(gray, (lo, hi, lo, hi), mode="replicate"), period, 1)
    d = gray - smooth
    n, w = LATTICE_REPEATS, LATTICE_REPEATS * period
    b, _, h, wd = d.shape
    hn, wn = h // w, wd // w
    d = d[..., :hn * w, :wn * w]
    cells = d.reshape(b, 1, hn, n, period, wn, n, period)
    phases = cells.mean(dim=(3, 6))  # (B, 1, hn, period, wn, period)
    phases = phases - phases.mean(dim=(3, 5), keepdim=True)
    locked = phases.square().mean(dim=(3, 5))
    detail = cells.square().mean(dim=(3, 4, 6, 7))
    return locked, detail


def crossed_correlation(windows: torch.Tensor, lags: Tuple[float, float]) -> torch.Tensor:
    """How strongly a pattern repeats across its own direction: hatching, evenly spaced parallel lines.

    windows (N,k,k), zero-mean detail (e.g. ``lbam.detail.gaussian_highpass`` of an edge map). Its
    autocorrelation (zero padded, so no wrap-around), normalised by the zero lag, over the lags whose length lies
    in ``lags`` (min, max pixels): the lag of the largest value gives the pattern's main direction (along a line, a line
    matches itself). Returns (N,) the largest value over the lags at least 45 degrees away from that direction:
    a single line, a curve or scattered dots give about 0.1-0.3 (on the Canny edges of the 140 validation photo
    crops, 99 % of the hole windows holding lines score below 0.37 and 0.02 % reach 0.5), parallel lines spaced
    within ``lags`` about 0.5-0.9 (one line shifted by the spacing lands on its neighbour). A window without detail
    gives 0.
    """
    n, k, _ = windows.shape
    spectrum = torch.fft.rfft2(windows.float(), s=(2 * k, 2 * k))
    corr = torch.fft.irfft2(spectrum.abs().square(), s=(2 * k, 2 * k))  # lag (dy, dx) at index (dy, dx) mod 2k
    energy = corr[:, 0, 0]
    dy = torch.fft.fftfreq(2 * k, 1.0 / (2 * k), device=windows.device).view(-1, 1).expand(2 * k, 2 * k)
    dx = dy.t()
    length = torch.sqrt(dy * dy + dx * dx)
    ring = (length >= lags[0]) & (length <= lags[1])
    angle = torch.atan2(dy, dx)[ring] % math.pi
    values = corr[:, ring] / energy.clamp(min=1e-12).view(-1, 1)
    main = angle[values.argmax(1)]
    apart = (angle.view(1, -1) - main.view(-1, 1)).abs()
    apart = torch.minimum(apart, math.pi - apart) >= math.pi / 4
    crossed = torch.where(apart, values, torch.zeros_like(values)).amax(1)
    return torch.where(energy > 0, crossed, torch.zeros_like(crossed))
