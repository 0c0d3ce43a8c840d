"""Running the benchmark: the summary of targets, run metadata, :func:`run_benchmark` and :func:`main`."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from .crops import ablation_section, crop_section
from .e2e import e2e_section, e2e_worker
from .gpu import gpu_section, precision_section
from .options import Options, parse_args
from .report import to_markdown, write_results
from .timing import GB, ratio_or_none

SCHEMA_VERSION = 1


# ------------------------------------------------------------------------------------------------ summary

def _fp16_psnr(records: List[dict], config: str) -> Optional[float]:
    """The lowest hole PSNR of fp16 against fp32 among ``records`` of ``config`` (None if none)."""
    vals = [r["psnr_hole_db"] for r in records if r["config"] == config and r["dtype"] == "float16"]
    vals = [v for v in vals if v is not None]  # None: outputs identical to fp32
    return min(vals) if vals else None


def _summary(opts: Options, crops: List[dict], e2e: List[dict], precision: Optional[dict] = None,
             gpu: Optional[dict] = None) -> dict:
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
        reference_optimized_speedup_batch1=ratio_or_none(ref_plain, pc(opts.reference_config, "optimized", 1)),
        reference_optimized_speedup=ratio_or_none(ref_plain, ref_t), reference_batch=ref_b,
        default_vs_reference_plain_speedup=ratio_or_none(ref_plain, def_t), default_batch=def_b,
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
        target("fp16 vs fp32 PSNR in the holes, dB (CUDA)",
               _fp16_psnr((gpu or {}).get("psnr", []), opts.default_config), ">=", 40.0),
        target("fp16 vs fp32 PSNR in the holes, dB (CPU autocast: a proxy without a GPU; CPU and CUDA autocast "
               "cast some ops differently)",
               _fp16_psnr((precision or {}).get("records", []), opts.default_config), ">=", 40.0),
    ]
    return s


# ------------------------------------------------------------------------------------------------ report

def _meta(argv: Sequence[str]) -> dict:
    import cv2
    import torch

    from .. import __version__

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
    crops, throughput = crop_section(opts, log) if "crops" in opts.sections else ([], [])
    res["crop_latency"], res["throughput"] = crops, throughput
    res["fuse_ablation"] = ablation_section(opts, log) if "ablation" in opts.sections else []
    res["end_to_end"] = e2e_section(opts, log) if "e2e" in opts.sections else []
    res["precision"] = (precision_section(opts, log) if "precision" in opts.sections
                        else dict(device=None, records=[]))
    if "gpu" in opts.sections:
        res["gpu"] = gpu_section(opts, log)
    else:
        res["gpu"] = dict(available=False, reason="skipped (--skip gpu)", device_name=None, records=[], psnr=[],
                          end_to_end=[])
    res["summary"] = _summary(opts, crops, res["end_to_end"], res["precision"], res["gpu"])
    res["meta"]["load_average_end"] = _loadavg()
    res["meta"]["duration_s"] = time.perf_counter() - t0
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``lbam bench`` and ``benchmarks/run.py``. Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `lbam bench -- --quick ...` (argparse REMAINDER keeps the separator)
        argv = argv[1:]
    if "--worker" in argv:
        spec = json.loads(argv[argv.index("--worker") + 1])
        res = e2e_worker(spec)
        Path(spec["out"]).write_text(json.dumps(res))
        return 0
    opts = parse_args(argv)
    res = run_benchmark(opts, argv, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    jp, mp = write_results(res, opts.out)
    print(to_markdown(res))
    print(f"\nwrote {jp} and {mp}", file=sys.stderr)
    return 0

