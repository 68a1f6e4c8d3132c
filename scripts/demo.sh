#!/usr/bin/env bash
# tfvr's main job on the embedded synthetic data (no download): train STTN-R for video denoising on a 2-core CPU,
# evaluate against the noisy input and the single-frame ablation, export a SavedModel, then restore a generated
# noisy .mp4 with it. Everything lands in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
W=runs/demo
.venv/bin/python train/sttn.py --flagfile=train/configs/sttn_denoise_demo.flags --workdir="$W/sttn_denoise"
.venv/bin/tfvr make-synthetic --seed 7 --frames 24 --size 203x157 --noise 25 "$W/noisy.mp4"
.venv/bin/tfvr restore --overwrite --model "$W/sttn_denoise/export" "$W/noisy.mp4" "$W/restored.mp4"
echo "restored video: $W/restored.mp4"
