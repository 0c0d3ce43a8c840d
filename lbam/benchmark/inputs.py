"""Deterministic synthetic inputs: photo-like images, free-form hole masks, crop batches and networks."""
from __future__ import annotations

import math

import numpy as np

from .options import Options


def synthetic_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic photo-like RGB image, (height, width, 3) uint8.

    Smooth colour gradients (a bicubically upsampled random 4 x 6 grid plus a radial vignette), mid-frequency
    texture (upsampled noise), fine grain, and a few flat-coloured shapes and lines whose borders give Canny real
    edges. Built one channel at a time in float32 so that a 4096 x 3072 image needs little temporary memory.
    """
    import cv2

    rng = np.random.default_rng(seed)
    grid = rng.uniform(0.15, 0.85, (4, 6, 3)).astype(np.float32)
    mid = rng.normal(0, 1, (max(2, height // 24), max(2, width // 24), 3)).astype(np.float32)
    fine_seed = int(rng.integers(2 ** 31))
    yy = (np.arange(height, dtype=np.float32) / max(height - 1, 1) - 0.5)[:, None]
    xx = (np.arange(width, dtype=np.float32) / max(width - 1, 1) - 0.5)[None, :]
    vignette = 1.0 - 0.5 * (yy * yy + xx * xx)
    out = np.empty((height, width, 3), np.uint8)
    fine = np.random.default_rng(fine_seed)
    for c in range(3):
        ch = cv2.resize(grid[:, :, c], (width, height), interpolation=cv2.INTER_CUBIC)
        ch *= vignette
        ch += 0.06 * cv2.resize(mid[:, :, c], (width, height), interpolation=cv2.INTER_LINEAR)
        ch += fine.normal(0, 0.02, (height, width)).astype(np.float32)
        np.clip(ch, 0, 1, out=ch)
        out[:, :, c] = (ch * 255 + 0.5).astype(np.uint8)
    del vignette
    scale = max(height, width)
    for _ in range(12):
        color = tuple(int(v) for v in rng.integers(20, 236, 3))
        cy, cx = int(rng.uniform(0, height)), int(rng.uniform(0, width))
        r = int(rng.uniform(0.02, 0.1) * scale) + 1
        kind = rng.integers(3)
        if kind == 0:
            cv2.circle(out, (cx, cy), r, color, -1, lineType=cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(out, (cx - r, cy - r // 2), (cx + r, cy + r // 2), color, -1)
        else:
            ex, ey = int(rng.uniform(0, width)), int(rng.uniform(0, height))
            cv2.line(out, (cx, cy), (ex, ey), color, max(1, scale // 400), lineType=cv2.LINE_AA)
    return out


def synthetic_mask(height: int, width: int, ratio: float, seed: int = 0, base_side: int = 512) -> np.ndarray:
    """A deterministic free-form hole mask, (height, width) bool, True = hole, hole fraction close to ``ratio``.

    Drawn by :class:`lbam.training.masks.FreeFormMasks` at a size whose longer side is at most ``base_side``
    (ratio within +-10 % of the target), then upscaled with nearest neighbour (which keeps the fraction).
    """
    import cv2

    from ..training.masks import FreeFormMasks

    f = max(1, math.ceil(max(height, width) / base_side))
    bh, bw = max(1, height // f), max(1, width // f)
    lo, hi = ratio * 0.9, min(1.0, ratio * 1.1)
    m = FreeFormMasks(seed=seed).sample((bh, bw), bucket=(lo, hi))
    m = cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return m.astype(bool)


def crop_batch(opts: Options, n: int, cfg, device="cpu"):
    """n deterministic crops: image (n,3,s,s) in [0,1], hole (n,1,s,s), Canny edges (n,1,s,s)."""
    import torch

    from ..edges import canny_edges, rgb_to_gray
    from ..training.masks import FreeFormMasks

    s = opts.crop_size
    big = synthetic_image(2 * s, max(n, 2) * s, seed=opts.seed + 1)
    masks = FreeFormMasks(seed=opts.seed + 2)
    imgs, holes = [], []
    for i in range(n):
        x0 = (i * s) % (big.shape[1] - s + 1)
        imgs.append(big[(i % 2) * s // 2:(i % 2) * s // 2 + s, x0:x0 + s])
        holes.append(masks.sample(s, bucket=(0.1, 0.3)))
    image = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float().div(255).contiguous()
    hole = torch.from_numpy(np.stack(holes))[:, None].float()
    edges = canny_edges(rgb_to_gray(image), hole, cfg.canny_sigma, cfg.canny_low, cfg.canny_high)
    return image.to(device), hole.to(device), edges.to(device)


def build_networks(config_name: str, seed: int = 0):
    """Randomly initialised (MECNet, EdgeLBAM) in eval mode with gradients on (the reference setting)."""
    import torch

    from ..models import EdgeLBAM, MECNet, get_config

    cfg = get_config(config_name)
    torch.manual_seed(seed)
    return cfg, MECNet(cfg.mecnet).eval(), EdgeLBAM(cfg.generator).eval()
