"""The paper's evaluation protocol, with OpenCV Telea measured in the same run.

Validation images are resized to a short side of 350, cut into fixed 256 crops, and each crop gets a seeded
free-form hole in every bucket (10-20, 20-30, 30-40, 40-50 %). PSNR, SSIM and L1 are computed on the whole
composited crop after rounding to 8 bits (what a user receives), for our networks and for
``cv2.inpaint(..., INPAINT_TELEA)`` on the same holes.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..compose import complete, composite
from ..models import ModelConfig
from . import metrics
from .data import ValImages, collate
from .masks import PAPER_BUCKETS

log = logging.getLogger(__name__)
TELEA_RADIUS = 3


def telea(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """OpenCV Telea on a batch: image (B,3,H,W) in [0,1], hole (B,1,H,W) -> (B,3,H,W) in [0,1] (8-bit values)."""
    out = []
    for img, h in zip(image.cpu(), hole.cpu()):
        rgb = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        mask = (h[0].numpy() > 0.5).astype(np.uint8)
        filled = cv2.inpaint(rgb, mask, TELEA_RADIUS, cv2.INPAINT_TELEA)
        out.append(torch.from_numpy(filled).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def _quantize(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


@torch.inference_mode()
def predict(mecnet, generator, batch, device, gt_edges: bool = False, config: Optional[ModelConfig] = None):
    """(composited result (B,3,H,W), edge map used (B,1,H,W)) for a data batch, networks in eval mode.
    gt_edges: feed the generator the Canny edges of the whole crop (the ``inpaint`` stage) instead of MECNet's.
    config: the networks' ModelConfig (its edge decoding); None decodes nothing."""
    mecnet.eval()
    generator.eval()
    image, hole = batch["image"].to(device), batch["hole"].to(device)
    if gt_edges:
        edge = batch["edges_full"].to(device)
        return composite(image, generator(image, hole, edge), hole), edge
    decode = (config.edge_decode, config.edge_threshold) if config is not None else ("none", 0.5)
    return complete(mecnet, generator, image, hole, batch["edges"].to(device), None, *decode)


def run_batches(mecnet, generator, dataset, device, batch_size: int = 8, gt_edges: bool = False,
                config: Optional[ModelConfig] = None):
    """Yield (batch, ours) over the dataset: ours (B,3,H,W) composited, 8-bit quantised, on CPU."""
    for s in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))])
        out, _ = predict(mecnet, generator, batch, device, gt_edges, config)
        yield batch, _quantize(out.float()).cpu()


def evaluate(mecnet, generator, data, config: ModelConfig, device="cpu", per_image: int = 2,
             buckets: Sequence[Tuple[float, float]] = PAPER_BUCKETS, gt_edges: bool = False,
             batch_size: int = 8, with_telea: bool = True) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Metrics per bucket: {"ours"|"telea": {"10-20": {"psnr", "ssim", "l1", "n"}, ..., "all": {...}}}."""
    ds = ValImages(data, config.train_size, per_image=per_image, buckets=buckets, canny_sigma=config.canny_sigma,
                   canny_low=config.canny_low, canny_high=config.canny_high)
    names = [f"{round(lo * 100)}-{round(hi * 100)}" for lo, hi in buckets]
    scores: Dict[str, Dict[str, List[torch.Tensor]]] = {"ours": {}, "telea": {}}
    for batch, ours in run_batches(mecnet, generator, ds, device, batch_size, gt_edges, config):
        target, hole = batch["image"], batch["hole"]
        results = {"ours": ours}
        if with_telea:
            results["telea"] = telea(target, hole)
        for method, out in results.items():
            for key, fn in (("psnr", metrics.psnr), ("ssim", metrics.ssim), ("l1", metrics.l1)):
                scores[method].setdefault(key, []).append(fn(out, target))
            scores[method].setdefault("bucket", []).append(batch["bucket"])
    report: Dict[str, Dict[str, Dict[str, float]]] = {}
    for method, s in scores.items():
        if not s:
            continue
        b = torch.cat(s["bucket"])
        vals = {k: torch.cat(s[k]) for k in ("psnr", "ssim", "l1")}
        rep = {}
        for i, name in enumerate(names + ["all"]):
            sel = b == i if name != "all" else torch.ones_like(b, dtype=torch.bool)
            rep[name] = {k: round(float(v[sel].mean()), 4) for k, v in vals.items()}
            rep[name]["n"] = int(sel.sum())
        report[method] = rep
    return report


def format_table(report: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """Markdown table: one row per bucket, PSNR / SSIM / L1 of each method and the PSNR gain over Telea."""
    buckets = list(next(iter(report.values())))
    methods = list(report)
    head = "| hole % | " + " | ".join(f"{m} PSNR | {m} SSIM | {m} L1" for m in methods)
    head += " | gain dB |" if "telea" in report and "ours" in report else " |"
    lines = [head, "|" + "---|" * (1 + 3 * len(methods) + ("telea" in report and "ours" in report))]
    for b in buckets:
        cells = [b] + [f"{report[m][b]['psnr']:.2f} | {report[m][b]['ssim']:.4f} | {report[m][b]['l1']:.4f}"
                       for m in methods]
        if "telea" in report and "ours" in report:
            cells.append(f"{report['ours'][b]['psnr'] - report['telea'][b]['psnr']:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flat_row(report) -> Dict[str, float]:
    """{method_bucket_metric: value} for CSV logs."""
    return {f"{m}_{b}_{k}": v for m, r in report.items() for b, d in r.items() for k, v in d.items() if k != "n"}


def save_samples(mecnet, generator, data, config: ModelConfig, device, path: Path, n: int = 4,
                 gt_edges: bool = False) -> Path:
    """A PNG grid, one row per sample: input with hole (white), merged edges, result, ground truth."""
    ds = ValImages(data, config.train_size, per_image=1, canny_sigma=config.canny_sigma,
                   canny_low=config.canny_low, canny_high=config.canny_high)
    idx = np.linspace(0, len(ds) - 1, num=min(n, len(ds))).astype(int)
    batch = collate([ds[int(i)] for i in idx])
    image, hole = batch["image"], batch["hole"]
    out, edge = predict(mecnet, generator, batch, device, gt_edges, config)
    rows = []
    for i in range(len(idx)):
        masked = image[i] * (1 - hole[i]) + hole[i]
        tiles = [masked, edge[i].expand(3, -1, -1), out[i], image[i]]
        rows.append(torch.cat([t.float().cpu() for t in tiles], dim=2))
    grid = (torch.cat(rows, dim=1).clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


def evaluate_weights(weights: Optional[str], data: str, out_json: Optional[str] = None, device: Optional[str] = None,
                     per_image: int = 4, gt_edges: bool = False) -> Dict:
    """``lbam evaluate``: load weights (default: the bundled ones), evaluate on ``data``, write JSON."""
    from ..api import Inpainter

    inp = Inpainter.from_pretrained(weights, device=device)
    report = evaluate(inp.mecnet, inp.generator, data, inp.config, inp.device, per_image=per_image, gt_edges=gt_edges)
    result = {"weights": inp.name, "data": str(data), "per_image": per_image, "protocol":
              "short side 350, fixed 256 crops, seeded free-form holes per bucket, 8-bit composited output",
              "telea_radius": TELEA_RADIUS, "metrics": report}
    if out_json:
        Path(out_json).write_text(json.dumps(result, indent=1))
    return result
