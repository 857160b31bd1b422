#!/usr/bin/env bash
# Create .venv and install linear_ssl with the trainer (CPU torch) and the test tools.
# torch is pinned first so that the "torch" extra never pulls a multi-GB CUDA build;
# on a GPU box, install the torch build for your CUDA before running this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".[torch,test]"
