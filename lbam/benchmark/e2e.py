"""End-to-end section: ``Inpainter.inpaint`` vs OpenCV Telea, one fresh subprocess per case.

The subprocess runs ``python -m lbam.benchmark --worker SPEC`` (see :func:`lbam.benchmark.runner.main`), which
calls :func:`e2e_worker`.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from .inputs import synthetic_image, synthetic_mask
from .options import Options
from .timing import median_or_none, ratio_or_none, current_rss_bytes, peak_rss_bytes, reset_peak_rss, time_interleaved


def load_inpainter(weights: Optional[str], device: str = "cpu", dtype=None):
    from ..api import Inpainter

    if weights and weights.startswith("random:"):
        return Inpainter.from_config(weights.split(":", 1)[1], device=device, dtype=dtype)
    try:
        return Inpainter.from_pretrained(weights, device=device, dtype=dtype)
    except Exception as e:  # the bundled weights may be missing in a development checkout
        if weights is not None:
            raise
        print(f"lbam bench: default weights unavailable ({e}); using random compact weights", file=sys.stderr)
        return Inpainter.from_config("compact", device=device, dtype=dtype)


def fused_inpainter(inp):
    """An Inpainter on the same networks that runs fused copies of them (``fuse=True``, public constructor);
    None when ``inp`` does so already (the default)."""
    if inp.fuse:
        return None
    from ..api import Inpainter

    return Inpainter(inp.mecnet, inp.generator, inp.config, device=inp.device, dtype=inp.dtype, name=inp.name,
                     fuse=True)


def e2e_worker(spec: dict) -> dict:
    """One end-to-end case, run in a fresh process so that its memory peak is its own."""
    import cv2
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    from .. import tiling

    w, h, ratio, seed = spec["width"], spec["height"], spec["hole"], spec["seed"]
    image = synthetic_image(h, w, seed=seed)
    hole = synthetic_mask(h, w, ratio, seed=seed + 17)
    mask = hole.astype(np.uint8) * 255
    inp = load_inpainter(spec.get("weights"))
    fused = fused_inpainter(inp)
    try:
        strategy = tiling.choose_strategy(hole, inp.config.train_size, refine=inp.coarse_to_fine and inp.refines)
        # the other large-photo path: coarse to fine against the one pass, whichever auto did not pick
        one_pass = tiling.choose_strategy(hole, inp.config.train_size)
        refined = tiling.choose_strategy(hole, inp.config.train_size, refine=inp.refines)
        alt = one_pass if strategy == "pyramid" else ("pyramid" if refined == "pyramid" else None)
        n_crops = len(tiling.plan_crops(hole, inp.config.train_size, strategy=strategy))
    except Exception:  # tiling's helpers are optional for the benchmark
        strategy, alt, n_crops = None, None, None
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
    if alt is not None:
        runners["lbam_alt"] = lambda: inp.inpaint(image, mask, strategy=alt)
    rss_before = current_rss_bytes()
    peaks, first = {}, {}
    for name in ("lbam", "lbam_fused", "lbam_alt", "telea"):
        if name not in runners:
            continue
        gc.collect()
        exact = reset_peak_rss() and exact
        t0 = time.perf_counter()
        runners[name]()
        first[name] = time.perf_counter() - t0
        peaks[name] = peak_rss_bytes()
    times = time_interleaved(runners, int(spec["repeats"]), warmup=0)
    lbam_med, telea_med = median_or_none(times["lbam"]), median_or_none(times["telea"])
    fused_med = median_or_none(times.get("lbam_fused", []))
    alt_med = median_or_none(times.get("lbam_alt", []))
    return dict(
        width=w, height=h, hole_target=ratio, hole_ratio=float(hole.mean()), weights=inp.name,
        config=inp.config.name, strategy=strategy, n_crops=n_crops,
        lbam_median_s=lbam_med, lbam_first_call_s=first["lbam"], lbam_times_s=times["lbam"],
        lbam_fused_median_s=fused_med, lbam_fused_times_s=times.get("lbam_fused", []),
        telea_median_s=telea_med, telea_times_s=times["telea"],
        ratio_vs_telea=ratio_or_none(lbam_med, telea_med), fused_ratio_vs_telea=ratio_or_none(fused_med, telea_med),
        rss_before_bytes=rss_before, peak_rss_bytes=peaks["lbam"],
        peak_rss_delta_bytes=None if rss_before is None or peaks["lbam"] is None else peaks["lbam"] - rss_before,
        fused_peak_rss_bytes=peaks.get("lbam_fused") if exact else None,
        alt_strategy=alt, lbam_alt_median_s=alt_med, lbam_alt_times_s=times.get("lbam_alt", []),
        alt_ratio_vs_telea=ratio_or_none(alt_med, telea_med),
        alt_peak_rss_bytes=peaks.get("lbam_alt") if exact else None,
        telea_peak_rss_bytes=peaks["telea"] if exact else None,
        peak_measured_exactly=exact,
    )


def e2e_section(opts: Options, log) -> List[dict]:
    records = []
    root = str(Path(__file__).resolve().parents[2])
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
