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


def merge_edges(edge_prob: torch.Tensor, edges: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Soft merge: MECNet's probabilities inside the hole, the known Canny edges outside. All (B,1,H,W)."""
    return edge_prob * hole + edges * (1 - hole)


def decode_edges(edge_prob: torch.Tensor, mode: str = "none", threshold: float = 0.5) -> torch.Tensor:
    """Turn MECNet's edge probabilities (B,1,H,W) in [0,1] into the edge map the generator reads.

    ``"none"``: unchanged (the paper). ``"nms"``: non-maximum suppression across the line, then a threshold:
    a pixel keeps its probability when it is a local maximum of the map horizontally (>= its left and right
    neighbours) or vertically (>= those above and below) and is >= ``threshold``; every other pixel becomes 0.
    A soft band of probability thus becomes a line one or two pixels wide, and a faint haze disappears.
    Returns (B,1,H,W) in [0,1].
    """
    if mode == "none":
        return edge_prob
    if mode != "nms":
        raise ValueError(f"unknown edge decoding {mode!r}")
    horizontal = F.max_pool2d(edge_prob, (1, 3), 1, (0, 1))
    vertical = F.max_pool2d(edge_prob, (3, 1), 1, (1, 0))
    keep = ((edge_prob >= horizontal) | (edge_prob >= vertical)) & (edge_prob >= threshold)
    return edge_prob * keep


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
