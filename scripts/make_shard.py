"""Pack training images small enough to travel with the working tree to a lent GPU machine (64 MiB in all, the
tracked files included: about 46 MB of them are the package, its weights and figures).

    python scripts/make_shard.py [--corpus ../shared/data/corpus] [--out .shard] [--short-side 360] [--quality 75]
                                 [--texture-every 3]

Every image of CORPUS/train/photo and every TEXTURE_EVERY-th of CORPUS/train/texture is downscaled (area filter)
so that its short side is at most SHORT_SIDE, re-encoded as JPEG at QUALITY and written under OUT/photo and
OUT/texture (the defaults give about 15 MiB: 247 photos and 249 textures); OUT is added to
.git/info/exclude so that it never lands in a commit, and the device tool's `carry` takes it. Prints the total size.
The training crops are cut at a short side of 350 x U(1, 1.5) (use `--scale 1 1` on such a shard: the evaluation's
scale). The validation
images stay here: evaluate the weights the GPU run sends back on this machine.
"""
import argparse
from pathlib import Path

import cv2

from lbam.training.data import list_images, read_rgb


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(root.parent / "shared" / "data" / "corpus"))
    ap.add_argument("--out", default=str(root / ".shard"))
    ap.add_argument("--short-side", type=int, default=360)
    ap.add_argument("--quality", type=int, default=75)
    ap.add_argument("--texture-every", type=int, default=3, help="take every N-th texture (default 3)")
    args = ap.parse_args()
    out = Path(args.out)
    total = 0
    for part in ("photo", "texture"):
        (out / part).mkdir(parents=True, exist_ok=True)
        files = list_images(Path(args.corpus) / "train" / part)
        for i, path in enumerate(files[::args.texture_every] if part == "texture" else files):
            rgb = read_rgb(path, max_short_side=args.short_side)
            target = out / part / f"{i:04d}_{path.stem}.jpg"
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, args.quality])
            if not ok:
                raise RuntimeError(f"could not encode {path}")
            target.write_bytes(data.tobytes())
            total += len(data)
    exclude = root / ".git" / "info" / "exclude"
    if exclude.parent.is_dir():
        line = "/" + out.resolve().relative_to(root).as_posix() + "/" if out.resolve().is_relative_to(root) else None
        text = exclude.read_text() if exclude.exists() else ""
        if line and line not in text.split("\n"):
            exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + line + "\n")
    print(f"{out}: {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
