"""Crop planning, extraction and pasting so that any image size can be inpainted.

The networks were trained on 256 x 256 crops; the Edge-LBAM generator needs sides that are multiples of 128
(MECNet: multiples of 32). This module turns an image of any size plus its hole into network-sized inputs and
puts the answers back:

1. :func:`plan_crops` looks at the hole (a bool array (H, W), True = hole) and returns a list of :class:`Crop`
   (a box in image coordinates plus the working size the network sees);
2. :func:`extract` / :func:`extract_mask` cut every box (reflect-padding where a box leaves the image) and
   resize it to its working size; the results stack into one batch (see :func:`batched`);
3. :func:`paste` resizes each network answer back to its box and writes it into the image at hole pixels only.
   Pixels outside the hole are never modified.

Everything here is plain numpy / torch with no learned parameters. Coordinates are half-open: a box
``(y0, x0, y1, x1)`` covers rows ``y0 .. y1 - 1`` and columns ``x0 .. x1 - 1``.

Modules: :mod:`~lbam.tiling.plan` (step 1), :mod:`~lbam.tiling.crops` (steps 2-3, padding, batching) and
:mod:`~lbam.tiling.tiles` (the overlapping tiles of coarse-to-fine refinement and their blend); this package
re-exports their public names.
"""
from __future__ import annotations

#: The ways :func:`plan_crops` can cover an image (the one definition; the API and the CLI read it from here).
#: Defined before the submodules load, which import it, and importing only this name stays cheap (no torch).
STRATEGIES = ("auto", "crop", "resize", "full", "pyramid")
#: Where a "pyramid" refinement pass takes the edges inside each tile's hole (``Inpainter.refine_edges``):
#: "mecnet" completes them from the tile's known pixels; "prefill" takes the Canny edges of the upscaled coarser
#: fill the tile holds and skips MECNet (faster, and measured slightly lower; README, Large photos).
REFINE_EDGES = ("mecnet", "prefill")

_CROPS = ("batched", "extract", "extract_mask", "pad_to_multiple", "paste", "resize", "unpad")
_PLAN = ("Crop", "choose_strategy", "plan_crops")
_TILES = ("add_detail", "blend", "level_sizes", "plan_tiles", "tile_weight")

__all__ = [
    "STRATEGIES",
    "REFINE_EDGES",
    "Crop",
    "add_detail",
    "batched",
    "blend",
    "choose_strategy",
    "extract",
    "extract_mask",
    "level_sizes",
    "pad_to_multiple",
    "paste",
    "plan_crops",
    "plan_tiles",
    "resize",
    "tile_weight",
    "unpad",
]


def __getattr__(name):  # lazy: the submodules need torch and OpenCV; STRATEGIES alone does not
    if name in _CROPS:
        from . import crops

        return getattr(crops, name)
    if name in _PLAN:
        from . import plan

        return getattr(plan, name)
    if name in _TILES:
        from . import tiles

        return getattr(tiles, name)
    raise AttributeError(f"module 'lbam.tiling' has no attribute {name!r}")
