"""The network part of the pipeline on tensors at network size, and compositing.

``complete(mecnet, generator, image, hole, edges)`` is the whole of docs/ARCHITECTURE.md section 1 steps 3-4:
MECNet completes the edges, the (decoded) merged edge map steers Edge-LBAM, and the result is composited so
that known pixels are the input's. Training, evaluation and inference all call it.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .edges import rgb_to_gray
from .models.smoothing import binomial_blur


def merge_edges(edge_prob: torch.Tensor, edges: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Soft merge: MECNet's probabilities inside the hole, the known Canny edges outside. All (B,1,H,W)."""
    return edge_prob * hole + edges * (1 - hole)


#: how much a ridge pixel must exceed a neighbour across the line (float rounding on a plateau is no ridge)
RIDGE_MARGIN = 1e-3
#: the four directions (dy, dx) across which decode_edges looks for a ridge
_RIDGE_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


def decode_edges(edge_prob: torch.Tensor, mode: str = "none", threshold: float = 0.5) -> torch.Tensor:
    """Turn MECNet's edge probabilities (B,1,H,W) in [0,1] into the edge map the generator reads.

    ``"none"``: unchanged (the paper). ``"nms"``: the map is first smoothed with the separable binomial
    [1, 2, 1] / 4 (it removes the period-2 ripple of MECNet's transposed convolutions, which would otherwise
    leave a dotted lattice of tiny maxima), then non-maximum suppression across the line and a threshold: a
    pixel keeps its smoothed probability when, along one of four directions (horizontal, vertical, both
    diagonals), it is >= both neighbours and exceeds at least one of them by ``RIDGE_MARGIN`` (a ridge crossed in
    that direction; along a line the values are equal and do not count), and it is >= ``threshold``; every
    other pixel becomes 0. A soft band of probability thus becomes a line about one pixel wide, and a faint
    haze disappears. Returns (B,1,H,W).
    """
    if mode == "none":
        return edge_prob
    if mode != "nms":
        raise ValueError(f"unknown edge decoding {mode!r}")
    h, w = edge_prob.shape[-2:]
    edge_prob = binomial_blur(edge_prob)
    padded = F.pad(edge_prob, (1, 1, 1, 1), mode="replicate")
    ridge = torch.zeros_like(edge_prob, dtype=torch.bool)
    for dy, dx in _RIDGE_DIRECTIONS:
        before = padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
        after = padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        rises = (edge_prob > before + RIDGE_MARGIN) | (edge_prob > after + RIDGE_MARGIN)
        ridge |= (edge_prob >= before) & (edge_prob >= after) & rises
    return edge_prob * (ridge & (edge_prob >= threshold))


def composite(image: torch.Tensor, out: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """image * known + out * hole; image and out (B,3,H,W), hole (B,1,H,W) 1 = hole."""
    return image * (1 - hole) + out * hole


def complete(mecnet, generator, image: torch.Tensor, hole: torch.Tensor, edges: torch.Tensor,
             guide: Optional[torch.Tensor] = None, decode: str = "none",
             threshold: float = 0.5) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run MECNet then Edge-LBAM.

    image (B,3,H,W) in [0,1] (hole pixels ignored); hole (B,1,H,W) {0,1}, 1 = hole; edges (B,1,H,W) {0,1},
    Canny of the known region. guide: optional (B,1,H,W) user edge map in [0,1] that replaces MECNet's
    prediction inside the hole (MECNet is then not run, and the guide is not decoded).
    decode / threshold: how MECNet's probabilities are decoded (``decode_edges``; a ModelConfig's
    ``edge_decode`` and ``edge_threshold``).
    Returns (composited result (B,3,H,W) in [0,1], merged edge map (B,1,H,W) in [0,1]).
    """
    if guide is not None:
        edge_prob = guide
    else:
        edge_prob = decode_edges(mecnet(rgb_to_gray(image), edges, hole), decode, threshold)
    edge = merge_edges(edge_prob, edges, hole)
    out = generator(image, hole, edge)
    return composite(image, out, hole), edge
