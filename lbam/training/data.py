"""Training and validation data: image folders, random crops, holes and Canny edges.

Every sample is a dict of float32 tensors:
  image (3, S, S) in [0, 1]; hole (1, S, S) 1 = hole; gray (1, S, S) in [0, 1];
  edges (1, S, S) Canny of the known region only (MECNet input); edges_full (1, S, S) Canny of the whole
  crop (the ground truth MECNet learns, and the paper's edges for the ``inpaint`` stage);
  with ``prefill_factors`` also prefill (3, S, S) in [0, 1]: the crop downscaled by one of the factors and
  upscaled back (``lbam.tiling.resize``), what a coarse-to-fine refinement pass finds in the hole, and refine
  (1, 1, 1): 1 for such a refinement sample, 0 for a plain one (whose prefill is unused) when only a share of
  the samples refine.
Samples are a pure function of (seed, index): resuming at a step reproduces the same batches.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..edges import CANNY_HIGH, CANNY_LOW, CANNY_SIGMA, canny, rgb_to_gray
from ..io import IMAGE_SUFFIXES
from ..tiling import resize
from .masks import PAPER_BUCKETS, FreeFormMasks, MaskFolder


def list_images(root) -> List[Path]:
    """All image files under ``root`` (recursive, sorted); error when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} {'is not a folder' if root.exists() else 'does not exist'}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images (*{', *'.join(IMAGE_SUFFIXES)}) found under {root}")
    return files


def read_rgb(path: Path, max_short_side: Optional[int] = None) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB, optionally downscaled (area) so its short side <= max_short_side."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode image {path}")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if max_short_side is not None:
        img = resize_short_side(img, max_short_side, only_down=True)
    return img


def resize_short_side(img: np.ndarray, short: int, only_down: bool = False) -> np.ndarray:
    """Resize (H, W, C) so that min(H, W) == short (area filter when shrinking, cubic when enlarging)."""
    h, w = img.shape[:2]
    if only_down and min(h, w) <= short:
        return img
    s = short / min(h, w)
    size = (max(short, round(w * s)), max(short, round(h * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def make_sample(rgb: np.ndarray, hole: np.ndarray, sigma: float, low: float, high: float) -> Dict[str, torch.Tensor]:
    """Build the sample dict from an (S, S, 3) uint8 crop and an (S, S) float32 hole mask (1 = hole)."""
    image = rgb.astype(np.float32) / 255.0
    gray = rgb_to_gray(image)
    known = hole < 0.5
    edges = canny(gray, known, sigma, low, high)
    edges_full = canny(gray, None, sigma, low, high)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return {
        "image": t(image.transpose(2, 0, 1)),
        "hole": t(hole[None]),
        "gray": t(gray[None]),
        "edges": t(edges[None]),
        "edges_full": t(edges_full[None]),
    }


class TrainImages(torch.utils.data.Dataset):
    """Random crops of one folder of images, or of several, with holes.

    ``root`` is a folder or a sequence of folders; with several, each sample first picks a folder with equal
    probability (e.g. photos and textures half and half, whatever their counts), then an image in it. Each
    image is decoded once and cached with its short side at ``short_side * max(scale)``. A sample
    resizes it so the short side is ``short_side * U(scale)`` (never below ``size``), takes a random
    ``size`` crop, flips it horizontally half the time, and draws a hole (free-form, or from ``mask_dir``).
    Index ``i`` always gives the same sample for the same seed; the dataset is ``length`` samples long.
    prefill_factors: when given, each sample also holds ``prefill``, the crop downscaled by a factor drawn from
    them and upscaled back (the refinement training of coarse-to-fine inpainting), and ``refine``.
    prefill_share: the probability that a sample is such a refinement sample (1: all; below 1 the others are
    plain samples, so one run learns both passes of the ``pyramid`` strategy).
    prefill_short_side: when given, a refinement sample is cut from the image with its short side at
    ``min(its own, prefill_short_side)`` (enlarged only up to the crop size): the full-resolution detail a
    refinement pass restores (plain samples keep ``short_side * U(scale)``). None: as plain samples.
    true_edge_share: when above 0, each sample also holds ``true_edges`` (1, 1, 1), 1 with this probability: the
    generator reads the truth's Canny edges for it instead of MECNet's completion (``TrainConfig.true_edge_share``).
    """

    def __init__(self, root, size: int = 256, short_side: int = 350, scale: Tuple[float, float] = (1.0, 1.0),
                 mask_dir=None, hole_range: Tuple[float, float] = (0.0, 0.6), seed: int = 0,
                 canny_sigma: float = CANNY_SIGMA, canny_low: float = CANNY_LOW,
                 canny_high: float = CANNY_HIGH,
                 length: int = 10**9, prefill_factors: Sequence[int] = (), prefill_share: float = 1.0,
                 prefill_short_side: Optional[int] = None, true_edge_share: float = 0.0) -> None:
        if any(int(f) < 2 or size % int(f) for f in prefill_factors):
            raise ValueError(f"prefill factors must be integers >= 2 dividing the crop size {size}, "
                             f"got {tuple(prefill_factors)}")
        if not 0 < prefill_share <= 1:
            raise ValueError(f"prefill_share must lie in (0, 1], got {prefill_share}")
        if not 0 <= true_edge_share <= 1:
            raise ValueError(f"true_edge_share must lie in [0, 1], got {true_edge_share}")
        if prefill_short_side is not None and prefill_short_side < size:
            raise ValueError(f"prefill_short_side must be at least the crop size {size}, got {prefill_short_side}")
        self.prefill_factors = tuple(int(f) for f in prefill_factors)
        self.prefill_share, self.prefill_short_side = float(prefill_share), prefill_short_side
        self.true_edge_share = float(true_edge_share)
        roots = [root] if isinstance(root, (str, Path)) else list(root)
        if not roots:
            raise FileNotFoundError("no training folder given")
        self.sources = [list_images(r) for r in roots]
        self.files = [f for files in self.sources for f in files]
        self._offsets = np.cumsum([0] + [len(files) for files in self.sources])
        self.size, self.short_side, self.scale = size, short_side, scale
        self.mask_dir, self.hole_range, self.seed, self.length = mask_dir, hole_range, seed, length
        self.canny = (canny_sigma, canny_low, canny_high)
        self.cache_short = max(size, int(round(short_side * max(scale))), prefill_short_side or 0)
        self._cache: Dict[int, np.ndarray] = {}
        self._mask_folder = MaskFolder(mask_dir) if mask_dir else None

    def __len__(self) -> int:
        return self.length

    def _image(self, k: int) -> np.ndarray:
        if k not in self._cache:
            self._cache[k] = read_rgb(self.files[k], self.cache_short)
        return self._cache[k]

    def image_index(self, i: int, rng: Optional[np.random.Generator] = None) -> int:
        """Index into ``files`` of the image sample ``i`` is cut from: a folder drawn uniformly, then an image of
        it. ``rng`` is the sample's generator (a fresh one for ``i`` when None)."""
        rng = np.random.default_rng([self.seed, int(i)]) if rng is None else rng
        src = int(rng.integers(len(self.sources))) if len(self.sources) > 1 else 0
        return int(self._offsets[src] + rng.integers(len(self.sources[src])))

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(i)])
        img = self._image(self.image_index(i, rng))
        short = max(self.size, int(round(self.short_side * rng.uniform(*self.scale))))
        # drawn only when some samples do not refine, so all-refinement runs keep their earlier samples
        refine = bool(self.prefill_factors) and (self.prefill_share >= 1 or rng.random() < self.prefill_share)
        if refine and self.prefill_short_side is not None:
            short = max(self.size, min(min(img.shape[:2]), self.prefill_short_side))
        if short != min(img.shape[:2]):
            img = resize_short_side(img, short)
        h, w = img.shape[:2]
        y, x = int(rng.integers(h - self.size + 1)), int(rng.integers(w - self.size + 1))
        crop = img[y:y + self.size, x:x + self.size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        mask_seed = int(rng.integers(2**31))
        if self._mask_folder is not None:
            self._mask_folder.rng = np.random.default_rng(mask_seed)
            hole = self._mask_folder.sample(self.size)
        else:
            hole = FreeFormMasks(mask_seed, ratio_range=self.hole_range).sample(self.size)
        sample = make_sample(crop, hole, *self.canny)
        if self.prefill_factors:
            factor = self.prefill_factors[int(rng.integers(len(self.prefill_factors)))]
            sample["prefill"] = coarse_copy(sample["image"], factor) if refine else sample["image"].clone()
            sample["refine"] = torch.full((1, 1, 1), float(refine))
        if self.true_edge_share > 0:  # drawn last, so the crop, hole and prefill are those of a run without it
            sample["true_edges"] = torch.full((1, 1, 1), float(rng.random() < self.true_edge_share))
        return sample


def coarse_copy(image: torch.Tensor, factor: int) -> torch.Tensor:
    """``image`` (3, S, S) in [0, 1] downscaled by ``factor`` and upscaled back with ``lbam.tiling.resize`` (the
    resampling of the coarse-to-fine passes): the detail a coarser pass cannot hold is gone. Returns (3, S, S)."""
    h, w = image.shape[-2:]
    small = resize(image[None], (h // factor, w // factor))
    return resize(small, (h, w))[0].clamp(0, 1)


def fixed_crops(root, size: int = 256, short_side: int = 350, per_image: int = 2) -> List[np.ndarray]:
    """Deterministic validation crops: each image resized to ``short_side``, ``per_image`` crops spread
    evenly along its long side. Returns a list of (size, size, 3) uint8 arrays."""
    crops = []
    for path in list_images(root):
        img = resize_short_side(read_rgb(path), max(size, short_side))
        h, w = img.shape[:2]
        for j in range(per_image):
            t = (j + 0.5) / per_image
            y = int(round((h - size) * (t if h > w else 0.5)))
            x = int(round((w - size) * (t if w >= h else 0.5)))
            crops.append(np.ascontiguousarray(img[y:y + size, x:x + size]))
    return crops


class ValImages(torch.utils.data.Dataset):
    """Fixed validation set: ``fixed_crops`` x hole buckets, with seeded masks (the paper's protocol).

    Sample j of bucket b uses the mask ``FreeFormMasks(seed + 1000*b + j).sample(size, bucket)``; the
    dict also holds ``bucket`` (int index into ``buckets``).
    """

    def __init__(self, root, size: int = 256, short_side: int = 350, per_image: int = 2,
                 buckets: Sequence[Tuple[float, float]] = PAPER_BUCKETS, seed: int = 1234,
                 canny_sigma: float = CANNY_SIGMA, canny_low: float = CANNY_LOW,
                 canny_high: float = CANNY_HIGH) -> None:
        self.crops = fixed_crops(root, size, short_side, per_image)
        self.size, self.buckets, self.seed = size, tuple(buckets), seed
        self.canny = (canny_sigma, canny_low, canny_high)

    def __len__(self) -> int:
        return len(self.crops) * len(self.buckets)

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        b, j = divmod(int(i), len(self.crops))
        hole = FreeFormMasks(self.seed + 1000 * b + j).sample(self.size, self.buckets[b])
        sample = make_sample(self.crops[j], hole, *self.canny)
        sample["bucket"] = torch.tensor(b)
        return sample


def collate(samples: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Stack a list of sample dicts into a batch dict."""
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
