"""CPU sections: per-crop latency / throughput (plain vs optimized) and the fuse_for_inference ablation."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

from .inputs import build_networks, crop_batch
from .options import Options
from .timing import median_or_none, ratio_or_none, time_interleaved


def crop_section(opts: Options, log) -> Tuple[List[dict], List[dict]]:
    import torch

    from ..compose import complete, merge_edges
    from ..edges import rgb_to_gray
    from ..models.fuse import fuse_for_inference

    nmax = max(opts.batch_sizes)
    roles = [("reference", opts.reference_config), ("default", opts.default_config)]
    if opts.default_config == opts.reference_config:
        roles = roles[:1]
    cases: Dict[str, Callable[[], Any]] = {}
    meta: Dict[str, dict] = {}
    for role, name in roles:
        cfg, mec, gen = build_networks(name)
        image, hole, edges = crop_batch(opts, nmax, cfg)
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
        med = median_or_none(times[key])
        records.append(dict(m, crop_size=opts.crop_size, median_s=med, per_crop_s=med / m["batch"],
                            crops_per_s=m["batch"] / med, times_s=times[key]))

    def per_crop(config, network, mode, batch):
        for r in records:
            if (r["config"], r["network"], r["mode"], r["batch"]) == (config, network, mode, batch):
                return r["per_crop_s"]
        return None

    for r in records:
        r["speedup_vs_plain"] = ratio_or_none(per_crop(r["config"], r["network"], "plain", 1), r["per_crop_s"])
        r["speedup_vs_reference_plain"] = ratio_or_none(per_crop(opts.reference_config, r["network"], "plain", 1),
                                                 r["per_crop_s"])
    throughput = []
    for r in records:
        if r["network"] == "both":
            b1 = per_crop(r["config"], "both", r["mode"], 1)
            throughput.append(dict(config=r["config"], role=r["role"], mode=r["mode"], batch=r["batch"],
                                   crops_per_s=r["crops_per_s"], speedup_vs_batch1=ratio_or_none(b1, r["per_crop_s"])))
    return records, throughput


def ablation_section(opts: Options, log) -> List[dict]:
    import torch

    from ..compose import merge_edges
    from ..edges import rgb_to_gray
    from ..models.fuse import default_channels_last, fuse_for_inference

    configs = [opts.reference_config] + ([opts.default_config] if opts.default_config != opts.reference_config
                                         else [])
    cases, meta, outputs = {}, {}, {}
    for name in configs:
        cfg, mec, gen = build_networks(name)
        image, hole, edges = crop_batch(opts, 1, cfg)
        gray = rgb_to_gray(image)
        with torch.no_grad():
            edge_in = merge_edges(mec(gray, edges, hole), edges, hole)
        for net, model, args in (("mecnet", mec, (gray, edges, hole)), ("generator", gen, (image, hole, edge_in))):
            if net == "mecnet":  # no BatchNorm, nothing to prune
                off = dict(fold_bn=False, prune=False)
                variants = {"eager": None,
                            "narrow_conv": dict(off, winograd=False, channels_last=False),
                            "narrow_conv+winograd": dict(off, channels_last=False),
                            "narrow_conv+winograd+channels_last": dict(off, channels_last=True)}
                default = ("narrow_conv+winograd+channels_last" if default_channels_last(model)
                           else "narrow_conv+winograd")
            else:  # no one-channel convolution: narrow_conv does nothing
                no_wino = dict(winograd=False, channels_last=False)
                no_phase = dict(no_wino, phase_deconv=False)
                all_on = "fold_bn+prune+fast_gm+phase_deconv+winograd"
                variants = {"eager": None,
                            "fold_bn": dict(fold_bn=True, prune=False, fast_gm=False, **no_phase),
                            "fold_bn+prune": dict(fold_bn=True, prune=True, fast_gm=False, **no_phase),
                            "fold_bn+prune+fast_gm": dict(fold_bn=True, prune=True, **no_phase),
                            "fold_bn+prune+fast_gm+phase_deconv": dict(fold_bn=True, prune=True, **no_wino),
                            all_on: dict(fold_bn=True, prune=True, channels_last=False),
                            all_on + "+channels_last": dict(fold_bn=True, prune=True, channels_last=True)}
                default = all_on + "+channels_last" if default_channels_last(model) else all_on
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
        records.append(dict(m, median_s=median_or_none(times[key]),
                            speedup_vs_eager=ratio_or_none(median_or_none(times[eager_key]), median_or_none(times[key])),
                            max_abs_diff=diff, times_s=times[key]))
    return records
