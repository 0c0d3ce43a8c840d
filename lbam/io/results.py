"""Results out: :func:`from_rgb_float` returns the filled image in the kind the user passed, known pixels
unchanged."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..edges import rgb_to_gray
from ..errors import InputError
from ._util import I16_MODES, pil_rgb, torch_module
from .files import load_image
from .images import ImageKind


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


def _hole_values(result_rgb: np.ndarray, idx: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``result_rgb[hole]`` ((P, 3), a new array) for result (..., H, W, 3) and ``idx = np.flatnonzero(hole)``.

    A C-contiguous result is gathered by flat index (about 10x faster than boolean indexing on a megapixel
    image); any other layout falls back to boolean indexing. Same values and order either way."""
    if result_rgb.flags.c_contiguous:
        return np.take(result_rgb.reshape(-1, 3), idx, axis=0)
    return result_rgb[hole]


def _paste(base: np.ndarray, result_rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Copy of base (H, W) or (H, W, C) with hole pixels replaced by result (H, W, 3) in base's dtype.

    Only the hole pixels of ``result_rgb`` are read (NaN -> 0, clipped to [0, 1]); it may be any float
    array of that shape, non-contiguous included.  Gray bases ((H, W), (H, W, 1), gray + alpha (H, W, 2))
    get the luminance of the result; an alpha channel (2nd of 2, 4th of 4) keeps the base's values.
    """
    out = base.copy()  # C order (ndarray.copy default), so the flat views below write into it
    idx = np.flatnonzero(hole)  # hole pixels by flat index: far cheaper than boolean indexing, same order
    vals = _sanitize(_hole_values(result_rgb, idx, hole))  # (P, 3)
    if base.ndim == 2 or base.shape[2] in (1, 2):
        gray = rgb_to_gray(vals[:, None, :])[:, 0]  # (P,) luminance, lbam.edges' weights
    if base.ndim == 2:
        out.reshape(-1)[idx] = _quantize(gray, base.dtype)
    elif base.shape[2] in (1, 2):  # gray, gray + alpha
        out.reshape(-1, base.shape[2])[idx, 0] = _quantize(gray, base.dtype)
    else:
        out.reshape(-1, base.shape[2])[idx, :3] = _quantize(vals, base.dtype)
    return out


#: PIL modes kept as they are in results; every other input mode maps as in :func:`result_mode`.
_KEPT_MODES = ("L", "RGB", "RGBA", "LA", "I", "F")
_MODE_MAP = {"1": "L", "La": "LA", "RGBa": "RGBA", "PA": "RGBA", **{m: "I;16" for m in I16_MODES}}


def result_mode(mode: str) -> str:
    """PIL mode of the result :func:`from_rgb_float` returns for a PIL / path input of PIL mode ``mode``."""
    return mode if mode in _KEPT_MODES else _MODE_MAP.get(mode, "RGB")


def _pil_result(img: Image.Image, result: np.ndarray, hole: np.ndarray) -> Image.Image:
    mode, out_mode = img.mode, result_mode(img.mode)
    if mode in _KEPT_MODES:
        base = np.asarray(img)
    elif mode in I16_MODES:
        base = np.asarray(img).astype(np.uint16)  # -> "I;16", native byte order
    elif out_mode == "RGB":
        base = pil_rgb(img)
    else:  # 1 -> L, La -> LA, RGBa / PA -> RGBA
        base = np.asarray(img.convert(out_mode))
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
        torch = torch_module()
        orig = original if kind.batched else original.unsqueeze(0)
        vals = torch.from_numpy(_sanitize(_hole_values(result, np.flatnonzero(hole), hole)))  # (P, 3), hole only
        if orig.dtype == torch.uint8:
            vals = torch.round(vals * 255.0).clamp_(0, 255)
        vals = vals.to(device=orig.device, dtype=orig.dtype)
        m = torch.from_numpy(hole).to(orig.device)  # (N, H, W)
        out = orig.clone()  # same layout as orig; never writes into the caller's tensor
        out.permute(0, 2, 3, 1)[m] = vals  # (N, H, W, 3) view of out
        return out if kind.batched else out[0]

    raise InputError(f"unknown image kind {kind.kind!r}")
