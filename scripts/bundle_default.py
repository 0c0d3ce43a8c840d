"""Copy a weights folder into the package as a bundled named weight and record it in weights_manifest.json.

    python scripts/bundle_default.py WEIGHTS_DIR --name lbam-compact [--eval eval.json] [--default]

Records the sha256 of every file, the configuration, the training facts from the folder's config.json and,
when given, the metrics of an ``lbam evaluate --json`` report.
"""
import argparse
import json
import shutil
from pathlib import Path

from lbam.weights_io import read_weights_folder, sha256_file

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "lbam" / "weights_manifest.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--name", required=True)
    ap.add_argument("--eval", help="JSON written by `lbam evaluate --json`")
    ap.add_argument("--default", action="store_true")
    ap.add_argument("--description", default="")
    ap.add_argument("--hardware", default="")
    args = ap.parse_args()
    config, _, _, meta = read_weights_folder(args.folder)
    dest = ROOT / "lbam" / "weights" / args.name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in ("config.json", "mecnet.safetensors", "generator.safetensors"):
        shutil.copy2(Path(args.folder) / f, dest / f)
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"default": args.name, "weights": {}}
    entry = {
        "description": args.description,
        "config": config.name,
        "bundled": True,
        "folder": f"weights/{args.name}",
        "files": [{"path": f"weights/{args.name}/{f}", "sha256": sha256_file(dest / f)}
                  for f in ("config.json", "mecnet.safetensors", "generator.safetensors")],
        "training": {**meta.get("training", {}), "hardware": args.hardware},
    }
    if args.eval:
        report = json.loads(Path(args.eval).read_text())
        m = report["metrics"]
        entry["metrics"] = {"protocol": report.get("protocol"), "data": report.get("data"), "buckets": m,
                            "summary": " ".join(f"{b}:{m['ours'][b]['psnr']:.2f}dB(telea {m['telea'][b]['psnr']:.2f})"
                                                for b in m["ours"] if b != "all")}
    manifest["weights"][args.name] = entry
    if args.default:
        manifest["default"] = args.name
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
