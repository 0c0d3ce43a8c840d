"""The public surface: ``Inpainter`` (build once, call many times) and ``lbam.inpaint`` (one line).

Data path of ``Inpainter.inpaint``: io (coerce and validate) -> tiling (plan crops around the holes, scale them
to the training size) -> edges (Canny of the known region of each crop) -> models (MECNet completes the edges,
Edge-LBAM fills the hole; ``compose.complete``) -> tiling (paste the hole pixels back) -> io (return the
caller's kind, known pixels untouched).
"""
from __future__ import annotations

import contextlib
import warnings
from functools import lru_cache, partial
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from . import hub, io, memory, tiling
from .compose import complete
from .detail import DETAILS, add_context_detail
from .edges import canny, canny_edges, rgb_to_gray
from .errors import InputError, WeightsError
from .models import EdgeLBAM, MECNet, ModelConfig, get_config
from .weights_io import read_weights_folder, write_weights_folder


def _device(device: Union[str, torch.device, None]) -> torch.device:
    """None -> CUDA when available, else the CPU; otherwise the named device, which must be usable here.

    Raises InputError for a malformed name and for a device this torch build or machine does not have
    (``cuda`` on a CPU-only torch, ``cuda:3`` on a one-GPU machine, ...)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"invalid device {device!r}: {e}") from None
    try:  # a one-element allocation is the one check that works for every device type
        torch.empty(1, device=dev)
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, AssertionError, ... by backend
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0][:160]
        raise InputError(f"device {device!r} is not available ({reason})") from None
    return dev


class Inpainter:
    """Edge-LBAM inpainting: MECNet edge completion followed by the Edge-LBAM generator.

    Build with :meth:`from_pretrained`; then call :meth:`inpaint` as often as needed. ``.mecnet`` and
    ``.generator`` are the two networks (eval mode), ``.config`` their :class:`ModelConfig`. ``.max_memory``
    (bytes, default None = the device's free memory) bounds the estimated peak memory of a call: batches of
    crops shrink to fit, and a plan that cannot fit is refused with an InputError before anything runs.
    """

    def __init__(self, mecnet: MECNet, generator: EdgeLBAM, config: ModelConfig, *, device=None,
                 dtype: Optional[torch.dtype] = None, name: str = "", fuse: bool = True) -> None:
        self.device = _device(device)
        if dtype not in (None, torch.float32, torch.float16, torch.bfloat16):
            raise ValueError(f"dtype must be None, torch.float32, torch.float16 or torch.bfloat16, got {dtype}")
        self.dtype = dtype
        self.config = config
        self.name = name
        self.mecnet = mecnet.to(self.device).eval()
        self.generator = generator.to(self.device).eval()
        for p in list(self.mecnet.parameters()) + list(self.generator.parameters()):
            p.requires_grad_(False)
        # Inference runs on optimised copies with the same outputs (BatchNorm folded, dead branches pruned,
        # channels-last where it pays; see lbam.models.fuse). ``.mecnet`` / ``.generator`` stay the reference
        # modules that save_pretrained writes; call ``refresh()`` after changing their weights.
        self.fuse = fuse
        #: Memory budget of one call in bytes; None = what the device has free (see lbam.memory).
        self.max_memory: Optional[int] = None
        #: Whether strategy "auto" refines large photos coarse to fine ("pyramid"; needs ``refines``). Off unless
        #: the weights' config.json says ``"coarse_to_fine": true`` (weights trained to refine an upscaled fill):
        #: with weights trained only at 256, the refinement costs 5-10x the time for no measured gain (README).
        self.coarse_to_fine = False
        self.refine_edges = "mecnet"
        self.detail = "none"
        self.detail_strength = 1.0
        self.refresh()

    @property
    def refine_edges(self) -> str:
        """Where a refinement pass of "pyramid" gets the edges inside each tile's hole (``tiling.REFINE_EDGES``):
        "mecnet" (MECNet completes them from the tile's known pixels) or "prefill" (the Canny edges of the
        upscaled coarser fill the tile holds; MECNet, about half of a pass's time, is not run). A user's edge
        guide wins over both. Any other value is refused when assigned (ValueError)."""
        return self._refine_edges

    @refine_edges.setter
    def refine_edges(self, value: str) -> None:
        if value not in tiling.REFINE_EDGES:
            raise ValueError(f"refine_edges must be one of {tiling.REFINE_EDGES}, got {value!r}")
        self._refine_edges = value

    @property
    def detail(self) -> str:
        """What follows the fill (``lbam.detail.DETAILS``): "none" (the networks' fill as it is) or "context" (fine
        luminance texture drawn from the photo's own known pixels around the hole is added to the fill,
        :func:`lbam.detail.add_context_detail`: sharper, at some cost in PSNR; README). Any other value is refused
        when assigned (ValueError)."""
        return self._detail

    @detail.setter
    def detail(self, value: str) -> None:
        if value not in DETAILS:
            raise ValueError(f"detail must be one of {DETAILS}, got {value!r}")
        self._detail = value

    @property
    def detail_strength(self) -> float:
        """Gain of the texture that ``detail = "context"`` adds (1 = the photo's own amplitude; 0 adds nothing)."""
        return self._detail_strength

    @detail_strength.setter
    def detail_strength(self, value: float) -> None:
        if not (isinstance(value, (int, float)) and 0 <= value < float("inf")):
            raise ValueError(f"detail_strength must be a number >= 0, got {value!r}")
        self._detail_strength = float(value)

    def refresh(self) -> None:
        """Rebuild the inference copies of the networks from ``.mecnet`` and ``.generator``."""
        if self.fuse:
            from .models.fuse import fuse_for_inference

            self._mecnet_run = fuse_for_inference(self.mecnet)
            self._generator_run = fuse_for_inference(self.generator)
        else:
            self._mecnet_run, self._generator_run = self.mecnet, self.generator

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Union[str, ModelConfig] = "compact", **kwargs: Any) -> "Inpainter":
        """Randomly initialised networks of a named configuration (for training and tests, not for use)."""
        cfg = get_config(config) if isinstance(config, str) else config
        return cls(MECNet(cfg.mecnet), EdgeLBAM(cfg.generator), cfg, name=f"random-{cfg.name}", **kwargs)

    @classmethod
    def from_pretrained(cls, name_or_path: Optional[str] = None, *, device=None, dtype: Optional[torch.dtype] = None,
                        revision: Optional[str] = None, cache_dir: Optional[str] = None,
                        fuse: bool = True) -> "Inpainter":
        """Load weights: None = the bundled default; a name from ``weights_manifest.json``; a local weights
        folder; or a Hugging Face Hub repo id (``owner/name``, cached, ``revision``, ``HF_HUB_OFFLINE``).

        device: "cpu", "cuda", ... (default: CUDA when available). dtype: None / torch.float32 for full
        precision, torch.float16 or torch.bfloat16 to run the networks under autocast (CUDA).
        fuse: run optimised copies of the networks (same outputs; see lbam.models.fuse).
        """
        folder, checked = hub.locate(name_or_path, revision=revision, cache_dir=cache_dir)
        config, mec_sd, gen_sd, meta = read_weights_folder(folder, verify=not checked)
        mecnet, generator = MECNet(config.mecnet), EdgeLBAM(config.generator)
        try:
            mecnet.load_state_dict({k: v.float() for k, v in mec_sd.items()})
            generator.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in gen_sd.items()})
        except RuntimeError as e:
            raise WeightsError(f"weights in {folder} do not fit configuration {config.name!r}: {e}") from None
        name = str(name_or_path) if name_or_path is not None else hub.load_manifest()["default"]
        inpainter = cls(mecnet, generator, config, device=device, dtype=dtype, name=name, fuse=fuse)
        inpainter.coarse_to_fine = meta.get("coarse_to_fine") is True and inpainter.refines
        return inpainter

    def save_pretrained(self, directory, extra: Optional[dict] = None) -> dict:
        """Write a weights folder that :meth:`from_pretrained` reads back; returns {file: sha256}."""
        return write_weights_folder(directory, self.config, self.mecnet.state_dict(), self.generator.state_dict(),
                                    extra={"source": self.name, **(extra or {})})

    # ---- inference ------------------------------------------------------------------------------
    def _autocast(self):
        if self.dtype in (torch.float16, torch.bfloat16):
            return torch.autocast(self.device.type, dtype=self.dtype)
        return contextlib.nullcontext()

    def _run(self, image: torch.Tensor, hole: torch.Tensor, guide: Optional[torch.Tensor],
             prefill: Optional[torch.Tensor] = None):
        """Networks on a batch at network size: image (K,3,s,s), hole (K,1,s,s), guide (K,1,s,s) or None,
        prefill (K,3,s,s) or None (the generator's own pyramid fill)."""
        cfg = self.config
        edges = canny_edges(rgb_to_gray(image), hole, cfg.canny_sigma, cfg.canny_low, cfg.canny_high)
        generator = self._generator_run if prefill is None else partial(self._generator_run, prefill=prefill)
        with self._autocast():
            out, edge = complete(self._mecnet_run, generator, image, hole, edges, guide,
                                 cfg.edge_decode, cfg.edge_threshold)
        return out.float(), edge.float()

    @property
    def refines(self) -> bool:
        """Whether the generator takes a prefill, so that strategy "pyramid" (coarse to fine) can run."""
        return self.config.generator.prefill == "pyramid"

    def _refine(self, img_t: torch.Tensor, hole: np.ndarray, guide_t: Optional[torch.Tensor], coarse_scale: float,
                batch_size: int, edge_canvas: Optional[torch.Tensor]) -> None:
        """Coarse-to-fine refinement, in place: img_t (1,3,H,W) holds the coarse fill (made at ``coarse_scale``)
        in the hole; at each scale of :func:`lbam.tiling.level_sizes` (2x finer each time, the native size last)
        the image is resampled, its hole covered by overlapping network-sized tiles whose generator prefill is
        the current (upscaled coarser) fill, each answer keeps the prefill's coarse content and adds only the
        network's fine detail (:func:`lbam.tiling.add_detail`), and the blended answers
        (:func:`lbam.tiling.blend`) replace the hole pixels of img_t. edge_canvas (1,H,W) or None: receives the
        native pass's edge maps, blended."""
        (h, w), tile = hole.shape, self.config.train_size
        overlap = tile // 8
        for size in tiling.level_sizes((h, w), coarse_scale):
            native = size == (h, w)
            whole = [tiling.Crop((0, 0, h, w), size)]
            level_img = img_t if native else tiling.extract(img_t, whole)
            level_hole = hole if native else tiling.extract_mask(hole, whole)[0, 0].numpy() > 0.5
            level_guide = guide_t if native or guide_t is None else tiling.extract(guide_t, whole)
            tiles = tiling.plan_tiles(level_hole, tile, overlap)
            k = self._fit_memory(tiles, (h, w), "pyramid", batch_size,
                                 extra=memory.refine_pass_bytes(len(tiles), tile, size))
            outs, edge_maps = [], []
            for group in tiling.batched(tiles, k):
                x = tiling.extract(level_img, group)
                m = tiling.extract_mask(level_hole, group, device=self.device)
                g = tiling.extract(level_guide, group) if level_guide is not None else None
                if g is None and self.refine_edges == "prefill":
                    cfg = self.config
                    g = canny_edges(rgb_to_gray(x), torch.zeros_like(m), cfg.canny_sigma, cfg.canny_low,
                                    cfg.canny_high)
                out, edge = self._run(x, m, g, prefill=x)
                outs.append(tiling.add_detail(x, out))
                edge_maps.append(edge)
            refined = tiling.blend(level_img[0], torch.cat(outs), tiles, level_hole, overlap, inplace=native)
            if native:
                if edge_canvas is not None:
                    tiling.blend(edge_canvas, torch.cat(edge_maps), tiles, hole, overlap, inplace=True)
            else:
                tiling.paste(img_t[0], refined[None], whole, hole, inplace=True)

    def _fit_memory(self, crops: List[tiling.Crop], image_size: Tuple[int, int], strategy: str,
                    batch_size: int, extra: int = 0) -> int:
        """The batch size to run ``crops`` with: ``batch_size``, halved while the estimated peak memory
        (:func:`lbam.memory.estimate_bytes` plus ``extra`` bytes) exceeds ``self.max_memory`` (None: what the
        device has free).
        Raises InputError, before any network runs, when even one crop at a time does not fit."""
        limit = self.max_memory if self.max_memory is not None else memory.available_bytes(self.device)
        if limit is None or not crops:
            return batch_size
        k = max(1, min(batch_size, len(crops)))
        while k > 1 and memory.estimate_bytes(self.config, crops[0].size, k, image_size) + extra > limit:
            k //= 2
        need = memory.estimate_bytes(self.config, crops[0].size, k, image_size) + extra
        if need > limit:
            (h, w), (ch, cw) = image_size, crops[0].size
            raise InputError(
                f"strategy {strategy!r} on this {w}x{h} image runs the networks on {cw}x{ch} pixels and needs about "
                f"{need / memory.GIB:.1f} GiB, more than the {limit / memory.GIB:.1f} GiB available on "
                f"{self.device}; use strategy 'crop' (only the holes, at the training size) or 'resize' (one "
                "downscaled pass), e.g. --strategy crop")
        return k

    @torch.inference_mode()
    def _inpaint_one(self, rgb: np.ndarray, hole: np.ndarray, guide: Optional[np.ndarray], strategy: str,
                     batch_size: int, want_edges: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """rgb (H,W,3) float32 [0,1], hole (H,W) bool, guide (H,W) float or None -> (result (H,W,3), edges (H,W)).

        On the CPU the hole pixels of ``rgb`` are overwritten and the result is ``rgb`` itself."""
        dev = self.device
        img_t = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(dev)
        guide_t = torch.from_numpy(guide.astype(np.float32))[None, None].to(dev) if guide is not None else None
        if strategy == "auto":
            refine = self.coarse_to_fine and self.refines
            strategy = tiling.choose_strategy(hole, self.config.train_size, refine=refine)
        if strategy == "pyramid" and not self.refines:
            raise InputError(f"strategy 'pyramid' needs a generator that takes a prefill (configuration "
                             f"{self.config.name!r} does not); use 'crop' or 'resize'")
        crops = tiling.plan_crops(hole, self.config.train_size, strategy=strategy)
        batch_size = self._fit_memory(crops, hole.shape, strategy, batch_size)
        outs: List[torch.Tensor] = []
        edge_maps: List[torch.Tensor] = []
        for group in tiling.batched(crops, batch_size):
            x = tiling.extract(img_t, group)
            h = tiling.extract_mask(hole, group, device=dev)
            g = tiling.extract(guide_t, group) if guide_t is not None else None
            out, edge = self._run(x, h, g)
            outs.append(out)
            edge_maps.append(edge)
        edges_full = None
        if want_edges:  # before the paste below, which writes into rgb (on the CPU)
            cfg = self.config
            known_edges = canny(rgb_to_gray(rgb), ~hole, cfg.canny_sigma, cfg.canny_low, cfg.canny_high)
            canvas = torch.from_numpy(known_edges.astype(np.float32))[None].to(dev)
            edges_full = tiling.paste(canvas, torch.cat(edge_maps), crops, hole, inplace=True)[0].cpu().numpy()
        # in place: img_t is our own copy (rgb, or its copy on the device), so no clone of the whole image; on
        # the CPU the result is then rgb itself, C-contiguous (H, W, 3)
        result = tiling.paste(img_t[0], torch.cat(outs), crops, hole, inplace=True)
        if strategy == "pyramid":
            edge_canvas = torch.from_numpy(edges_full)[None].to(dev) if edges_full is not None else None
            self._refine(img_t, hole, guide_t, min(min(c.scale) for c in crops), batch_size, edge_canvas)
            edges_full = edge_canvas[0].cpu().numpy() if edge_canvas is not None else None
        if self.detail == "context":  # in place on img_t, which result shares (and rgb, on the CPU)
            # the band the fill lacks: a pyramid's last pass ran at native size, a single pass at its crops' scale
            scale = 1.0 if strategy == "pyramid" else min(min(c.scale) for c in crops)
            add_context_detail(img_t, hole, scale, self.detail_strength)
        return result.permute(1, 2, 0).cpu().numpy(), edges_full

    def inpaint(self, image, mask, *, edges=None, return_edges: bool = False, strategy: str = "auto",
                batch_size: int = 4, dilate: int = 0):
        """Fill the holes of ``image`` given by ``mask``.

        image: PIL image, numpy (H,W,3) uint8 RGB or float in [0,1] (also gray, RGBA, uint16), torch (3,H,W) or
            (B,3,H,W) in [0,1], or a file path. See :mod:`lbam.io` for every rule.
        mask: same kinds, (H,W) or 3-channel; white / non-zero (>= 128 for uint8, > 0.5 for float) = hole.
        edges: optional user edge or sketch map (same kinds and size as the mask, white = edge) that replaces
            MECNet's predicted edges inside the hole, to steer the structure of the fill.
        return_edges: also return the completed edge map, (H,W) float32 in [0,1] ((B,H,W) for a batch).
        strategy: "auto" | "crop" | "resize" | "full" | "pyramid" (see :func:`lbam.tiling.plan_crops`; "pyramid"
            is coarse to fine, for generators that take a prefill such as the compact configuration's, and
            "auto" picks it for large images when ``.coarse_to_fine`` is set: ``refine=True`` there). Its memory
            is estimated
            first (:mod:`lbam.memory`): more than ``.max_memory`` or the device's free memory is an InputError
            ("full" on a large photo: use "crop" or "resize").
        dilate: grow the hole by this many pixels first (:func:`lbam.io.grow_hole`; 0 = the mask as given),
            for object masks that stop short of the object's rim or shadow.
        Returns the result in the kind, dtype and layout of ``image``; pixels outside the (grown) hole are
        exactly the input's. With ``return_edges`` a tuple (result, edges).
        """
        if strategy not in tiling.STRATEGIES:
            raise InputError(f"strategy must be one of {tiling.STRATEGIES}, got {strategy!r}")
        rgb, kind = io.to_rgb_float(image)
        n, (h, w) = rgb.shape[0], rgb.shape[1:3]
        hole = io.grow_hole(io.to_hole_mask(mask, (h, w), n), dilate)
        guide = io.to_hole_mask(edges, (h, w), n).astype(np.float32) if edges is not None else None
        if hole.all(axis=(1, 2)).any():
            raise InputError("the mask covers the whole image: there is no known pixel to condition on")
        results, edge_list = [], []
        for i in range(n):
            if not hole[i].any():
                warnings.warn("the mask has no hole pixel: the image is returned unchanged", stacklevel=2)
                results.append(rgb[i])
                edge_list.append(np.zeros((h, w), np.float32))
                continue
            res, e = self._inpaint_one(rgb[i], hole[i], None if guide is None else guide[min(i, len(guide) - 1)],
                                       strategy, batch_size, return_edges)
            results.append(res)
            edge_list.append(e)
        out = io.from_rgb_float(results[0][None] if n == 1 else np.stack(results), image, kind, hole)
        if not return_edges:
            return out
        return out, (np.stack(edge_list) if kind.batched else edge_list[0])

    def inpaint_batch(self, images: Sequence[Any], masks: Sequence[Any], **kwargs: Any) -> list:
        """``inpaint`` over pairs of (image, mask); images may differ in size and kind. Returns a list."""
        if len(images) != len(masks):
            raise InputError(f"{len(images)} images but {len(masks)} masks")
        return [self.inpaint(im, m, **kwargs) for im, m in zip(images, masks)]

    def __repr__(self) -> str:
        return f"Inpainter(name={self.name!r}, config={self.config.name!r}, device={self.device})"


@lru_cache(maxsize=1)
def _default_inpainter() -> Inpainter:
    return Inpainter.from_pretrained()


def inpaint(image, mask, **kwargs: Any):
    """One-line inpainting with the bundled default weights (loaded once and cached). See ``Inpainter.inpaint``."""
    return _default_inpainter().inpaint(image, mask, **kwargs)
