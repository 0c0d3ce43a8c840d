"""Masks in: :func:`to_hole_mask` turns any accepted mask into (N, H, W) bool, True = hole (rules in
:mod:`lbam.io`); :func:`grow_hole` dilates such a mask by a few pixels (object removal)."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from ..errors import InputError
from ._util import I16_MODES, is_path, is_tensor, pil_rgb, torch_module, wxh
from .files import load_image


def _hole_from_values(arr: np.ndarray, what: str) -> np.ndarray:
    """Apply the per-dtype hole rule elementwise -> bool array of the same shape."""
    dt = arr.dtype
    if dt == np.bool_:
        return arr.copy()
    if dt == np.uint8:
        return arr >= 128
    if dt == np.uint16:
        return arr >= 32768
    if np.issubdtype(dt, np.integer):
        if arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 255:
                raise InputError(
                    f"{what} of dtype {dt} has values in [{lo}, {hi}]; integer masks must be in "
                    "[0, 255] (hole where >= 128); use a bool mask for True = hole"
                )
        return arr >= 128
    if np.issubdtype(dt, np.floating):
        if np.isnan(arr).any():
            raise InputError(f"{what} contains NaN values")
        return arr > 0.5
    raise InputError(f"{what} has unsupported dtype {dt}; expected bool, an integer or a float type")


def _pil_mask_to_array(img: Image.Image, what: str) -> np.ndarray:
    mode = img.mode
    if mode == "1":
        return np.asarray(img).astype(bool)
    if mode in ("L", "RGB", "F") or mode in I16_MODES:
        arr = np.asarray(img)
        return arr.astype(np.uint16) if mode in I16_MODES else arr
    if mode == "I":
        return np.asarray(img)
    if mode in ("LA", "La"):
        return np.asarray(img.convert("LA") if mode == "La" else img)[:, :, 0]
    try:
        return pil_rgb(img)
    except (ValueError, OSError) as e:
        raise InputError(f"{what} has PIL mode {mode!r} that cannot be converted to RGB: {e}") from e


def to_hole_mask(mask, size: tuple[int, int], n: int = 1) -> np.ndarray:
    """Coerce a user mask into a bool hole mask.

    Parameters
    ----------
    mask : path, PIL.Image.Image, numpy.ndarray or torch.Tensor
        White / non-zero = hole; see the module docstring for the per-dtype rules.
        numpy: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha ignored);
        torch: ``(H, W)``, ``(1, H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``, any device.
    size : (H, W)
        The image's size; the mask must have exactly this size.
    n : int
        Number of images; the mask must have batch 1 (broadcast) or n.

    Returns
    -------
    numpy.ndarray, shape ``(n, H, W)``, bool, **True = hole**.

    Raises
    ------
    InputError
        size mismatch (message gives both sizes as WxH), wrong dimensions, NaN, unsupported
        dtype, batch mismatch, unreadable file.
    """
    H, W = int(size[0]), int(size[1])
    if is_path(mask):
        mask = load_image(mask)

    if isinstance(mask, Image.Image):
        what = f"mask (PIL mode {mask.mode})"
        arr = _pil_mask_to_array(mask, what)
        hole = _hole_from_values(arr, what)
        if hole.ndim == 3:
            hole = hole.any(axis=2)
        hole = hole[None]
    elif isinstance(mask, np.ndarray):
        what = "mask array"
        if mask.ndim == 2:
            hole = _hole_from_values(mask, what)
        elif mask.ndim == 3 and mask.shape[2] in (1, 3, 4):
            vals = mask[:, :, :3] if mask.shape[2] == 4 else mask
            hole = _hole_from_values(vals, what).any(axis=2)
        elif mask.ndim == 3:
            raise InputError(
                f"{what} has shape {mask.shape} with {mask.shape[2]} channels; expected (H, W), "
                "(H, W, 1), (H, W, 3) or (H, W, 4)"
            )
        else:
            raise InputError(
                f"{what} has {mask.ndim} dimensions (shape {mask.shape}); expected (H, W) or (H, W, C) "
                "(use a torch tensor (B, 1, H, W) for batches)"
            )
        hole = hole[None]
    elif is_tensor(mask):
        torch = torch_module()
        what = "mask tensor"
        shape = tuple(mask.shape)
        if mask.dim() == 2:
            t = mask.unsqueeze(0)
        elif mask.dim() == 3:
            t = mask
        elif mask.dim() == 4 and mask.shape[1] == 1:
            t = mask[:, 0]
        elif mask.dim() == 4:
            raise InputError(f"{what} has shape {shape} with {mask.shape[1]} channels; expected (B, 1, H, W)")
        else:
            raise InputError(
                f"{what} has {mask.dim()} dimensions (shape {shape}); expected (H, W), (1, H, W), "
                "(B, H, W) or (B, 1, H, W)"
            )
        src = t.detach().to("cpu")
        if src.is_floating_point() and src.dtype not in (torch.float32, torch.float64):
            src = src.to(torch.float32)
        if src.is_complex():
            raise InputError(f"{what} has unsupported dtype {t.dtype}")
        hole = _hole_from_values(src.numpy(), what)
    else:
        raise InputError(
            f"unsupported mask type {type(mask).__module__}.{type(mask).__name__}; expected a path, "
            "a PIL image, a numpy array or a torch tensor"
        )

    b, h, w = hole.shape
    if (h, w) != (H, W):
        raise InputError(f"mask size {wxh(h, w)} does not match image size {wxh(H, W)}")
    if b == n:
        return np.ascontiguousarray(hole)
    if b == 1:
        return np.repeat(hole, n, axis=0)
    raise InputError(f"mask batch size {b} does not match the number of images {n}")


def grow_hole(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a hole mask by ``pixels`` in every direction: dilation by the disk of offsets at Euclidean distance
    <= ``pixels``.

    Object masks drawn by hand or cut out by a segmenter usually stop a pixel or two short of the object: its
    anti-aliased rim or a faint shadow stays in the known region and the fill copies it back. Growing the hole
    first removes that rim.

    hole: ``(N, H, W)`` or ``(H, W)`` bool, True = hole. pixels: int >= 0 (0 returns a copy).
    Returns a bool array of the same shape; every hole pixel of the input is still a hole.
    Raises :class:`InputError` for a negative or non-integer ``pixels``.
    """
    if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)):
        raise InputError(f"dilate must be a whole number of pixels, got {pixels!r}")
    if pixels < 0:
        raise InputError(f"dilate must be >= 0 pixels, got {pixels}")
    hole = np.ascontiguousarray(hole, dtype=bool)
    if pixels == 0:
        return hole.copy()
    # distance from each known pixel to the nearest hole pixel (exact Euclidean): O(H*W) for any radius
    flat = hole.reshape((-1,) + hole.shape[-2:])
    grown = np.stack([cv2.distanceTransform((~m).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= pixels
                      for m in flat])
    return grown.reshape(hole.shape)
