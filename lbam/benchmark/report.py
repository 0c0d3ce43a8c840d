"""Results documentation and output: :data:`FIELD_DOCS`, markdown tables, ``results.json`` / ``results.md``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from .timing import GB

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
                               "'fold_bn+prune', 'fold_bn+prune+fast_gm', 'fold_bn+prune+fast_gm+phase_deconv', "
                               "'fold_bn+prune+fast_gm+phase_deconv+winograd', "
                               "'fold_bn+prune+fast_gm+phase_deconv+winograd+channels_last'; MECNet (no BatchNorm) "
                               "'eager', 'narrow_conv', 'narrow_conv+winograd', "
                               "'narrow_conv+winograd+channels_last'",
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
    "end_to_end[].strategy": "strategy 'auto' picked (lbam.tiling.choose_strategy, refine=Inpainter.coarse_to_fine), "
                             "or null",
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
    "end_to_end[].alt_strategy": "the other large-photo path, timed as lbam_alt: 'pyramid' (coarse to fine) when "
                                 "auto picked a one-pass 'crop' or 'resize' that runs below native resolution and "
                                 "the generator takes a prefill, the one-pass strategy when auto picked 'pyramid'; "
                                 "else null",
    "end_to_end[].lbam_alt_median_s": "median seconds of inpaint with alt_strategy, or null",
    "end_to_end[].lbam_alt_times_s": _TIMES + " (empty when not measured)",
    "end_to_end[].alt_ratio_vs_telea": "lbam_alt_median_s / telea_median_s, or null",
    "end_to_end[].alt_peak_rss_bytes": "peak resident memory of the first alt_strategy call, or null",
    "end_to_end[].peak_measured_exactly": "true when the kernel let the worker reset VmHWM before each call "
                                          "(else peaks are process-lifetime peaks, still an upper bound)",
    "precision": "half-precision numerics without a GPU: fp16 / bf16 autocast against fp32 on the CPU (untimed)",
    "precision.device": "where it ran ('cpu'), or null when skipped",
    "precision.records": "list: one record per half dtype",
    "precision.records[].config": "configuration name (the default configuration)",
    "precision.records[].weights": "the weights used ('random:<config>' in --quick)",
    "precision.records[].dtype": "'float16' or 'bfloat16' (autocast, as Inpainter(dtype=...) runs it)",
    "precision.records[].crops": "number of crops compared (max of --batch-sizes)",
    "precision.records[].psnr_db": "PSNR (dB, images in [0, 1]) of the composited output against fp32; null if identical",
    "precision.records[].psnr_hole_db": "the same over hole pixels only; null if identical",
    "precision.records[].max_abs_diff": "largest absolute difference to the fp32 output",
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
                         "lbam / Telea", "fused / Telea", "alt strategy", "alt / Telea", "alt peak GiB",
                         "peak RSS GiB", "delta GiB", "Telea peak GiB"],
                        [(f"{r['width']}x{r['height']}", f"{r['hole_ratio']:.1%}", r["weights"], r["strategy"],
                          r["n_crops"], r["lbam_median_s"], r["lbam_fused_median_s"], r["telea_median_s"],
                          r["ratio_vs_telea"], r["fused_ratio_vs_telea"], r.get("alt_strategy"),
                          r.get("alt_ratio_vs_telea"),
                          None if r.get("alt_peak_rss_bytes") is None else r["alt_peak_rss_bytes"] / GB,
                          None if r["peak_rss_bytes"] is None else r["peak_rss_bytes"] / GB,
                          None if r["peak_rss_delta_bytes"] is None else r["peak_rss_delta_bytes"] / GB,
                          None if r["telea_peak_rss_bytes"] is None else r["telea_peak_rss_bytes"] / GB)
                         for r in res["end_to_end"]])
    pr = res.get("precision") or {}
    if pr.get("records"):
        lines += [f"## Half precision against fp32 ({pr['device']} autocast, untimed)", ""]
        lines += _table(["config", "weights", "dtype", "crops", "PSNR vs fp32 (dB)", "hole PSNR (dB)", "max abs diff"],
                        [(r["config"], r["weights"], r["dtype"], r["crops"], r["psnr_db"], r["psnr_hole_db"],
                          r["max_abs_diff"]) for r in pr["records"]])
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
