"""The on-disk layout of a weights folder, shared by bundled, converted, trained and downloaded weights.

A weights folder holds three files::

    config.json            {"format": "lbam-weights", "format_version": 1,
                            "model": ModelConfig.to_dict(),
                            "files": {"mecnet.safetensors": <sha256>, "generator.safetensors": <sha256>},
                            ... free-form extras such as "source"}
    mecnet.safetensors     state_dict of ``MECNet(config.mecnet)`` (no spectral norm: folded weights)
    generator.safetensors  state_dict of ``EdgeLBAM(config.generator)``

Both state dicts load into their model with ``load_state_dict(strict=True)``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch

from .errors import WeightsError
from .io.save import atomic_path
from .models.configs import ModelConfig
from .weights_check import check_finite, check_model_dict

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
MECNET_FILE = "mecnet.safetensors"
GENERATOR_FILE = "generator.safetensors"
FORMAT_NAME = "lbam-weights"
FORMAT_VERSION = 1
_RESERVED_KEYS = ("format", "format_version", "model", "files")

PathLike = Union[str, "os.PathLike[str]"]
StateDict = Dict[str, torch.Tensor]


def sha256_file(path: PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 digest of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _plain_tensors(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Detached, contiguous CPU tensors that share no storage (safetensors refuses shared storage)."""
    out: StateDict = {}
    seen = set()
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"state entry {key!r} is a {type(value).__name__}, not a tensor")
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:
            t = t.clone()
        elif ptr is not None:
            seen.add(ptr)
        out[key] = t
    return out


def _save_safetensors(state: Mapping[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:  # own temporary name, usual file mode, then os.replace
        save_file(_plain_tensors(state), str(tmp), metadata={"format": "pt"})


def write_weights_folder(
    out_dir: PathLike,
    config: ModelConfig,
    mecnet_state: Mapping[str, torch.Tensor],
    generator_state: Mapping[str, torch.Tensor],
    extra: Optional[Dict[str, Any]] = None,
) -> Dict[str, str]:
    """Write ``config.json``, ``mecnet.safetensors`` and ``generator.safetensors`` into ``out_dir``.

    The folder is created if needed; existing files of the same names are replaced. ``extra`` entries
    (JSON-serialisable, e.g. ``{"source": "..."}``) are stored at the top level of ``config.json`` and must
    not use the reserved keys format, format_version, model, files.
    Returns {file name: sha256 hex digest} for the three files.
    """
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_RESERVED_KEYS))
    if clash:
        raise ValueError(f"extra config entries use reserved keys: {clash}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hashes: Dict[str, str] = {}
    for name, state in ((MECNET_FILE, mecnet_state), (GENERATOR_FILE, generator_state)):
        path = out / name
        _save_safetensors(state, path)
        hashes[name] = sha256_file(path)
    doc: Dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": config.to_dict(),
        "files": dict(hashes),
    }
    doc.update(extra)
    cfg_path = out / CONFIG_FILE
    with atomic_path(cfg_path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    hashes[CONFIG_FILE] = sha256_file(cfg_path)
    for name, digest in hashes.items():
        logger.info("wrote %s  sha256 %s", out / name, digest)
    return hashes


def read_weights_folder(
    path: PathLike, verify: bool = True
) -> Tuple[ModelConfig, StateDict, StateDict, Dict[str, Any]]:
    """Read a weights folder written by :func:`write_weights_folder`.

    Returns (config, mecnet_state, generator_state, meta) where meta is every entry of ``config.json``
    except "model". With ``verify`` the sha256 digests recorded under "files" are checked.
    Raises WeightsError when a file is missing, unreadable or does not match its recorded digest, when the
    model configuration has a wrong type or is out of bounds (:func:`lbam.weights_check.check_model_dict`), or
    when a tensor holds NaN or inf.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(path)
    if not folder.is_dir():
        raise WeightsError(f"weights folder not found: {folder}")
    missing = [n for n in (CONFIG_FILE, MECNET_FILE, GENERATOR_FILE) if not (folder / n).is_file()]
    if missing:
        raise WeightsError(f"weights folder {folder} lacks {', '.join(missing)}")
    try:
        doc = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot read {folder / CONFIG_FILE}: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        raise WeightsError(f"{folder / CONFIG_FILE} has no 'model' configuration")
    check_model_dict(doc["model"])  # types and bounds, before anything is built from them
    try:
        config = ModelConfig.from_dict(doc["model"])
    except (TypeError, ValueError) as e:
        raise WeightsError(f"invalid model configuration in {folder / CONFIG_FILE}: {e}") from e
    meta = {k: v for k, v in doc.items() if k != "model"}

    if verify:
        recorded = doc.get("files") or {}
        for name in (MECNET_FILE, GENERATOR_FILE):
            expected = recorded.get(name)
            if expected is not None and sha256_file(folder / name) != expected:
                raise WeightsError(f"{folder / name} does not match the sha256 recorded in {CONFIG_FILE}")
    states = []
    for name in (MECNET_FILE, GENERATOR_FILE):
        try:
            states.append(load_file(str(folder / name), device="cpu"))
        except (OSError, SafetensorError) as e:
            raise WeightsError(f"cannot read {folder / name}: {e}") from e
        check_finite(states[-1], str(folder / name))
    return config, states[0], states[1], meta
