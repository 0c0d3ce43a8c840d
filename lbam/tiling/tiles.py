"""Overlapping tiles for the refinement passes of coarse-to-fine inpainting, and their seamless blend.

A refinement pass works on one scale of the image (see :func:`level_sizes`): :func:`plan_tiles` covers every
hole pixel of that scale with network-sized square tiles on a regular grid whose neighbours overlap, and
:func:`blend` writes the tiles' answers back into the hole, each weighted by :func:`tile_weight` (a raised
cosine that falls towards the tile's sides inside the overlap), so that no step appears where one tile hands
over to the next. Tiles are cut with :func:`lbam.tiling.extract` (working size = box size: no resampling).
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np
import torch

from .crops import resize
from .plan import Crop, HoleLike, as_hole_array

#: :func:`add_detail` keeps the network's answer above 1 / DETAIL_FACTOR of a tile's resolution: two octaves,
#: the pass's own and the one below it (measured on the native-resolution val photos: 2 loses 0.1 dB and
#: sharpness, 8 blurs nothing more and shows more of the generator's grid).
DETAIL_FACTOR = 4

#: Smallest weight of a tile pixel (its outermost ring): every pixel a tile covers counts a little, so the
#: blend is defined everywhere, and the overlap's ramp decides where neighbours meet.
MIN_WEIGHT = 1e-3


def level_sizes(shape: Tuple[int, int], coarse_scale: float) -> List[Tuple[int, int]]:
    """Image sizes (h, w) of the refinement passes after a coarse pass at ``coarse_scale`` (network pixels per
    image pixel, e.g. ``min(crop.scale)``): scales ``coarse_scale * 2, * 4, ...`` while below 1, then the native
    size itself, which is always last. Empty when ``coarse_scale >= 1`` (the coarse pass is native already)."""
    h, w = shape
    out: List[Tuple[int, int]] = []
    if coarse_scale >= 1:
        return out
    s = 2 * coarse_scale
    while s < 1:
        out.append((max(1, round(h * s)), max(1, round(w * s))))
        s *= 2
    out.append((h, w))
    return out


def _starts(n: int, tile: int, stride: int) -> np.ndarray:
    """Starts of tiles of length ``tile`` covering ``[0, n)`` with at most ``stride`` between starts, the last
    one flush with the end; one tile centred on the axis (sticking out on both ends) when ``n <= tile``."""
    if n <= tile:
        return np.array([(n - tile) // 2], np.int64)
    k = math.ceil((n - tile) / stride)
    return np.round(np.linspace(0, n - tile, k + 1)).astype(np.int64)


def plan_tiles(hole: HoleLike, tile: int, overlap: int) -> List[Crop]:
    """Square tiles of side ``tile`` that cover every hole pixel of ``hole`` (bool (h, w), True = hole).

    The tiles lie on a grid over the whole image with neighbours overlapping by at least ``overlap`` pixels
    (``0 <= overlap < tile``); tiles without a hole pixel are dropped. An axis shorter than ``tile`` gets one
    tile centred on it (reflect-padded by :func:`extract`). Returns crops whose working size is the box size
    (``(tile, tile)``), row-major; empty when there is no hole.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    hole = as_hole_array(hole)
    h, w = hole.shape
    ys, xs = _starts(h, tile, tile - overlap), _starts(w, tile, tile - overlap)
    # hole pixels per grid cell via a summed-area table
    sat = np.zeros((h + 1, w + 1), np.int64)
    sat[1:, 1:] = hole.cumsum(0, dtype=np.int64).cumsum(1)
    y0, x0 = np.clip(ys, 0, h)[:, None], np.clip(xs, 0, w)[None, :]
    y1, x1 = np.clip(ys + tile, 0, h)[:, None], np.clip(xs + tile, 0, w)[None, :]
    count = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
    return [Crop((int(ys[i]), int(xs[j]), int(ys[i]) + tile, int(xs[j]) + tile), (tile, tile))
            for i, j in zip(*np.nonzero(count))]


def tile_weight(tile: int, overlap: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Blend weight (tile, tile) of one tile: the product of a ramp along y and one along x, each a raised
    cosine from ``MIN_WEIGHT`` at the tile's side to 1 at ``overlap`` pixels in (1 everywhere when overlap is 0).
    Values in [MIN_WEIGHT, 1]."""
    i = torch.arange(tile, dtype=torch.float64)
    d = torch.minimum(i + 0.5, tile - 0.5 - i)  # distance of the pixel centre to the nearer side
    if overlap > 0:
        ramp = 0.5 - 0.5 * torch.cos(math.pi * (d / overlap).clamp(max=1.0))
    else:
        ramp = torch.ones(tile, dtype=torch.float64)
    return (ramp[:, None] * ramp[None, :]).clamp(min=MIN_WEIGHT).to(dtype=dtype, device=device)


def add_detail(prefill: torch.Tensor, out: torch.Tensor, factor: int = DETAIL_FACTOR) -> torch.Tensor:
    """The coarse content of ``prefill`` plus the fine detail of ``out``: ``prefill + out - low(out)`` clamped to
    [0, 1], where ``low`` downscales by ``factor`` and upscales back (:func:`lbam.tiling.resize`).

    prefill, out: (K, C, t, t) in [0, 1], a refinement pass's tiles (the upscaled coarser fill the generator
    received) and the generator's answers. The generator at a finer scale sees less context than the coarse
    pass did and can drift in colour or spread an object's colour into the hole; this keeps the coarse pass's
    colours and layout and takes from the finer pass only what the coarser one could not resolve. Returns
    (K, C, t, t)."""
    h, w = out.shape[-2:]
    low = resize(resize(out, (max(1, h // factor), max(1, w // factor))), (h, w))
    return (prefill + out - low).clamp(0, 1)


def blend(canvas: torch.Tensor, results: torch.Tensor, tiles: Sequence[Crop], hole: HoleLike, overlap: int,
          *, inplace: bool = False) -> torch.Tensor:
    """Write tile answers into the hole of ``canvas``, overlapping tiles averaged with :func:`tile_weight`.

    canvas: (C, H, W) float, the image at the tiles' scale; results: (K, C, t, t), one answer per tile of
    ``tiles`` (all of side t, working size = box size, as :func:`plan_tiles` makes them); hole: (H, W) bool.
    Hole pixels of ``canvas`` covered by a tile become the weighted mean of the tiles' answers there; every
    other pixel is left bit-identical. ``inplace``: write into ``canvas`` (returned) instead of a copy.
    Returns (C, H, W).
    """
    if canvas.dim() != 3:
        raise ValueError(f"canvas must be (C, H, W), got shape {tuple(canvas.shape)}")
    if results.dim() != 4 or results.shape[0] != len(tiles) or results.shape[1] != canvas.shape[0]:
        raise ValueError(f"results must be (K={len(tiles)}, C={canvas.shape[0]}, t, t), got {tuple(results.shape)}")
    out = canvas if inplace else canvas.clone()
    if not tiles:
        return out
    h, w = canvas.shape[-2:]
    hole_t = torch.from_numpy(as_hole_array(hole)).to(canvas.device)
    if tuple(hole_t.shape) != (h, w):
        raise ValueError(f"hole shape {tuple(hole_t.shape)} does not match the canvas ({h}, {w})")
    t = results.shape[-1]
    if any(c.box_size != (t, t) for c in tiles):
        raise ValueError("every tile's box must have the results' side")
    # accumulate over the tiles' union box only (one tile's size on a large image)
    clips = [c.clip(h, w) for c in tiles]
    uy0, ux0 = min(c[0] for c in clips), min(c[1] for c in clips)
    uy1, ux1 = max(c[2] for c in clips), max(c[3] for c in clips)
    num = canvas.new_zeros((canvas.shape[0], uy1 - uy0, ux1 - ux0))
    den = canvas.new_zeros((1, uy1 - uy0, ux1 - ux0))
    weight = tile_weight(t, overlap, dtype=canvas.dtype, device=canvas.device)
    for res, crop, (cy0, cx0, cy1, cx1) in zip(results, tiles, clips):
        if cy1 <= cy0 or cx1 <= cx0:
            continue
        y0, x0 = crop.box[:2]
        wgt = weight[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        num[:, cy0 - uy0:cy1 - uy0, cx0 - ux0:cx1 - ux0] += res[:, cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0].to(
            canvas.dtype) * wgt
        den[:, cy0 - uy0:cy1 - uy0, cx0 - ux0:cx1 - ux0] += wgt
    sel = hole_t[uy0:uy1, ux0:ux1] & (den[0] > 0)
    region = out[:, uy0:uy1, ux0:ux1]
    region.copy_(torch.where(sel, num / den.clamp_min(MIN_WEIGHT ** 2), region))
    return out
