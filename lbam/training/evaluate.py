"""The paper's evaluation protocol, with OpenCV Telea measured in the same run.

Validation images are resized to a short side of 350, cut into fixed 256 crops, and each crop gets a seeded
free-form hole in every bucket (10-20, 20-30, 30-40, 40-50 %). PSNR, SSIM and L1 are computed on the whole
composited crop after rounding to 8 bits (what a user receives), for our networks and for
``cv2.inpaint(..., INPAINT_TELEA)`` on the same holes; the defect numbers of ``defects`` (edge precision,
recall, F1 and haze, sharpness, grid, blotches) are pooled per bucket the same way.
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
from ..detail import DETAILS, transfer_detail
from ..models import ModelConfig
from . import defects as D
from . import metrics
from .data import ValImages, collate
from .masks import PAPER_BUCKETS

log = logging.getLogger(__name__)
TELEA_RADIUS = 3


def telea(image: torch.Tensor, hole: torch.Tensor, radius: int = TELEA_RADIUS) -> torch.Tensor:
    """OpenCV Telea on a batch: image (B,3,H,W) in [0,1], hole (B,1,H,W) -> (B,3,H,W) in [0,1] (8-bit values)."""
    out = []
    for img, h in zip(image.cpu(), hole.cpu()):
        rgb = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        mask = (h[0].numpy() > 0.5).astype(np.uint8)
        filled = cv2.inpaint(rgb, mask, radius, cv2.INPAINT_TELEA)
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
                config: Optional[ModelConfig] = None, detail: str = "none"):
    """Yield (batch, ours, edge) over the dataset: ours (B,3,H,W) composited, 8-bit quantised, on CPU; edge
    (B,1,H,W) the merged edge map the generator read, on CPU. detail: "context" adds the photo's own texture
    to the fill first (``lbam.detail.transfer_detail`` at its defaults, as ``Inpainter.detail`` at full size)."""
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}, got {detail!r}")
    for s in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(s, min(s + batch_size, len(dataset)))])
        out, edge = predict(mecnet, generator, batch, device, gt_edges, config)
        if detail == "context":
            out = transfer_detail(out.float(), batch["hole"].to(out.device))
        yield batch, _quantize(out.float()).cpu(), edge.float().cpu()


def _method_names(telea_radii: Sequence[int]) -> Dict[str, int]:
    """{"telea": 3, "telea5": 5, ...}: the first radius keeps the plain name (the gain column compares with it)."""
    return {("telea" if i == 0 else f"telea{r}"): int(r) for i, r in enumerate(telea_radii)}


def evaluate(mecnet, generator, data, config: ModelConfig, device="cpu", per_image: int = 2,
             buckets: Sequence[Tuple[float, float]] = PAPER_BUCKETS, gt_edges: bool = False,
             batch_size: int = 8, with_telea: bool = True, telea_radii: Sequence[int] = (TELEA_RADIUS,),
             defects: bool = True, detail: str = "none") -> Dict[str, Dict[str, Dict[str, float]]]:
    """Metrics per bucket: {"ours"|"telea"|"telea5"...: {"10-20": {...}, ..., "all": {...}}}.

    Every method gets psnr, ssim, l1 (whole composited crop, 8-bit) and n; with ``defects`` also the fill
    defects of ``defects.fill_scores`` (sharpness, edge_step, grid2/4/8, lattice2/4/8, stripes, fringe, blotch),
    and ours the edge scores of ``defects.edge_scores`` (edge_p, edge_r, edge_f1, haze, hatch, hatch_true, stray) of
    the completed edge map against the Canny edges of the truth (hatch_true: the truth's own edges scored as hatch
    is).
    ``telea_radii``: OpenCV Telea runs, named "telea" (first radius), "telea5", ...
    ``detail``: what follows our fill (``run_batches``; "context" = ``Inpainter.detail = "context"``).
    ``gt_edges``: the generator reads the truth's Canny edges instead of MECNet's completion (the edge scores are
    then left out): against the same run with MECNet's, how much a right line in the hole helps the fill.
    """
    ds = ValImages(data, config.train_size, per_image=per_image, buckets=buckets, canny_sigma=config.canny_sigma,
                   canny_low=config.canny_low, canny_high=config.canny_high)
    names = [f"{round(lo * 100)}-{round(hi * 100)}" for lo, hi in buckets]
    teleas = _method_names(telea_radii) if with_telea else {}
    scores: Dict[str, Dict[str, List[torch.Tensor]]] = {"ours": {}, **{m: {} for m in teleas}}
    for batch, ours, edge in run_batches(mecnet, generator, ds, device, batch_size, gt_edges, config, detail):
        target, hole = batch["image"], batch["hole"]
        results = {"ours": ours, **{m: telea(target, hole, r) for m, r in teleas.items()}}
        for method, out in results.items():
            per_image_values = {"psnr": metrics.psnr(out, target), "ssim": metrics.ssim(out, target),
                                "l1": metrics.l1(out, target), "bucket": batch["bucket"]}
            if defects:
                per_image_values.update(D.fill_sums(out, target, hole, batch["edges_full"]))
                if method == "ours" and not gt_edges:  # the truth's edges scored against themselves say nothing
                    per_image_values.update(D.edge_counts(edge, batch["edges_full"], hole))
                    per_image_values.update(D.hatch_counts(edge, hole))
                    per_image_values.update(D.stray_counts(edge, batch["edges_full"], hole))
                    per_image_values["hatch_true"] = D.hatch_counts(batch["edges_full"], hole)["hatch"]
            for key, v in per_image_values.items():
                scores[method].setdefault(key, []).append(v)
    report: Dict[str, Dict[str, Dict[str, float]]] = {}
    for method, s in scores.items():
        if not s:
            continue
        cat = {k: torch.cat(v) for k, v in s.items()}
        b = cat.pop("bucket")
        rep = {}
        for i, name in enumerate(names + ["all"]):
            sel = b == i if name != "all" else torch.ones_like(b, dtype=torch.bool)
            rep[name] = {k: round(float(cat[k][sel].mean()), 4) for k in ("psnr", "ssim", "l1")}
            rep[name]["n"] = int(sel.sum())
            if defects:
                pooled = {k: v[sel] for k, v in cat.items()}
                found = D.fill_scores(pooled)
                if "haze_n" in pooled:  # ours: the completed edges were scored too
                    found.update(D.edge_scores(pooled))
                rep[name].update({k: round(v, 4) for k, v in found.items()})
        report[method] = rep
    return report


def format_table(report: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """Markdown table: one row per bucket, PSNR / SSIM / L1 of each method and the PSNR gain over Telea."""
    buckets = list(next(iter(report.values())))
    methods = list(report)
    gain = "telea" in report and "ours" in report
    head = "| hole % | " + " | ".join(f"{m} PSNR | {m} SSIM | {m} L1" for m in methods)
    head += " | gain dB |" if gain else " |"
    lines = [head, "|" + "---|" * (1 + 3 * len(methods) + gain)]
    for b in buckets:
        cells = [b] + [f"{report[m][b]['psnr']:.2f} | {report[m][b]['ssim']:.4f} | {report[m][b]['l1']:.4f}"
                       for m in methods]
        if gain:
            cells.append(f"{report['ours'][b]['psnr'] - report['telea'][b]['psnr']:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: columns of the defect table: (report key, heading, format)
DEFECT_COLUMNS = (("sharpness", "sharpness", "{:.2f}"), ("edge_step", "edge step", "{:.2f}"),
                  ("grid2", "grid2", "{:.2f}"), ("grid4", "grid4", "{:.2f}"), ("grid8", "grid8", "{:.2f}"),
                  ("lattice2", "lattice2", "{:.2f}"), ("lattice4", "lattice4", "{:.2f}"),
                  ("lattice8", "lattice8", "{:.2f}"), ("stripes", "stripes", "{:.2f}"),
                  ("fringe", "fringe", "{:.2f}"),
                  ("blotch", "blotch %", "{:.2%}"), ("edge_f1", "edge F1", "{:.3f}"),
                  ("edge_p", "edge P", "{:.3f}"), ("edge_r", "edge R", "{:.3f}"), ("haze", "haze", "{:.3f}"),
                  ("hatch", "hatch %", "{:.2%}"), ("hatch_true", "truth's hatch %", "{:.2%}"),
                  ("stray", "stray %", "{:.2%}"))


def format_defects(report: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """Markdown table of the defect numbers (``defects``): one row per method and bucket; "" without them."""
    first = next(iter(report.values()))
    if "sharpness" not in next(iter(first.values())):
        return ""
    lines = ["| method | hole % | " + " | ".join(h for _, h, _ in DEFECT_COLUMNS) + " |",
             "|" + "---|" * (2 + len(DEFECT_COLUMNS))]
    for method, rep in report.items():
        for b, d in rep.items():
            cells = [fmt.format(d[k]) if k in d else "-" for k, _, fmt in DEFECT_COLUMNS]
            lines.append(f"| {method} | {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def flat_row(report) -> Dict[str, float]:
    """{method_bucket_metric: value} for CSV logs."""
    return {f"{m}_{b}_{k}": v for m, r in report.items() for b, d in r.items() for k, v in d.items() if k != "n"}


#: columns of a sample grid, left to right
GRID_COLUMNS = ("input (hole white)", "OpenCV Telea r3", "ours", "completed edges", "truth")


def save_samples(mecnet, generator, data, config: ModelConfig, device, path: Path, n: int = 4,
                 gt_edges: bool = False, compare: Sequence[Tuple] = ()) -> Path:
    """A PNG grid of ``n`` validation crops, one row each (``GRID_COLUMNS``): input with the hole in white,
    Telea, our result, the merged edge map the generator read, the truth. Row r takes a crop spread evenly
    over the images of ``data`` and its seeded hole of bucket r mod 4 (10-20 % ... 40-50 %). 8-bit output.
    compare: other networks as (mecnet, generator, config) tuples; the result of each gets a column of its own
    between Telea and ours, in order (e.g. the previous weights, to look at both on the same holes)."""
    ds = ValImages(data, config.train_size, per_image=1, canny_sigma=config.canny_sigma,
                   canny_low=config.canny_low, canny_high=config.canny_high)
    n_crops, n_buckets = len(ds.crops), len(ds.buckets)
    crops = np.linspace(0, n_crops - 1, num=min(n, n_crops)).round().astype(int)
    batch = collate([ds[int((r % n_buckets) * n_crops + j)] for r, j in enumerate(crops)])
    image, hole = batch["image"], batch["hole"]
    out, edge = predict(mecnet, generator, batch, device, gt_edges, config)
    others = [predict(m, g, batch, device, gt_edges, c)[0] for m, g, c in compare]
    baseline = telea(image, hole)
    rows = []
    for i in range(len(crops)):
        masked = image[i] * (1 - hole[i]) + hole[i]
        tiles = [masked, baseline[i], *(o[i] for o in others), out[i], edge[i].expand(3, -1, -1), image[i]]
        rows.append(torch.cat([t.float().cpu() for t in tiles], dim=2))
    grid = (torch.cat(rows, dim=1).clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


def evaluate_weights(weights: Optional[str], data: str, out_json: Optional[str] = None, device: Optional[str] = None,
                     per_image: int = 4, gt_edges: bool = False,
                     telea_radii: Sequence[int] = (TELEA_RADIUS,), detail: str = "none") -> Dict:
    """``lbam evaluate``: load weights (default: the bundled ones), evaluate on ``data``, write JSON."""
    from ..api import Inpainter

    inp = Inpainter.from_pretrained(weights, device=device)
    report = evaluate(inp.mecnet, inp.generator, data, inp.config, inp.device, per_image=per_image, gt_edges=gt_edges,
                      telea_radii=telea_radii, detail=detail)
    result = {"weights": inp.name, "data": str(data), "per_image": per_image, "detail": detail,
              "edges": "truth" if gt_edges else "mecnet", "protocol":
              "short side 350, fixed 256 crops, seeded free-form holes per bucket, 8-bit composited output",
              "telea_radius": TELEA_RADIUS, "telea_radii": _method_names(telea_radii),
              "defects": {"edge_tolerance_px": D.EDGE_TOLERANCE, "haze_distance_px": D.HAZE_DISTANCE,
                          "edge_threshold": D.EDGE_THRESHOLD, "sharpness_erode_px": D.SHARPNESS_ERODE,
                          "hatch_window_px": D.HATCH_WINDOW, "hatch_sigma_px": D.HATCH_SIGMA,
                          "hatch_lags_px": list(D.HATCH_LAGS), "hatch_threshold": D.HATCH_THRESHOLD,
                          "hatch_min_detail": D.HATCH_MIN_DETAIL, "stray_window_px": D.STRAY_WINDOW,
                          "stray_min_pixels": D.STRAY_MIN_PIXELS,
                          "grid_periods": list(D.GRID_PERIODS), "lattice_periods": list(D.LATTICE_PERIODS),
                          "lattice_min_hole_share": D.LATTICE_MIN_HOLE_SHARE, "lattice_flat": D.LATTICE_FLAT,
                          "stripe_window_px": D.STRIPE_WINDOW, "stripe_periods_px": list(D.STRIPE_PERIODS),
                          "fringe_sigma_px": D.FRINGE_SIGMA, "blotch_distance": D.BLOTCH_DISTANCE,
                          "blotch_ring_px": D.BLOTCH_RING},
              "metrics": report}
    if out_json:
        Path(out_json).write_text(json.dumps(result, indent=1))
    return result
