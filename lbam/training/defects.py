"""Numbers for the defects a person sees in a fill, beyond PSNR: edge haze, blur, smeared edges, grid blocks,
colour fringes and blotches.

Each function takes one batch and returns *sums* (not means) so that ``evaluate`` can pool them over a whole
bucket or data set before dividing (a ratio of sums, not a mean of per-crop ratios that empty holes would
upset). Tensors: images (B,3,H,W) in [0,1], hole (B,1,H,W) 1 = hole, edge maps (B,1,H,W) in [0,1].

* **Edges** (``edge_counts``): the completed edge map inside the hole against the Canny edges of the ground
  truth, with a tolerance of ``EDGE_TOLERANCE`` pixels (a predicted edge pixel is right when a true edge lies
  within that distance, a true edge pixel is found when a predicted one does): precision, recall, F1. **Haze**:
  the mean of the edge map on hole pixels more than ``HAZE_DISTANCE`` pixels from any true edge (0 for clean
  lines, 0.2-0.4 for a grey fog).
* **Hatching** (``hatch_counts``): the share of hole windows (``HATCH_WINDOW`` px, half overlapping, at least
  ``HATCH_MIN_HOLE_SHARE`` in the hole) where the edge map draws evenly spaced parallel lines, the texture an
  adversarially trained MECNet can put into a large hole without structure (clouds, moss). The edge map's detail
  (minus a Gaussian blur of ``HATCH_SIGMA`` px, so a fog does not count) must hold at least ``HATCH_MIN_DETAIL``
  (mean absolute value) and its ``metrics.crossed_correlation`` over lags ``HATCH_LAGS`` px must reach
  ``HATCH_THRESHOLD``. The truth's Canny edges give 0.0002 on the validation photos (``hatch_true``); a window
  flagged at that threshold is plain hatching to the eye.
* **Stray lines** (``stray_counts``): the share of the hole's edge-free windows (``STRAY_WINDOW`` px, half
  overlapping, at least ``STRAY_MIN_HOLE_SHARE`` in the hole, no true edge pixel inside) in which the edge map
  draws at least ``STRAY_MIN_PIXELS`` line pixels (>= ``EDGE_THRESHOLD``) farther than ``HAZE_DISTANCE`` from
  every true edge: the loose dashes MECNet can put into a structureless hole (sky, clouds, a blurred crowd),
  too short and staggered for ``hatch``. The truth scores 0 by construction; a map without lines too, so read
  it beside the recall.
* **Sharpness** (``sharpness_sums``): mean Sobel magnitude of the fill over the mean of the truth's, on the hole
  eroded by ``SHARPNESS_ERODE`` pixels (the rim borrows its gradients from the known side). 1 = as detailed as
  the photo; a smear is far below.
* **Grid** (``grid_sums``): the period-2, -4 and -8 grid energy (``metrics.grid_energy``: the
  transposed-convolution checkerboard, and the 4-8 px blocks of the decoder's deeper stages, which become
  16-64 px blocks when a crop is scaled up) over windows that lie mostly in the hole, fill over truth.
  1 = no more grid than the photo holds; a blurred fill scores below 1 at every period.
* **Lattice** (``lattice_sums``): the share of the fill's fine detail that is locked to a 2, 4 or 8-pixel lattice
  of pixel positions (``metrics.lattice_energy``: the same pattern at the same phase, the stripes, dots and
  blocks of upsampling stages), per window, averaged over the windows that lie mostly in the hole, fill over
  truth. A share, so a blurred fill is not rewarded: about 1 for a fill whose detail is as unordered as a
  photo's, well above 1 where an upsampling lattice shows (the truth's share comes from its own texture).
* **Edge step** (``edge_step_sums``): how crisply the fill carries the photo's edges through the hole. At every
  true (Canny) edge pixel of the hole eroded by ``SHARPNESS_ERODE``, the gray step between the points
  ``EDGE_STEP_OFFSET`` pixels either side of the edge, along the truth's gradient (3x3 box-averaged gray; the
  largest over centres up to ``EDGE_STEP_SHIFT`` pixels along it, so an edge 1 pixel off still counts), of the
  fill over the truth's. 1 = edges as sharp as the photo's; a smeared or greyed edge is well below, a flat
  fill 0. Faint noise hardly moves it, unlike ``sharpness``.
* **Stripes** (``stripe_sums``): how much of the fill's fine texture is one repeated stripe. In every
  ``STRIPE_WINDOW``-pixel window (half overlapping, at least ``STRIPE_MIN_HOLE_SHARE`` in the hole) the power
  spectrum of the gray detail (window mean removed, Hann-tapered) over the band of periods ``STRIPE_PERIODS``
  pixels; the window's largest power of a bin over the mean power of its ring (the bins of the same frequency,
  every direction: a stripe lifts one direction, a blur lowers all alike), averaged over the windows weighted by
  their band energy, fill over truth.
  About 1 when the fill's texture is as unordered as the photo's, above where it repeats a stripe (the zebra
  bands a critic-trained generator can draw raised it from 0.86 to 1.18 on the val textures; Telea's own
  streaks score 1.38 there, so it is a trend to watch, not yet a detector); a flat fill holds no band energy and
  scores 0 (that is blur, which ``sharpness`` reports).
* **Colour fringes** (``fringe_sums``): the fill's fine colour detail over the truth's, on the hole eroded by
  ``SHARPNESS_ERODE``: the chroma (each channel minus the gray) minus its Gaussian blur of ``FRINGE_SIGMA`` px,
  its per-pixel length over the three channels summed. 1 = as much fine colour variation as the photo; a smear
  is below 1; well above 1 where the fill paints colour detail the photo does not hold, such as the
  green-purple fringes of the zebra bands a critic-trained generator drew across grey stone (docs/MODEL_CARD.md,
  "Tried in this version, not shipped: a patch critic"). ``sharpness`` counts gray detail only, so read the two
  together: texture a person accepts raises sharpness and leaves this near 1 or below.
* **Blotches** (``blotch_counts``): the share of hole pixels whose colour is more than ``BLOTCH_DISTANCE`` (RGB
  Euclidean, values in [0,1]) from the truth *and* from every colour of the ring of known pixels around the hole
  (``BLOTCH_RING`` pixels wide): an off-colour patch that neither the truth nor the surroundings explain.
"""
from __future__ import annotations

from typing import Dict, Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..detail import gaussian_highpass
from ..edges import rgb_to_gray
from .metrics import (LATTICE_REPEATS, crossed_correlation, grid_energy, lattice_energy, sobel_gradients,
                      sobel_magnitude, window_fraction)

EDGE_TOLERANCE = 2.0
HAZE_DISTANCE = 3.0
EDGE_THRESHOLD = 0.5
SHARPNESS_ERODE = 3
GRID_PERIODS = (2, 4, 8)
GRID_MIN_HOLE_SHARE = 0.5
LATTICE_PERIODS = (2, 4, 8)
LATTICE_MIN_HOLE_SHARE = 0.75
#: detail energy (mean square, gray in [0, 1]) added to every window's: below it a window counts as flat (8-bit
#: rounding alone gives about 1e-6; a checkerboard of +-2 levels, about 4e-5)
LATTICE_FLAT = 1e-5
#: pixels either side of a true edge, along the truth's gradient, between which the edge step is taken
EDGE_STEP_OFFSET = 2.0
#: the fill's edge may lie this many pixels off the truth's (the step is taken at the best of the shifted centres)
EDGE_STEP_SHIFT = 1
#: truth gradient (Sobel / 8 of the box-averaged gray) below which an edge pixel has no direction to step along
EDGE_STEP_MIN_GRADIENT = 1e-3
#: side of the half-overlapping windows whose spectra ``stripe_sums`` takes
STRIPE_WINDOW = 16
#: the band of periods, in pixels, whose peak-to-mean power ``stripe_sums`` takes (fine texture, not shading)
STRIPE_PERIODS = (3.0, 8.0)
STRIPE_MIN_HOLE_SHARE = 0.75
#: the keys of ``stripe_sums``, in the order ``stripe_score`` takes them
STRIPE_KEYS = ("stripe_out", "stripe_out_w", "stripe_true", "stripe_true_w")
#: side of the half-overlapping windows ``hatch_counts`` looks at, and the hole share a window needs
HATCH_WINDOW = 32
HATCH_MIN_HOLE_SHARE = 0.75
#: the Gaussian (px) whose blur is taken off the edge map first (a fog is not hatching)
HATCH_SIGMA = 2.0
#: mean absolute detail below which a window holds no lines to judge
HATCH_MIN_DETAIL = 0.02
#: the spacings (px) of parallel lines that count, and the crossed correlation from which a window is hatched
HATCH_LAGS = (3.0, 10.0)
HATCH_THRESHOLD = 0.5
#: side of the half-overlapping windows ``stray_counts`` looks at, and the hole share a window needs
STRAY_WINDOW = 32
STRAY_MIN_HOLE_SHARE = 0.75
#: false line pixels (a dash of about a quarter of the window) from which an edge-free window counts
STRAY_MIN_PIXELS = 8
#: Gaussian sigma (px) of the fringe metric's high-pass: periods below about 12 px count as fine colour detail
FRINGE_SIGMA = 2.0
BLOTCH_DISTANCE = 0.15
BLOTCH_RING = 8
BLOTCH_RING_SAMPLES = 512


def _distance_to(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (H, W) float32 of every pixel to the nearest True pixel of ``mask`` (inf if none)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


EDGE_COUNT_KEYS = ("pred", "pred_hit", "true", "true_hit", "haze_sum", "haze_n")


def edge_counts(edge_map: torch.Tensor, target: torch.Tensor, hole: torch.Tensor,
                threshold: float = EDGE_THRESHOLD) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64 counts: ``pred`` predicted edge pixels in the hole (edge_map >= threshold),
    ``pred_hit`` those within EDGE_TOLERANCE of a true edge, ``true`` true edge pixels in the hole (target
    >= 0.5), ``true_hit`` those within EDGE_TOLERANCE of a predicted edge, ``haze_sum`` / ``haze_n`` the sum
    and count of the edge map over hole pixels farther than HAZE_DISTANCE from every true edge."""
    keys = EDGE_COUNT_KEYS
    out = {k: torch.zeros(edge_map.shape[0], dtype=torch.float64) for k in keys}
    for i in range(edge_map.shape[0]):
        e = edge_map[i, 0].detach().float().cpu().numpy()
        t = target[i, 0].detach().cpu().numpy() >= 0.5
        h = hole[i, 0].detach().cpu().numpy() >= 0.5
        pred = (e >= threshold) & h
        d_true, d_pred = _distance_to(t), _distance_to(pred)
        far = h & (d_true > HAZE_DISTANCE)
        vals = (pred.sum(), (pred & (d_true <= EDGE_TOLERANCE)).sum(), (t & h).sum(),
                (t & h & (d_pred <= EDGE_TOLERANCE)).sum(), float(e[far].sum()), far.sum())
        for k, v in zip(keys, vals):
            out[k][i] = float(v)
    return out


def hatch_counts(edge_map: torch.Tensor, hole: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64: ``hatch`` the hole windows whose edge map (B,1,H,W) in [0,1] draws parallel
    hatching, ``hatch_n`` all hole windows (module doc: HATCH_* constants). Images smaller than a window give 0."""
    b = edge_map.shape[0]
    k = HATCH_WINDOW
    if min(edge_map.shape[-2:]) < k:
        zero = torch.zeros(b, dtype=torch.float64)
        return {"hatch": zero, "hatch_n": zero.clone()}
    share = F.avg_pool2d(hole.float(), k, k // 2).flatten(1)  # (B, L), unfold's window order
    detail = gaussian_highpass(edge_map.float(), HATCH_SIGMA, border="replicate")
    win = F.unfold(detail, k, stride=k // 2).transpose(1, 2).reshape(-1, k, k)  # (B * L, k, k)
    crossed = crossed_correlation(win, HATCH_LAGS).view(b, -1)
    busy = win.abs().mean(dim=(-2, -1)).view(b, -1) >= HATCH_MIN_DETAIL
    in_hole = share >= HATCH_MIN_HOLE_SHARE
    return {"hatch": (in_hole & busy & (crossed >= HATCH_THRESHOLD)).sum(1).double(),
            "hatch_n": in_hole.sum(1).double()}


def _window_sums(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, L): the sums of (B,1,H,W) ``x`` over its k-px windows at stride k // 2 (``F.unfold``'s order)."""
    return (F.avg_pool2d(x.float(), k, k // 2) * (k * k)).round().flatten(1)


def stray_counts(edge_map: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64: ``stray`` the edge-free hole windows where the edge map (B,1,H,W) in [0,1] draws
    lines far from every true edge (target (B,1,H,W) >= 0.5), ``stray_n`` all edge-free hole windows (module doc:
    STRAY_* constants). Images smaller than a window give 0."""
    b, k = edge_map.shape[0], STRAY_WINDOW
    if min(edge_map.shape[-2:]) < k:
        zero = torch.zeros(b, dtype=torch.float64)
        return {"stray": zero, "stray_n": zero.clone()}
    true = (target >= 0.5).float().cpu()
    far = torch.stack([torch.from_numpy(_distance_to(t[0].numpy() > 0) > HAZE_DISTANCE) for t in true])
    false_lines = (edge_map.detach().float().cpu() >= EDGE_THRESHOLD) & (hole.cpu() >= 0.5) & far[:, None]
    in_hole = _window_sums(hole.cpu() >= 0.5, k) >= STRAY_MIN_HOLE_SHARE * k * k
    candidates = in_hole & (_window_sums(true, k) == 0)
    flagged = candidates & (_window_sums(false_lines, k) >= STRAY_MIN_PIXELS)
    return {"stray": flagged.sum(1).double(), "stray_n": candidates.sum(1).double()}


def edge_scores(counts: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """precision, recall, F1 and haze from (pooled) ``edge_counts``; with ``hatch_counts`` in ``counts`` also
    ``hatch``, and ``hatch_true`` where ``counts`` holds the truth's ``hatch`` under that name (same windows);
    with ``stray_counts`` also ``stray`` (other keys are ignored). Empty denominators give 0."""
    c = {k: float(counts[k].sum()) for k in EDGE_COUNT_KEYS}
    p = c["pred_hit"] / c["pred"] if c["pred"] else 0.0
    r = c["true_hit"] / c["true"] if c["true"] else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    haze = c["haze_sum"] / c["haze_n"] if c["haze_n"] else 0.0
    scores = {"edge_p": p, "edge_r": r, "edge_f1": f1, "haze": haze}
    if "hatch_n" in counts:
        n = float(counts["hatch_n"].sum())
        scores["hatch"] = float(counts["hatch"].sum()) / n if n else 0.0
        if "hatch_true" in counts:
            scores["hatch_true"] = float(counts["hatch_true"].sum()) / n if n else 0.0
    if "stray_n" in counts:
        n = float(counts["stray_n"].sum())
        scores["stray"] = float(counts["stray"].sum()) / n if n else 0.0
    return scores


def _erode(hole: torch.Tensor, pixels: int) -> torch.Tensor:
    """Hole (B,1,H,W) shrunk by ``pixels`` (square structuring element), as float {0,1}."""
    return 1 - F.max_pool2d(1 - hole.float(), 2 * pixels + 1, 1, pixels)


def sharpness_sums(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64: Sobel magnitude summed over the eroded hole, of ``out`` (``grad_out``) and of
    ``target`` (``grad_true``)."""
    core = _erode(hole, SHARPNESS_ERODE)
    g_out = sobel_magnitude(rgb_to_gray(out.float()))
    g_true = sobel_magnitude(rgb_to_gray(target.float()))
    return {"grad_out": (g_out * core).flatten(1).sum(1).double(),
            "grad_true": (g_true * core).flatten(1).sum(1).double()}


def grid_sums(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64, for each period P of GRID_PERIODS: ``grid{P}_out`` / ``grid{P}_true``, the grid
    energy summed over the windows whose hole share is at least GRID_MIN_HOLE_SHARE."""
    sums = {}
    for period in GRID_PERIODS:
        sel = (window_fraction(hole.float(), period) >= GRID_MIN_HOLE_SHARE).float()
        for name, x in (("out", out), ("true", target)):
            sums[f"grid{period}_{name}"] = (grid_energy(x.float(), period) * sel).flatten(1).sum(1).double()
    return sums


def lattice_sums(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64, for each period P of LATTICE_PERIODS: ``lattice{P}_out`` / ``lattice{P}_true``,
    the locked share of each window (``metrics.lattice_energy``: locked / (detail + LATTICE_FLAT)) summed over
    the windows whose hole share is at least LATTICE_MIN_HOLE_SHARE (fill over truth, the window count cancels).
    A share per window, so a faint lattice in a flat sky counts as much as one in a busy texture."""
    sums = {}
    for period in LATTICE_PERIODS:
        side = LATTICE_REPEATS * period
        h, w = (hole.shape[-2] // side) * side, (hole.shape[-1] // side) * side
        sel = (F.avg_pool2d(hole[..., :h, :w].float(), side) >= LATTICE_MIN_HOLE_SHARE).double()
        for name, x in (("out", out), ("true", target)):
            locked, detail = lattice_energy(x.float(), period)
            share = locked.double() / (detail.double() + LATTICE_FLAT)
            sums[f"lattice{period}_{name}"] = (share * sel).flatten(1).sum(1)
    return sums


def _box3(gray: torch.Tensor) -> torch.Tensor:
    """3x3 mean of (B,1,H,W), replicate border."""
    return F.avg_pool2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), 3, 1)


def _across(gray: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor) -> torch.Tensor:
    """The step across an edge at every pixel p of every channel of ``gray`` (B,C,H,W): the largest
    ``|gray(c + d n) - gray(c - d n)|`` over the centres c = p + s n, s in -EDGE_STEP_SHIFT..EDGE_STEP_SHIFT,
    d = EDGE_STEP_OFFSET; bilinear; n = (nx, ny) unit vectors (B,1,H,W), the same for every channel."""
    _, _, h, w = gray.shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=gray.dtype), torch.arange(w, dtype=gray.dtype), indexing="ij")

    def at(t: float) -> torch.Tensor:
        x = (xx + t * nx[:, 0]) * (2 / max(w - 1, 1)) - 1
        y = (yy + t * ny[:, 0]) * (2 / max(h - 1, 1)) - 1
        return F.grid_sample(gray, torch.stack((x, y), -1), mode="bilinear", padding_mode="border",
                             align_corners=True)

    shifts = range(-EDGE_STEP_SHIFT, EDGE_STEP_SHIFT + 1)
    return torch.stack([(at(s + EDGE_STEP_OFFSET) - at(s - EDGE_STEP_OFFSET)).abs() for s in shifts]).amax(0)


def edge_step_sums(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor,
                   true_edges: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64: ``step_out`` / ``step_true``, the gray step across the truth's edges summed over
    the true edge pixels (``true_edges`` (B,1,H,W) >= 0.5) of the hole eroded by SHARPNESS_ERODE, measured
    EDGE_STEP_OFFSET pixels either side along the truth's gradient direction (``_across``, module doc)."""
    g_out, g_true = _box3(rgb_to_gray(out.float())), _box3(rgb_to_gray(target.float()))
    gx, gy = sobel_gradients(g_true)
    mag = torch.sqrt(gx * gx + gy * gy)
    sel = (true_edges.float() >= 0.5) & (_erode(hole, SHARPNESS_ERODE) > 0.5) & (mag > EDGE_STEP_MIN_GRADIENT)
    nx, ny = gx / mag.clamp(min=1e-12), gy / mag.clamp(min=1e-12)
    # both images on the same sampling grids, one channel each
    steps = (_across(torch.cat((g_out, g_true), 1), nx, ny).double() * sel.double()).flatten(2).sum(2)
    return {"step_out": steps[:, 0], "step_true": steps[:, 1]}


def _stripe_rings(window: int = STRIPE_WINDOW) -> torch.Tensor:
    """(window, window // 2 + 1) long: each ``rfft2`` bin's ring (its frequency radius in cycles per window,
    rounded) where its period lies in STRIPE_PERIODS, -1 elsewhere."""
    ky = torch.fft.fftfreq(window).abs().view(-1, 1)
    kx = torch.fft.rfftfreq(window).view(1, -1)
    radius = torch.sqrt(ky * ky + kx * kx)  # cycles per pixel
    lo, hi = STRIPE_PERIODS
    ring = torch.round(radius * window).long()
    return torch.where((radius >= 1.0 / hi) & (radius <= 1.0 / lo), ring, torch.full_like(ring, -1))


def stripe_sums(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64: ``stripe_out`` / ``stripe_true``, the band energy times the window's peak-to-mean
    power summed over the selected windows, and ``stripe_out_w`` / ``stripe_true_w``, the band energy summed
    (their quotient is the energy-weighted mean peak-to-mean power; module doc). A bin's power is taken against
    the mean of its ring (the bins of the same frequency radius), so a blur, which lowers every direction alike,
    does not look like a stripe, which lifts one."""
    k = STRIPE_WINDOW
    rings = _stripe_rings(k).to(out.device)
    band = rings >= 0
    ring_of_bin = rings[band]  # (n_band,)
    ring_ids = torch.unique(ring_of_bin)
    members = (ring_of_bin.view(1, -1) == ring_ids.view(-1, 1)).float()  # (n_rings, n_band)
    members = members / members.sum(1, keepdim=True)
    taper = torch.hann_window(k, periodic=False, dtype=torch.float32, device=out.device)
    taper = taper.view(-1, 1) * taper.view(1, -1)
    share = F.avg_pool2d(hole.float(), k, k // 2)  # (B,1,h,w), windows in unfold's order
    sel = (share >= STRIPE_MIN_HOLE_SHARE).flatten(1).double()  # (B, L)
    sums = {}
    for name, x in (("out", out), ("true", target)):
        gray = rgb_to_gray(x.float())
        b = gray.shape[0]
        win = F.unfold(gray, k, stride=k // 2).transpose(1, 2).reshape(b, -1, k, k)  # (B, L, k, k)
        win = (win - win.mean(dim=(-2, -1), keepdim=True)) * taper
        power = torch.fft.rfft2(win).abs().square()[..., band]  # (B, L, n_band)
        ring_mean = (power @ members.t()) @ (members > 0).float()  # each bin's ring mean, (B, L, n_band)
        energy = power.sum(-1).double()
        peak_to_mean = (power / ring_mean.clamp(min=1e-20)).amax(-1).double()
        sums[f"stripe_{name}"] = (energy * peak_to_mean * sel).sum(1)
        sums[f"stripe_{name}_w"] = (energy * sel).sum(1)
    return sums


def stripe_score(out: float, out_w: float, true: float, true_w: float) -> float:
    """The ``stripes`` score from pooled ``stripe_sums`` (``stripe_out``, ``stripe_out_w``, ``stripe_true``,
    ``stripe_true_w``): the fill's energy-weighted peak-to-mean power over the truth's; 0 where either holds no
    band energy."""
    fill = out / out_w if out_w > 0 else 0.0
    truth = true / true_w if true_w > 0 else 0.0
    return fill / truth if truth > 0 else 0.0


def fringe_sums(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64: ``fringe_out`` / ``fringe_true``, the length of the fine chroma detail
    (``gaussian_highpass`` of RGB minus gray, sigma FRINGE_SIGMA, L2 over the three channels) summed over the
    hole eroded by SHARPNESS_ERODE."""
    core = _erode(hole, SHARPNESS_ERODE)
    sums = {}
    for name, x in (("out", out), ("true", target)):
        x = x.float()
        detail = gaussian_highpass(x - rgb_to_gray(x), FRINGE_SIGMA).norm(dim=1, keepdim=True)
        sums[f"fringe_{name}"] = (detail * core).flatten(1).sum(1).double()
    return sums


def blotch_counts(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Per image (B,) float64: ``blotch`` hole pixels whose colour is farther than BLOTCH_DISTANCE from the
    truth and from every colour of the ring of known pixels around the hole (up to BLOTCH_RING_SAMPLES ring
    pixels, evenly spaced), ``hole_n`` all hole pixels."""
    b = out.shape[0]
    blotch = torch.zeros(b, dtype=torch.float64)
    n = torch.zeros(b, dtype=torch.float64)
    ring = F.max_pool2d(hole.float(), 2 * BLOTCH_RING + 1, 1, BLOTCH_RING) * (1 - hole.float())
    for i in range(b):
        h = hole[i, 0] >= 0.5
        n[i] = float(h.sum())
        r = ring[i, 0] > 0.5
        if not h.any() or not r.any():
            continue
        fill = out[i].float().permute(1, 2, 0)[h]  # (N, 3)
        truth = target[i].float().permute(1, 2, 0)[h]
        ring_c = target[i].float().permute(1, 2, 0)[r]
        step = max(1, ring_c.shape[0] // BLOTCH_RING_SAMPLES)
        ring_c = ring_c[::step]
        off_truth = (fill - truth).norm(dim=1) > BLOTCH_DISTANCE
        off_ring = torch.cdist(fill, ring_c).min(dim=1).values > BLOTCH_DISTANCE
        blotch[i] = float((off_truth & off_ring).sum())
    return {"blotch": blotch, "hole_n": n}


def fill_sums(out: torch.Tensor, target: torch.Tensor, hole: torch.Tensor,
              true_edges: Optional[torch.Tensor] = None, lattice: bool = True,
              blotch: bool = True) -> Dict[str, torch.Tensor]:
    """All per-image sums of the fill defects in one dict: sharpness, grid, stripes, fringes; with ``lattice`` and
    ``blotch`` (default) those two; with ``true_edges``, the Canny edges (B,1,H,W) of the truth, the edge step.
    (The whole-photo protocol of ``native`` leaves out the lattice and the blotches.)"""
    sums = {**sharpness_sums(out, target, hole), **grid_sums(out, target, hole), **stripe_sums(out, target, hole),
            **fringe_sums(out, target, hole)}
    if lattice:
        sums.update(lattice_sums(out, target, hole))
    if blotch:
        sums.update(blotch_counts(out, target, hole))
    if true_edges is not None:
        sums.update(edge_step_sums(out, target, hole, true_edges))
    return sums


def fill_scores(sums: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """``sharpness``, ``grid2``, ``grid4``, ``grid8``, ``lattice2``, ``lattice4``, ``lattice8``, ``stripes``,
    ``fringe`` (fill over truth), ``blotch`` (share) and ``edge_step`` (fill over truth) from pooled ``fill_sums``,
    each group where ``fill_sums`` computed it (other keys of ``sums`` are ignored)."""

    def ratio(a: str, b: str) -> float:
        num, den = float(sums[a].sum()), float(sums[b].sum())
        return num / den if den > 0 else 0.0

    scores = {"sharpness": ratio("grad_out", "grad_true")}
    for period in GRID_PERIODS:
        scores[f"grid{period}"] = ratio(f"grid{period}_out", f"grid{period}_true")
    if f"lattice{LATTICE_PERIODS[0]}_out" in sums:
        for period in LATTICE_PERIODS:
            scores[f"lattice{period}"] = ratio(f"lattice{period}_out", f"lattice{period}_true")
    scores["stripes"] = stripe_score(*(float(sums[k].sum()) for k in STRIPE_KEYS))
    scores["fringe"] = ratio("fringe_out", "fringe_true")
    if "blotch" in sums:
        scores["blotch"] = ratio("blotch", "hole_n")
    if "step_true" in sums:
        scores["edge_step"] = ratio("step_out", "step_true")
    return scores
