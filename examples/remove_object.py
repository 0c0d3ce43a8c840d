"""Remove the ladybird from examples/ladybird.jpg with the bundled default weights.

    python examples/remove_object.py            # writes ladybird_removed.png and ladybird_edges.png
"""
from pathlib import Path

import numpy as np
from PIL import Image

from lbam import Inpainter

here = Path(__file__).resolve().parent
image = Image.open(here / "ladybird.jpg")
mask = Image.open(here / "ladybird_mask.png")  # white = remove

inpainter = Inpainter.from_pretrained()  # bundled weights, works offline
result, edges = inpainter.inpaint(image, mask, return_edges=True)
result.save("ladybird_removed.png")
Image.fromarray((edges * 255).round().astype(np.uint8)).save("ladybird_edges.png")
print("wrote ladybird_removed.png and ladybird_edges.png")
