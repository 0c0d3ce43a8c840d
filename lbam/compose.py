"""The network part of the pipeline on tensors at network size, and compositing.

``complete(mecnet, generator, image, hole, edges)`` is the whole of ARCHITECTURE.md section 1 steps 3-4:
MECNet completes the edges, the merged edge map steers Edge-LBAM, and the result is composited so that
known pixels are the input's. Training, evaluation and inference all call it.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from .edges import rgb_to_gray


def merge_edges(edge_prob: torch.Tensor, edges: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Soft merge: MECNet's probabilities inside the hole, the known Canny edges outside. All (B,1,H,W)."""
    return edge_prob * hole + edges * (1 - hole)


def composite(image: torch.Tensor, out: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """image * known + out * hole; image and out (B,3,H,W), hole (B,1,H,W) 1 = hole."""
    return image * (1 - hole) + out * hole


def complete(mecnet, generator, image: torch.Tensor, hole: torch.Tensor, edges: torch.Tensor,
             guide: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run MECNet then Edge-LBAM.

    image (B,3,H,W) in [0,1] (hole pixels ignored); hole (B,1,H,W) {0,1}, 1 = hole; edges (B,1,H,W) {0,1},
    Canny of the known region. guide: optional (B,1,H,W) user edge map in [0,1] that replaces MECNet's
    prediction inside the hole (MECNet is then not run).
    Returns (composited result (B,3,H,W) in [0,1], merged edge map (B,1,H,W) in [0,1]).
    """
    edge_prob = guide if guide is not None else mecnet(rgb_to_gray(image), edges, hole)
    edge = merge_edges(edge_prob, edges, hole)
    out = generator(image, hole, edge)
    return composite(image, out, hole), edge
