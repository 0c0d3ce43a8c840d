"""Turn a training run into a weights folder that ``Inpainter.from_pretrained`` loads."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from ..models import EdgeLBAM, MECNet, ModelConfig
from ..weights_io import write_weights_folder
from .trainer import CHECKPOINT

log = logging.getLogger(__name__)

# the settings of the (last) training launch recorded with exported weights
_RECIPE_KEYS = ("size", "batch_size", "scale", "hole_range", "pixel_loss", "lr", "edge_lr", "edge_loss", "w_adv",
                "critic", "critic_width", "w_fm",
                "w_perc", "w_style", "w_grad", "w_grad_on", "w_grid", "edge_pos_weight", "edge_disc_width",
                "edge_bce_weight", "freeze_edges", "cpu_bf16", "ema_decay", "decay_from",
                "max_steps", "min_lr_ratio", "short_side", "refine_factors", "refine_share", "refine_short_side",
                "true_edge_share")


def _plain_mecnet_state(state: Dict[str, torch.Tensor], config: ModelConfig) -> Dict[str, torch.Tensor]:
    """A MECNet state dict without spectral-norm parametrization (weight = weight_orig / sigma)."""
    if not any(k.endswith("weight_orig") for k in state):
        return state
    net = MECNet(config.mecnet, spectral_norm=True)
    net.load_state_dict(state)
    net.eval()
    net.remove_spectral_norm()
    return net.state_dict()


def export_run(run: str, out: str, half: bool = False, ema: bool = True,
               extra: Optional[Dict[str, Any]] = None) -> Dict[str, str]:
    """Write ``out`` (config.json + safetensors) from ``run/checkpoint.pt``; returns {file: sha256}.

    ema: export the exponential moving average of the weights (what validation measures) rather than the raw
    ones, when the run has it. half: store float16 tensors (halves the size; loaded back as the model's dtype).
    A run trained with ``refine_factors`` exports ``"coarse_to_fine": true`` (``Inpainter.coarse_to_fine``).
    """
    state = torch.load(Path(run) / CHECKPOINT, map_location="cpu", weights_only=True)
    config = ModelConfig.from_dict(state["model_config"])
    prefix = "ema_" if ema and "ema_generator" in state else ""
    mec = _plain_mecnet_state(state[prefix + "mecnet"], config)
    gen = state[prefix + "generator"]
    # check that the states load into the architecture before writing anything
    MECNet(config.mecnet).load_state_dict(mec)
    EdgeLBAM(config.generator).load_state_dict(gen)
    if half:
        mec, gen = ({k: v.half() if v.is_floating_point() else v for k, v in s.items()} for s in (mec, gen))
    train_cfg = state.get("config", {})
    meta = {"training": {"run": str(run), "steps": int(state["step"]), "stage": train_cfg.get("stage"),
                         "recipe": train_cfg.get("recipe"), "data": train_cfg.get("data"), "ema": bool(prefix),
                         "init": train_cfg.get("init"),
                         **{k: train_cfg.get(k) for k in _RECIPE_KEYS if k in train_cfg}}}
    if train_cfg.get("refine_factors"):  # trained to refine: strategy "auto" may pick "pyramid" for these weights
        meta["coarse_to_fine"] = True
    meta.update(extra or {})
    hashes = write_weights_folder(out, config, mec, gen, extra=meta)
    log.info("exported %s -> %s: %s", run, out, json.dumps(hashes))
    return hashes
