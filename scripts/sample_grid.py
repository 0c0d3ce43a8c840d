"""Write the sample grids of the model card: validation crops with holes of 10-50 %, one row each
(input, OpenCV Telea, [compared weights,] ours, completed edges, truth), for the held-out corpus photos and textures.

    python scripts/sample_grid.py [--weights NAME_OR_FOLDER] [--compare NAME_OR_FOLDER ...]
                                  [--corpus ../shared/data/corpus] [--out docs] [--suffix S] [--rows 6 4]

Writes OUT/samples_val_photo{S}.png and OUT/samples_val_texture{S}.png (256-pixel tiles, look at them at 100 %).
"""
import argparse
from pathlib import Path

from lbam import Inpainter
from lbam.training.evaluate import save_samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", help="weights name, folder or Hub repo id (default: bundled)")
    ap.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs"))
    ap.add_argument("--compare", nargs="*", default=[],
                    help="other weights whose fills get a column each, between Telea and ours")
    ap.add_argument("--suffix", default="", help="appended to the file names")
    ap.add_argument("--rows", type=int, nargs=2, default=(6, 4), metavar=("PHOTO", "TEXTURE"),
                    help="rows of the photo grid and of the texture grid (default 6 4)")
    args = ap.parse_args()
    inp = Inpainter.from_pretrained(args.weights, device="cpu")
    others = [Inpainter.from_pretrained(w, device="cpu") for w in args.compare]
    compare = [(o.mecnet, o.generator, o.config) for o in others]
    for part, rows in zip(("photo", "texture"), args.rows):
        path = save_samples(inp.mecnet, inp.generator, Path(args.corpus) / "val" / part, inp.config, inp.device,
                            Path(args.out) / f"samples_val_{part}{args.suffix}.png", n=rows, compare=compare)
        print(path)


if __name__ == "__main__":
    main()
