"""Image and mask coercion and validation at lbam's public boundary.

Every public entry point turns what the user passes into one internal form,

* image: ``numpy.ndarray`` of shape ``(N, H, W, 3)``, float32, values in [0, 1];
* hole mask: ``numpy.ndarray`` of shape ``(N, H, W)``, bool, **True = hole** (pixel to fill),

and turns the result back into the kind the user passed (:func:`from_rgb_float`).  Anything
unusable raises :class:`lbam.errors.InputError` with a message naming the problem.

Accepted images (:func:`to_rgb_float`)
--------------------------------------
* a path (``str`` or ``os.PathLike``), opened with :func:`load_image`;
* a ``PIL.Image.Image`` in any mode:

  - ``RGB``: used as is; ``L``: gray replicated to three channels; ``1``: black/white, as L;
  - ``RGBA``, ``LA``, ``RGBa``, ``La``, ``PA``: the alpha channel is **dropped**, not
    composited (the color values under transparent pixels are used as they are);
  - ``P`` (palette): converted to RGB (palette transparency is ignored);
  - ``I;16`` / ``I;16L`` / ``I;16B`` / ``I;16N`` (16-bit gray): divided by 65535;
  - ``I`` (32-bit integer gray, what 16-bit PNGs used to open as): read as 16-bit, divided by
    65535; values outside [0, 65535] are an error;
  - ``F`` (32-bit float gray): must already be in [0, 1];
  - any other mode (``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ...): ``image.convert("RGB")``.
* a ``numpy.ndarray`` ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA (alpha dropped), ``(H, W)`` or
  ``(H, W, 1)`` gray; dtype uint8 (divided by 255), uint16 (divided by 65535) or floating
  point with values in [0, 1];
* a ``torch.Tensor`` ``(3, H, W)`` or ``(B, 3, H, W)``, floating point in [0, 1] or uint8, on
  any device.

Float images must be finite and within [0, 1]; values up to 1e-3 outside are clipped (rounding
noise), anything further is an error.  bool, complex, signed and other integer dtypes are
rejected for images.

Accepted masks (:func:`to_hole_mask`)
-------------------------------------
White / non-zero marks the hole, as in OpenCV's ``inpaint`` and simple-lama:

* bool: True = hole;
* uint8 (and PIL modes ``L``, ``RGB``, ``1``, ``P``, ...): hole where the value >= 128
  (robust to JPEG noise; note that a 0/1 uint8 mask therefore has **no** hole: pass bool or
  0/255);
* uint16 (PIL ``I;16``): hole where >= 32768;
* other integer dtypes (int8..int64, uint32, uint64, PIL ``I``): values must lie in
  [0, 255], hole where >= 128 (the uint8 rule);
* floating point (PIL ``F``): hole where > 0.5; NaN is an error;
* several channels (``(H, W, 3)``, ``(H, W, 4)``, PIL RGB/RGBA): alpha is ignored and a pixel
  is a hole when any color channel says hole.

Shapes: numpy ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)``, ``(H, W, 4)``; torch ``(H, W)``,
``(1, H, W)``, ``(B, H, W)``, ``(B, 1, H, W)``; a mask with batch 1 applies to every image of
a batch.  The mask's size must equal the image's.
"""

from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from .errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "FLOAT_TOLERANCE",
    "ImageKind",
    "load_image",
    "to_rgb_float",
    "to_hole_mask",
    "from_rgb_float",
]

#: Largest image, in pixels, that :func:`load_image` opens (decompression-bomb guard).
#: 2**27 is about 134 megapixels (e.g. 11585 x 11585); it is below Pillow's own hard limit
#: (2 * ``Image.MAX_IMAGE_PIXELS``, about 179 megapixels by default), so this value decides.
MAX_PIXELS = 2**27

#: File name suffixes treated as images when a folder is read (CLI folder mode, training data, mask folders).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

#: How far outside [0, 1] float pixel values may stray (then clipped) before it is an error.
FLOAT_TOLERANCE = 1e-3

_GRAY_WEIGHTS = (0.2125, 0.7154, 0.0721)
_I16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _torch():
    """The torch module, or None if it is not installed."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of lbam
        return None
    return torch


def _is_tensor(x) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def _wxh(h: int, w: int) -> str:
    return f"{w}x{h}"


# --------------------------------------------------------------------------------------------
# loading


def load_image(path) -> Image.Image:
    """Open an image file fully and apply its EXIF orientation.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    PIL.Image.Image, fully decoded (no file handle kept open), in the file's own mode, turned
    upright according to its EXIF ``Orientation`` tag (the tag is then removed).

    Raises
    ------
    InputError
        naming the file, when it does not exist, is not a file, cannot be read, is not an
        image Pillow can decode, is truncated or corrupt, or has more than :data:`MAX_PIXELS`
        pixels (decompression bomb).
    """
    if not _is_path(path):
        raise InputError(f"expected a file path (str or os.PathLike), got {type(path).__name__}")
    name = os.fspath(path)
    if isinstance(name, bytes):  # os.PathLike may return bytes
        name = os.fsdecode(name)
    if not os.path.exists(name):
        raise InputError(f"image file not found: {name!r}")
    if not os.path.isfile(name):
        raise InputError(f"not a regular file: {name!r}")
    try:
        with warnings.catch_warnings():
            # our own MAX_PIXELS check below decides; Pillow's warning would only be noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(name) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise InputError(
                        f"image {name!r} is {w}x{h} = {w * h} pixels, more than the limit of "
                        f"{MAX_PIXELS} (lbam.io.MAX_PIXELS); refusing it as a possible "
                        "decompression bomb"
                    )
                img.load()  # force a full decode: truncated/corrupt files fail here
                try:
                    out = ImageOps.exif_transpose(img)
                except Exception:  # broken EXIF data must not make a decodable image unusable
                    out = None
                if out is None or out is img:
                    out = img.copy()
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        raise InputError(f"image {name!r} is too large, refusing it as a possible decompression bomb: {e}") from e
    except Image.UnidentifiedImageError as e:
        raise InputError(f"cannot read {name!r}: not an image file Pillow can decode") from e
    except PermissionError as e:
        raise InputError(f"cannot read {name!r}: permission denied") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error) as e:
        # Pillow reports truncated / corrupt data as OSError ("image file is truncated"),
        # SyntaxError (broken headers) and a few others depending on the plugin
        raise InputError(f"cannot decode image {name!r} (truncated or corrupt file?): {e}") from e
    return out


# --------------------------------------------------------------------------------------------
# images


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


def _pil_rgb(img: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB view of a color / palette / exotic-mode PIL image, alpha dropped."""
    if img.mode == "RGB":
        return np.asarray(img)
    if img.mode == "RGBA":
        return np.asarray(img)[:, :, :3]
    if img.mode in ("RGBa", "P", "PA"):  # via RGBA: un-premultiplies, keeps palette transparency quiet
        return np.asarray(img.convert("RGBA"))[:, :, :3]
    return np.asarray(img.convert("RGB"))


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
    if mode in _I16_MODES:
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
        return _pil_rgb(img)
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
    if _is_path(image):
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

    if _is_tensor(image):
        torch = _torch()
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


# --------------------------------------------------------------------------------------------
# masks


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
    if mode in ("L", "RGB", "F") or mode in _I16_MODES:
        arr = np.asarray(img)
        return arr.astype(np.uint16) if mode in _I16_MODES else arr
    if mode == "I":
        return np.asarray(img)
    if mode in ("LA", "La"):
        return np.asarray(img.convert("LA") if mode == "La" else img)[:, :, 0]
    try:
        return _pil_rgb(img)
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
    if _is_path(mask):
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
    elif _is_tensor(mask):
        torch = _torch()
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
        raise InputError(f"mask size {_wxh(h, w)} does not match image size {_wxh(H, W)}")
    if b == n:
        return np.ascontiguousarray(hole)
    if b == 1:
        return np.repeat(hole, n, axis=0)
    raise InputError(f"mask batch size {b} does not match the number of images {n}")


# --------------------------------------------------------------------------------------------
# results


def _gray(rgb: np.ndarray) -> np.ndarray:
    r, g, b = _GRAY_WEIGHTS
    return r * rgb[..., 0] + g * rgb[..., 1] + b * rgb[..., 2]


def _quantize(x: np.ndarray, dtype) -> np.ndarray:
    """float in [0, 1] -> dtype (integers: scaled by the type's max and rounded; floats: cast)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(np.clip(x, 0.0, 1.0) * 65535.0).astype(np.uint16)
    if dtype.kind in "iu":  # 32-bit "I" mode images hold 16-bit values
        return np.rint(np.clip(x, 0.0, 1.0) * 65535.0).astype(dtype)
    return x.astype(dtype)


def _sanitize(x: np.ndarray) -> np.ndarray:
    """Result values as float32 with NaN -> 0 and everything clipped to [0, 1].

    Works in place when ``x`` is float32 already: pass a fresh array (e.g. from boolean indexing)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, copy=False)
    np.clip(x, 0.0, 1.0, out=x)
    return x


def _paste(base: np.ndarray, result_rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Copy of base (H, W) or (H, W, C) with hole pixels replaced by result (H, W, 3) in base's dtype.

    Only the hole pixels of ``result_rgb`` are read (NaN -> 0, clipped to [0, 1]); it may be any float
    array of that shape, non-contiguous included.  Gray bases ((H, W), (H, W, 1), gray + alpha (H, W, 2))
    get the luminance of the result; an alpha channel (2nd of 2, 4th of 4) keeps the base's values.
    """
    out = base.copy()
    vals = _sanitize(result_rgb[hole])  # (P, 3)
    if base.ndim == 2:
        out[hole] = _quantize(_gray(vals), base.dtype)
    elif base.shape[2] in (1, 2):  # gray, gray + alpha
        out[hole, 0] = _quantize(_gray(vals), base.dtype)
    else:
        out[hole, :3] = _quantize(vals, base.dtype)
    return out


def _pil_result(img: Image.Image, result: np.ndarray, hole: np.ndarray) -> Image.Image:
    mode = img.mode
    if mode in ("L", "RGB", "RGBA", "LA", "I", "F"):
        base = np.asarray(img)
    elif mode in _I16_MODES:
        base = np.asarray(img).astype(np.uint16)  # -> "I;16", native byte order
    elif mode == "1":
        base = np.asarray(img.convert("L"))
    elif mode == "La":
        base = np.asarray(img.convert("LA"))
    elif mode in ("RGBa", "PA"):
        base = np.asarray(img.convert("RGBA"))
    else:
        base = _pil_rgb(img)
    return Image.fromarray(_paste(base, result, hole))


def from_rgb_float(result: np.ndarray, original, kind: ImageKind, hole: np.ndarray):
    """Return ``result`` in the kind, dtype and layout of ``original``, changing only hole pixels.

    Parameters
    ----------
    result : numpy.ndarray, shape (N, H, W, 3), float, values in [0, 1] (clipped)
        The inpainted images.
    original : the image exactly as given to :func:`to_rgb_float` (for a path, the path; the
        image loaded then is reused from ``kind.image``).
    kind : ImageKind
        What :func:`to_rgb_float` returned for ``original``.
    hole : numpy.ndarray, shape (N, H, W), bool, True = hole.

    Returns
    -------
    Same kind as the input.  Outside the hole every value is exactly the input's (same bytes
    for integer data, same float values, same torch dtype and device); inside the hole the
    result converted to the input's dtype (integers: scaled by 255 or 65535 and rounded).

    * numpy: same shape and dtype; ``(H, W)`` / ``(H, W, 1)`` gray get the result's luminance;
      ``(H, W, 4)`` keeps its alpha channel.
    * torch: same shape ``(3, H, W)`` / ``(B, 3, H, W)``, dtype and device.
    * PIL / path: a new PIL image.  RGB, L, RGBA, LA, I;16, I and F keep their mode (gray modes
      get the result's luminance, alpha is kept); ``I;16B``/``I;16L``/``I;16N`` come back as
      ``I;16``; ``1`` comes back as ``L`` (0 / 255 outside the hole); ``RGBa``/``La``/``PA`` as
      ``RGBA``/``LA``/``RGBA``; every other mode (``P``, ``CMYK``, ``YCbCr``, ...) as ``RGB``,
      whose known pixels are ``original.convert("RGB")``'s.  For a path the result is in the
      EXIF-corrected orientation of :func:`load_image`.
    """
    n, (H, W) = kind.n, kind.size
    result = np.asarray(result)
    hole = np.asarray(hole, dtype=bool)
    if result.shape != (n, H, W, 3):
        raise InputError(f"result has shape {result.shape}; expected {(n, H, W, 3)} to match the input")
    if hole.shape != (n, H, W):
        raise InputError(f"hole mask has shape {hole.shape}; expected {(n, H, W)} to match the input")
    # NaN -> 0 and the clip to [0, 1] are applied to the hole pixels only (in _paste and below): the
    # known pixels come from ``original``, so sanitising the whole float image would be wasted work.

    if kind.kind in ("pil", "path"):
        img = original
        if kind.kind == "path":
            img = kind.image if kind.image is not None else load_image(original)
        return _pil_result(img, result[0], hole[0])

    if kind.kind == "numpy":
        return _paste(np.asarray(original), result[0], hole[0])

    if kind.kind == "torch":
        torch = _torch()
        orig = original if kind.batched else original.unsqueeze(0)
        vals = torch.from_numpy(_sanitize(result[hole]))  # (P, 3) float32, hole pixels only
        if orig.dtype == torch.uint8:
            vals = torch.round(vals * 255.0).clamp_(0, 255)
        vals = vals.to(device=orig.device, dtype=orig.dtype)
        m = torch.from_numpy(hole).to(orig.device)  # (N, H, W)
        out = orig.clone()  # same layout as orig; never writes into the caller's tensor
        out.permute(0, 2, 3, 1)[m] = vals  # (N, H, W, 3) view of out
        return out if kind.batched else out[0]

    raise InputError(f"unknown image kind {kind.kind!r}")
