"""How much memory an inpainting run will need, estimated before it starts, and how much the device has.

The estimate is deliberately simple and conservative: peak memory grows with the number of pixels the networks
see (the padded working size of a crop times the number of crops in a batch), at a rate set by the widest
full-resolution layers (the generator's first width and MECNet's base width), plus a few float copies of the
image itself. Measured peak resident memory of ``Inpainter.inpaint(strategy="full")`` on the CPU (torch 2.13,
fused networks, fp32), per pixel of the padded network input:

=========== ================= =================== ==================
config      first width/base  measured (B/pixel)  estimate (B/pixel)
=========== ================= =================== ==================
compact     16 / 12           351 (2048x1536),    512
                              410 (1024x768)
paper       64 / 64           1409 (768x768)      1664
tiny-paper  4 / 4             191 (512x512)       224
=========== ================= =================== ==================

(the issue that asked for this measured 7.6 GB for ``"full"`` on a 6000 x 4000 photo with ``compact``; the
estimate is 13.5 GB with the image copies).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple

import torch

from .models.configs import ModelConfig

#: Bytes per network-input pixel that do not depend on the widths (inputs, masks, edges, outputs, resampling).
BASE_BYTES_PER_PIXEL = 128
#: Bytes per network-input pixel per channel of the widest full-resolution layer.
BYTES_PER_CHANNEL_PIXEL = 24
#: Bytes per image pixel for the float copies of the whole image (input, result, hole mask).
IMAGE_BYTES_PER_PIXEL = 36

#: Coarse to fine ("pyramid"): bytes per tile pixel kept until a refinement pass is blended (the tile's answer,
#: 3 float32, and its edge map, 1 float32).
TILE_RESULT_BYTES_PER_PIXEL = 16
#: Coarse to fine: bytes per pixel of a refinement pass's scale for its working copies (the resampled image,
#: 3 float32, the blend's weighted sums and weights, 4 float32).
PASS_BYTES_PER_PIXEL = 28

GIB = 2**30


def bytes_per_pixel(config: ModelConfig) -> int:
    """Estimated peak bytes per pixel of network input for the networks of ``config`` (see the module table)."""
    widest = max(config.generator.widths[0], config.mecnet.base)
    return BASE_BYTES_PER_PIXEL + BYTES_PER_CHANNEL_PIXEL * widest


def estimate_bytes(config: ModelConfig, work_size: Tuple[int, int], batch: int, image_size: Tuple[int, int]) -> int:
    """Estimated peak bytes of one inpainting call: ``batch`` crops of ``work_size`` (h, w) through the networks
    of ``config`` on an image of ``image_size`` (H, W)."""
    (h, w), (H, W) = work_size, image_size
    return bytes_per_pixel(config) * batch * h * w + IMAGE_BYTES_PER_PIXEL * H * W


def refine_pass_bytes(n_tiles: int, tile: int, level_size: Tuple[int, int]) -> int:
    """Bytes a coarse-to-fine refinement pass needs on top of :func:`estimate_bytes`: ``n_tiles`` answers of
    ``tile`` x ``tile`` pixels kept until the blend, and the working copies of the pass's scale ``level_size``
    (h, w)."""
    h, w = level_size
    return TILE_RESULT_BYTES_PER_PIXEL * n_tiles * tile * tile + PASS_BYTES_PER_PIXEL * h * w


def _read_int(path: str) -> Optional[int]:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes(device: torch.device) -> Optional[int]:
    """Memory free for a run on ``device`` in bytes, or None when it cannot be told.

    CUDA: ``torch.cuda.mem_get_info``. CPU (Linux): ``MemAvailable`` of /proc/meminfo, lowered to what a cgroup
    (v2) memory limit leaves. Other devices and systems: None (no check)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu" or not os.path.exists("/proc/meminfo"):
        return None
    avail = None
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            avail = int(line.split()[1]) * 1024
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        avail = limit - used if avail is None else min(avail, limit - used)
    return avail
