#!/usr/bin/env bash
# Exercise every CUDA path once (sampling with TF32 / bf16, feature extraction, faiss-gpu search,
# torchrun with nccl on the GPUs present) and compare each with the CPU result.
#   bash benchmarks/gpu_check.sh            # uses .venv/bin/python, or $PY
# Exits 0 with a message when no CUDA device is present; 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" AMBIENT_EVAL_PROGRESS=0
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PY" benchmarks/gpu_check.py "$@"
