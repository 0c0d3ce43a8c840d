"""Constants and small helpers shared by the ``lbam.io`` modules."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

#: File name suffixes treated as images when a folder is read (CLI folder mode, training data, mask folders).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

#: How far outside [0, 1] float pixel values may stray (then clipped) before it is an error.
FLOAT_TOLERANCE = 1e-3

#: PIL modes of 16-bit single-channel images
I16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def torch_module():
    """The torch module, or None if it is not installed."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of lbam
        return None
    return torch


def is_tensor(x) -> bool:
    """Whether ``x`` is a torch tensor (False when torch is missing)."""
    torch = torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


def is_path(x) -> bool:
    """Whether ``x`` names a file (str or os.PathLike)."""
    return isinstance(x, (str, os.PathLike))


def wxh(h: int, w: int) -> str:
    """An image size as users write it: width x height."""
    return f"{w}x{h}"


def pil_rgb(img: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB view of a color / palette / exotic-mode PIL image, alpha dropped."""
    if img.mode == "RGB":
        return np.asarray(img)
    if img.mode == "RGBA":
        return np.asarray(img)[:, :, :3]
    if img.mode in ("RGBa", "P", "PA"):  # via RGBA: un-premultiplies, keeps palette transparency quiet
        return np.asarray(img.convert("RGBA"))[:, :, :3]
    return np.asarray(img.convert("RGB"))
