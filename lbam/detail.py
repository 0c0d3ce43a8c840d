"""Context detail transfer: give a smooth fill the fine texture of the photo's own known pixels.

The networks fill a hole with the right colours and structure but little fine texture (sand, grass, skin, fabric
come back as a smear: the fill's mean gradient is about 0.2 of the photo's at 256 px, 0.1 on large photos).
This step, run after compositing, borrows that texture from the rest of the same photo. It is our own
formulation of the idea of contextual residual aggregation (Yi et al., HiFill, 2020) with no learned parameters:

1. **Band.** The detail of an image is its luminance residual against a Gaussian blur: ``R = Y - blur(Y)``,
   sigma ``2 ** octaves / 2`` pixels, Y the gray of ``lbam.edges.rgb_to_gray``. No decimation, so a copy taken at
   any offset keeps the photo's phase. Luminance only: colour residual copied from another object's rim shows
   as coloured speckle. R is soft-limited at ``clip`` times its RMS over the known pixels (``c tanh(R / c)``):
   grain passes, the strong lines of object edges, which would become scratches in the fill, are squashed.
2. **Windows.** The image is covered by ``cell x cell`` windows every ``cell / 2`` pixels. A window's descriptor
   is the colour layout around it: the ``2 cell x 2 cell`` region centred on it averaged in ``cell / 2`` blocks
   (4 x 4 x RGB = 48 numbers; in the hole these are the fill's colours). Windows touching the hole are the
   targets; windows whose region is at least ``2 ** (octaves + 1)`` pixels from the hole and inside the image
   (their residual saw no filled pixel) are the sources.
3. **Match.** Each target draws one of its ``top_k`` nearest sources (mean squared descriptor distance) with
   probabilities ``softmax(-distance / tau)``, from a seeded generator: drawing, not averaging, so that a
   smooth region does not repeat one averaged patch every ``cell / 2`` pixels and keeps the texture's amplitude.
   A source one of the 8 neighbouring windows has drawn is not drawn again (``draw_sources``).
4. **Blend.** The drawn residual patches are overlapped with sine windows (whose squares sum to 1 at stride
   ``cell / 2``) and normalised by the root of the summed squared weights, which keeps the amplitude of
   uncorrelated texture where windows overlap; ``strength`` times the result is added to every channel of the
   hole pixels. Known pixels are never changed.

Measured (README, "Texture from the photo itself"): sharper fills (sharpness 0.43 against 0.21 on 256-pixel photo
crops, 0.56 against 0.10 on whole photos) at a cost in PSNR (0.19 and 0.23 dB; 0.57 dB on texture crops), since
texture that is not the truth's costs more squared error than a smooth mean; hence opt-in
(``Inpainter.detail = "context"``, ``lbam inpaint --detail context``).
"""
from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .edges import rgb_to_gray

#: The detail steps ``Inpainter.detail`` accepts (the one definition; the API and the CLI read it from here).
DETAILS = ("none", "context")
#: Window side in pixels at octaves=1 (even); the stride is half of it.
CELL = 8
#: The residual band at the networks' own scale: detail finer than about 2 ** OCTAVES pixels.
OCTAVES = 1
#: Candidate sources per target, and the temperature of the draw on mean squared descriptor distance.
TOP_K = 8
TAU = 0.02
#: Soft limit of the residual, in RMS of the known region's residual.
CLIP = 2.0
#: At most this many source windows are compared (a seeded subset beyond it): bounds the time on large photos.
MAX_SOURCES = 16384


def gaussian_highpass(x: torch.Tensor, sigma: float, border: str = "reflect") -> torch.Tensor:
    """(B,C,H,W) -> (B,C,H,W): x minus its Gaussian blur of standard deviation ``sigma`` px (separable, kernel
    radius ceil(3 sigma)). border: "reflect" (replicate where the image is no larger than the radius) or
    "replicate". A fog or a smooth ramp goes to about 0; fine texture and thin lines stay."""
    r = int(math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, device=x.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    mode = "reflect" if border == "reflect" and min(x.shape[-2:]) > r else "replicate"
    low = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    low = F.conv2d(F.pad(low, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x - low


def band_residual(x: torch.Tensor, octaves: int = OCTAVES) -> torch.Tensor:
    """(B,C,H,W) -> (B,C,H,W): x minus its Gaussian blur (sigma ``2 ** octaves / 2`` px, reflected border)."""
    return gaussian_highpass(x, 2.0 ** octaves / 2)


def _window(cell: int, device) -> torch.Tensor:
    """(cell*cell,) sine window whose squares, overlapped every cell/2 pixels, sum to 1 along each axis."""
    t = torch.sin(math.pi * (torch.arange(cell, device=device, dtype=torch.float32) + 0.5) / cell)
    return (t[:, None] * t[None, :]).reshape(-1)


def transfer_detail(image: torch.Tensor, hole: torch.Tensor, *, cell: int = CELL, octaves: int = OCTAVES,
                    top_k: int = TOP_K, tau: float = TAU, clip: float = CLIP, strength: float = 1.0,
                    max_sources: int = MAX_SOURCES, seed: int = 0) -> torch.Tensor:
    """Add texture drawn from the known region to the hole of a composited image (module doc).

    image: (B,3,H,W) float in [0,1], the hole already filled; hole: (B,1,H,W), 1 (or True) = hole.
    cell: window side (even, >= 2); octaves (>= 1): the residual band; top_k, tau: the draw; clip (> 0): soft
    limit of the residual; strength (>= 0): gain of the added texture (0 = unchanged); seed: the draw's seed
    (the same inputs and seed give the same result).
    Returns a new (B,3,H,W) tensor in [0,1]; pixels outside the hole are the input's exactly. An image with no
    hole pixel, or with no source window (no clean region of ``2 cell`` pixels), comes back unchanged.
    """
    if cell < 2 or cell % 2:
        raise ValueError(f"cell must be an even number >= 2, got {cell}")
    if octaves < 1 or top_k < 1 or tau <= 0 or clip <= 0 or strength < 0:
        raise ValueError("need octaves >= 1, top_k >= 1, tau > 0, clip > 0 and strength >= 0, got "
                         f"{octaves}, {top_k}, {tau}, {clip}, {strength}")
    out = image.clone()
    for i in range(image.shape[0]):
        m = (hole[i:i + 1] > 0.5).to(image.dtype)
        added = _transfer_one(image[i:i + 1].float(), m.float(), cell, octaves, top_k, tau, clip, max_sources,
                              seed)
        if added is not None and strength > 0:
            filled = (image[i:i + 1] + strength * added.to(image.dtype)).clamp(0, 1)
            out[i:i + 1] = torch.where(m > 0, filled, image[i:i + 1])
    return out


#: the 8 neighbours (dy, dx) of a window on the window grid
_NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)


def draw_sources(cand: torch.Tensor, logits: torch.Tensor, tgt_idx: torch.Tensor, nh: int, nw: int) -> torch.Tensor:
    """The drawn source of every target: the candidate (cand (T,k) window indices) of largest perturbed logit
    (T,k), except that a source already drawn by one of the 8 neighbouring windows is not drawn again (the same
    patch every cell/2 pixels would repeat with that period), unless all k are. The targets draw in four interleaved
    groups (row and column parity), each seeing the draws of the groups before it. Returns (T,) indices."""
    grid = torch.full((nh * nw,), -1, dtype=torch.long, device=cand.device)
    rows, cols = tgt_idx // nw, tgt_idx % nw
    drawn = torch.empty(len(tgt_idx), dtype=torch.long, device=cand.device)
    for py, px in ((0, 0), (1, 1), (0, 1), (1, 0)):
        sel = ((rows % 2) == py) & ((cols % 2) == px)
        if not bool(sel.any()):
            continue
        r, c, lg, cd = rows[sel], cols[sel], logits[sel].clone(), cand[sel]
        for dy, dx in _NEIGHBOURS:
            ny, nx = r + dy, c + dx
            ok = (ny >= 0) & (ny < nh) & (nx >= 0) & (nx < nw)
            theirs = torch.where(ok, grid[(ny.clamp(0, nh - 1) * nw + nx.clamp(0, nw - 1))], -1)
            lg[cd == theirs[:, None]] = float("-inf")
        pick = lg.argmax(1)
        none_left = torch.isinf(lg.max(1).values)
        pick[none_left] = logits[sel][none_left].argmax(1)
        drawn[sel] = cd.gather(1, pick[:, None])[:, 0]
        grid[tgt_idx[sel]] = drawn[sel]
    return drawn


def _grow(mask: torch.Tensor, margin: int) -> torch.Tensor:
    """(1,1,H,W) {0,1} float mask grown by ``margin`` px (a square). On the CPU OpenCV's dilation, whose cost does
    not grow with the square (torch's stride-1 max pooling took a third of the detail step on a 1600x900 photo)."""
    if mask.device.type == "cpu":
        square = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * margin + 1, 2 * margin + 1))
        grown = cv2.dilate(mask[0, 0].numpy().astype(np.uint8), square)
        return torch.from_numpy(grown).to(mask.dtype)[None, None]
    side = 2 * margin + 1
    return F.max_pool2d(F.max_pool2d(mask, (1, side), stride=1, padding=(0, margin)), (side, 1), stride=1,
                        padding=(margin, 0))


def _transfer_one(x: torch.Tensor, hole: torch.Tensor, cell: int, octaves: int, top_k: int, tau: float,
                  clip: float, max_sources: int, seed: int) -> Optional[torch.Tensor]:
    """x (1,3,H,W), hole (1,1,H,W) {0,1} -> the luminance texture to add (1,1,H,W), or None.

    Geometry: the image is cut in blocks of s = cell/2 pixels and padded by two blocks on each side; the window
    whose top-left block is padded block p covers blocks p, p+1 and its context blocks p-1 .. p+2. Windows start
    at p = 1 .. g+1 along each axis (g blocks in the image), so every image pixel lies under two windows per axis.
    """
    if not bool(hole.any()):
        return None
    s = cell // 2
    h, w = x.shape[-2:]
    gh, gw = -(-h // s), -(-w // s)
    pad = (2 * s, gw * s - w + 2 * s, 2 * s, gh * s - h + 2 * s)  # left, right, top, bottom
    nh, nw = gh + 1, gw + 1  # windows per column / per row
    band = band_residual(rgb_to_gray(x), octaves)
    known = hole[0, 0] < 0.5
    limit = clip * float(band[0, 0][known].pow(2).mean().sqrt()) + 1e-6
    band = limit * torch.tanh(band / limit)
    near_hole = _grow(hole, 2 ** (octaves + 1))
    bad_b = F.max_pool2d(F.pad(near_hole, pad, value=1.0), s)  # the padding is no source either
    hole_b = F.max_pool2d(F.pad(hole, pad), s)
    blocks = F.avg_pool2d(F.pad(x, pad, mode="replicate"), s)  # (1, 3, gh + 4, gw + 4) block means
    desc = F.unfold(blocks, 4)[0].t()  # context top-left c = p - 1 = 0 .. g -> (nh * nw, 48)
    target = F.max_pool2d(hole_b, 2, stride=1)[..., 1:1 + nh, 1:1 + nw].reshape(-1) > 0
    source = F.max_pool2d(bad_b, 4, stride=1).reshape(-1) == 0
    if not bool(target.any()) or not bool(source.any()):
        return None
    gen = torch.Generator().manual_seed(seed)
    src_idx = source.nonzero()[:, 0]
    if src_idx.numel() > max_sources:
        src_idx = src_idx[torch.randperm(src_idx.numel(), generator=gen)[:max_sources].to(src_idx.device)]
    tgt_idx = target.nonzero()[:, 0]
    k = min(top_k, src_idx.numel())
    sd = desc[src_idx]
    sd_sq = sd.pow(2).sum(1)[None]
    cand = torch.empty(tgt_idx.numel(), k, dtype=torch.long, device=x.device)
    logits = torch.empty(tgt_idx.numel(), k, device=x.device)
    chunk = max(1, 2 ** 23 // src_idx.numel())
    for c in range(0, tgt_idx.numel(), chunk):
        td = desc[tgt_idx[c:c + chunk]]
        # |t - s|^2 = |t|^2 + (|s|^2 - 2 t.s): the ranking needs only the bracket, one fused pass over the
        # targets x sources matrix (the elementwise passes of the full sum took twice the product's time)
        part = torch.addmm(sd_sq, td, sd.t(), alpha=-2)
        best, arg = part.topk(k, dim=1, largest=False)
        best = (best + td.pow(2).sum(1, keepdim=True)).clamp_min(0) / desc.shape[1]
        u = torch.rand(best.shape, generator=gen).to(best.device).clamp(1e-9, 1 - 1e-9)
        logits[c:c + chunk] = -best / tau - torch.log(-torch.log(u))  # Gumbel-max: argmax = a draw
        cand[c:c + chunk] = src_idx[arg]
    drawn = draw_sources(cand, logits, tgt_idx, nh, nw)
    # the drawn window starts at padded pixel (1 + row) * s; each copy is shifted by a random offset in
    # [-s/2, s/2) per axis (still inside the clean context), so copies do not keep the source grid's phase
    off = torch.randint(-(s // 2), s - s // 2, (2, drawn.numel()), generator=gen).to(x.device)
    y0 = (1 + drawn // nw) * s + off[0]
    x0 = (1 + drawn % nw) * s + off[1]
    ar = torch.arange(cell, device=x.device)
    padded = F.pad(band, pad)[0, 0]
    win = _window(cell, x.device)
    cols = torch.zeros(nh * nw, cell * cell, device=x.device)
    cols[tgt_idx] = padded[y0[:, None, None] + ar[None, :, None], x0[:, None, None] + ar[None, None, :]].reshape(
        -1, cell * cell) * win
    wsq = torch.zeros(nh * nw, cell * cell, device=x.device)
    wsq[tgt_idx] = win ** 2
    size = (nh * s + s, nw * s + s)  # from padded pixel s
    num = F.fold(cols.t()[None], size, cell, stride=s)
    den = F.fold(wsq.t()[None], size, cell, stride=s)
    added = num / den.clamp_min(1e-6).sqrt()
    return added[..., s:s + h, s:s + w]


def octaves_for(scale: float) -> int:
    """The residual band for a fill the networks made at ``scale`` (network pixels per image pixel, <= 1 when
    the crop was shrunk): a fill shrunk by 2 ** n lacks n more octaves of detail than one made at full size."""
    return OCTAVES + max(0, round(math.log2(1 / scale))) if 0 < scale < 1 else OCTAVES


def add_context_detail(image: torch.Tensor, hole: np.ndarray, scale: float = 1.0, strength: float = 1.0,
                       seed: int = 0) -> torch.Tensor:
    """:func:`transfer_detail` on the region around the holes of one image, in place: what
    ``Inpainter.detail = "context"`` runs after the fill.

    image: (1,3,H,W) float in [0,1], filled; hole: numpy (H,W) bool; scale: the scale the fill was made at
    (``octaves_for``; the window grows with the band). The region is the holes' bounding box grown by half its
    longer side plus four windows (the sources are the nearby texture, and a large photo is not searched whole).
    Returns ``image``.
    """
    ys, xs = np.nonzero(hole)
    if ys.size == 0:
        return image
    octaves = octaves_for(scale)
    cell = CELL * 2 ** (octaves - OCTAVES)
    reach = max(ys.max() - ys.min(), xs.max() - xs.min()) // 2 + 4 * cell
    h, w = hole.shape
    y0, y1 = max(0, ys.min() - reach), min(h, ys.max() + 1 + reach)
    x0, x1 = max(0, xs.min() - reach), min(w, xs.max() + 1 + reach)
    region = image[:, :, y0:y1, x0:x1]
    m = torch.from_numpy(np.ascontiguousarray(hole[y0:y1, x0:x1]))[None, None].to(image.device, torch.float32)
    region.copy_(transfer_detail(region, m, cell=cell, octaves=octaves, strength=strength, seed=seed))
    return image
