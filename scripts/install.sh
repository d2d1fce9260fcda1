#!/usr/bin/env bash
# Create .venv and install vidsearch into it (editable). `--dev` adds the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch and torchvision are pinned as a pair: their compiled operators must match, and a lone CPU torch
# wheel without a matching torchvision fails at the first detector call.
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1" -e ".${extras}"
