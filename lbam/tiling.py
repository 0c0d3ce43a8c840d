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
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "STRATEGIES",
    "Crop",
    "batched",
    "choose_strategy",
    "extract",
    "extract_mask",
    "pad_to_multiple",
    "paste",
    "plan_crops",
    "resize",
    "unpad",
]

STRATEGIES = ("auto", "crop", "resize", "full")
_PAD_MODES = ("reflect", "replicate")

T = TypeVar("T")
HoleLike = Union[np.ndarray, torch.Tensor]


# --------------------------------------------------------------------------------------------------------- Crop


@dataclass(frozen=True)
class Crop:
    """One network input: an image box and the size it is resized to.

    box: ``(y0, x0, y1, x1)`` in image pixels, half-open, ``y1 > y0`` and ``x1 > x0``. The box may extend beyond
        the image (negative starts or ends past H / W): :func:`extract` then fills the outside by reflection.
    size: ``(h, w)`` working size fed to the network; an int ``s`` means ``(s, s)``. For the "crop" strategy
        this is ``(train_size, train_size)`` and the box is square; for "full" / "resize" it is the whole image's
        (non-square) shape rounded to a multiple of 128.
    """

    box: Tuple[int, int, int, int]
    size: Tuple[int, int]

    def __post_init__(self) -> None:
        box = tuple(int(v) for v in self.box)
        if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"Crop box must be (y0, x0, y1, x1) with y1 > y0 and x1 > x0, got {self.box}")
        size = (self.size, self.size) if isinstance(self.size, (int, np.integer)) else self.size
        size = tuple(int(v) for v in size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"Crop size must be a positive int or (h, w), got {self.size}")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "size", size)

    @property
    def box_size(self) -> Tuple[int, int]:
        """``(height, width)`` of the box in image pixels."""
        y0, x0, y1, x1 = self.box
        return y1 - y0, x1 - x0

    @property
    def scale(self) -> Tuple[float, float]:
        """``(sy, sx)`` = working size / box size; < 1 means the box is downscaled for the network."""
        bh, bw = self.box_size
        return self.size[0] / bh, self.size[1] / bw

    def clip(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """The part of the box inside an image of ``height x width``, as ``(y0, x0, y1, x1)`` (may be empty)."""
        y0, x0, y1, x1 = self.box
        y0, x0 = max(y0, 0), max(x0, 0)
        return y0, x0, max(min(y1, height), y0), max(min(x1, width), x0)


# ----------------------------------------------------------------------------------------------------- planning


def _as_hole_array(hole: HoleLike) -> np.ndarray:
    """(H, W) bool (or 0/1 numbers, numpy or torch) -> contiguous numpy bool (H, W)."""
    if isinstance(hole, torch.Tensor):
        hole = hole.detach().cpu().numpy()
    hole = np.asarray(hole)
    if hole.ndim != 2 or hole.shape[0] < 1 or hole.shape[1] < 1:
        raise ValueError(f"hole must be a non-empty 2-D array (H, W), got shape {hole.shape}")
    return np.ascontiguousarray(hole if hole.dtype == bool else hole != 0)


def _ceil_to(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


@dataclass(frozen=True)
class _Params:
    train_size: int
    context: int
    multiple: int
    max_hole_fraction: float
    merge_distance: int
    full_max_side: int
    resize_max_side: int
    resize_hole_fraction: float


def _params(train_size, context, multiple, max_hole_fraction, merge_distance, full_max_side, resize_max_side,
            resize_hole_fraction) -> _Params:
    if multiple < 1 or train_size < multiple or train_size % multiple:
        raise ValueError(f"train_size ({train_size}) must be a positive multiple of multiple ({multiple})")
    if not 0.0 < max_hole_fraction <= 1.0:
        raise ValueError(f"max_hole_fraction must be in (0, 1], got {max_hole_fraction}")
    p = _Params(
        train_size=int(train_size),
        context=int(train_size // 4 if context is None else context),
        multiple=int(multiple),
        max_hole_fraction=float(max_hole_fraction),
        merge_distance=int(train_size // 16 if merge_distance is None else merge_distance),
        full_max_side=int(2 * train_size if full_max_side is None else full_max_side),
        resize_max_side=int(2 * train_size if resize_max_side is None else resize_max_side),
        resize_hole_fraction=float(resize_hole_fraction),
    )
    if p.context < 0 or p.merge_distance < 0 or p.resize_max_side < p.multiple:
        raise ValueError("context and merge_distance must be >= 0 and resize_max_side >= multiple")
    return p


def _hole_boxes(hole: np.ndarray, merge_distance: int) -> np.ndarray:
    """Bounding boxes (n, 4) int64 ``(y0, x0, y1, x1)`` of the hole's components after merging blobs closer
    than about ``2 * merge_distance`` pixels (8-connectivity on the hole dilated by a square of that radius).
    Every hole pixel lies in the box of its component; boxes touching the image border may be up to
    ``merge_distance`` pixels larger than tight on that side."""
    h, w = hole.shape
    r = merge_distance
    grown = hole.astype(np.uint8)
    if r > 0:
        grown = cv2.dilate(grown, np.ones((2 * r + 1, 2 * r + 1), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    stats = stats[1:].astype(np.int64)  # drop the background; columns: x, y, width, height, area
    x0, y0 = stats[:, 0], stats[:, 1]
    x1, y1 = x0 + stats[:, 2], y0 + stats[:, 3]
    # the dilated box is the hole box grown by r and clipped to the image: undo the growth where not clipped
    y0, x0 = np.where(y0 > 0, y0 + r, 0), np.where(x0 > 0, x0 + r, 0)
    y1, x1 = np.where(y1 < h, y1 - r, h), np.where(x1 < w, x1 - r, w)
    return np.stack([y0, x0, y1, x1], axis=1)


def _place(lo: np.ndarray, hi: np.ndarray, side: np.ndarray, n: int) -> np.ndarray:
    """Start of a window of length ``side`` holding ``[lo, hi)``: centred on it and shifted inside ``[0, n)``
    when ``side <= n``; centred on the image (sticking out on both ends) when ``side > n``."""
    start = np.minimum(np.maximum((lo + hi - side) // 2, 0), n - side)
    return np.where(side <= n, start, (n - side) // 2)


def _square_boxes(hole_boxes: np.ndarray, shape: Tuple[int, int], p: _Params) -> np.ndarray:
    """Square crop boxes (n, 4) around hole boxes (n, 4): side = max(extent / max_hole_fraction,
    extent + 2 * context) where extent is the hole box's longer side, capped at max(H, W) (such a box already
    holds the whole image) and raised to at least train_size."""
    ext = np.maximum(hole_boxes[:, 2] - hole_boxes[:, 0], hole_boxes[:, 3] - hole_boxes[:, 1])
    side = np.maximum(np.ceil(ext / p.max_hole_fraction - 1e-9).astype(np.int64), ext + 2 * p.context)
    side = np.maximum(np.minimum(side, max(shape)), p.train_size)  # a box of side max(H, W) holds the image
    y0 = _place(hole_boxes[:, 0], hole_boxes[:, 2], side, shape[0])
    x0 = _place(hole_boxes[:, 1], hole_boxes[:, 3], side, shape[1])
    return np.stack([y0, x0, y0 + side, x0 + side], axis=1)


def _touching_groups(boxes: np.ndarray) -> np.ndarray:
    """Group label (n,) per box: boxes that overlap or touch, directly or through a chain, share a label.

    Paints the boxes on a grid (compressed to the boxes' edge coordinates when that is smaller than the pixel
    grid) with a 2-D difference array and labels the covered area's 4-connected components."""
    grids = []
    for lo, hi in ((boxes[:, 0], boxes[:, 2]), (boxes[:, 1], boxes[:, 3])):
        edges = np.unique(np.concatenate([lo, hi]))
        span = np.arange(edges[0], edges[-1] + 1)
        grids.append(edges if len(edges) < len(span) else span)
    gy, gx = grids
    iy0, iy1 = np.searchsorted(gy, boxes[:, 0]), np.searchsorted(gy, boxes[:, 2])
    ix0, ix1 = np.searchsorted(gx, boxes[:, 1]), np.searchsorted(gx, boxes[:, 3])
    diff = np.zeros((len(gy), len(gx)), np.int32)
    np.add.at(diff, (iy0, ix0), 1)
    np.add.at(diff, (iy0, ix1), -1)
    np.add.at(diff, (iy1, ix0), -1)
    np.add.at(diff, (iy1, ix1), 1)
    covered = (diff.cumsum(0, dtype=np.int32).cumsum(1, dtype=np.int32) > 0).astype(np.uint8)
    _, labels = cv2.connectedComponents(covered, connectivity=4)
    return labels[iy0, ix0]


def _plan_square(hole: np.ndarray, p: _Params) -> List[Crop]:
    """The "crop" strategy: disjoint square boxes around merged hole components, working size train_size."""
    hole_boxes = _hole_boxes(hole, p.merge_distance)
    while True:
        boxes = _square_boxes(hole_boxes, hole.shape, p)
        if len(boxes) <= 1:
            break
        _, group = np.unique(_touching_groups(boxes), return_inverse=True)
        n = int(group.max()) + 1
        if n == len(boxes):
            break  # pairwise disjoint (not even touching): done
        merged = np.empty((n, 4), np.int64)
        merged[:, :2] = np.iinfo(np.int64).max
        merged[:, 2:] = np.iinfo(np.int64).min
        np.minimum.at(merged[:, 0], group, hole_boxes[:, 0])
        np.minimum.at(merged[:, 1], group, hole_boxes[:, 1])
        np.maximum.at(merged[:, 2], group, hole_boxes[:, 2])
        np.maximum.at(merged[:, 3], group, hole_boxes[:, 3])
        hole_boxes = merged  # strictly fewer boxes each round, so this terminates
    order = np.lexsort((boxes[:, 1], boxes[:, 0]))  # row-major, deterministic
    return [Crop(tuple(int(v) for v in boxes[i]), (p.train_size, p.train_size)) for i in order]


def _plan_full(shape: Tuple[int, int], p: _Params) -> List[Crop]:
    h, w = shape
    hp, wp = _ceil_to(h, p.multiple), _ceil_to(w, p.multiple)
    return [Crop((0, 0, hp, wp), (hp, wp))]


def _plan_resize(shape: Tuple[int, int], p: _Params) -> List[Crop]:
    h, w = shape
    s = min(1.0, p.resize_max_side / max(h, w))
    size = tuple(max(p.multiple, int(round(n * s / p.multiple)) * p.multiple) for n in (h, w))
    return [Crop((0, 0, h, w), size)]


def _auto(hole: np.ndarray, p: _Params) -> Tuple[str, List[Crop]]:
    h, w = hole.shape
    if max(_ceil_to(h, p.multiple), _ceil_to(w, p.multiple)) <= p.full_max_side:
        return "full", []
    if hole.mean() > p.resize_hole_fraction:
        return "resize", []
    crops = _plan_square(hole, p) if hole.any() else []
    resize_scale = min(1.0, p.resize_max_side / max(h, w))
    if crops and min(min(c.scale) for c in crops) < resize_scale:
        return "resize", []
    return "crop", crops


def choose_strategy(
    hole: HoleLike,
    train_size: int = 256,
    context: Optional[int] = None,
    *,
    multiple: int = 128,
    max_hole_fraction: float = 0.5,
    merge_distance: Optional[int] = None,
    full_max_side: Optional[int] = None,
    resize_max_side: Optional[int] = None,
    resize_hole_fraction: float = 0.4,
) -> str:
    """The strategy ``plan_crops(..., strategy="auto")`` uses for this hole: "full", "crop" or "resize".

    Same arguments as :func:`plan_crops`; the rule is documented there.
    """
    p = _params(train_size, context, multiple, max_hole_fraction, merge_distance, full_max_side,
                resize_max_side, resize_hole_fraction)
    return _auto(_as_hole_array(hole), p)[0]


def plan_crops(
    hole: HoleLike,
    train_size: int = 256,
    context: Optional[int] = None,
    strategy: str = "auto",
    *,
    multiple: int = 128,
    max_hole_fraction: float = 0.5,
    merge_distance: Optional[int] = None,
    full_max_side: Optional[int] = None,
    resize_max_side: Optional[int] = None,
    resize_hole_fraction: float = 0.4,
) -> List[Crop]:
    """Plan the network inputs for one image.

    hole: (H, W) bool, True = hole (numpy or torch; nonzero numbers count as hole).
    train_size: crop side the networks were trained on (a multiple of ``multiple``).
    context: minimum known border kept around a hole inside a crop, in image pixels; default train_size // 4.
    strategy: "auto", "crop", "resize" or "full":

    - "crop": label the hole's connected components (blobs closer than ~2 * merge_distance pixels,
      default train_size // 16, count as one), and give each a square box of side
      ``max(extent / max_hole_fraction, extent + 2 * context)`` (extent = longer side of the component's
      bounding box), capped at max(H, W) and raised to at least train_size, centred on it and shifted inside the image when the image is big enough
      (otherwise it sticks out and is reflect-padded). Boxes that overlap or touch are merged (their holes'
      union gets a new box) until all boxes are disjoint, so every hole pixel lies in exactly one crop. The
      working size is ``(train_size, train_size)``: boxes are never smaller than train_size, so small holes
      are processed at native resolution and large ones are downscaled. Best detail for scattered or small
      holes in big images; cost grows with the number of crops.
    - "resize": one crop = the whole image, resized so the long side is about ``resize_max_side`` (default
      2 * train_size; never upscaled beyond rounding) with each side rounded to the nearest multiple of
      ``multiple`` (aspect ratio may change slightly). Cheap, and gives the most context: for very large holes.
    - "full": one crop = the whole image at native resolution, box reflect-padded at the bottom / right to a
      multiple of ``multiple``. No resampling at all; cost grows with the image area: for small images.
    - "auto" (default):

      1. "full" if the padded image's longer side is <= ``full_max_side`` (default 2 * train_size = 512):
         the network sees every pixel unscaled at a cost of at most four crops;
      2. else "resize" if more than ``resize_hole_fraction`` (default 40 %) of the image is hole;
      3. else "resize" if some "crop" box would be downscaled more than the whole image is by "resize"
         (crop scale train_size / side < min(1, resize_max_side / max(H, W)); with the defaults: a box side
         above half the image's longer side), since the whole-image pass then sees that hole in at least as
         much detail and with more context;
      4. else "crop".

    Returns a list of :class:`Crop`; all crops of one plan share the same working ``size`` (so they stack into
    one batch). An empty list when the hole is empty, whatever the strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    p = _params(train_size, context, multiple, max_hole_fraction, merge_distance, full_max_side,
                resize_max_side, resize_hole_fraction)
    hole = _as_hole_array(hole)
    if not hole.any():
        return []
    if strategy == "auto":
        strategy, crops = _auto(hole, p)
        if strategy == "crop":
            return crops
    if strategy == "crop":
        return _plan_square(hole, p)
    if strategy == "full":
        return _plan_full(hole.shape, p)
    return _plan_resize(hole.shape, p)


# ------------------------------------------------------------------------------------- padding and resampling


def _source_index(start: int, stop: int, n: int, mode: str) -> np.ndarray:
    """Source indices in ``[0, n)`` for positions ``start .. stop - 1`` of an axis of length ``n`` extended by
    reflection (mirror without repeating the edge, repeated as often as needed) or replication. Reflection of
    a length-1 axis is replication."""
    i = np.arange(start, stop, dtype=np.int64)
    if mode == "replicate" or n == 1:
        return np.clip(i, 0, n - 1)
    period = 2 * (n - 1)
    i = np.mod(i, period)
    return np.where(i >= n, period - i, i)


def _window(x: torch.Tensor, box: Tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """``x[..., y0:y1, x0:x1]`` for a box that may leave the image, the outside filled by ``mode``."""
    h, w = x.shape[-2:]
    y0, x0, y1, x1 = box
    if y0 >= 0 and x0 >= 0 and y1 <= h and x1 <= w:
        return x[..., y0:y1, x0:x1]
    iy = torch.from_numpy(_source_index(y0, y1, h, mode)).to(x.device)
    ix = torch.from_numpy(_source_index(x0, x1, w, mode)).to(x.device)
    return x.index_select(-2, iy).index_select(-1, ix)


def pad_to_multiple(
    x: torch.Tensor, multiple: int = 128, mode: str = "reflect"
) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Pad the bottom and right of ``x`` so both sides are multiples of ``multiple``.

    x: (..., H, W), e.g. (B, C, H, W), any dtype. mode: "reflect" (mirror, no edge repeat; repeated as often
    as needed, so pads larger than the image work; replicate for a side of length 1), "replicate" or
    "constant" (zeros). Returns ``(padded (..., Hp, Wp), (H, W))``; feed the pair to :func:`unpad`. ``x`` itself
    is returned when no padding is needed.
    """
    if x.dim() < 2 or min(x.shape[-2:]) < 1:
        raise ValueError(f"x must be (..., H, W) with H, W >= 1, got shape {tuple(x.shape)}")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2:]
    hp, wp = _ceil_to(h, multiple), _ceil_to(w, multiple)
    if (hp, wp) == (h, w):
        return x, (h, w)
    if mode == "constant":
        return F.pad(x, (0, wp - w, 0, hp - h)), (h, w)
    if mode not in _PAD_MODES:
        raise ValueError(f"mode must be 'reflect', 'replicate' or 'constant', got {mode!r}")
    return _window(x, (0, 0, hp, wp), mode), (h, w)


def unpad(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: ``x[..., :H, :W]`` for ``size = (H, W)``."""
    h, w = size
    if h > x.shape[-2] or w > x.shape[-1]:
        raise ValueError(f"cannot unpad shape {tuple(x.shape)} to {size}")
    return x[..., :h, :w]


def resize(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Resize (N, C, h, w) float to (N, C, *size): bilinear, antialiased along axes that shrink (an area-like
    filter, no aliasing), plain bilinear along axes that grow. Same size: ``x`` unchanged (bit-exact)."""
    size = (int(size[0]), int(size[1]))
    h, w = x.shape[-2:]
    if (h, w) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=size[0] < h or size[1] < w)


def _resize_mask(m: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Resize a 0/1 hole mask (N, 1, h, w) so that a working pixel is hole if any source pixel it overlaps, or
    that :func:`resize` mixes into it with nonzero weight, is hole. Returns 0/1 in ``m``'s dtype."""
    size = (int(size[0]), int(size[1]))
    if tuple(m.shape[-2:]) == size:
        return m
    hit = (resize(m, size) > 0) | (F.adaptive_max_pool2d(m, size) > 0)
    return hit.to(m.dtype)


# ------------------------------------------------------------------------------------------ extract and paste


def _common_size(crops: Sequence[Crop]) -> Tuple[int, int]:
    sizes = {c.size for c in crops}
    if len(sizes) != 1:
        raise ValueError(f"crops to stack must share one working size, got {sorted(sizes)}")
    return sizes.pop()


def extract(image: torch.Tensor, crops: Sequence[Crop], *, pad_mode: str = "reflect") -> torch.Tensor:
    """Cut every crop's box out of ``image`` and resize it to the crop's working size.

    image: (1, C, H, W) float (any range, e.g. [0, 1]) shared by all crops, or (K, C, H, W) with one image per
        crop. Parts of a box outside the image are filled by ``pad_mode`` ("reflect", repeated as often as
        needed and replicate for a side of length 1, or "replicate").
    crops: K crops sharing one working size ``(h, w)`` (as :func:`plan_crops` returns them).
    Returns (K, C, h, w) in ``image``'s dtype; shrinking is antialiased, growing bilinear (see :func:`resize`).
    Values of hole pixels are resampled like any others, so zero or pre-fill them as the network expects.
    """
    if image.dim() != 4:
        raise ValueError(f"image must be (N, C, H, W), got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"image must be a float tensor, got {image.dtype}")
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}")
    k = len(crops)
    if image.shape[0] not in (1, k):
        raise ValueError(f"image batch must be 1 or the number of crops ({k}), got {image.shape[0]}")
    if k == 0:
        return image.new_zeros((0, image.shape[1], 0, 0))
    size = _common_size(crops)
    out = image.new_empty((k, image.shape[1]) + size)
    for i, crop in enumerate(crops):
        src = image[i : i + 1] if image.shape[0] == k else image
        out[i] = resize(_window(src, crop.box, pad_mode), size)[0]
    return out


def extract_mask(
    hole: HoleLike,
    crops: Sequence[Crop],
    *,
    pad_mode: str = "reflect",
    dtype: torch.dtype = torch.float32,
    device: Optional[Union[str, torch.device]] = None,
) -> torch.Tensor:
    """The hole of every crop at its working size, conservative: never loses a hole pixel.

    hole: (H, W) bool, True = hole (numpy or torch).
    crops: K crops sharing one working size ``(h, w)``.
    Returns (K, 1, h, w) in {0, 1} (1 = hole), ``dtype`` on ``device`` (default: the hole's device, else CPU).
    A working pixel is hole when any hole pixel lies under it or :func:`extract` mixes a hole pixel's value
    into it; outside the image the mask is padded like the image (reflected holes stay holes).
    """
    if device is None:
        device = hole.device if isinstance(hole, torch.Tensor) else "cpu"
    # the mask stays bool (1 byte a pixel) until each crop's window is cut out: no whole-image float copy
    m = torch.from_numpy(_as_hole_array(hole)).to(device=device)[None, None]
    if len(crops) == 0:
        return torch.zeros((0, 1, 0, 0), dtype=dtype, device=device)
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}")
    size = _common_size(crops)
    return torch.cat([_resize_mask(_window(m, c.box, pad_mode).to(dtype), size) for c in crops])


def _linear_taps(n_out: int, n_in: int, start: int, stop: int):
    """Bilinear taps of output positions ``start .. stop - 1`` when an axis of length ``n_in`` is resized to
    ``n_out >= n_in`` the way :func:`resize` does (``F.interpolate(..., "bilinear", align_corners=False)``:
    half-pixel centres, source clamped at 0, no antialias since the axis grows). Returns numpy arrays
    ``(i0, i1, w1)``: source indices and the weight of ``i1`` (``i0`` gets ``1 - w1``)."""
    scale = np.float32(n_in) / np.float32(n_out)  # torch computes the scale and the source index in float32
    pos = np.arange(start, stop, dtype=np.float32)
    src = np.maximum(scale * (pos + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = np.clip(src - i0.astype(np.float32), np.float32(0.0), np.float32(1.0))
    return i0, i1, w1


def _sample_grown(result: torch.Tensor, box_size: Tuple[int, int], offset: Tuple[int, int], region: Tuple[int, int],
                  ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """``resize(result[None], box_size)[0][:, oy + ys, ox + xs]`` without building the resized image.

    result: (C, h, w) with h <= box_size[0] and w <= box_size[1] (both axes grow or keep their size, so the
    resize is plain bilinear). offset (oy, ox): where the sampled region starts inside the box; region (rh, rw):
    its size; ys, xs: (P,) int64 positions inside the region. Returns (C, P).
    """
    (h, w), (bh, bw), (oy, ox), (rh, rw) = result.shape[-2:], box_size, offset, region
    dev, dt = result.device, result.dtype
    ty = [torch.from_numpy(a).to(dev) for a in _linear_taps(bh, h, oy, oy + rh)]
    tx = [torch.from_numpy(a).to(dev) for a in _linear_taps(bw, w, ox, ox + rw)]
    y0, y1, wy = (t[ys] for t in ty)
    x0, x1, wx = (t[xs] for t in tx)
    wy, wx = wy.to(dt), wx.to(dt)
    vx = 1 - wx  # same weights and order of operations as torch's CPU kernel
    top = result[:, y0, x0] * vx + result[:, y0, x1] * wx
    bottom = result[:, y1, x0] * vx + result[:, y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def paste(
    canvas: torch.Tensor, results: torch.Tensor, crops: Sequence[Crop], hole: HoleLike, *, inplace: bool = False
) -> torch.Tensor:
    """Write network answers back into the image, at hole pixels only.

    canvas: (C, H, W) or (1, C, H, W) float, the image to complete (usually the input image).
    results: (K, C, h, w), one answer per crop at the crops' working size (e.g. the generator output in [0, 1]).
    crops: the K crops the results came from.
    hole: (H, W) bool, True = hole.
    inplace: False (default): ``canvas`` is left untouched and a new tensor is returned (one copy of the
        canvas, made here: callers need not clone it). True: the hole pixels are written into ``canvas``
        itself, which is returned (no copy at all); use it when the caller owns the canvas.

    Each result is resized back to its box (antialiased when shrinking) and copied into the canvas where the
    box, the image and the hole overlap. Boxes the result grows into (the usual case: working size <= box
    size on both axes) are not resized as a whole: the bilinear resize is evaluated at the box's hole pixels
    only (same values as :func:`resize` up to float rounding). Returns a tensor shaped like ``canvas`` in its
    dtype (with the same memory layout); pixels outside the hole are bit-identical to ``canvas``. Where boxes
    overlap, later crops win (plans from :func:`plan_crops` never overlap).
    """
    squeeze = canvas.dim() == 3
    if squeeze:
        canvas = canvas[None]
    if canvas.dim() != 4 or canvas.shape[0] != 1:
        raise ValueError(f"canvas must be (C, H, W) or (1, C, H, W), got shape {tuple(canvas.shape)}")
    if results.dim() != 4 or results.shape[0] != len(crops) or results.shape[1] != canvas.shape[1]:
        raise ValueError(
            f"results must be (K={len(crops)}, C={canvas.shape[1]}, h, w), got shape {tuple(results.shape)}"
        )
    h, w = canvas.shape[-2:]
    hole_t = torch.from_numpy(_as_hole_array(hole)).to(canvas.device)
    if tuple(hole_t.shape) != (h, w):
        raise ValueError(f"hole shape {tuple(hole_t.shape)} does not match the canvas ({h}, {w})")
    out = canvas if inplace else canvas.clone()
    for i, crop in enumerate(crops):
        cy0, cx0, cy1, cx1 = crop.clip(h, w)
        if cy1 <= cy0 or cx1 <= cx0:
            continue
        sel = hole_t[cy0:cy1, cx0:cx1]
        y0, x0 = crop.box[:2]
        res = results[i].to(device=canvas.device, dtype=canvas.dtype)
        bh, bw = crop.box_size
        if (bh, bw) != tuple(res.shape[-2:]) and bh >= res.shape[-2] and bw >= res.shape[-1]:
            ys, xs = sel.nonzero(as_tuple=True)
            if ys.numel() == 0:
                continue
            vals = _sample_grown(res, (bh, bw), (cy0 - y0, cx0 - x0), (cy1 - cy0, cx1 - cx0), ys, xs)
            out[0][:, ys + cy0, xs + cx0] = vals
            continue
        if not bool(sel.any()):
            continue
        back = resize(res[None], crop.box_size)
        back = back[..., cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        region = out[..., cy0:cy1, cx0:cx1]
        region.copy_(torch.where(sel, back, region))
    return out[0] if squeeze else out


# ------------------------------------------------------------------------------------------------- batching


def batched(seq: Iterable[T], batch_size: int) -> Iterator[Sequence[T]]:
    """Consecutive chunks of at most ``batch_size`` items.

    Sliceable sequences (list, tuple, tensor along dim 0) yield slices of themselves; other iterables yield
    lists. ``batched([c0, c1, c2], 2)`` -> ``[c0, c1]``, ``[c2]``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if hasattr(seq, "__len__") and hasattr(seq, "__getitem__"):
        n = len(seq)
        for i in range(0, n, batch_size):
            yield seq[i : i + batch_size]
        return
    it = iter(seq)
    while True:
        chunk = list(itertools.islice(it, batch_size))
        if not chunk:
            return
        yield chunk
