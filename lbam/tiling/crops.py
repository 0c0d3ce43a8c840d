"""Cutting crops out of an image and pasting answers back: padding to network multiples, resampling,
:func:`extract` / :func:`extract_mask`, :func:`paste` (hole pixels only) and :func:`batched`."""
from __future__ import annotations

import itertools
from typing import Iterable, Iterator, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import torch
import torch.nn.functional as F

from .plan import Crop, HoleLike, as_hole_array, ceil_to

_PAD_MODES = ("reflect", "replicate")

T = TypeVar("T")


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
    hp, wp = ceil_to(h, multiple), ceil_to(w, multiple)
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
    m = torch.from_numpy(as_hole_array(hole)).to(device=device)[None, None]
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
    flat = result.reshape(result.shape[0], h * w)  # gather by flat index: one index_select per corner
    r0, r1 = y0 * w, y1 * w
    top = flat.index_select(1, r0 + x0) * vx + flat.index_select(1, r0 + x1) * wx
    bottom = flat.index_select(1, r1 + x0) * vx + flat.index_select(1, r1 + x1) * wx
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
    hole_t = torch.from_numpy(as_hole_array(hole)).to(canvas.device)
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
