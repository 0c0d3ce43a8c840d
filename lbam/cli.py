"""The ``lbam`` command (also ``python -m lbam``).

  lbam inpaint IMAGE MASK -o OUT            one image
  lbam inpaint --images DIR --masks DIR --out DIR   a folder, masks matched by file name
  lbam weights list                         named weights of the manifest
  lbam train {edge,inpaint,joint} ...       train (see lbam.training)
  lbam finetune --data DIR --out RUN        continue from pretrained weights on your images
  lbam export RUN --out DIR                 a training run -> a weights folder
  lbam evaluate --data DIR                  the paper's protocol, against OpenCV Telea
  lbam convert-official --edge E --inpaint G --out DIR   the paper's published checkpoints -> safetensors
  lbam bench                                speed and memory benchmark
  lbam app [--port N] [--no-browser]        a local web page: paint the hole, sketch edges, see the fill

Bad input ends with a one-line error on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import List, Optional

from .detail import DETAILS
from .errors import LbamError
from .io import IMAGE_SUFFIXES
from .models.configs import EDGE_DECODES
from .tiling import REFINE_EDGES, STRATEGIES

log = logging.getLogger("lbam")


DTYPES = ("float32", "float16", "bfloat16")


def _inpainter(args):
    import torch

    from .api import Inpainter

    dtype = getattr(args, "dtype", None)
    dtype = None if dtype in (None, "float32") else getattr(torch, dtype)
    inp = Inpainter.from_pretrained(args.weights, device=args.device, dtype=dtype)
    inp.refine_edges = getattr(args, "refine_edges", inp.refine_edges)
    inp.detail = getattr(args, "detail", inp.detail)
    inp.detail_strength = getattr(args, "detail_strength", inp.detail_strength)
    return inp


def _pairs(images: Path, masks: Path):
    """(image, mask) paths matched by file stem; a mask may also be named <stem>_mask.*."""
    if not images.is_dir():
        raise LbamError(f"--images {images} is not a folder")
    if not masks.is_dir():
        raise LbamError(f"--masks {masks} is not a folder")
    by_stem = {}
    for p in sorted(masks.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            stem = p.stem[:-5] if p.stem.endswith("_mask") else p.stem
            by_stem.setdefault(stem, p)
    pairs, missing = [], []
    for p in sorted(images.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            (pairs.append((p, by_stem[p.stem])) if p.stem in by_stem else missing.append(p.name))
    if not pairs:
        raise LbamError(f"no image in {images} has a mask of the same name in {masks}")
    if missing:
        log.warning("%d image(s) without a mask are skipped: %s", len(missing), ", ".join(missing[:5]))
    return pairs


def _save_edges(edges, path: Path) -> None:
    import numpy as np
    from PIL import Image

    from .io import save_image

    save_image(Image.fromarray((np.clip(edges, 0, 1) * 255).round().astype(np.uint8)), path)


def _not_a_file(path: Path, what: str) -> None:
    if path.exists() and not path.is_dir():
        raise LbamError(f"{what} {path} is a file, not a folder")


def cmd_inpaint(args) -> int:
    from .io import check_output, load_image, result_mode, save_image

    folder_mode = bool(args.images or args.masks or args.out)
    loaded = {}  # single mode: the image, read while checking the output
    if folder_mode:
        if args.image or args.mask:
            raise LbamError("give either IMAGE MASK -o OUT or --images/--masks/--out, not both")
        if not (args.images and args.masks and args.out):
            raise LbamError("folder mode needs --images DIR --masks DIR --out DIR")
        _not_a_file(Path(args.out), "--out")
        if args.save_edges:
            _not_a_file(Path(args.save_edges), "--save-edges (a folder in folder mode)")
        jobs = [(im, m, Path(args.out) / (im.stem + ".png")) for im, m in _pairs(Path(args.images), Path(args.masks))]
    else:
        if not (args.image and args.mask and args.output):
            raise LbamError("usage: lbam inpaint IMAGE MASK -o OUT (or --images DIR --masks DIR --out DIR)")
        jobs = [(Path(args.image), Path(args.mask), Path(args.output))]
        # the output path and format are checked before the weights are loaded or anything is computed
        check_output(jobs[0][2])
        if args.save_edges:
            check_output(args.save_edges, "L")
        loaded = {jobs[0][0]: load_image(jobs[0][0])}
        check_output(jobs[0][2], result_mode(loaded[jobs[0][0]].mode))
    inp = _inpainter(args)
    from tqdm import tqdm

    failed = 0
    for image, mask, out in tqdm(jobs, disable=len(jobs) < 2 or args.quiet, unit="image"):
        try:
            img = loaded.pop(image) if image in loaded else load_image(image)
            check_output(out, result_mode(img.mode))
            result = inp.inpaint(img, mask, edges=args.edges, return_edges=bool(args.save_edges),
                                 strategy=args.strategy, dilate=args.dilate)
            if args.save_edges:
                result, edges = result
                epath = Path(args.save_edges)
                if folder_mode:
                    epath = epath / (image.stem + "_edges.png")
                _save_edges(edges, epath)
                if not args.quiet:
                    tqdm.write(str(epath))
            save_image(result, out)  # a temporary file beside out, then os.replace
            if not args.quiet:
                tqdm.write(str(out))  # the path written, one per line on stdout
        except LbamError as e:
            if len(jobs) == 1:
                raise
            failed += 1
            log.error("%s: %s", image.name, e)
    if failed:
        raise LbamError(f"{failed} of {len(jobs)} images failed")
    return 0


def cmd_weights(args) -> int:
    from .hub import load_manifest

    m = load_manifest()
    for name, entry in m["weights"].items():
        mark = "*" if name == m["default"] else " "
        where = "bundled" if entry.get("bundled") else f"hub:{entry.get('repo_id')}"
        metrics = entry.get("metrics", {}).get("summary", "")
        print(f"{mark} {name:28s} {entry.get('config', '?'):8s} {where:10s} {metrics}")
    return 0


def _train_config(args, stage: str, init: Optional[str], model: str):
    from .training.config import make_config

    data = args.data[0] if len(args.data) == 1 else list(args.data)
    return make_config(args.recipe, stage=stage, model=model, data=data, val=args.val, out=args.out,
                       init=init, max_minutes=args.max_minutes, max_steps=args.max_steps, decay_from=args.decay_from,
                       min_lr_ratio=args.min_lr_ratio, batch_size=args.batch_size,
                       size=args.size, lr=args.lr, edge_lr=args.edge_lr, pixel_loss=args.pixel_loss,
                       scale=tuple(args.scale) if args.scale else None, vgg_weights=args.vgg_weights,
                       mask_dir=args.mask_dir, hole_range=tuple(args.hole_range) if args.hole_range else None,
                       workers=args.workers, seed=args.seed, tensorboard=args.tensorboard or None,
                       w_grad=args.w_grad, w_grad_on=args.w_grad_on, w_grid=args.w_grid, w_adv=args.w_adv,
                       critic=args.critic, critic_width=args.critic_width, w_fm=args.w_fm,
                       disc_lr_ratio=args.disc_lr_ratio,
                       edge_pos_weight=args.edge_pos_weight, edge_loss=args.edge_loss,
                       edge_disc_width=args.edge_disc_width, edge_bce_weight=args.edge_bce_weight,
                       freeze_edges=args.freeze_edges or None, true_edge_share=args.true_edge_share,
                       val_every=args.val_every, edge_decode=getattr(args, "edge_decode", None),
                       short_side=args.short_side,
                       refine_factors=tuple(args.refine_factors) if args.refine_factors else None,
                       refine_share=args.refine_share, refine_short_side=args.refine_short_side,
                       smooth_upsampling=_on_off(getattr(args, "smooth_upsampling", None)),
                       cpu_bf16=getattr(args, "cpu_bf16", False) or None)


def _on_off(value: Optional[str]) -> Optional[bool]:
    return None if value is None else value == "on"


#: Steps of ``lbam finetune`` when neither --max-steps nor --max-minutes is given (about half an hour for compact
#: on a 2-core CPU at 3.5 s per step).
FINETUNE_STEPS = 500


def _run_training(cfg, resume: bool) -> int:
    """Train with a progress bar; Ctrl-C leaves a checkpoint and ends cleanly (status 0)."""
    from .training.trainer import Trainer

    trainer = Trainer(cfg, resume=resume)
    trainer.run(progress=True)
    if trainer.interrupted:
        print(f"lbam: interrupted at step {trainer.step}; checkpoint saved in {cfg.out} (continue with --resume, "
              f"or: lbam export {cfg.out} --out DIR)", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    cfg = _train_config(args, args.stage, args.init, args.config)
    return _run_training(cfg, args.resume)


def cmd_finetune(args) -> int:
    from .hub import resolve
    from .weights_io import read_weights_folder

    folder = resolve(args.weights)
    config = read_weights_folder(folder)[0]
    from .models import CONFIGS

    name = next((k for k, c in CONFIGS.items() if c.parameter_layout() == config.parameter_layout()), None)
    if name is None:
        raise LbamError(f"weights {args.weights} have a configuration lbam does not know")
    if args.max_steps is None and args.max_minutes is None:
        args.max_steps = FINETUNE_STEPS
    cfg = _train_config(args, "joint", str(folder), name)
    # keep the starting weights' own edge decoding (the named configuration's may differ)
    cfg = dataclasses.replace(cfg, edge_decode=config.edge_decode, edge_threshold=config.edge_threshold,
                              smooth_upsampling=config.generator.smooth_upsampling)
    return _run_training(cfg, args.resume)


def cmd_export(args) -> int:
    from .training.export import export_run

    hashes = export_run(args.run, args.out, half=args.half, ema=not args.raw)
    for name, digest in hashes.items():
        print(f"{digest}  {Path(args.out) / name}")
    return 0


def cmd_evaluate(args) -> int:
    from .training.evaluate import evaluate_weights, format_defects, format_table

    if args.native and args.edges != "mecnet":
        raise LbamError("--edges truth is measured on the 256 crops (the truth's Canny edges of each crop); "
                         "--native runs MECNet")
    if args.native:
        from .training.native import evaluate_native_weights, format_native

        result = evaluate_native_weights(args.weights, args.data, args.max_side, args.images, args.json, args.device,
                                         args.strategies, args.telea_radius or [3, 5], log=print,
                                         refine_edges=args.refine_edges, detail=args.detail)
        print(f"weights: {result['weights']}  data: {result['data']}  long side <= {args.max_side}")
        print(format_native(result))
        return 0

    result = evaluate_weights(args.weights, args.data, args.json, args.device, per_image=args.per_image,
                              telea_radii=args.telea_radius or [3], detail=args.detail,
                              gt_edges=args.edges == "truth")
    print(f"weights: {result['weights']}  data: {result['data']}")
    print(format_table(result["metrics"]))
    print()
    print(format_defects(result["metrics"]))
    return 0


def cmd_convert(args) -> int:
    from .convert import convert_official
    from .weights_io import sha256_file

    out = convert_official(args.edge, args.inpaint, args.out)
    for f in sorted(Path(out).iterdir()):
        print(f"{sha256_file(f)}  {f}")
    return 0


def cmd_app(args) -> int:
    from .app import missing_dependencies

    missing = missing_dependencies()
    if missing:  # the server's dependencies are the optional extra lbam[app]
        raise LbamError(f"lbam app needs its optional dependencies ({', '.join(missing)} missing): "
                        'pip install "lbam[app]"')
    if args.max_upload_mb <= 0 or args.max_megapixels <= 0:
        raise LbamError("--max-upload-mb and --max-megapixels must be positive")
    if args.port is not None and not 0 <= args.port <= 65535:
        raise LbamError(f"--port must be in [0, 65535], got {args.port}")
    from .app.server import bind, serve

    sock = bind(args.host, args.port)  # a taken port fails now, not after loading the weights
    print("lbam app: loading the weights ...", flush=True)
    inp = _inpainter(args)
    serve(inp, host=args.host, port=args.port, sock=sock, open_browser=not args.no_browser,
          max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=int(args.max_megapixels * 1e6),
          log_level="info" if args.verbose else "warning", announce=lambda line: print(line, flush=True))
    return 0


def _train_args(p: argparse.ArgumentParser, need_config: bool) -> None:
    p.add_argument("--data", required=True, nargs="+",
                   help="folder(s) of training images (recursive); several folders are sampled equally often")
    p.add_argument("--val", help="folder of validation images")
    p.add_argument("--out", required=True, help="run folder (checkpoints, logs, samples)")
    if need_config:
        p.add_argument("--config", default="compact", help="model configuration: paper, compact, tiny")
        p.add_argument("--init", help="start from these weights (folder, name or repo id)")
    p.add_argument("--recipe", default="fast", choices=("fast", "paper"))
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--decay-from", type=int, metavar="STEP",
                   help="cosine learning-rate decay from STEP to --max-steps, down to --min-lr-ratio (default 0.1)")
    p.add_argument("--min-lr-ratio", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--size", type=int, help="crop side (default 256)")
    p.add_argument("--lr", type=float, help="Edge-LBAM learning rate")
    p.add_argument("--edge-lr", type=float, help="MECNet learning rate")
    p.add_argument("--pixel-loss", choices=("l1", "l2"), help="hole-weighted L1 (paper) or squared error")
    p.add_argument("--scale", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="random zoom range of the training crops (short side 350 * U(MIN, MAX))")
    p.add_argument("--short-side", type=int,
                   help="short side the images are resized to before the zoom and the crop (default 350)")
    p.add_argument("--refine-factors", type=int, nargs="+", metavar="F",
                   help="train the coarse-to-fine refinement: the hole's prefill is the truth downscaled by one of "
                        "these factors (e.g. 2 4) and upscaled back, the losses see what strategy 'pyramid' keeps; "
                        "the export then says coarse_to_fine")
    p.add_argument("--refine-share", type=float, metavar="P",
                   help="with --refine-factors: the share of samples that refine (default 1); the others train the "
                        "coarse pass, so one set of weights serves both passes")
    p.add_argument("--refine-short-side", type=int, metavar="N",
                   help="with --refine-factors: cut refinement samples from the image at min(its own, N) short side, "
                        "never enlarged (the photo's own detail); default: as plain samples")
    p.add_argument("--vgg-weights", help="local VGG-16 weights file for the perceptual/style losses")
    p.add_argument("--mask-dir", help="folder of hole masks to train with (default: free-form masks)")
    p.add_argument("--hole-range", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="hole-area fraction range of the free-form training masks (default 0.05 0.6)")
    p.add_argument("--w-grad", type=float, help="weight of the local gradient-energy loss (sharper fills)")
    p.add_argument("--w-grad-on", choices=("all", "refine"),
                   help="where --w-grad applies: all samples (default) or only the refinement samples of "
                        "--refine-factors (sharper refinement passes, the coarse pass keeps the squared error)")
    p.add_argument("--w-grid", type=float, help="weight of the checkerboard (grid energy) loss")
    p.add_argument("--w-adv", type=float,
                   help="weight of the adversarial (WGAN-GP) term against a two-column critic (sharper texture; "
                        "0 in the fast recipe)")
    p.add_argument("--critic", choices=("two_column", "patch"),  # training.config.CRITICS (not imported here)
                   help="the adversary of --w-adv / --w-fm: the paper's two-column WGAN-GP critic (default) or a "
                        "spectral-norm PatchGAN on the image and hole, non-saturating, about 4x cheaper on a CPU")
    p.add_argument("--critic-width", type=int, help="base width of the critic (default 64, the paper's)")
    p.add_argument("--w-fm", type=float,
                   help="with --critic patch: weight of feature matching against the critic's layers (a perceptual "
                        "loss learned on the training photos; no ImageNet weights needed)")
    p.add_argument("--disc-lr-ratio", type=float, metavar="R",
                   help="learning rate of the critic (and of MECNet's discriminator) as a multiple of its network's "
                        "(default 0.1, the paper's)")
    p.add_argument("--edge-pos-weight", type=float,
                   help="weight of edge pixels in MECNet's BCE (1 = plain; more recall for NMS decoding)")
    p.add_argument("--edge-loss", choices=("bce", "gan"),  # training.config.EDGE_LOSSES (not imported here)
                   help="MECNet's loss: BCE against the Canny edges (the fast recipe) or the paper's adversarial "
                        "+ feature-matching loss against a PatchGAN (the paper recipe)")
    p.add_argument("--edge-disc-width", type=int,
                   help="with --edge-loss gan: base width of MECNet's discriminator (default 64, EdgeConnect's; "
                        "32 is about 3x cheaper on a CPU)")
    p.add_argument("--edge-bce-weight", type=float, metavar="W",
                   help="with --edge-loss gan: add W x BCE against the Canny edges of the hole (default 0, the "
                        "paper's loss alone); an anchor against lines the photo does not have")
    p.add_argument("--freeze-edges", action="store_true",
                   help="joint stage: keep MECNet fixed and train only the generator on its completed edges "
                        "(about 0.6x the time per step on a CPU)")
    p.add_argument("--true-edge-share", type=float, metavar="P",
                   help="joint stage: the share of samples whose generator reads the truth's Canny edges instead of "
                        "MECNet's completion (default 0), so it learns to follow the lines in a hole (MECNet's, a "
                        "sketch given with --edges); lbam evaluate --edges truth measures how much it does")
    p.add_argument("--val-every", type=int, metavar="STEPS", help="validate every STEPS steps (default 500)")
    p.add_argument("--cpu-bf16", action="store_true",
                   help="bfloat16 autocast on the CPU (weights and losses stay float32): faster on CPUs with "
                        "AVX512-BF16 or AMX, slower on others")
    if need_config:
        p.add_argument("--edge-decode", choices=EDGE_DECODES,
                       help="decoding of MECNet's map that the generator reads (default: the configuration's)")
        p.add_argument("--smooth-upsampling", choices=("on", "off"),
                       help="[1, 2, 1] blur after every upsampling stage of both networks (default: the "
                            "configuration's; on for compact)")
    p.add_argument("--workers", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--tensorboard", action="store_true")


def _threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: torch's choice, one per core); on a busy machine fewer "
                        "threads can be much faster")


def _set_threads(n: int) -> None:
    import torch

    if n < 1:
        raise LbamError(f"--threads must be at least 1, got {n}")
    torch.set_num_threads(n)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lbam", description="Edge-LBAM inpainting")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inpaint", help="fill the holes of an image (or a folder of images)")
    p.add_argument("image", nargs="?")
    p.add_argument("mask", nargs="?", help="white (>= 128) = hole")
    p.add_argument("-o", "--output", help="output image file")
    p.add_argument("--images", help="folder of images")
    p.add_argument("--masks", help="folder of masks, matched to images by file name")
    p.add_argument("--out", help="output folder (folder mode)")
    p.add_argument("--edges", help="an edge/sketch image steering the fill inside the hole (single image)")
    p.add_argument("--save-edges", help="write the completed edge map here (a folder in folder mode)")
    p.add_argument("--weights", help="weights name, folder or Hub repo id (default: bundled)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    p.add_argument("--strategy", default="auto", choices=STRATEGIES)
    p.add_argument("--refine-edges", default="mecnet", choices=REFINE_EDGES,
                   help="edges of strategy pyramid's refinement passes: mecnet completes them in every tile; prefill "
                        "takes them from the coarser fill and skips MECNet there (about 1.5x faster, slightly softer)")
    p.add_argument("--detail", default="none", choices=DETAILS,
                   help="context: add fine texture drawn from the photo's own pixels around the hole to the fill "
                        "(sharper, a little lower PSNR; README, Texture from the photo itself)")
    p.add_argument("--detail-strength", type=float, default=1.0, metavar="GAIN",
                   help="with --detail context: gain of the added texture (default 1, the photo's own amplitude)")
    p.add_argument("--dtype", default="float32", choices=DTYPES,
                   help="network precision: float16 / bfloat16 run the networks under autocast, for GPUs (on a CPU "
                        "without half-precision units they are much slower than float32)")
    p.add_argument("--dilate", type=int, default=0, metavar="PIXELS",
                   help="grow the hole by PIXELS first (masks that stop short of an object's rim or shadow)")
    _threads_arg(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors (no progress bar, no paths)")
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("weights", help="named weights")
    p.add_argument("action", choices=("list",))
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("train", help="train MECNet (edge), Edge-LBAM (inpaint) or both (joint)")
    p.add_argument("stage", choices=("edge", "inpaint", "joint"))
    _train_args(p, need_config=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("finetune", help="fine-tune pretrained weights on your images (joint stage; "
                                        f"{FINETUNE_STEPS} steps unless --max-steps or --max-minutes say otherwise)")
    p.add_argument("--weights", help="weights to start from (default: bundled)")
    _train_args(p, need_config=False)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("export", help="training run -> weights folder")
    p.add_argument("run")
    p.add_argument("--out", required=True)
    p.add_argument("--half", action="store_true", help="store float16 weights")
    p.add_argument("--raw", action="store_true", help="export the raw weights instead of their EMA")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate", help="PSNR/SSIM/L1 and defect numbers per hole bucket, ours vs OpenCV Telea")
    p.add_argument("--data", required=True)
    p.add_argument("--weights")
    p.add_argument("--device")
    p.add_argument("--json", help="write the report here")
    _threads_arg(p)
    p.add_argument("--per-image", type=int, default=4,
                   help="fixed crops per image (default 4: 20 crops per bucket on val/photo, the model card)")
    p.add_argument("--telea-radius", type=int, nargs="+", default=None, metavar="R",
                   help="OpenCV Telea radii to compare with in the same run (default 3; --native: 3 5)")
    p.add_argument("--edges", default="mecnet", choices=("mecnet", "truth"),
                   help="what the generator reads in the hole: MECNet's completed edges (default, as lbam inpaint) "
                        "or the truth's Canny edges: the gain over mecnet is how much a right line helps the fill "
                        "(the edge scores are then left out)")
    p.add_argument("--native", action="store_true",
                   help="whole photos at native resolution with object holes of 3-15 %% (lbam.training.native)")
    p.add_argument("--max-side", type=int, default=1024, help="--native: downscale photos to this long side")
    p.add_argument("--images", type=int, default=None, help="--native: only the first N photos")
    p.add_argument("--strategies", nargs="+", default=["pyramid", "single"],
                   help="--native: strategies to run (default: pyramid = coarse to fine, and single = the one-pass "
                        "crop or resize that auto picks without refinement; also auto, crop, resize, full)")
    p.add_argument("--refine-edges", default="mecnet", choices=REFINE_EDGES,
                   help="--native: edges of the pyramid's refinement passes (as lbam inpaint --refine-edges)")
    p.add_argument("--detail", default="none", choices=DETAILS,
                   help="what follows our fill, as lbam inpaint --detail (context: the photo's own texture added)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("convert-official", help="published .pth checkpoints -> a weights folder")
    p.add_argument("--edge", required=True, help="MECNet checkpoint (EdgeModel_gen.pth)")
    p.add_argument("--inpaint", required=True, help="Edge-LBAM generator checkpoint (LBAM.pth)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_convert)

    sub.add_parser("bench", help="speed and memory benchmark (see benchmarks/README.md; options: lbam bench --help)")

    p = sub.add_parser("app", help='a local web page: paint the hole, sketch edges, see the fill (pip install "lbam[app]")')
    p.add_argument("--port", type=int, help="TCP port (default 8765, or a free one when it is taken; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 = every interface)")
    p.add_argument("--weights", help="weights name, folder or Hub repo id (default: bundled)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="network precision (as for inpaint)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser, only print the URL")
    p.add_argument("--max-upload-mb", type=float, default=64, metavar="MIB",
                   help="largest request accepted (image + mask + edges; default 64 MiB)")
    p.add_argument("--max-megapixels", type=float, default=50, metavar="MP",
                   help="largest image accepted, in megapixels (default 50)")
    p.set_defaults(func=cmd_app)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the benchmark has its own options: hand them over untouched
        from .benchmark import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or args.command in ("train", "finetune") else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s" if args.verbose else "%(levelname)s: %(message)s")
    try:
        if getattr(args, "threads", None) is not None:
            _set_threads(args.threads)
        return args.func(args)
    except (LbamError, OSError, ValueError) as e:
        print(f"lbam: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lbam: interrupted", file=sys.stderr)
        return 130
