"""Hole masks for training and evaluation.

``FreeFormMasks`` draws seeded free-form holes (brush strokes and blobs of varied width, in the spirit
of DeepFill v2 / LaMa masks) and can land the hole ratio inside a requested bucket such as the paper's
(0.1, 0.2]. ``MaskFolder`` reads a folder of mask images (e.g. an irregular-mask set). Every mask is a
float32 numpy array (H, W) with 1 = hole, 0 = known.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..io import IMAGE_SUFFIXES

PAPER_BUCKETS: Tuple[Tuple[float, float], ...] = ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5))


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels of a (H, W) mask (1 = hole)."""
    return float(mask.mean())


def _stroke(rng: np.random.Generator, canvas: np.ndarray, scale: float) -> None:
    """Draw one brush stroke: a polyline of a few segments with a random width, round joints."""
    h, w = canvas.shape
    width = int(rng.uniform(0.02, 0.12) * scale) + 2
    y, x = rng.uniform(0, h), rng.uniform(0, w)
    angle = rng.uniform(0, 2 * math.pi)
    for _ in range(int(rng.integers(1, 6))):
        angle += rng.uniform(-1.2, 1.2)
        length = rng.uniform(0.05, 0.3) * scale
        ny = float(np.clip(y + length * math.sin(angle), 0, h - 1))
        nx = float(np.clip(x + length * math.cos(angle), 0, w - 1))
        cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 1.0, width, lineType=cv2.LINE_8)
        cv2.circle(canvas, (int(nx), int(ny)), width // 2, 1.0, -1)
        y, x = ny, nx


def _blob(rng: np.random.Generator, canvas: np.ndarray, scale: float) -> None:
    """Draw one blob: a rotated ellipse or a random polygon."""
    h, w = canvas.shape
    cy, cx = int(rng.uniform(0, h)), int(rng.uniform(0, w))
    if rng.random() < 0.5:
        axes = (int(rng.uniform(0.03, 0.15) * scale) + 1, int(rng.uniform(0.03, 0.15) * scale) + 1)
        cv2.ellipse(canvas, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    else:
        n = int(rng.integers(4, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = rng.uniform(0.03, 0.15, n) * scale
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1.0)


class FreeFormMasks:
    """Seeded free-form hole generator.

    sample(size, bucket=None) -> (H, W) float32 mask, 1 = hole. With ``bucket=(lo, hi)`` the hole ratio lands
    in (lo, hi]; without, the target ratio is drawn uniformly from ``ratio_range`` (0 to 60 % by default).
    The same seed gives the same sequence of masks.
    """

    def __init__(self, seed: int = 0, ratio_range: Tuple[float, float] = (0.0, 0.6), max_tries: int = 50) -> None:
        self.rng = np.random.default_rng(seed)
        self.ratio_range = ratio_range
        self.max_tries = max_tries

    def sample(self, size, bucket: Optional[Tuple[float, float]] = None) -> np.ndarray:
        h, w = (size, size) if isinstance(size, int) else size
        lo, hi = bucket if bucket is not None else self.ratio_range
        if not 0 <= lo < hi <= 1:
            raise ValueError(f"bad hole-ratio bucket ({lo}, {hi})")
        best = None
        for _ in range(self.max_tries):
            target = self.rng.uniform(lo, hi) if bucket is None else self.rng.uniform(lo + 0.2 * (hi - lo), hi)
            mask = self._grow(h, w, target, hi)
            r = hole_ratio(mask)
            if lo < r <= hi or (bucket is None and r <= hi):
                return mask
            if best is None or abs(r - (lo + hi) / 2) < abs(hole_ratio(best) - (lo + hi) / 2):
                best = mask
        return best

    def _grow(self, h: int, w: int, target: float, hi: float) -> np.ndarray:
        """Add strokes and blobs until the ratio reaches ``target``; undo a shape that overshoots ``hi``."""
        mask = np.zeros((h, w), np.float32)
        scale = float(max(h, w))
        for _ in range(400):
            if hole_ratio(mask) >= target:
                break
            trial = mask.copy()
            (_stroke if self.rng.random() < 0.7 else _blob)(self.rng, trial, scale)
            if hole_ratio(trial) <= hi:
                mask = trial
            else:
                scale *= 0.8  # the last shape was too big: draw smaller ones
        return mask


class MaskFolder:
    """Masks read from a folder of images (recursive). White / >= 128 = hole.

    sample(size) -> (H, W) float32 mask with random flips and 90-degree rotations, resized (nearest) to size.
    """

    def __init__(self, root, seed: int = 0, invert: bool = False) -> None:
        self.files: List[Path] = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FileNotFoundError(f"no mask images found under {root}")
        self.rng = np.random.default_rng(seed)
        self.invert = invert

    def __len__(self) -> int:
        return len(self.files)

    def sample(self, size, bucket: Optional[Tuple[float, float]] = None) -> np.ndarray:
        h, w = (size, size) if isinstance(size, int) else size
        path = self.files[int(self.rng.integers(len(self.files)))]
        m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise ValueError(f"cannot read mask image {path}")
        m = (m >= 128) if not self.invert else (m < 128)
        m = np.rot90(m, int(self.rng.integers(4)))
        if self.rng.random() < 0.5:
            m = m[:, ::-1]
        m = cv2.resize(np.ascontiguousarray(m).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        return m.astype(np.float32)


def bucket_of(ratio: float, buckets: Sequence[Tuple[float, float]] = PAPER_BUCKETS) -> Optional[int]:
    """Index of the (lo, hi] bucket holding ``ratio``, or None."""
    for i, (lo, hi) in enumerate(buckets):
        if lo < ratio <= hi:
            return i
    return None
