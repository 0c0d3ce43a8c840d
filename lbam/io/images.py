"""Images in: :func:`to_rgb_float` turns a path, PIL image, array or tensor into (N, H, W, 3) float32 in [0, 1]
and an :class:`ImageKind` describing how it came in (module docstring of :mod:`lbam.io` lists the rules)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError
from ._util import FLOAT_TOLERANCE, I16_MODES, is_path, is_tensor, pil_rgb, torch_module
from .files import load_image


@dataclass
class ImageKind:
    """How an image came in, so that :func:`from_rgb_float` can return the result the same way.

    Attributes
    ----------
    kind : {"pil", "numpy", "torch", "path"}
    size : (H, W) of the image.
    n : number of images (N of the internal ``(N, H, W, 3)`` array); > 1 only for batched torch.
    dtype : the input's dtype (a ``numpy.dtype`` for numpy / PIL / path, a ``torch.dtype`` for
        torch).  For PIL it is the dtype of ``numpy.asarray(image)``.
    layout : channel layout of the input: numpy ``"HW"``, ``"HW1"``, ``"HW3"``, ``"HW4"``;
        torch ``"CHW"`` or ``"BCHW"``; PIL / path: ``"pil"``.
    mode : PIL mode of the input (PIL / path only), else None.
    batched : True when a torch input had a batch dimension.
    device : torch device of a torch input, else None.
    path : the file path of a path input, else None.
    image : the PIL image loaded from ``path`` (path kind only; not shown in repr).
    """

    kind: str
    size: tuple[int, int]
    n: int = 1
    dtype: Any = None
    layout: str = ""
    mode: str | None = None
    batched: bool = False
    device: Any = None
    path: str | None = None
    image: Any = field(default=None, repr=False, compare=False)


def _check_float(arr: np.ndarray, what: str) -> np.ndarray:
    """Validate a float image in [0, 1] (finite, tolerance FLOAT_TOLERANCE) -> clipped C-contiguous float32
    (always a new array)."""
    if not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise InputError(f"{what} contains non-finite values ({n_nan} NaN, {n_inf} inf)")
    lo = float(arr.min())
    hi = float(arr.max())
    if lo < -FLOAT_TOLERANCE or hi > 1.0 + FLOAT_TOLERANCE:
        raise InputError(
            f"{what} has float values in [{lo:.6g}, {hi:.6g}]; float images must be in [0, 1] "
            "(divide 8-bit data by 255, or pass it as uint8)"
        )
    out = arr.astype(np.float32, order="C", copy=True)  # C order: a transposed view comes out contiguous
    if lo < 0.0 or hi > 1.0:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def _numpy_image_to_float(arr: np.ndarray, what: str) -> np.ndarray:
    """(H, W), (H, W, 1|3|4) array of a supported dtype -> (H, W, 3) float32 in [0, 1]."""
    if arr.dtype in (np.uint8, np.uint16):
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, :3]  # drop alpha before converting, not after
        f = arr.astype(np.float32, order="C")
        np.divide(f, np.float32(255.0 if arr.dtype == np.uint8 else 65535.0), out=f)  # in place, same values
    elif np.issubdtype(arr.dtype, np.floating):
        f = _check_float(arr, what)
    else:
        raise InputError(
            f"{what} has unsupported dtype {arr.dtype}; images must be uint8, uint16 or float in [0, 1]"
        )
    if f.ndim == 2:
        f = f[:, :, None]
    if f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    elif f.shape[2] == 4:
        f = f[:, :, :3]
    return np.ascontiguousarray(f, dtype=np.float32)


def _numpy_image_layout(arr: np.ndarray, what: str) -> str:
    if arr.ndim == 2:
        layout = "HW"
    elif arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        layout = f"HW{arr.shape[2]}"
    elif arr.ndim == 3:
        raise InputError(
            f"{what} has shape {arr.shape} with {arr.shape[2]} channels; expected (H, W), "
            "(H, W, 1), (H, W, 3) or (H, W, 4)"
        )
    else:
        raise InputError(
            f"{what} has {arr.ndim} dimensions (shape {arr.shape}); expected (H, W), (H, W, 3) "
            "or (H, W, 4) (use a torch tensor (B, 3, H, W) for batches)"
        )
    if arr.size == 0:
        raise InputError(f"{what} is empty (shape {arr.shape})")
    return layout


def _pil_to_array(img: Image.Image, what: str) -> np.ndarray:
    """PIL image -> (H, W) or (H, W, 3) numpy array following the documented mode rules."""
    mode = img.mode
    if img.width == 0 or img.height == 0:
        raise InputError(f"{what} is empty ({img.width}x{img.height})")
    if mode == "L":
        return np.asarray(img)
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode == "LA":
        return np.asarray(img)[:, :, 0]
    if mode == "La":
        return np.asarray(img.convert("LA"))[:, :, 0]
    if mode in I16_MODES:
        return np.asarray(img).astype(np.uint16)
    if mode == "I":
        arr = np.asarray(img)
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 65535:
            raise InputError(
                f"{what} is a 32-bit integer (mode I) image with values in [{lo}, {hi}]; "
                "expected 16-bit values in [0, 65535]"
            )
        return arr.astype(np.uint16)
    if mode == "F":
        return np.asarray(img)
    try:
        return pil_rgb(img)
    except (ValueError, OSError) as e:
        raise InputError(f"{what} has PIL mode {mode!r} that cannot be converted to RGB: {e}") from e


def to_rgb_float(image) -> tuple[np.ndarray, ImageKind]:
    """Coerce a user image into ``(N, H, W, 3)`` float32 RGB in [0, 1].

    Parameters
    ----------
    image : path, PIL.Image.Image, numpy.ndarray or torch.Tensor
        See the module docstring for the accepted modes, shapes, dtypes and the rules for
        gray, alpha, 16-bit and palette images.

    Returns
    -------
    (array, kind)
        ``array``: numpy ``(N, H, W, 3)`` float32 in [0, 1], a new array (never a view of the
        input); N = 1 except for batched torch input.  ``kind``: :class:`ImageKind` for
        :func:`from_rgb_float`.

    Raises
    ------
    InputError
        unreadable file, empty image, wrong number of dimensions or channels, unsupported
        dtype, NaN / inf, float values outside [0, 1] (beyond :data:`FLOAT_TOLERANCE`).
    """
    if is_path(image):
        img = load_image(image)
        arr, kind = to_rgb_float(img)
        kind.kind = "path"
        kind.path = os.fsdecode(os.fspath(image))
        kind.image = img
        return arr, kind

    if isinstance(image, Image.Image):
        what = f"PIL image (mode {image.mode})"
        arr = _pil_to_array(image, what)
        rgb = _numpy_image_to_float(arr, what)
        h, w = rgb.shape[:2]
        return rgb[None], ImageKind(kind="pil", size=(h, w), n=1, dtype=arr.dtype, layout="pil", mode=image.mode)

    if isinstance(image, np.ndarray):
        what = "image array"
        layout = _numpy_image_layout(image, what)
        rgb = _numpy_image_to_float(image, what)
        h, w = rgb.shape[:2]
        return rgb[None], ImageKind(kind="numpy", size=(h, w), n=1, dtype=image.dtype, layout=layout)

    if is_tensor(image):
        torch = torch_module()
        what = "image tensor"
        shape = tuple(image.shape)
        if image.dim() == 3:
            batched, t = False, image.unsqueeze(0)
        elif image.dim() == 4:
            batched, t = True, image
        else:
            raise InputError(f"{what} has {image.dim()} dimensions (shape {shape}); expected (3, H, W) or (B, 3, H, W)")
        if t.shape[1] != 3:
            raise InputError(
                f"{what} has shape {shape} with {t.shape[1]} channels; expected 3 (RGB) channels: "
                "(3, H, W) or (B, 3, H, W)"
            )
        if t.numel() == 0:
            raise InputError(f"{what} is empty (shape {shape})")
        # convert straight into (N, H, W, 3) C order: one float copy instead of a copy and a transpose
        if t.dtype == torch.uint8:
            arr = t.detach().to("cpu").numpy().transpose(0, 2, 3, 1).astype(np.float32, order="C")
            np.divide(arr, np.float32(255.0), out=arr)
        elif t.is_floating_point():
            src = t.detach().to("cpu")
            if src.dtype not in (torch.float32, torch.float64):
                src = src.to(torch.float32)  # float16 / bfloat16: numpy cannot hold bfloat16
            arr = _check_float(src.numpy().transpose(0, 2, 3, 1), what)
        else:
            raise InputError(f"{what} has unsupported dtype {t.dtype}; expected float in [0, 1] or uint8")
        n, h, w = arr.shape[:3]
        return arr, ImageKind(
            kind="torch", size=(h, w), n=n, dtype=image.dtype, layout="BCHW" if batched else "CHW",
            batched=batched, device=image.device,
        )

    raise InputError(
        f"unsupported image type {type(image).__module__}.{type(image).__name__}; expected a path, "
        "a PIL image, a numpy array or a torch tensor"
    )
