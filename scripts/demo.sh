#!/usr/bin/env bash
# Install, index the sample footage in data/footage, and search it.
# Weights: ViT-B-32 (DataComp-XL) and yolo11n.pt download on first use; to use local files instead set
# VIDSEARCH_CLIP_PRETRAINED=/path/to/open_clip_weights.bin and VIDSEARCH_YOLO_WEIGHTS=/path/to/yolo11n.pt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export VIDSEARCH_INDEX="${VIDSEARCH_INDEX:-./vidsearch-index}"
.venv/bin/vidsearch ingest data/footage
.venv/bin/vidsearch query "a man with glasses in a black t-shirt" -k 5
.venv/bin/vidsearch query "a red car seen from above" --kind frame -k 3
.venv/bin/vidsearch stats
