"""Checks on what a weights folder holds, run when it is read and before any network is built.

A weights folder may come from anywhere (a Hub repo id is enough to fetch one), so its ``config.json`` must not be
able to make lbam build networks that exhaust memory, nor load settings that only fail later, at inference.
:func:`check_model_dict` checks the types and bounds of the ``"model"`` section; :func:`check_finite` refuses
tensors holding NaN or infinity. Both raise :class:`lbam.errors.WeightsError` naming the offending entry.

The bounds are those of the largest architecture lbam defines (the paper's: MECNet base 64 with 8 residual blocks,
Edge-LBAM widths up to 512) and of settings that still give a usable pipeline.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from .errors import WeightsError
from .models.configs import N_GENERATOR_WIDTHS, ModelConfig
from .models.edge_lbam import SIDE_MULTIPLE

#: Largest MECNet encoder base width (the paper's) and trunk length (the paper's).
MAX_MECNET_BASE = 64
MAX_MECNET_BLOCKS = 8
#: Largest Edge-LBAM layer width (the paper's).
MAX_GENERATOR_WIDTH = 512
#: Largest training crop side; it must also be a multiple of the generator's side multiple (128).
MAX_TRAIN_SIZE = 1024
#: Largest Canny smoothing sigma (the Gaussian kernel has radius 4 sigma; the pipeline uses 1.5).
MAX_CANNY_SIGMA = 16.0


def _int(value: Any, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WeightsError(f"model config: {name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise WeightsError(f"model config: {name} must be in [{low}, {high}], got {value}")


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise WeightsError(f"model config: {name} must be a finite number, got {value!r}")
    return float(value)


def _section(d: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    section = d.get(key, {})
    if not isinstance(section, Mapping):
        raise WeightsError(f"model config: {key} must be an object, got {section!r}")
    return section


def check_model_dict(d: Any) -> None:
    """Check the ``"model"`` section of a ``config.json`` (a :meth:`ModelConfig.to_dict` dict) before use.

    Absent entries are fine (the dataclass defaults apply); present ones must have the right type and lie in
    bounds: MECNet ``base`` in [1, 64] and ``n_blocks`` in [1, 8]; seven generator widths in [1, 512]; ``residual``
    and both ``smooth_upsampling`` bools; ``canny_sigma`` in (0, 16]; ``0 <= canny_low <= canny_high``;
    ``train_size`` a multiple of 128 in [128, 1024]; ``edge_threshold`` in (0, 1); ``name`` a string. Unknown
    keys and the values of ``prefill`` and ``edge_decode`` are checked by :meth:`ModelConfig.from_dict` itself.
    Raises WeightsError.
    """
    if not isinstance(d, Mapping):
        raise WeightsError(f"model config must be an object, got {type(d).__name__}")
    mec = _section(d, "mecnet")
    if "base" in mec:
        _int(mec["base"], "mecnet.base", 1, MAX_MECNET_BASE)
    if "n_blocks" in mec:
        _int(mec["n_blocks"], "mecnet.n_blocks", 1, MAX_MECNET_BLOCKS)
    gen = _section(d, "generator")
    if "widths" in gen:
        widths = gen["widths"]
        if not isinstance(widths, (list, tuple)) or len(widths) != N_GENERATOR_WIDTHS:
            raise WeightsError(f"model config: generator.widths must be a list of {N_GENERATOR_WIDTHS} integers, "
                               f"got {widths!r}")
        for i, w in enumerate(widths):
            _int(w, f"generator.widths[{i}]", 1, MAX_GENERATOR_WIDTH)
    for section, name, key in ((gen, "generator", "residual"), (gen, "generator", "smooth_upsampling"),
                               (mec, "mecnet", "smooth_upsampling")):
        if key in section and not isinstance(section[key], bool):
            raise WeightsError(f"model config: {name}.{key} must be true or false, got {section[key]!r}")
    if "name" in d and not isinstance(d["name"], str):
        raise WeightsError(f"model config: name must be a string, got {d['name']!r}")
    if "canny_sigma" in d:
        sigma = _number(d["canny_sigma"], "canny_sigma")
        if not 0.0 < sigma <= MAX_CANNY_SIGMA:
            raise WeightsError(f"model config: canny_sigma must be in (0, {MAX_CANNY_SIGMA:g}], got {sigma:g}")
    low = _number(d.get("canny_low", ModelConfig.canny_low), "canny_low")
    high = _number(d.get("canny_high", ModelConfig.canny_high), "canny_high")
    for name, v in (("canny_low", low), ("canny_high", high)):
        if v < 0:
            raise WeightsError(f"model config: {name} must be >= 0, got {v:g}")
    if low > high:
        raise WeightsError(f"model config: canny_low ({low:g}) must not exceed canny_high ({high:g})")
    if "train_size" in d:
        _int(d["train_size"], "train_size", SIDE_MULTIPLE, MAX_TRAIN_SIZE)
        if d["train_size"] % SIDE_MULTIPLE:
            raise WeightsError(f"model config: train_size must be a multiple of {SIDE_MULTIPLE}, got {d['train_size']}")
    if "edge_threshold" in d:
        t = _number(d["edge_threshold"], "edge_threshold")
        if not 0.0 < t < 1.0:
            raise WeightsError(f"model config: edge_threshold must be in (0, 1), got {t:g}")


def check_finite(state: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise WeightsError when a floating-point tensor of ``state`` holds NaN or +-inf (``where`` names the file)."""
    for key, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise WeightsError(f"{where}: tensor {key!r} holds {bad} non-finite value(s) (NaN or inf); "
                               "the weights are corrupt")
