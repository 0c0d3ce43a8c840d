"""Before/after figure of object removal on a large photo at 100 % (no resampling of the crops shown).

Usage (from the repository root):

    python scripts/large_photo_figure.py [PHOTO ...] [--out docs/large_photo_100pct.png] [--side 320]
        [--weights W] [--previous W]

Each photo (default: two photos of ../shared/data/photos/val/photo, used at their own resolution, long side
1600) gets the seeded object hole of ``lbam evaluate --native`` (:func:`lbam.training.native.object_hole`,
``rng = default_rng([seed, i])`` for the i-th photo given), is filled by OpenCV Telea (radius 3), by the one-pass
default (the strategy "auto" picks without refinement: ``choose_strategy(refine=False)``) and coarse to fine
(``strategy="pyramid"``), and one row shows a ``side`` x ``side`` crop at 100 % of the
hole's largest blob (centred halfway between its centre and its left end, so that its border shows): input (hole
white) | Telea | previous | new | truth, each with its in-hole PSNR printed on stdout. ``--weights`` fill the
coarse-to-fine column, ``--previous`` the one-pass column (default: both the bundled default); one CPU thread.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from lbam import Inpainter, tiling
from lbam.training.native import hole_psnr, object_hole, read_photo

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = [ROOT.parent / "shared" / "data" / "photos" / "val" / "photo" / n
                  for n in ("ukui_city.jpg", "plasma_Path.jpg")]
LABEL_HEIGHT = 22
LABELS = ("input (hole white)", "Telea r3", "previous default", "coarse to fine", "truth")


def _label(width: int, text: str) -> np.ndarray:
    bar = np.full((LABEL_HEIGHT, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def row(inp: Inpainter, previous: Inpainter, path: Path, side: int, seed: int, index: int,
        max_side: int) -> np.ndarray:
    truth = read_photo(path, max_side)
    hole = object_hole(truth.shape[:2], np.random.default_rng([seed, index]))
    single = tiling.choose_strategy(hole, previous.config.train_size)
    outs = [cv2.inpaint(truth, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA),
            previous.inpaint(truth.copy(), hole, strategy=single), inp.inpaint(truth.copy(), hole, strategy="pyramid")]
    print(f"{path.name} {truth.shape[1]}x{truth.shape[0]} hole {hole.mean():.1%}; previous = {single}; in-hole PSNR "
          + ", ".join(f"{n} {hole_psnr(o, truth, hole):.2f}" for n, o in zip(LABELS[1:4], outs)))
    _, labels, stats, centres = cv2.connectedComponentsWithStats(hole.astype(np.uint8))
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    # halfway between the blob's centre and its leftmost column: the crop shows the border and the interior
    cx, cy = int((centres[k][0] + stats[k, cv2.CC_STAT_LEFT]) / 2), int(centres[k][1])
    h, w = hole.shape
    y0, x0 = min(max(0, cy - side // 2), h - side), min(max(0, cx - side // 2), w - side)
    sl = np.s_[y0:y0 + side, x0:x0 + side]
    shown = truth.copy()
    shown[hole] = 255
    tiles = [shown[sl], *(o[sl] for o in outs), truth[sl]]
    gap = np.full((side + LABEL_HEIGHT, 4, 3), 255, np.uint8)
    cols = []
    for t, name in zip(tiles, LABELS):
        cols += [np.concatenate([_label(side, name), t]), gap]
    return np.concatenate(cols[:-1], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("photos", nargs="*", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "large_photo_100pct.png")
    ap.add_argument("--side", type=int, default=320)
    ap.add_argument("--max-side", type=int, default=1600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", help="weights of the coarse-to-fine column (default: bundled default)")
    ap.add_argument("--previous", help="weights of the one-pass column (default: as --weights)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    inp = Inpainter.from_pretrained(a.weights, device="cpu")
    previous = Inpainter.from_pretrained(a.previous, device="cpu") if a.previous else inp
    rows = [row(inp, previous, p, a.side, a.seed, i, a.max_side) for i, p in enumerate(a.photos)]
    fig = np.concatenate(rows, axis=0)
    cv2.imwrite(str(a.out), cv2.cvtColor(fig, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
