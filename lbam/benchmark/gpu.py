"""GPU section (fp32 / fp16 / bf16 latency, PSNR against fp32, ``inpaint`` end to end) and the precision
section (the same PSNR of half-precision autocast against fp32, on the CPU, untimed)."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .e2e import fused_inpainter, load_inpainter
from .inputs import build_networks, crop_batch, synthetic_image, synthetic_mask
from .options import Options
from .timing import median_or_none, time_interleaved


def _psnr(a, b) -> Optional[float]:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return None if mse == 0 else 10 * math.log10(1.0 / mse)


def _agreement(o, ref, holes) -> dict:
    """How closely output ``o`` matches ``ref`` (both (B, 3, H, W) float; ``holes`` a bool mask of their shape)."""
    return dict(psnr_db=_psnr(o, ref), psnr_hole_db=_psnr(o[holes], ref[holes]),
                max_abs_diff=float((o - ref).abs().max()))


def _autocast(device: str, dtype):
    """Autocast to ``dtype`` on ``device``'s type; no context for ``dtype=None`` (fp32)."""
    import contextlib

    import torch

    return torch.autocast(device.split(":")[0], dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _trained_networks(opts: Options, name: str, mec, gen):
    """(mecnet, generator, weights name) of the benchmark's weights when they are of configuration ``name``,
    else the given networks and None. Trained weights make a half-precision PSNR meaningful."""
    try:
        inp = load_inpainter(opts.weights, device="cpu")
    except Exception:
        return mec, gen, None
    if inp.config.name != name:
        return mec, gen, None
    return inp.mecnet, inp.generator, inp.name


def gpu_section(opts: Options, log, device: str = "cuda") -> dict:
    """The GPU measurements; ``device`` can be "cpu" (for tests of this code path only)."""
    import torch

    from ..compose import complete
    from ..models.fuse import fuse_for_inference

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
        cfg, mec, gen = build_networks(name)
        if name == opts.default_config and not opts.quick:
            mec, gen, _ = _trained_networks(opts, name, mec, gen)
        fmec = fuse_for_inference(mec.to(device))
        fgen = fuse_for_inference(gen.to(device))
        image, hole, edges = crop_batch(opts, nmax, cfg, device=device)
        outputs = {}
        for dname, dt in dtypes.items():
            def ctx(dt=dt):
                return _autocast(device, dt)

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
                med = median_or_none(t)
                out["records"].append(dict(config=name, dtype=dname, batch=b, median_s=med, per_crop_s=med / b,
                                           crops_per_s=b / med, peak_memory_bytes=peak, times_s=t))
                log(f"gpu: {name} {dname} batch {b}: {med / b * 1000:.1f} ms/crop")
        ref = outputs["float32"]
        holes = hole[:nmax].expand_as(ref) > 0.5
        for dname in dtypes:
            if dname == "float32":
                continue
            o = outputs[dname]
            out["psnr"].append(dict(config=name, dtype=dname, **_agreement(o, ref, holes)))
    for w, h in opts.sizes:
        for ratio in opts.holes:
            image = synthetic_image(h, w, seed=opts.seed)
            mask = synthetic_mask(h, w, ratio, seed=opts.seed + 17).astype(np.uint8) * 255
            for dname, dt in dtypes.items():
                inp = load_inpainter(opts.weights, device=device, dtype=dt)
                fused = fused_inpainter(inp) or inp
                t = time_interleaved({0: lambda: fused.inpaint(image, mask)}, opts.e2e_repeats, warmup=1,
                                     sync=sync)[0]
                out["end_to_end"].append(dict(width=w, height=h, hole_target=ratio, dtype=dname,
                                              median_s=median_or_none(t), times_s=t))
    return out


def precision_section(opts: Options, log, device: str = "cpu") -> dict:
    """Half-precision autocast against fp32 on ``device`` (default the CPU), outputs only (no timing).

    The default configuration with its trained weights (random weights in --quick) completes a batch of crops
    (``max(opts.batch_sizes)``) in fp32 and under fp16 / bf16 autocast, as ``Inpainter(dtype=...)`` runs it;
    records the PSNR of each against fp32. On a CPU this measures the numerics of half precision, not its speed
    (CPUs without half-precision units run it far slower); the CUDA measurement is in the GPU section.
    """
    import torch

    from ..compose import complete
    from ..models.fuse import fuse_for_inference

    name = opts.default_config
    cfg, mec, gen = build_networks(name)
    weights = None
    if not opts.quick:
        mec, gen, weights = _trained_networks(opts, name, mec, gen)
    weights = weights or f"random:{name}"
    fmec, fgen = fuse_for_inference(mec.to(device)), fuse_for_inference(gen.to(device))
    n = max(opts.batch_sizes)
    image, hole, edges = crop_batch(opts, n, cfg, device=device)
    outputs = {}
    for dname, dt in (("float32", None), ("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        with torch.inference_mode(), _autocast(device, dt):
            outputs[dname] = complete(fmec, fgen, image, hole, edges)[0].float()
    ref, holes = outputs["float32"], hole.expand_as(outputs["float32"]) > 0.5
    records = []
    for dname in ("float16", "bfloat16"):
        o = outputs[dname]
        records.append(dict(config=name, weights=weights, dtype=dname, crops=n, **_agreement(o, ref, holes)))
        log(f"precision ({device}): {name} {dname} vs float32: {records[-1]['psnr_hole_db']} dB in the holes")
    return dict(device=device, records=records)
