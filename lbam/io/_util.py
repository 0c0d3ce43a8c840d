"""Constants and small helpers shared by the ``lbam.io`` modules."""

from __future__ import annotations

import os

#: File name suffixes treated as images when a folder is read (CLI folder mode, training data, mask folders).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

#: How far outside [0, 1] float pixel values may stray (then clipped) before it is an error.
FLOAT_TOLERANCE = 1e-3

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

