#!/usr/bin/env bash
# One training leg on a lent GPU machine (the device tool), in one call of at most 10 minutes:
#
#   python scripts/make_shard.py                       # here, once: .shard/ (~15 MiB, git-ignored)
#   device run: command "bash scripts/device_leg.sh --init lbam-compact-v3 --edge-decode none --max-steps 8000
#               --decay-from 2000", carry [".shard"], timeout_s 600
#
# Trains `lbam train joint --config compact` on .shard/photo and .shard/texture for MINUTES (default 8) with the
# arguments given (they are passed on to `lbam train` and override the defaults below; without --edge-decode the
# compact configuration decodes MECNet's map with NMS, without --init it starts from scratch), then exports the EMA
# weights in float16 to $OUT/weights (config.json + two safetensors, about 13 MB: what comes back; a checkpoint
# with the optimiser state is too large to). A later leg continues with `--init` on the folder that came back
# (copy it into the repo and carry it). Evaluate what came back here, on corpus/val:
#   lbam evaluate --data ../shared/data/corpus/val/photo --weights <folder> --per-image 1 --telea-radius 3 5
# Needs on the machine: python3 with torch, numpy, opencv, pillow, safetensors, huggingface_hub, tqdm (the
# device image has them); lbam runs from the working tree (PYTHONPATH), nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the output folder (the device tool sets it)}"
MINUTES="${MINUTES:-8}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
workers=$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))
python3 -m lbam train joint --data .shard/photo .shard/texture --config compact --out "$OUT/run" \
  --pixel-loss l2 --lr 2.5e-4 --edge-lr 2.5e-4 --scale 1 1 --hole-range 0.05 0.6 --workers "$workers" \
  --val-every 1000000000 --max-minutes "$MINUTES" "$@" > "$OUT/train.log" 2>&1 \
  || { tr '\r' '\n' < "$OUT/train.log" | tail -40; exit 1; }
tr '\r' '\n' < "$OUT/train.log" | grep -v '%|' | tail -8
python3 -m lbam export "$OUT/run" --out "$OUT/weights" --half
cp "$OUT/run/train_log.csv" "$OUT/run/train_config.json" "$OUT/" 2>/dev/null || true
rm -rf "$OUT/run"   # the checkpoint (optimiser state included) is over the size that comes back
ls -la "$OUT" "$OUT/weights"
