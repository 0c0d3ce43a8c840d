"""Does the fill follow a sketched line? The README's ladybird with the stem's two edges sketched across the hole.

    python scripts/sketch_figure.py [--weights W] [--previous W2] [--out docs/ladybird_sketch.jpg]

``examples/ladybird_sketch.png`` holds two straight lines that continue the stem's two edges (fitted to the
completed edge map outside the hole) across the hole. For each set of weights the script fills the hole twice:
with MECNet's completed edges (what ``lbam inpaint`` does) and with the sketch (``inpaint(..., edges=sketch)``,
``lbam inpaint --edges``), and prints the **stem step**: the mean gray step across the two lines, 2 px either side
along their normal, on the lines' pixels in the hole eroded by 3 px, over the same step on the real stem just left
of the hole (1 = an edge as crisp as the photo's, near 0 = the stem fades into a smudge). The figure shows, at 2x,
the input with the hole, then for each weights the fill with MECNet's edges and the fill with the sketch, and the
sketch itself.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

from lbam import Inpainter

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
#: the stem's two edges as y = slope * x + offset in the 640x400 photo (fitted to the edge map left of the hole)
STEM_EDGES = ((0.4255, 31.4), (0.4140, 48.7))
#: columns of the real stem where the reference step is measured (left of the hole)
REFERENCE_COLUMNS = (330, 395)
STEP_OFFSET = 2  # px either side of a line
CORE_ERODE = 3  # px: the hole eroded by this much
CROP = (122, 294, 365, 533)  # y0, y1, x0, x1 of the figure's crop around the hole


def line_step(image: np.ndarray, where: np.ndarray) -> float:
    """Mean |gray(p + 2 n) - gray(p - 2 n)| over the pixels p of the STEM_EDGES lines inside ``where`` (H, W) bool;
    n = the lines' unit normal. image (H, W, 3) uint8. Gray in [0, 1]."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    h, w = gray.shape
    steps: List[float] = []
    for slope, offset in STEM_EDGES:
        ny, nx = np.array([1.0, -slope]) / np.hypot(slope, 1.0)
        for x in range(w):
            y = slope * x + offset
            if not (0 <= round(y) < h and where[int(round(y)), x]):
                continue
            a = gray[int(round(y + STEP_OFFSET * ny)), int(round(x + STEP_OFFSET * nx))]
            b = gray[int(round(y - STEP_OFFSET * ny)), int(round(x - STEP_OFFSET * nx))]
            steps.append(abs(float(a) - float(b)))
    return float(np.mean(steps))


def reference_step(image: np.ndarray, hole: np.ndarray) -> float:
    """The step across the real stem in REFERENCE_COLUMNS, left of the hole (kept 4 px clear of it)."""
    left = np.zeros_like(hole)
    left[:, REFERENCE_COLUMNS[0]:REFERENCE_COLUMNS[1]] = True
    left &= ~(cv2.dilate(hole.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)
    return line_step(image, left)


def stem_steps(weights: Optional[str], image, hole, sketch, core: np.ndarray,
               ref: float) -> Tuple[float, float, np.ndarray, np.ndarray]:
    """(step with MECNet's edges, step with the sketch, both on ``core`` (the eroded hole) over ``ref``, the real
    stem's; the two fills)."""
    inp = Inpainter.from_pretrained(weights, device="cpu")
    plain = inp.inpaint(image, hole)
    sketched = inp.inpaint(image, hole, edges=sketch)
    return line_step(plain, core) / ref, line_step(sketched, core) / ref, plain, sketched


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None, help="weights (default: the bundled default)")
    p.add_argument("--previous", nargs="*", default=[], help="other weights, shown left of --weights")
    p.add_argument("--out", default=None, help="write the figure here (jpg/png)")
    args = p.parse_args(argv)
    image = np.array(Image.open(EXAMPLES / "ladybird.jpg").convert("RGB"))
    hole = np.array(Image.open(EXAMPLES / "ladybird_mask.png").convert("L")) >= 128
    sketch = (np.array(Image.open(EXAMPLES / "ladybird_sketch.png").convert("L")) >= 128).astype(np.float32)
    y0, y1, x0, x1 = CROP
    masked = image.copy()
    masked[hole] = 255
    tiles = [masked]
    core = cv2.erode(hole.astype(np.uint8), np.ones((2 * CORE_ERODE + 1,) * 2, np.uint8)) > 0
    ref = reference_step(image, hole)
    for w in [*args.previous, args.weights]:
        plain, sketched, a, b = stem_steps(w, image, hole, sketch, core, ref)
        print(f"{w or 'default'}: stem step in the hole, MECNet's edges {plain:.2f}, sketch {sketched:.2f}")
        tiles += [a, b]
    tiles.append(np.repeat((sketch * 255).astype(np.uint8)[..., None], 3, axis=2))
    if args.out:
        row = np.concatenate([t[y0:y1, x0:x1] for t in tiles], axis=1)
        row = cv2.resize(row, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(args.out, cv2.cvtColor(row, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
