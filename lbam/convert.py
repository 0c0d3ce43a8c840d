"""Convert the checkpoints published for the Edge-LBAM paper into an lbam weights folder.

The published files (docs/ARCHITECTURE.md section 4) are torch pickles:

* the MECNet (edge completion) file holds ``{"iteration": int, "generator": state_dict}`` with spectral
  normalization stored as ``weight_orig`` / ``weight_u`` / ``weight_v``;
* the Edge-LBAM generator file is a plain state_dict.

They are read with ``torch.load(..., weights_only=True)`` only, so no code inside them ever runs. Spectral
normalization is folded into plain weights, the names are mapped onto :class:`~lbam.models.MECNet` and
:class:`~lbam.models.EdgeLBAM`, every tensor is shape-checked, and the result is written as a weights
folder (see :mod:`lbam.weights_io`).

Command line: ``lbam convert-official --edge EDGE_PTH --inpaint INPAINT_PTH --out OUT_DIR``.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

import torch

from .errors import WeightsError
from .models.configs import EdgeLBAMConfig, MECNetConfig, get_config
from .weights_io import sha256_file, write_weights_folder

PathLike = Union[str, "os.PathLike[str]"]
StateDict = Dict[str, torch.Tensor]

_SN_SUFFIXES = ("weight_orig", "weight_u", "weight_v")
# MECNet layers that are ConvTranspose2d with spectral norm: their sigma is taken over dim 1.
MECNET_TRANSPOSED_SN = ("decoder.0", "decoder.3")
_MAX_LISTED = 20


# --------------------------------------------------------------------------------------------- reading


def load_published(path: PathLike) -> StateDict:
    """Read a published checkpoint as {name: tensor} without running any pickled code.

    Uses ``torch.load(path, map_location="cpu", weights_only=True)`` only. A ``{"iteration", "generator"}``
    wrapper is unwrapped and a DataParallel ``module.`` prefix is stripped. Raises WeightsError when the file
    is missing, holds anything but tensors (e.g. pickled objects), or is not a state dict.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"checkpoint not found: {p}")
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # torch's text suggests weights_only=False: never pass that on
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found:  # the file names a Python class or function to rebuild: code that unpickling would run
            raise WeightsError(f"refusing to load {p}: besides tensors it holds pickled Python objects "
                               f"({found.group(1)}), i.e. code that loading would run; lbam reads only plain "
                               "tensor checkpoints") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(e))
        raise WeightsError(f"cannot read {p}: not a PyTorch tensor checkpoint"
                           + (f" ({detail.group(1).strip()[:200]})" if detail else "")) from None
    except Exception as e:  # noqa: BLE001 - RuntimeError, KeyError, EOFError ...: not a torch checkpoint
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise WeightsError(f"cannot read {p}: not a PyTorch tensor checkpoint ({type(e).__name__}: {first})") from None
    if isinstance(obj, Mapping) and isinstance(obj.get("generator"), Mapping):
        obj = obj["generator"]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{p} does not hold a state dict")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"{p} is not a state dict of tensors; offending entries: {_listing(map(str, bad))}")
    state: StateDict = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


# ------------------------------------------------------------------------------ spectral normalization


def _sn_sigma(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor, dim: int) -> torch.Tensor:
    """sigma = u . (W v), W = weight with ``dim`` moved first, reshaped to (shape[dim], -1); float64 scalar."""
    w = weight.detach().to(torch.float64)
    if dim != 0:
        w = w.movedim(dim, 0)
    w = w.reshape(w.shape[0], -1)
    return torch.dot(u.detach().to(torch.float64), torch.mv(w, v.detach().to(torch.float64)))


def _fits(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor, dim: int) -> bool:
    if weight.dim() <= dim:
        return False
    rows = weight.shape[dim]
    return u.dim() == 1 and v.dim() == 1 and u.numel() == rows and rows * v.numel() == weight.numel()


def fold_spectral_norm(state: Mapping[str, torch.Tensor], dims: Optional[Mapping[str, int]] = None) -> StateDict:
    """Replace every ``X.weight_orig`` / ``X.weight_u`` / ``X.weight_v`` triple by ``X.weight``.

    X.weight = weight_orig / sigma, sigma = u . (W v) with W = weight_orig reshaped to (out, -1), "out"
    being dim 0 for Conv2d and dim 1 for ConvTranspose2d (W = weight_orig.transpose(0, 1).reshape(...)).
    This is exactly the weight ``torch.nn.utils.spectral_norm`` uses in eval mode.

    dims: {layer prefix X: dim} for layers whose dim is known (pass 1 for ConvTranspose2d layers). Other
    layers get dim 0 when the stored u / v fit it, else dim 1; a square ConvTranspose2d (in == out channels)
    cannot be told apart from its shapes and must be listed. Other entries are passed through unchanged.
    Raises WeightsError naming the key when a triple is incomplete or u / v do not fit the weight.
    """
    dims = dict(dims or {})
    out: StateDict = {}
    prefixes = []
    for key in state:
        for suffix in _SN_SUFFIXES:
            if key.endswith("." + suffix) or key == suffix:
                prefix = key[: -len(suffix)]
                if prefix not in prefixes:
                    prefixes.append(prefix)
                break
        else:
            out[key] = state[key]
    for prefix in prefixes:
        names = [prefix + s for s in _SN_SUFFIXES]
        absent = [n for n in names if n not in state]
        if absent:
            raise WeightsError(f"incomplete spectral normalization: missing {', '.join(absent)}")
        if prefix + "weight" in state:
            raise WeightsError(f"{prefix}weight present beside {prefix}weight_orig (ambiguous)")
        w, u, v = (state[n] for n in names)
        layer = prefix[:-1]
        if layer in dims:
            dim = int(dims[layer])
            if not _fits(w, u, v, dim):
                raise WeightsError(
                    f"{prefix}weight_u {tuple(u.shape)} / {prefix}weight_v {tuple(v.shape)} do not fit "
                    f"{prefix}weight_orig {tuple(w.shape)} along dim {dim}"
                )
        elif _fits(w, u, v, 0):
            dim = 0
        elif _fits(w, u, v, 1):
            dim = 1
        else:
            raise WeightsError(
                f"{prefix}weight_u {tuple(u.shape)} / {prefix}weight_v {tuple(v.shape)} do not fit "
                f"{prefix}weight_orig {tuple(w.shape)}"
            )
        sigma = _sn_sigma(w, u, v, dim)
        if not torch.isfinite(sigma) or sigma.abs() < 1e-12:
            raise WeightsError(f"{prefix}weight_orig has a degenerate spectral norm estimate ({sigma.item():g})")
        out[prefix + "weight"] = (w.to(torch.float64) / sigma).to(w.dtype)
    return out


# -------------------------------------------------------------------------------------- name mapping


def _mecnet_prefixes(config: MECNetConfig) -> List[Tuple[str, str]]:
    """(published prefix, lbam prefix) pairs of MECNet."""
    pairs = [(f"encoder.{i}.", f"encoder.{i}.") for i in (1, 4, 7)]
    for i in range(config.n_blocks):
        pairs += [(f"middle.{i}.conv_block.{j}.", f"trunk.{i}.conv_block.{j}.") for j in (1, 5)]
    pairs += [(f"upsample{n}.0.", f"up{n}.0.") for n in (1, 2, 3)]
    pairs += [(f"decoder.{i}.", f"decoder.{i}.") for i in (0, 3, 7)]
    return pairs


def _edge_lbam_prefixes() -> List[Tuple[str, str]]:
    """(published prefix, lbam prefix) pairs of the Edge-LBAM generator."""
    pairs = [
        ("maskconv1.", "forward_mask_stem.0."),
        ("maskconv2.", "forward_mask_stem.1."),
        ("maskconv3.", "reverse_mask_stem.0."),
        ("maskconv4.", "reverse_mask_stem.1."),
        ("edgeconv1.", "forward_edge_stem.0."),
        ("edgeconv2.", "forward_edge_stem.1."),
        ("edgeconv3.", "reverse_edge_stem.0."),
        ("edgeconv4.", "reverse_edge_stem.1."),
        ("dc7.", "output_conv."),
    ]
    guidance = (("maskconv", "mask_branch"), ("edgegradient", "edge_branch"),
                ("edgemaskcoincide", "coincide"), ("edgeconv", "edge_out"))
    for k in range(1, 8):
        fa = f"forward_attention.{k - 1}."
        pairs += [
            (f"ec{k}.conv.conv.", fa + "feature_conv."),
            (f"ec{k}.conv.maskConv.", fa + "mask_conv."),
            (f"ec{k}.conv.activationFuncG_A.", fa + "attention."),
            (f"ec{k}.bn.", fa + "bn."),
        ]
        pairs += [(f"edge{k}.{a}.", f"forward_guidance.{k - 1}.{b}.") for a, b in guidance]
    for k in range(1, 7):
        pairs += [(f"reverseedge{k}.{a}.", f"reverse_guidance.{k - 1}.{b}.") for a, b in guidance]
        pairs += [
            (f"reverseConv{k}.reverseMaskConv.", f"reverse_attention.{k - 1}.mask_conv."),
            (f"reverseConv{k}.activationFuncG_A.", f"reverse_attention.{k - 1}.attention."),
            (f"dc{k}.conv.", f"decoder.{k - 1}.up."),
            (f"dc{k}.bn.", f"decoder.{k - 1}.bn."),
        ]
    return pairs


def _swap(key: str, pairs: Iterable[Tuple[str, str]]) -> Optional[str]:
    """Rename ``key`` by the longest matching prefix of ``pairs`` (first element -> second); None if none."""
    best = None
    for src, dst in pairs:
        if key.startswith(src) and (best is None or len(src) > len(best[0])):
            best = (src, dst)
    return None if best is None else best[1] + key[len(best[0]):]


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:_MAX_LISTED])
    return shown + (f", ... ({len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else "")


def _remap_strict(
    state: Mapping[str, torch.Tensor], pairs: List[Tuple[str, str]], target: Mapping[str, torch.Tensor], what: str
) -> StateDict:
    """Rename published keys to lbam keys and check the result against ``target`` (a model's state_dict)."""
    out: StateDict = {}
    matched = set()
    unexpected, wrong_shape = [], []
    for key, value in state.items():
        new = _swap(key, pairs)
        if new is None or new not in target or new in matched:
            unexpected.append(key)
            continue
        matched.add(new)
        expected = tuple(target[new].shape)
        if tuple(value.shape) != expected:
            wrong_shape.append(f"{key} {tuple(value.shape)} (expected {expected})")
            continue
        dtype = target[new].dtype
        out[new] = value.to(dtype) if value.is_floating_point() and dtype.is_floating_point else value
    back = [(dst, src) for src, dst in pairs]
    missing = [f"{_swap(k, back) or k} (lbam {k})" for k in target if k not in matched]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {_listing(unexpected)}")
        if wrong_shape:
            parts.append(f"wrong shape {len(wrong_shape)}: {_listing(wrong_shape)}")
        raise WeightsError(f"checkpoint does not match {what}; " + "; ".join(parts))
    return out


def _target_state(build) -> Dict[str, torch.Tensor]:
    """state_dict of a model built on the meta device (shapes and dtypes only, no memory)."""
    with torch.device("meta"):
        return build().state_dict()


def convert_mecnet(state: Mapping[str, torch.Tensor], config: Optional[MECNetConfig] = None) -> StateDict:
    """Published MECNet state dict -> state dict of ``MECNet(config)`` (no spectral norm).

    Spectral normalization is folded (decoder.0 / decoder.3 are ConvTranspose2d: sigma over dim 1) and
    ``middle.*`` / ``upsample{n}.0`` become ``trunk.*`` / ``up{n}.0``. Strict: every published key must be
    used and every model key filled with the right shape, else WeightsError listing missing, unexpected and
    mis-shaped keys. config defaults to the paper configuration.
    """
    from .models.mecnet import MECNet

    config = config or get_config("paper").mecnet
    if "ec1.conv.conv.weight" in state:
        raise WeightsError("this looks like an Edge-LBAM generator checkpoint, not a MECNet (edge model) one")
    folded = fold_spectral_norm(state, dims={k: 1 for k in MECNET_TRANSPOSED_SN})
    target = _target_state(lambda: MECNet(config))
    return _remap_strict(folded, _mecnet_prefixes(config), target, f"MECNet {config}")


def convert_edge_lbam(state: Mapping[str, torch.Tensor], config: Optional[EdgeLBAMConfig] = None) -> StateDict:
    """Published Edge-LBAM generator state dict -> state dict of ``EdgeLBAM(config)``.

    Renames maskconv/edgeconv/ec/edge/reverseedge/reverseConv/dc modules (docs/ARCHITECTURE.md section 4) to
    lbam's names. Strict like :func:`convert_mecnet`. config defaults to the paper configuration.
    """
    from .models.edge_lbam import EdgeLBAM

    config = config or get_config("paper").generator
    if any(k.endswith(".weight_orig") for k in state):
        raise WeightsError("this looks like a MECNet checkpoint (spectral-norm weights), not an Edge-LBAM generator")
    target = _target_state(lambda: EdgeLBAM(config))
    return _remap_strict(state, _edge_lbam_prefixes(), target, f"Edge-LBAM generator {config}")


# ---------------------------------------------------------------------------------------- whole folder


def convert_official(edge_path: PathLike, inpaint_path: PathLike, out_dir: PathLike) -> Path:
    """Convert the two published checkpoints into the weights folder ``out_dir`` (paper configuration).

    edge_path: the MECNet checkpoint; inpaint_path: the Edge-LBAM generator checkpoint. Writes
    config.json, mecnet.safetensors and generator.safetensors, logs their sha256 and returns ``out_dir``.
    """
    config = get_config("paper")
    edge_path, inpaint_path = Path(edge_path), Path(inpaint_path)
    mecnet_state = convert_mecnet(load_published(edge_path), config.mecnet)
    generator_state = convert_edge_lbam(load_published(inpaint_path), config.generator)
    extra = {
        "source": "converted by lbam.convert from the checkpoints published for Edge-LBAM "
                  "(Wang et al., ICCV 2019); MECNet spectral normalization folded into plain weights",
        "source_files": {
            "mecnet": {"name": edge_path.name, "sha256": sha256_file(edge_path)},
            "generator": {"name": inpaint_path.name, "sha256": sha256_file(inpaint_path)},
        },
    }
    write_weights_folder(out_dir, config, mecnet_state, generator_state, extra)  # logs each file's sha256
    return Path(out_dir)
