"""Speed and memory benchmark: ``lbam bench`` or ``python benchmarks/run.py`` (same options).

Sections (every JSON field is documented in :data:`FIELD_DOCS` and ``benchmarks/README.md``):

* ``crop_latency`` - one 256 x 256 crop (the training size) through MECNet, the generator, and both
  (``lbam.compose.complete``), for the reference configuration (``paper``) and the default one (``compact``).
  Two modes: ``plain`` is what the reference code does (fp32 eager, autograd on, BatchNorm unfused, NCHW,
  batch 1); ``optimized`` is what lbam does (:func:`lbam.models.fuse.fuse_for_inference`, inference mode,
  channels-last where it helps, crops batched). Every case runs round-robin (A, B, C, A, B, C, ...) after one
  warm-up call each, and the median is kept, so ratios between cases are fair on a busy machine.
* ``throughput`` - crops per second of both networks at each batch size.
* ``fuse_ablation`` - what each rewrite of ``fuse_for_inference`` contributes (batch 1).
* ``end_to_end`` - ``Inpainter.inpaint`` on synthetic photo-like images (2048 x 1536 and 4096 x 3072 by
  default) with 5 % and 25 % free-form holes, against OpenCV Telea on the same inputs in the same process; peak
  resident memory (``VmHWM`` of ``/proc/self/status``) of each, measured in a fresh subprocess per case.
* ``gpu`` - only when CUDA is present: fp32 / fp16 / bf16 (autocast, as ``Inpainter(dtype=...)`` runs) at
  several batch sizes, PSNR of fp16 / bf16 outputs against fp32, and ``inpaint`` end to end.
* ``summary`` - the ratios the project's speed targets are stated in, and whether each is met.

Results: ``<out>/results.json`` and ``<out>/results.md``. ``--quick`` shrinks everything (tiny configurations,
small images, one repeat) so that the whole run takes seconds; its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["FIELD_DOCS", "Options", "gpu_section", "main", "parse_args", "run_benchmark", "synthetic_image", "synthetic_mask",
           "peak_rss_bytes", "to_markdown", "write_results", "time_interleaved"]

SCHEMA_VERSION = 1
DEFAULT_OUT = Path("benchmarks") / "results"
GB = 1024 ** 3

# --------------------------------------------------------------------------------------------- field docs
# Dotted paths into results.json; "[]" marks the items of a list. Every field the benchmark writes is here,
# and tests/test_benchmark.py checks that a --quick run writes every one of them.
_TIMES = "all timed repeats in seconds, in the order they ran"
FIELD_DOCS: Dict[str, str] = {
    "schema_version": "version of this JSON layout (an int, bumped when fields change meaning)",
    "meta": "where and how the numbers were taken",
    "meta.timestamp": "UTC start time, ISO 8601",
    "meta.lbam_version": "lbam.__version__",
    "meta.git_commit": "commit of the source tree, or null outside a git checkout",
    "meta.python": "Python version",
    "meta.torch": "torch version",
    "meta.numpy": "numpy version",
    "meta.opencv": "OpenCV version (Telea baseline)",
    "meta.platform": "platform.platform()",
    "meta.cpu_model": "CPU model name from /proc/cpuinfo (or platform.processor())",
    "meta.cpu_count": "CPUs this process may run on",
    "meta.torch_threads": "torch intra-op threads used for every CPU measurement (--threads)",
    "meta.load_average_start": "1-minute load average when the run started (other work on the machine skews "
                               "absolute times; ratios are taken within one interleaved loop)",
    "meta.load_average_end": "1-minute load average when the run ended",
    "meta.duration_s": "wall time of the whole benchmark, seconds",
    "meta.argv": "command-line arguments",
    "options": "the resolved options (see `lbam bench --help`)",
    "options.out": "output folder of results.json and results.md",
    "options.quick": "true for --quick (tiny sizes, one repeat: numbers are meaningless)",
    "options.repeats": "timed repeats per CPU case (after one warm-up call)",
    "options.e2e_repeats": "timed repeats per end-to-end case",
    "options.threads": "torch threads (null = torch's default)",
    "options.reference_config": "configuration measured as the paper's (`paper`)",
    "options.default_config": "configuration of the default weights (`compact`)",
    "options.crop_size": "side of the square crops of the crop sections (the training size, 256)",
    "options.batch_sizes": "batch sizes of the optimized crop measurements",
    "options.sizes": "end-to-end image sizes as [width, height]",
    "options.holes": "end-to-end hole fractions",
    "options.weights": "weights of the end-to-end Inpainter: null = bundled default, 'random:<config>' = random",
    "options.sections": "sections that ran",
    "options.gpu_batch_sizes": "batch sizes of the GPU section",
    "options.seed": "seed of the synthetic images and masks",
    "crop_latency": "list: one record per (configuration, network, mode, batch)",
    "crop_latency[].config": "configuration name",
    "crop_latency[].role": "'reference' (the paper's size) or 'default' (the bundled default's size)",
    "crop_latency[].network": "'mecnet', 'generator' or 'both' (MECNet, edge merge, generator, compositing)",
    "crop_latency[].mode": "'plain' (reference-code style: fp32 eager, autograd on, BN unfused, NCHW) or "
                           "'optimized' (fuse_for_inference + inference mode + batching)",
    "crop_latency[].batch": "crops per call",
    "crop_latency[].crop_size": "crop side in pixels",
    "crop_latency[].median_s": "median seconds per call (whole batch)",
    "crop_latency[].per_crop_s": "median_s / batch",
    "crop_latency[].crops_per_s": "batch / median_s",
    "crop_latency[].speedup_vs_plain": "per-crop speed-up over the same configuration's plain batch-1 case of "
                                       "the same network",
    "crop_latency[].speedup_vs_reference_plain": "per-crop speed-up over the reference configuration's plain "
                                                 "batch-1 case of the same network",
    "crop_latency[].times_s": _TIMES,
    "throughput": "list: crops per second of both networks (network 'both'), per configuration, mode and batch",
    "throughput[].config": "configuration name",
    "throughput[].role": "'reference' or 'default'",
    "throughput[].mode": "'plain' or 'optimized'",
    "throughput[].batch": "crops per call",
    "throughput[].crops_per_s": "crops per second (batch / median seconds per call)",
    "throughput[].speedup_vs_batch1": "crops_per_s / crops_per_s of the same configuration and mode at batch 1",
    "fuse_ablation": "list: what each rewrite of fuse_for_inference contributes, inference mode, batch 1",
    "fuse_ablation[].config": "configuration name",
    "fuse_ablation[].network": "'mecnet' or 'generator'",
    "fuse_ablation[].variant": "cumulative rewrites: generator 'eager' (inference mode, no rewrite), 'fold_bn', "
                               "'fold_bn+prune', 'fold_bn+prune+channels_last'; MECNet (no BatchNorm) 'eager', "
                               "'narrow_conv', 'narrow_conv+channels_last'",
    "fuse_ablation[].is_default": "whether this variant is what fuse_for_inference does by default",
    "fuse_ablation[].batch": "crops per call",
    "fuse_ablation[].median_s": "median seconds per call",
    "fuse_ablation[].speedup_vs_eager": "median of eager / median of this variant",
    "fuse_ablation[].max_abs_diff": "largest |output - eager output| (must stay below 1e-4)",
    "fuse_ablation[].times_s": _TIMES,
    "end_to_end": "list: one record per (image size, hole fraction); each ran in its own subprocess",
    "end_to_end[].width": "image width in pixels",
    "end_to_end[].height": "image height in pixels",
    "end_to_end[].hole_target": "requested hole fraction",
    "end_to_end[].hole_ratio": "actual hole fraction of the mask",
    "end_to_end[].weights": "Inpainter name (weights used)",
    "end_to_end[].config": "Inpainter configuration",
    "end_to_end[].strategy": "strategy 'auto' picked (lbam.tiling.choose_strategy), or null",
    "end_to_end[].n_crops": "network inputs of the plan (len(plan_crops(...))), or null",
    "end_to_end[].lbam_median_s": "median seconds of Inpainter.inpaint(image, mask) (uint8 numpy in and out)",
    "end_to_end[].lbam_first_call_s": "seconds of the first inpaint call on this image (after a small warm-up)",
    "end_to_end[].lbam_times_s": _TIMES,
    "end_to_end[].lbam_fused_median_s": "median seconds of inpaint with networks passed through "
                                        "fuse_for_inference (null when the Inpainter already fuses them)",
    "end_to_end[].lbam_fused_times_s": _TIMES + " (empty when not measured)",
    "end_to_end[].telea_median_s": "median seconds of cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)",
    "end_to_end[].telea_times_s": _TIMES,
    "end_to_end[].ratio_vs_telea": "lbam_median_s / telea_median_s",
    "end_to_end[].fused_ratio_vs_telea": "lbam_fused_median_s / telea_median_s, or null",
    "end_to_end[].rss_before_bytes": "resident memory just before the first inpaint call (interpreter, torch, "
                                     "networks, input image)",
    "end_to_end[].peak_rss_bytes": "peak resident memory (VmHWM) of the process during the first inpaint call",
    "end_to_end[].peak_rss_delta_bytes": "peak_rss_bytes - rss_before_bytes",
    "end_to_end[].fused_peak_rss_bytes": "the same peak for the fused networks, or null",
    "end_to_end[].telea_peak_rss_bytes": "peak resident memory during one Telea call, or null",
    "end_to_end[].peak_measured_exactly": "true when the kernel let the worker reset VmHWM before each call "
                                          "(else peaks are process-lifetime peaks, still an upper bound)",
    "gpu": "GPU section (only measured when CUDA is present)",
    "gpu.available": "whether the section ran",
    "gpu.reason": "why not, or null",
    "gpu.device_name": "torch.cuda.get_device_name(), or null",
    "gpu.records": "list: latency per (configuration, dtype, batch)",
    "gpu.records[].config": "configuration name",
    "gpu.records[].dtype": "'float32', 'float16' or 'bfloat16' (the half types under autocast)",
    "gpu.records[].batch": "crops per call",
    "gpu.records[].median_s": "median seconds per call (synchronized)",
    "gpu.records[].per_crop_s": "median_s / batch",
    "gpu.records[].crops_per_s": "batch / median_s",
    "gpu.records[].peak_memory_bytes": "torch.cuda.max_memory_allocated during the timed calls",
    "gpu.records[].times_s": _TIMES,
    "gpu.psnr": "list: agreement of half-precision outputs with fp32",
    "gpu.psnr[].config": "configuration name",
    "gpu.psnr[].dtype": "'float16' or 'bfloat16'",
    "gpu.psnr[].psnr_db": "PSNR (dB, images in [0, 1]) of the composited output against fp32; null if identical",
    "gpu.psnr[].psnr_hole_db": "the same over hole pixels only; null if identical",
    "gpu.psnr[].max_abs_diff": "largest absolute difference to the fp32 output",
    "gpu.end_to_end": "list: Inpainter(device='cuda', dtype=...).inpaint per image size, hole and dtype",
    "gpu.end_to_end[].width": "image width",
    "gpu.end_to_end[].height": "image height",
    "gpu.end_to_end[].hole_target": "requested hole fraction",
    "gpu.end_to_end[].dtype": "network dtype",
    "gpu.end_to_end[].median_s": "median seconds per inpaint call (synchronized)",
    "gpu.end_to_end[].times_s": _TIMES,
    "summary": "the ratios the speed targets are stated in (medians of interleaved runs in one process)",
    "summary.reference_optimized_speedup_batch1": "reference config, both networks: plain per-crop time / "
                                                  "optimized per-crop time at batch 1",
    "summary.reference_optimized_speedup": "the same at the reference config's fastest batch size (the "
                                           "optimized path may pick its batch; every batch is in crop_latency)",
    "summary.reference_batch": "that batch size",
    "summary.default_vs_reference_plain_speedup": "reference plain per-crop time (batch 1) / default optimized "
                                                  "per-crop time at the default config's fastest batch size",
    "summary.default_batch": "that batch size",
    "summary.e2e_ratio_vs_telea": "lbam / Telea time for the first end-to-end size with the smallest hole",
    "summary.e2e_case": "which case that is, 'WxH@hole'",
    "summary.peak_rss_bytes": "peak resident memory for the last end-to-end size with the largest hole",
    "summary.peak_rss_case": "which case that is",
    "summary.targets": "list: the issue's targets",
    "summary.targets[].name": "target id",
    "summary.targets[].value": "measured value (null when its section did not run)",
    "summary.targets[].threshold": "threshold",
    "summary.targets[].op": "'>=', '<=' or '<'",
    "summary.targets[].met": "value op threshold (null when not measured)",
}


# ------------------------------------------------------------------------------------------ synthetic data

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

    from .training.masks import FreeFormMasks

    f = max(1, math.ceil(max(height, width) / base_side))
    bh, bw = max(1, height // f), max(1, width // f)
    lo, hi = ratio * 0.9, min(1.0, ratio * 1.1)
    m = FreeFormMasks(seed=seed).sample((bh, bw), bucket=(lo, hi))
    m = cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return m.astype(bool)


# ------------------------------------------------------------------------------------------------ timing

def time_interleaved(cases: Dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
                     sync: Optional[Callable[[], None]] = None) -> Dict[str, List[float]]:
    """Run every case ``warmup`` times, then ``repeats`` rounds of all cases in turn (A, B, A, B, ...).

    Returns {name: [seconds per repeat]}. ``sync`` (e.g. ``torch.cuda.synchronize``) is called before each
    clock read.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    sync()
    times: Dict[str, List[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def _median(xs: Sequence[float]) -> Optional[float]:
    return float(statistics.median(xs)) if xs else None


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None or b == 0 else float(a) / float(b)


# ------------------------------------------------------------------------------------------------ memory

def _proc_status_kb(key: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_bytes() -> Optional[int]:
    """Peak resident set size of this process (VmHWM), bytes; ru_maxrss where /proc is missing."""
    kb = _proc_status_kb("VmHWM")
    if kb is None:
        try:
            import resource

            kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            if sys.platform == "darwin":
                return int(kb)
        except Exception:  # pragma: no cover
            return None
    return kb * 1024


def current_rss_bytes() -> Optional[int]:
    kb = _proc_status_kb("VmRSS")
    return None if kb is None else kb * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs). Returns success."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------ options

@dataclass
class Options:
    """Everything a run depends on (see ``lbam bench --help``)."""

    out: str = str(DEFAULT_OUT)
    quick: bool = False
    repeats: int = 5
    e2e_repeats: int = 5
    threads: Optional[int] = None
    reference_config: str = "paper"
    default_config: str = "compact"
    crop_size: int = 256
    batch_sizes: Tuple[int, ...] = (1, 4, 8)
    sizes: Tuple[Tuple[int, int], ...] = ((2048, 1536), (4096, 3072))
    holes: Tuple[float, ...] = (0.05, 0.25)
    weights: Optional[str] = None
    sections: Tuple[str, ...] = ("crops", "ablation", "e2e", "gpu")
    gpu_batch_sizes: Tuple[int, ...] = (1, 4, 8, 16)
    seed: int = 0


SECTIONS = ("crops", "ablation", "e2e", "gpu")


def _ints(s: str) -> Tuple[int, ...]:
    return tuple(int(v) for v in s.split(",") if v.strip())


def _sizes(s: str) -> Tuple[Tuple[int, int], ...]:
    out = []
    for item in s.split(","):
        w, h = item.lower().split("x")
        out.append((int(w), int(h)))
    return tuple(out)


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lbam bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help=f"output folder for results.json / results.md (default {DEFAULT_OUT})")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (for tests; numbers meaningless)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per CPU case (default 5; quick 1)")
    p.add_argument("--e2e-repeats", type=int, default=None, help="timed repeats per end-to-end case (default 5)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's choice; quick: 1). On a machine busy with other work, "
                        "1 thread avoids OpenMP oversubscription")
    p.add_argument("--reference-config", default=None, help="the paper-size configuration (default paper)")
    p.add_argument("--default-config", default=None, help="the default configuration (default compact)")
    p.add_argument("--crop-size", type=int, default=None, help="crop side (default 256)")
    p.add_argument("--batch-sizes", type=_ints, default=None, help="e.g. 1,4,8 (default)")
    p.add_argument("--sizes", type=_sizes, default=None, help="end-to-end sizes WxH,... (default 2048x1536,4096x3072)")
    p.add_argument("--holes", type=lambda s: tuple(float(v) for v in s.split(",")), default=None,
                   help="end-to-end hole fractions (default 0.05,0.25)")
    p.add_argument("--weights", default=None,
                   help="end-to-end weights: a name / folder for Inpainter.from_pretrained, or random:<config> "
                        "(default: the bundled default, else random compact)")
    p.add_argument("--only", type=lambda s: tuple(v for v in s.split(",") if v), default=None,
                   help=f"run only these sections, comma separated, of {','.join(SECTIONS)}")
    p.add_argument("--skip", type=lambda s: tuple(v for v in s.split(",") if v), default=(),
                   help="skip these sections")
    p.add_argument("--gpu-batch-sizes", type=_ints, default=None, help="GPU batch sizes (default 1,4,8,16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def parse_args(argv: Sequence[str]) -> Options:
    """Command-line arguments -> :class:`Options` (quick mode fills in small defaults)."""
    a = _build_parser().parse_args(list(argv))
    o = Options()
    if a.quick:
        o = Options(quick=True, repeats=1, e2e_repeats=1, threads=1, reference_config="tiny-paper",
                    default_config="tiny", crop_size=128, batch_sizes=(1, 2), sizes=((320, 240),),
                    holes=(0.05, 0.25), weights="random:tiny", gpu_batch_sizes=(1, 2))
    for name in ("out", "repeats", "e2e_repeats", "threads", "reference_config", "default_config", "crop_size",
                 "batch_sizes", "sizes", "holes", "weights", "gpu_batch_sizes"):
        v = getattr(a, name)
        if v is not None:
            setattr(o, name, v)
    o.seed = a.seed
    sections = a.only if a.only is not None else SECTIONS
    unknown = set(sections) | set(a.skip)
    unknown -= set(SECTIONS)
    if unknown:
        raise SystemExit(f"lbam bench: unknown section(s) {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    o.sections = tuple(s for s in SECTIONS if s in sections and s not in a.skip)
    if o.repeats < 1 or o.e2e_repeats < 1:
        raise SystemExit("lbam bench: repeats must be >= 1")
    if not o.batch_sizes or min(o.batch_sizes) < 1:
        raise SystemExit("lbam bench: batch sizes must be >= 1")
    o.batch_sizes = tuple(sorted(set(o.batch_sizes) | {1}))
    return o


# ------------------------------------------------------------------------------------------------ crops

def _crop_batch(opts: Options, n: int, cfg, device="cpu"):
    """n deterministic crops: image (n,3,s,s) in [0,1], hole (n,1,s,s), Canny edges (n,1,s,s)."""
    import torch

    from .edges import canny_edges, rgb_to_gray
    from .training.masks import FreeFormMasks

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


def _networks(config_name: str, seed: int = 0):
    """Randomly initialised (MECNet, EdgeLBAM) in eval mode with gradients on (the reference setting)."""
    import torch

    from .models import EdgeLBAM, MECNet, get_config

    cfg = get_config(config_name)
    torch.manual_seed(seed)
    return cfg, MECNet(cfg.mecnet).eval(), EdgeLBAM(cfg.generator).eval()


def _crop_section(opts: Options, log) -> Tuple[List[dict], List[dict]]:
    import torch

    from .compose import complete, merge_edges
    from .edges import rgb_to_gray
    from .models.fuse import fuse_for_inference

    nmax = max(opts.batch_sizes)
    roles = [("reference", opts.reference_config), ("default", opts.default_config)]
    if opts.default_config == opts.reference_config:
        roles = roles[:1]
    cases: Dict[str, Callable[[], Any]] = {}
    meta: Dict[str, dict] = {}
    for role, name in roles:
        cfg, mec, gen = _networks(name)
        image, hole, edges = _crop_batch(opts, nmax, cfg)
        gray = rgb_to_gray(image)
        with torch.no_grad():
            edge_in = merge_edges(mec(gray[:1], edges[:1], hole[:1]), edges[:1], hole[:1])
            edge_in = torch.cat([edge_in] * nmax)
        fmec, fgen = fuse_for_inference(mec), fuse_for_inference(gen)

        def plain(fn):
            def run():
                with torch.enable_grad():
                    return fn()
            return run

        def optimized(fn):
            def run():
                with torch.inference_mode():
                    return fn()
            return run

        def add(key, fn, **m):
            cases[key] = fn
            meta[key] = dict(config=name, role=role, **m)

        g1, e1, h1, i1, ei1 = gray[:1], edges[:1], hole[:1], image[:1], edge_in[:1]
        add(f"{name}/mecnet/plain/1", plain(lambda mec=mec, a=(g1, e1, h1): mec(*a)),
            network="mecnet", mode="plain", batch=1)
        add(f"{name}/generator/plain/1", plain(lambda gen=gen, a=(i1, h1, ei1): gen(*a)),
            network="generator", mode="plain", batch=1)
        add(f"{name}/both/plain/1", plain(lambda m=mec, g=gen, a=(i1, h1, e1): complete(m, g, *a)),
            network="both", mode="plain", batch=1)
        add(f"{name}/mecnet/optimized/1", optimized(lambda mec=fmec, a=(g1, e1, h1): mec(*a)),
            network="mecnet", mode="optimized", batch=1)
        add(f"{name}/generator/optimized/1", optimized(lambda gen=fgen, a=(i1, h1, ei1): gen(*a)),
            network="generator", mode="optimized", batch=1)
        for b in opts.batch_sizes:
            a = (image[:b], hole[:b], edges[:b])
            add(f"{name}/both/optimized/{b}", optimized(lambda m=fmec, g=fgen, a=a: complete(m, g, *a)),
                network="both", mode="optimized", batch=b)
    log(f"crop latency: {len(cases)} cases x {opts.repeats} repeats (interleaved)")
    times = time_interleaved(cases, opts.repeats)
    records = []
    for key, m in meta.items():
        med = _median(times[key])
        records.append(dict(m, crop_size=opts.crop_size, median_s=med, per_crop_s=med / m["batch"],
                            crops_per_s=m["batch"] / med, times_s=times[key]))

    def per_crop(config, network, mode, batch):
        for r in records:
            if (r["config"], r["network"], r["mode"], r["batch"]) == (config, network, mode, batch):
                return r["per_crop_s"]
        return None

    for r in records:
        r["speedup_vs_plain"] = _ratio(per_crop(r["config"], r["network"], "plain", 1), r["per_crop_s"])
        r["speedup_vs_reference_plain"] = _ratio(per_crop(opts.reference_config, r["network"], "plain", 1),
                                                 r["per_crop_s"])
    throughput = []
    for r in records:
        if r["network"] == "both":
            b1 = per_crop(r["config"], "both", r["mode"], 1)
            throughput.append(dict(config=r["config"], role=r["role"], mode=r["mode"], batch=r["batch"],
                                   crops_per_s=r["crops_per_s"], speedup_vs_batch1=_ratio(b1, r["per_crop_s"])))
    return records, throughput


def _ablation_section(opts: Options, log) -> List[dict]:
    import torch

    from .compose import merge_edges
    from .edges import rgb_to_gray
    from .models.fuse import default_channels_last, fuse_for_inference

    configs = [opts.reference_config] + ([opts.default_config] if opts.default_config != opts.reference_config
                                         else [])
    cases, meta, outputs = {}, {}, {}
    for name in configs:
        cfg, mec, gen = _networks(name)
        image, hole, edges = _crop_batch(opts, 1, cfg)
        gray = rgb_to_gray(image)
        with torch.no_grad():
            edge_in = merge_edges(mec(gray, edges, hole), edges, hole)
        for net, model, args in (("mecnet", mec, (gray, edges, hole)), ("generator", gen, (image, hole, edge_in))):
            if net == "mecnet":  # no BatchNorm, nothing to prune
                variants = {"eager": None,
                            "narrow_conv": dict(fold_bn=False, prune=False, narrow_conv=True, channels_last=False),
                            "narrow_conv+channels_last": dict(fold_bn=False, prune=False, narrow_conv=True,
                                                              channels_last=True)}
                default = "narrow_conv+channels_last" if default_channels_last(model) else "narrow_conv"
            else:  # no one-channel convolution: narrow_conv does nothing
                variants = {"eager": None,
                            "fold_bn": dict(fold_bn=True, prune=False, channels_last=False),
                            "fold_bn+prune": dict(fold_bn=True, prune=True, channels_last=False),
                            "fold_bn+prune+channels_last": dict(fold_bn=True, prune=True, channels_last=True)}
                default = "fold_bn+prune+channels_last" if default_channels_last(model) else "fold_bn+prune"
            for variant, flags in variants.items():
                m = model if flags is None else fuse_for_inference(model, **flags)
                key = f"{name}/{net}/{variant}"

                def run(m=m, args=args, key=key):
                    with torch.inference_mode():
                        outputs[key] = m(*args)

                cases[key] = run
                meta[key] = dict(config=name, network=net, variant=variant, is_default=variant == default, batch=1)
    log(f"fuse ablation: {len(cases)} cases x {opts.repeats} repeats (interleaved)")
    times = time_interleaved(cases, opts.repeats)
    records = []
    for key, m in meta.items():
        eager_key = f"{m['config']}/{m['network']}/eager"
        diff = (outputs[key] - outputs[eager_key]).abs().max().item()
        records.append(dict(m, median_s=_median(times[key]),
                            speedup_vs_eager=_ratio(_median(times[eager_key]), _median(times[key])),
                            max_abs_diff=diff, times_s=times[key]))
    return records


# ------------------------------------------------------------------------------------------------ end to end

def _load_inpainter(weights: Optional[str], device: str = "cpu", dtype=None):
    from .api import Inpainter

    if weights and weights.startswith("random:"):
        return Inpainter.from_config(weights.split(":", 1)[1], device=device, dtype=dtype)
    try:
        return Inpainter.from_pretrained(weights, device=device, dtype=dtype)
    except Exception as e:  # the bundled weights may be missing in a development checkout
        if weights is not None:
            raise
        print(f"lbam bench: default weights unavailable ({e}); using random compact weights", file=sys.stderr)
        return Inpainter.from_config("compact", device=device, dtype=dtype)


def _fused_inpainter(inp):
    """A shallow copy of ``inp`` whose networks went through fuse_for_inference; None if ``inp`` already runs
    fused networks (Inpainter(fuse=True), the default since api.py adopted it)."""
    from .models.fuse import fuse_for_inference, is_fused

    run_mec, run_gen = getattr(inp, "_mecnet_run", None), getattr(inp, "_generator_run", None)
    if run_gen is not None and is_fused(run_gen) and is_fused(run_mec):
        return None
    if is_fused(inp.generator) and is_fused(inp.mecnet):
        return None
    other = copy.copy(inp)
    other.mecnet = fuse_for_inference(inp.mecnet)
    other.generator = fuse_for_inference(inp.generator)
    if run_gen is not None:
        other._mecnet_run, other._generator_run = other.mecnet, other.generator
    return other


def _e2e_worker(spec: dict) -> dict:
    """One end-to-end case, run in a fresh process so that its memory peak is its own."""
    import cv2
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    from . import tiling

    w, h, ratio, seed = spec["width"], spec["height"], spec["hole"], spec["seed"]
    image = synthetic_image(h, w, seed=seed)
    hole = synthetic_mask(h, w, ratio, seed=seed + 17)
    mask = hole.astype(np.uint8) * 255
    inp = _load_inpainter(spec.get("weights"))
    fused = _fused_inpainter(inp)
    try:
        strategy = tiling.choose_strategy(hole, inp.config.train_size)
        n_crops = len(tiling.plan_crops(hole, inp.config.train_size))
    except Exception:  # tiling's helpers are optional for the benchmark
        strategy, n_crops = None, None
    # warm-up on a small image: one-time initialisation (oneDNN, allocator) is not part of the case
    small = synthetic_image(256, 320, seed=seed + 1)
    small_mask = np.zeros((256, 320), np.uint8)
    small_mask[100:140, 120:200] = 255
    for obj in (inp, fused):
        if obj is not None:
            obj.inpaint(small, small_mask)
    cv2.inpaint(small, small_mask, 3, cv2.INPAINT_TELEA)
    gc.collect()

    exact = True
    runners = {
        "lbam": lambda: inp.inpaint(image, mask),
        "telea": lambda: cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA),
    }
    if fused is not None:
        runners["lbam_fused"] = lambda: fused.inpaint(image, mask)
    rss_before = current_rss_bytes()
    peaks, first = {}, {}
    for name in ("lbam", "lbam_fused", "telea"):
        if name not in runners:
            continue
        gc.collect()
        exact = reset_peak_rss() and exact
        t0 = time.perf_counter()
        runners[name]()
        first[name] = time.perf_counter() - t0
        peaks[name] = peak_rss_bytes()
    times = time_interleaved(runners, int(spec["repeats"]), warmup=0)
    lbam_med, telea_med = _median(times["lbam"]), _median(times["telea"])
    fused_med = _median(times.get("lbam_fused", []))
    return dict(
        width=w, height=h, hole_target=ratio, hole_ratio=float(hole.mean()), weights=inp.name,
        config=inp.config.name, strategy=strategy, n_crops=n_crops,
        lbam_median_s=lbam_med, lbam_first_call_s=first["lbam"], lbam_times_s=times["lbam"],
        lbam_fused_median_s=fused_med, lbam_fused_times_s=times.get("lbam_fused", []),
        telea_median_s=telea_med, telea_times_s=times["telea"],
        ratio_vs_telea=_ratio(lbam_med, telea_med), fused_ratio_vs_telea=_ratio(fused_med, telea_med),
        rss_before_bytes=rss_before, peak_rss_bytes=peaks["lbam"],
        peak_rss_delta_bytes=None if rss_before is None or peaks["lbam"] is None else peaks["lbam"] - rss_before,
        fused_peak_rss_bytes=peaks.get("lbam_fused") if exact else None,
        telea_peak_rss_bytes=peaks["telea"] if exact else None,
        peak_measured_exactly=exact,
    )


def _e2e_section(opts: Options, log) -> List[dict]:
    records = []
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for w, h in opts.sizes:
        for ratio in opts.holes:
            spec = dict(width=w, height=h, hole=ratio, seed=opts.seed, repeats=opts.e2e_repeats,
                        threads=opts.threads, weights=opts.weights)
            log(f"end to end: {w}x{h}, {ratio:.0%} hole (subprocess)")
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "result.json"
                cmd = [sys.executable, "-m", "lbam.benchmark", "--worker", json.dumps(dict(spec, out=str(out)))]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode != 0 or not out.exists():
                    raise RuntimeError(f"end-to-end worker failed for {w}x{h} @ {ratio}:\n{proc.stderr[-4000:]}")
                records.append(json.loads(out.read_text()))
    return records


# ------------------------------------------------------------------------------------------------ GPU

def _psnr(a, b) -> Optional[float]:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return None if mse == 0 else 10 * math.log10(1.0 / mse)


def gpu_section(opts: Options, log, device: str = "cuda") -> dict:
    """The GPU measurements; ``device`` can be "cpu" (for tests of this code path only)."""
    import torch

    from .compose import complete
    from .models.fuse import fuse_for_inference

    empty = dict(available=False, reason=None, device_name=None, records=[], psnr=[], end_to_end=[])
    if device == "cuda" and not torch.cuda.is_available():
        return dict(empty, reason="CUDA is not available")
    is_cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if is_cuda else None
    dtypes = {"float32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if is_cuda and not torch.cuda.is_bf16_supported():
        dtypes.pop("bfloat16")
    out = dict(empty, available=True, device_name=torch.cuda.get_device_name() if is_cuda else device)
    nmax = max(opts.gpu_batch_sizes)
    configs = [opts.reference_config] + ([opts.default_config] if opts.default_config != opts.reference_config
                                         else [])
    for name in configs:
        cfg, mec, gen = _networks(name)
        if name == opts.default_config and not opts.quick:
            try:  # trained weights make the PSNR meaningful
                inp = _load_inpainter(opts.weights, device="cpu")
                if inp.config.name == name:
                    mec, gen = inp.mecnet, inp.generator
            except Exception:
                pass
        fmec = fuse_for_inference(mec.to(device))
        fgen = fuse_for_inference(gen.to(device))
        image, hole, edges = _crop_batch(opts, nmax, cfg, device=device)
        outputs = {}
        for dname, dt in dtypes.items():
            def ctx(dt=dt):
                import contextlib

                return torch.autocast(device.split(":")[0], dtype=dt) if dt is not None else contextlib.nullcontext()

            cases = {}
            for b in opts.gpu_batch_sizes:
                a = (image[:b], hole[:b], edges[:b])

                def run(a=a, ctx=ctx, b=b, dname=dname):
                    with torch.inference_mode(), ctx():
                        res = complete(fmec, fgen, *a)[0]
                    if b == nmax:
                        outputs[dname] = res.float()

                cases[b] = run
            for b, fn in cases.items():
                if is_cuda:
                    torch.cuda.reset_peak_memory_stats()
                t = time_interleaved({b: fn}, opts.repeats, warmup=1, sync=sync)[b]
                peak = torch.cuda.max_memory_allocated() if is_cuda else None
                med = _median(t)
                out["records"].append(dict(config=name, dtype=dname, batch=b, median_s=med, per_crop_s=med / b,
                                           crops_per_s=b / med, peak_memory_bytes=peak, times_s=t))
                log(f"gpu: {name} {dname} batch {b}: {med / b * 1000:.1f} ms/crop")
        ref = outputs["float32"]
        holes = hole[:nmax].expand_as(ref) > 0.5
        for dname in dtypes:
            if dname == "float32":
                continue
            o = outputs[dname]
            out["psnr"].append(dict(config=name, dtype=dname, psnr_db=_psnr(o, ref),
                                    psnr_hole_db=_psnr(o[holes], ref[holes]),
                                    max_abs_diff=float((o - ref).abs().max())))
    for w, h in opts.sizes:
        for ratio in opts.holes:
            image = synthetic_image(h, w, seed=opts.seed)
            mask = synthetic_mask(h, w, ratio, seed=opts.seed + 17).astype(np.uint8) * 255
            for dname, dt in dtypes.items():
                inp = _load_inpainter(opts.weights, device=device, dtype=dt)
                fused = _fused_inpainter(inp) or inp
                t = time_interleaved({0: lambda: fused.inpaint(image, mask)}, opts.e2e_repeats, warmup=1,
                                     sync=sync)[0]
                out["end_to_end"].append(dict(width=w, height=h, hole_target=ratio, dtype=dname,
                                              median_s=_median(t), times_s=t))
    return out


# ------------------------------------------------------------------------------------------------ summary

def _summary(opts: Options, crops: List[dict], e2e: List[dict]) -> dict:
    def pc(config, mode, batch):
        for r in crops:
            if (r["config"], r["network"], r["mode"], r["batch"]) == (config, "both", mode, batch):
                return r["per_crop_s"]
        return None

    def best(config):
        """(batch, per-crop seconds) of the fastest optimized batch size of ``config``, or (None, None)."""
        cands = [(pc(config, "optimized", b), b) for b in opts.batch_sizes]
        cands = [(t, b) for t, b in cands if t is not None]
        return (min(cands)[1], min(cands)[0]) if cands else (None, None)

    ref_plain = pc(opts.reference_config, "plain", 1)
    ref_b, ref_t = best(opts.reference_config)
    def_b, def_t = best(opts.default_config)
    s = dict(
        reference_optimized_speedup_batch1=_ratio(ref_plain, pc(opts.reference_config, "optimized", 1)),
        reference_optimized_speedup=_ratio(ref_plain, ref_t), reference_batch=ref_b,
        default_vs_reference_plain_speedup=_ratio(ref_plain, def_t), default_batch=def_b,
        e2e_ratio_vs_telea=None, e2e_case=None, peak_rss_bytes=None, peak_rss_case=None,
    )
    if e2e:
        first = [r for r in e2e if (r["width"], r["height"]) == (e2e[0]["width"], e2e[0]["height"])]
        r = min(first, key=lambda r: r["hole_target"])
        s["e2e_ratio_vs_telea"] = r["ratio_vs_telea"]
        s["e2e_case"] = f"{r['width']}x{r['height']}@{r['hole_target']:g}"
        last = [r for r in e2e if (r["width"], r["height"]) == (e2e[-1]["width"], e2e[-1]["height"])]
        r = max(last, key=lambda r: r["hole_target"])
        s["peak_rss_bytes"] = r["peak_rss_bytes"]
        s["peak_rss_case"] = f"{r['width']}x{r['height']}@{r['hole_target']:g}"

    def target(name, value, op, threshold):
        met = None
        if value is not None:
            met = {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}[op]
        return dict(name=name, value=value, threshold=threshold, op=op, met=met)

    s["targets"] = [
        target("reference optimized vs plain (per crop, both networks)", s["reference_optimized_speedup"], ">=", 1.2),
        target("default optimized vs reference plain (per crop)", s["default_vs_reference_plain_speedup"], ">=", 10.0),
        target(f"end to end / Telea ({s['e2e_case'] or 'first size, smallest hole'})", s["e2e_ratio_vs_telea"],
               "<=", 5.0),
        target(f"peak RSS bytes ({s['peak_rss_case'] or 'last size, largest hole'})", s["peak_rss_bytes"], "<",
               3 * GB),
    ]
    return s


# ------------------------------------------------------------------------------------------------ report

def _meta(argv: Sequence[str]) -> dict:
    import cv2
    import torch

    from . import __version__

    cpu = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                                capture_output=True, text=True, timeout=10).stdout.strip() or None
    except Exception:
        commit = None
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        ncpu = os.cpu_count()
    return dict(
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), lbam_version=__version__, git_commit=commit,
        python=platform.python_version(), torch=torch.__version__, numpy=np.__version__, opencv=cv2.__version__,
        platform=platform.platform(), cpu_model=cpu, cpu_count=ncpu, torch_threads=torch.get_num_threads(),
        load_average_start=_loadavg(), load_average_end=None, duration_s=None, argv=list(argv),
    )


def _loadavg() -> Optional[float]:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


def run_benchmark(opts: Options, argv: Sequence[str] = (), log: Callable[[str], None] = print) -> dict:
    """Run the selected sections and return the results dict (the content of results.json)."""
    import torch

    if opts.threads:
        torch.set_num_threads(opts.threads)
    t0 = time.perf_counter()
    res: Dict[str, Any] = dict(schema_version=SCHEMA_VERSION, meta=_meta(argv), options=asdict(opts))
    res["options"]["sizes"] = [list(s) for s in opts.sizes]
    crops, throughput = _crop_section(opts, log) if "crops" in opts.sections else ([], [])
    res["crop_latency"], res["throughput"] = crops, throughput
    res["fuse_ablation"] = _ablation_section(opts, log) if "ablation" in opts.sections else []
    res["end_to_end"] = _e2e_section(opts, log) if "e2e" in opts.sections else []
    if "gpu" in opts.sections:
        res["gpu"] = gpu_section(opts, log)
    else:
        res["gpu"] = dict(available=False, reason="skipped (--skip gpu)", device_name=None, records=[], psnr=[],
                          end_to_end=[])
    res["summary"] = _summary(opts, crops, res["end_to_end"])
    res["meta"]["load_average_end"] = _loadavg()
    res["meta"]["duration_s"] = time.perf_counter() - t0
    return res


def _f(v, fmt="{:.3f}") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return fmt.format(v)
    return str(v)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_f(c) for c in row) + " |" for row in rows]
    return lines + [""]


def to_markdown(res: dict) -> str:
    """The results as markdown tables."""
    m, o = res["meta"], res["options"]
    lines = [f"# lbam benchmark ({m['timestamp']})", "",
             f"lbam {m['lbam_version']} ({m['git_commit'] or 'no git'}), torch {m['torch']}, OpenCV {m['opencv']}, "
             f"{m['cpu_model']} ({m['cpu_count']} CPUs), torch threads {m['torch_threads']}, load average "
             f"{_f(m['load_average_start'], '{:.1f}')} -> {_f(m['load_average_end'], '{:.1f}')}, "
             f"{_f(m['duration_s'], '{:.0f}')} s." + (" **--quick: numbers are meaningless.**" if o["quick"] else ""),
             "", "Medians of interleaved repeats; ratios are taken within one process.", ""]
    s = res["summary"]
    lines += ["## Targets", ""]
    rows = []
    for t in s["targets"]:
        v = t["value"]
        if v is not None and "bytes" in t["name"]:
            v, th = f"{v / GB:.2f} GiB", f"{t['threshold'] / GB:.2f} GiB"
        else:
            th = t["threshold"]
        rows.append((t["name"], v, f"{t['op']} {th}", t["met"]))
    lines += _table(["target", "measured", "required", "met"], rows)
    if res["crop_latency"]:
        lines += [f"## Per-crop latency ({o['crop_size']} x {o['crop_size']}, CPU)", ""]
        lines += _table(["config", "network", "mode", "batch", "ms / call", "ms / crop", "crops / s",
                         "x vs plain", "x vs reference plain"],
                        [(r["config"], r["network"], r["mode"], r["batch"], r["median_s"] * 1000,
                          r["per_crop_s"] * 1000, r["crops_per_s"], r["speedup_vs_plain"],
                          r["speedup_vs_reference_plain"]) for r in res["crop_latency"]])
        lines += ["## Throughput (both networks)", ""]
        lines += _table(["config", "mode", "batch", "crops / s", "x vs batch 1"],
                        [(r["config"], r["mode"], r["batch"], r["crops_per_s"], r["speedup_vs_batch1"])
                         for r in res["throughput"]])
    if res["fuse_ablation"]:
        lines += ["## fuse_for_inference ablation (inference mode, batch 1)", ""]
        lines += _table(["config", "network", "variant", "default", "ms", "x vs eager", "max abs diff"],
                        [(r["config"], r["network"], r["variant"], r["is_default"], r["median_s"] * 1000,
                          r["speedup_vs_eager"], f"{r['max_abs_diff']:.1e}") for r in res["fuse_ablation"]])
    if res["end_to_end"]:
        lines += ["## End to end (Inpainter.inpaint vs OpenCV Telea, CPU)", ""]
        lines += _table(["image", "hole", "weights", "strategy", "crops", "lbam s", "fused s", "Telea s",
                         "lbam / Telea", "fused / Telea", "peak RSS GiB", "delta GiB", "Telea peak GiB"],
                        [(f"{r['width']}x{r['height']}", f"{r['hole_ratio']:.1%}", r["weights"], r["strategy"],
                          r["n_crops"], r["lbam_median_s"], r["lbam_fused_median_s"], r["telea_median_s"],
                          r["ratio_vs_telea"], r["fused_ratio_vs_telea"],
                          None if r["peak_rss_bytes"] is None else r["peak_rss_bytes"] / GB,
                          None if r["peak_rss_delta_bytes"] is None else r["peak_rss_delta_bytes"] / GB,
                          None if r["telea_peak_rss_bytes"] is None else r["telea_peak_rss_bytes"] / GB)
                         for r in res["end_to_end"]])
    g = res["gpu"]
    lines += ["## GPU", ""]
    if not g["available"]:
        lines += [f"Not measured: {g['reason']}.", ""]
    else:
        lines += [f"Device: {g['device_name']}.", ""]
        lines += _table(["config", "dtype", "batch", "ms / crop", "crops / s", "peak MiB"],
                        [(r["config"], r["dtype"], r["batch"], r["per_crop_s"] * 1000, r["crops_per_s"],
                          None if r["peak_memory_bytes"] is None else r["peak_memory_bytes"] / 2 ** 20)
                         for r in g["records"]])
        lines += _table(["config", "dtype", "PSNR vs fp32 (dB)", "hole PSNR (dB)", "max abs diff"],
                        [(r["config"], r["dtype"], r["psnr_db"], r["psnr_hole_db"], r["max_abs_diff"])
                         for r in g["psnr"]])
        lines += _table(["image", "hole", "dtype", "inpaint s"],
                        [(f"{r['width']}x{r['height']}", r["hole_target"], r["dtype"], r["median_s"])
                         for r in g["end_to_end"]])
    return "\n".join(lines)


def write_results(res: dict, out_dir) -> Tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into ``out_dir`` (created). Returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / "results.json", out / "results.md"
    jp.write_text(json.dumps(res, indent=1, allow_nan=False) + "\n")
    mp.write_text(to_markdown(res) + "\n")
    return jp, mp


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``lbam bench`` and ``benchmarks/run.py``. Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `lbam bench -- --quick ...` (argparse REMAINDER keeps the separator)
        argv = argv[1:]
    if "--worker" in argv:
        spec = json.loads(argv[argv.index("--worker") + 1])
        res = _e2e_worker(spec)
        Path(spec["out"]).write_text(json.dumps(res))
        return 0
    opts = parse_args(argv)
    res = run_benchmark(opts, argv, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    jp, mp = write_results(res, opts.out)
    print(to_markdown(res))
    print(f"\nwrote {jp} and {mp}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
