"""Evaluation at native resolution: whole photos with object-sized holes, as a user removes an object.

Unlike the 256-crop protocol of :mod:`lbam.training.evaluate`, each photo of a folder is used whole (only
downscaled, area filter, so that its long side is at most ``max_side``), gets one seeded object-sized hole
(:func:`object_hole`: one to three smooth blobs covering ``hole_range`` of the image, 3-15 % by default), and
goes through ``Inpainter.inpaint`` exactly as a user's call does, once per strategy, next to OpenCV Telea at
each radius. Every result is 8-bit, composited (known pixels are the input's). Scores:

* ``psnr``: PSNR over the hole pixels only (mean squared error of the three channels over hole pixels, peak
  1), averaged over the photos;
* ``ssim``: SSIM (:func:`lbam.training.metrics.ssim`) of the hole's bounding box grown by ``SSIM_MARGIN``
  pixels (clipped to the image), averaged over the photos;
* ``sharpness``: mean Sobel magnitude in the hole eroded by ``defects.SHARPNESS_ERODE`` pixels, fill over
  truth, pooled over the photos (:func:`lbam.training.defects.sharpness_sums`); 1 = as detailed as the photo;
* ``grid2``, ``grid4``, ...: grid energy of each period of ``defects.GRID_PERIODS`` over windows mostly in the
  hole, fill over truth, pooled (:func:`lbam.training.defects.grid_sums`);
* ``edge_step``: the step across the truth's Canny edges in the eroded hole, fill over truth, pooled
  (:func:`lbam.training.defects.edge_step_sums`); 1 = edges carried through as crisply as the photo's;
* ``stripes``: the energy-weighted peak-to-mean power of the fill's fine texture over the truth's, pooled
  (:func:`lbam.training.defects.stripe_sums`); about 1 for texture as unordered as the photo's, above for
  repeated stripes, 0 for a flat fill;
* ``fringe``: the fill's fine colour detail over the truth's in the eroded hole, pooled
  (:func:`lbam.training.defects.fringe_sums`); well above 1 for colour fringes the photo does not hold;
* ``seconds``: mean wall time of one call (informative only; the machine may be busy).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..edges import canny, rgb_to_gray
from . import defects as D
from . import metrics
from .data import list_images, read_rgb
from .evaluate import TELEA_RADIUS

#: Hole fraction range of the object holes (uniform per photo).
HOLE_RANGE = (0.03, 0.15)
#: Pixels added on each side of the hole's bounding box for SSIM.
SSIM_MARGIN = 8
#: Strategies evaluated by default: coarse to fine (``"pyramid"``), and ``"single"``: the one-pass strategy
#: ("crop" or "resize") that "auto" picks without refinement (``choose_strategy(refine=False)``).
DEFAULT_STRATEGIES = ("pyramid", "single")


def _blob(rng: np.random.Generator, shape: Tuple[int, int], area: float) -> np.ndarray:
    """One smooth random blob (bool (h, w)) of about ``area`` pixels: a star-shaped outline whose radius varies
    with three random harmonics, stretched up to 2:1 and rotated, centred away from the image's sides."""
    h, w = shape
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    r = np.ones_like(theta)
    for k in (2, 3, 5):
        r += rng.uniform(0, 0.35 / k * 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    stretch, angle = rng.uniform(1.0, 2.0), rng.uniform(0, np.pi)
    x, y = r * np.cos(theta) * stretch, r * np.sin(theta)
    x, y = x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)
    unit_area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    s = math.sqrt(area / unit_area)
    ext = s * max(np.abs(x).max(), np.abs(y).max())
    cy = rng.uniform(min(ext, h / 2), max(h - ext, h / 2))
    cx = rng.uniform(min(ext, w / 2), max(w - ext, w / 2))
    pts = np.stack([cx + s * x, cy + s * y], axis=1).round().astype(np.int32)
    canvas = np.zeros((h, w), np.uint8)
    cv2.fillPoly(canvas, [pts], 1)
    return canvas.astype(bool)


def object_hole(shape: Tuple[int, int], rng: np.random.Generator,
                hole_range: Tuple[float, float] = HOLE_RANGE) -> np.ndarray:
    """An object-sized hole (bool (h, w), True = hole): one to three blobs (:func:`_blob`) whose union covers a
    fraction drawn uniformly from ``hole_range`` (within a few per cent of it; blobs are rescaled up to four
    times to land there). Deterministic for a given ``rng`` state."""
    h, w = shape
    target = rng.uniform(*hole_range)
    n = int(rng.integers(1, 4))
    shares = rng.dirichlet(np.ones(n)) * 0.6 + 0.4 / n
    seeds = rng.integers(2**31, size=n)
    scale = 1.0
    hole = np.zeros(shape, bool)
    for _ in range(4):
        hole = np.zeros(shape, bool)
        for share, seed in zip(shares, seeds):
            hole |= _blob(np.random.default_rng(int(seed)), shape, scale * target * share * h * w)
        frac = hole.mean()
        if abs(frac - target) <= 0.05 * target:
            break
        scale *= target / max(frac, 1e-6)
    return hole


def read_photo(path: Path, max_side: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB of ``path``, downscaled (area) so that its long side is at most ``max_side``."""
    img = read_rgb(path)
    s = max_side / max(img.shape[:2])
    if s < 1:
        img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return img


def hole_psnr(out: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """PSNR in dB (peak 1) over the hole pixels: out, truth (H, W, 3) uint8, hole (H, W) bool."""
    d = (out[hole].astype(np.float64) - truth[hole].astype(np.float64)) / 255
    return float(10 * math.log10(1.0 / max(float(np.mean(d * d)), 1e-12)))


def hole_ssim(out: np.ndarray, truth: np.ndarray, hole: np.ndarray, margin: int = SSIM_MARGIN) -> float:
    """SSIM of the hole's bounding box grown by ``margin`` pixels (clipped to the image). uint8 inputs."""
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    y0, y1 = max(0, ys.min() - margin), min(h, ys.max() + 1 + margin)
    x0, x1 = max(0, xs.min() - margin), min(w, xs.max() + 1 + margin)
    a, b = (torch.from_numpy(np.ascontiguousarray(v[y0:y1, x0:x1])).permute(2, 0, 1)[None].float() / 255
            for v in (out, truth))
    return float(metrics.ssim(a, b)[0])


def _tensors(out: np.ndarray, truth: np.ndarray, hole: np.ndarray):
    t = lambda v: torch.from_numpy(v).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    return t(out), t(truth), torch.from_numpy(hole)[None, None].float()


def methods_for(inpainter, strategies: Sequence[str] = DEFAULT_STRATEGIES,
                telea_radii: Sequence[int] = (TELEA_RADIUS, 5)) -> Dict[str, Callable]:
    """{name: f(rgb uint8 (H,W,3), hole bool (H,W)) -> uint8 (H,W,3)}: ``inpainter`` with each strategy (named
    by it; ``"single"``: see ``DEFAULT_STRATEGIES``) and OpenCV Telea at each radius (``telea3``, ``telea5``, ...)."""
    from .. import tiling

    def single(rgb, hole):
        return inpainter.inpaint(rgb, hole, strategy=tiling.choose_strategy(hole, inpainter.config.train_size))

    out: Dict[str, Callable] = {}
    for s in strategies:
        out[s] = single if s == "single" else (lambda s: lambda rgb, hole: inpainter.inpaint(rgb, hole, strategy=s))(s)
    for r in telea_radii:
        out[f"telea{r}"] = (lambda r: lambda rgb, hole: cv2.inpaint(rgb, hole.astype(np.uint8), r,
                                                                     cv2.INPAINT_TELEA))(r)
    return out


def evaluate_native(methods: Dict[str, Callable], data, max_side: int, images: Optional[int] = None,
                    seed: int = 0, hole_range: Tuple[float, float] = HOLE_RANGE, log=None) -> Dict:
    """Score every method on the photos of ``data`` (the first ``images`` of them, sorted; None = all).

    Returns {"photos": [{"name", "size", "hole", method: {"psnr", "ssim", "seconds"}}...],
    "metrics": {method: {"psnr", "ssim", "sharpness", "edge_step", "grid2", "grid4", ..., "stripes", "fringe",
    "seconds", "n"}}}
    (module doc).
    The hole of photo i comes from ``np.random.default_rng([seed, i])``, the same for every method.
    """
    files = list_images(data)[:images]
    photos: List[Dict] = []
    sums: Dict[str, Dict[str, List[torch.Tensor]]] = {m: {} for m in methods}
    for i, path in enumerate(files):
        truth = read_photo(path, max_side)
        hole = object_hole(truth.shape[:2], np.random.default_rng([seed, i]), hole_range)
        rec = {"name": path.name, "size": [truth.shape[1], truth.shape[0]], "hole": round(float(hole.mean()), 4)}
        # the truth's edges with the package's Canny settings (edges.CANNY_*), the same for every method scored
        true_edges = torch.from_numpy(canny(rgb_to_gray(truth.astype(np.float32) / 255))).float()[None, None]
        for name, fn in methods.items():
            t0 = time.perf_counter()
            out = fn(truth.copy(), hole)
            dt = time.perf_counter() - t0
            rec[name] = {"psnr": round(hole_psnr(out, truth, hole), 3), "ssim": round(hole_ssim(out, truth, hole), 4),
                         "seconds": round(dt, 3)}
            o, t, hl = _tensors(out, truth, hole)
            for k, v in D.fill_sums(o, t, hl, true_edges, lattice=False, blotch=False).items():
                sums[name].setdefault(k, []).append(v)
        photos.append(rec)
        if log:
            log(f"{path.name} {rec['size'][0]}x{rec['size'][1]} hole {rec['hole']:.1%}: "
                + ", ".join(f"{m} {rec[m]['psnr']:.2f}" for m in methods))
    report = {}
    for name in methods:
        scores = D.fill_scores({k: torch.cat(v) for k, v in sums[name].items()})
        report[name] = {"psnr": round(float(np.mean([p[name]["psnr"] for p in photos])), 3),
                        "ssim": round(float(np.mean([p[name]["ssim"] for p in photos])), 4),
                        **{k: round(v, 3) for k, v in scores.items()},
                        "seconds": round(float(np.mean([p[name]["seconds"] for p in photos])), 3),
                        "n": len(photos)}
    return {"photos": photos, "metrics": report}


def format_native(report: Dict, baseline: str = f"telea{TELEA_RADIUS}") -> str:
    """Markdown table: one row per method, with the PSNR gain over ``baseline`` when it was run."""
    m = report["metrics"]
    grids = [f"grid{q}" for q in D.GRID_PERIODS]
    lines = ["| method | hole PSNR | gain dB | hole-box SSIM | sharpness | edge step | " + " | ".join(grids)
             + " | stripes | fringe | s / photo |", "|" + "---|" * (9 + len(grids))]
    for name, r in m.items():
        gain = f"{r['psnr'] - m[baseline]['psnr']:+.2f}" if baseline in m else "-"
        lines.append(f"| {name} | {r['psnr']:.2f} | {gain} | {r['ssim']:.4f} | {r['sharpness']:.2f} | {r['edge_step']:.2f} | "
                     + " | ".join(f"{r[g]:.2f}" for g in grids)
                     + f" | {r['stripes']:.2f} | {r['fringe']:.2f} | {r['seconds']:.2f} |")
    return "\n".join(lines)


def evaluate_native_weights(weights: Optional[str], data: str, max_side: int = 1024, images: Optional[int] = None,
                            out_json: Optional[str] = None, device: Optional[str] = None,
                            strategies: Sequence[str] = DEFAULT_STRATEGIES,
                            telea_radii: Sequence[int] = (TELEA_RADIUS, 5), seed: int = 0, log=None,
                            refine_edges: str = "mecnet", detail: str = "none") -> Dict:
    """``lbam evaluate --native``: load weights (default: the bundled ones), run :func:`evaluate_native`,
    optionally write the JSON report. ``refine_edges``: ``Inpainter.refine_edges`` of the pyramid's passes;
    ``detail``: ``Inpainter.detail`` of every strategy.
    Returns the report with the settings."""
    from ..api import Inpainter

    inp = Inpainter.from_pretrained(weights, device=device)
    inp.refine_edges = refine_edges
    inp.detail = detail
    report = evaluate_native(methods_for(inp, strategies, telea_radii), data, max_side, images, seed, log=log)
    result = {"weights": inp.name, "data": str(data), "max_side": max_side, "seed": seed,
              "refine_edges": refine_edges, "detail": detail,
              "hole_range": list(HOLE_RANGE), "protocol": "whole photos (long side <= max_side), one seeded "
              "object hole each, 8-bit composited; psnr over hole pixels, ssim over the hole box + "
              f"{SSIM_MARGIN} px, sharpness and grid pooled (fill / truth)", **report}
    if out_json:
        Path(out_json).write_text(json.dumps(result, indent=1))
    return result
