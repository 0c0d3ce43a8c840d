"""The ImageNet VGG-16 feature extractor of the perceptual and style losses, without torchvision.

:class:`VGG16Features` re-creates ``torchvision.models.vgg16().features`` up to pool3 in plain torch and reads a
local torchvision state-dict file (``vgg16-397923af.pth`` or a ``.safetensors`` conversion of it, ``.pth`` read
with ``weights_only=True``). lbam never downloads it: without a file :func:`build_vgg` returns ``None`` (with a
warning) and the trainer leaves the two terms out.
"""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from ..errors import WeightsError

log = logging.getLogger(__name__)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VGG16Features", "build_vgg"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision vgg16().features up to and including pool3: (index, kind, in, out)
_VGG_LAYOUT: Tuple[Tuple[str, int, int], ...] = (
    ("conv", 3, 64),     # 0
    ("relu", 0, 0),      # 1
    ("conv", 64, 64),    # 2
    ("relu", 0, 0),      # 3
    ("pool", 0, 0),      # 4  pool1
    ("conv", 64, 128),   # 5
    ("relu", 0, 0),      # 6
    ("conv", 128, 128),  # 7
    ("relu", 0, 0),      # 8
    ("pool", 0, 0),      # 9  pool2
    ("conv", 128, 256),  # 10
    ("relu", 0, 0),      # 11
    ("conv", 256, 256),  # 12
    ("relu", 0, 0),      # 13
    ("conv", 256, 256),  # 14
    ("relu", 0, 0),      # 15
    ("pool", 0, 0),      # 16 pool3
)
_POOL_INDICES = (4, 9, 16)


class VGG16Features(nn.Module):
    """Frozen VGG-16 feature extractor returning the pool1, pool2 and pool3 activations.

    The submodules are named ``"0"`` ... ``"16"`` exactly like ``torchvision.models.vgg16().features``,
    so ``state_dict()`` holds ``0.weight, 0.bias, 2.*, 5.*, 7.*, 10.*, 12.*, 14.*`` with torchvision's
    shapes and an ImageNet torchvision checkpoint loads with :meth:`from_file`. The ImageNet mean/std
    normalisation happens inside (non-persistent buffers, not part of the state dict).

    The module is frozen: parameters have ``requires_grad=False`` and it stays in eval mode even when a
    parent calls ``.train()``. Gradients still flow to the *input*, as the perceptual loss needs.

    forward(x): ``x`` is ``(B, 3, H, W)`` in [0, 1]; returns ``[pool1, pool2, pool3]`` of shapes
    ``(B, 64, H/2, W/2)``, ``(B, 128, H/4, W/4)``, ``(B, 256, H/8, W/8)`` (floor division).
    Randomly initialised when built directly; use :meth:`from_file` (or :func:`build_vgg`) for weights.
    """

    def __init__(self) -> None:
        super().__init__()
        for i, (kind, cin, cout) in enumerate(_VGG_LAYOUT):
            if kind == "conv":
                layer: nn.Module = nn.Conv2d(cin, cout, kernel_size=3, padding=1)
            elif kind == "relu":
                layer = nn.ReLU(inplace=False)
            else:
                layer = nn.MaxPool2d(kernel_size=2, stride=2)
            self.add_module(str(i), layer)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def freeze(self) -> "VGG16Features":
        """Set ``requires_grad=False`` on every parameter and switch to eval mode."""
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "VGG16Features":  # noqa: D401 - keeps the extractor in eval
        """Ignore ``mode``: the extractor always stays in eval mode."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG16Features expects (B, 3, H, W), got {tuple(x.shape)}")
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        feats: List[torch.Tensor] = []
        for i, layer in enumerate(self.children()):
            h = layer(h)
            if i in _POOL_INDICES:
                feats.append(h)
        return feats

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu") -> "VGG16Features":
        """Build the extractor from a local VGG-16 state-dict file.

        Accepts ``.safetensors`` files and torch ``.pth``/``.pt`` files; the latter are read with
        ``torch.load(..., weights_only=True)``, so a file holding arbitrary pickled objects is refused.
        Keys may be prefixed with ``features.`` (torchvision's full ``vgg16`` state dict, e.g.
        ``vgg16-397923af.pth``) or bare (``0.weight``); an optional ``module.`` prefix (DataParallel)
        and a wrapping ``{"state_dict": ...}`` are tolerated. Layers after pool3 and the classifier are
        ignored. Raises :class:`lbam.errors.WeightsError` when the file is missing, unreadable, unsafe
        or lacks / mis-shapes one of the 14 conv tensors.
        """
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"VGG-16 weights file not found: {path}")
        raw = _read_state_dict(path, map_location)
        model = cls()
        own = model.state_dict()
        picked: Dict[str, torch.Tensor] = {}
        for key, value in raw.items():
            bare = key[len("module."):] if key.startswith("module.") else key
            if bare.startswith("features."):
                bare = bare[len("features."):]
            if bare in own:
                picked[bare] = value
        missing = sorted(set(own) - set(picked), key=_layer_order)
        if missing:
            raise WeightsError(f"{path}: not a VGG-16 state dict, missing {', '.join(missing)}")
        for key, value in picked.items():
            if tuple(value.shape) != tuple(own[key].shape):
                raise WeightsError(
                    f"{path}: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}"
                )
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in picked.items()}, strict=True)
        return model.freeze()


def _layer_order(key: str) -> Tuple[int, str]:
    idx, _, name = key.partition(".")
    return (int(idx) if idx.isdigit() else -1, name)


def _read_state_dict(path: Path, map_location: Union[str, torch.device]) -> Dict[str, torch.Tensor]:
    """Read ``path`` into a flat ``{name: tensor}`` dict without executing pickled code."""
    try:
        if path.suffix.lower() == ".safetensors":
            try:
                from safetensors.torch import load_file
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise WeightsError(f"{path}: reading .safetensors needs the 'safetensors' package") from exc
            device = str(map_location) if not isinstance(map_location, str) else map_location
            obj = load_file(str(path), device=device)
        else:
            obj = torch.load(str(path), map_location=map_location, weights_only=True)
    except WeightsError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError) as exc:
        raise WeightsError(f"cannot read VGG-16 weights {path} safely: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def build_vgg(
    path: Optional[Union[str, os.PathLike]],
    device: Union[str, torch.device, None] = None,
) -> Optional[VGG16Features]:
    """Return the frozen VGG-16 extractor for the perceptual/style losses, or ``None``.

    ``path=None`` (or an empty string) is the explicit "no VGG file" mode: a warning is logged and
    ``None`` is returned; pass that ``None`` on to :func:`perceptual_and_style`, which then returns
    zeros so the perceptual (x0.05) and style (x120) terms drop out of the Edge-LBAM objective.
    A path that is given but cannot be loaded raises :class:`lbam.errors.WeightsError` (no silent
    fallback). ``device`` moves the model after loading.
    """
    if path is None or str(path) == "":
        log.warning(
            "no VGG-16 weights file given: perceptual and style losses are disabled "
            "(pass a torchvision vgg16-397923af.pth or .safetensors file to enable them)"
        )
        return None
    model = VGG16Features.from_file(path)
    if device is not None:
        model = model.to(device)
    return model
