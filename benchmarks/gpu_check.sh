#!/usr/bin/env bash
# GPU check: every CUDA path once (sampling float32/TF32/bf16, all extractors, checkpoint formats,
# training, fid --model, memorization, reproducibility, faiss-gpu, torchrun, a real OOM), each compared
# with the CPU; one PASS/FAIL table; bench_out/gpu_check.json. Each step has its own time limit.
#   bash benchmarks/gpu_check.sh                 # uses .venv/bin/python, or $PY
#   bash benchmarks/gpu_check.sh --only env,sample,faiss
# Exit 0 only when every row passed (or is an allowed SKIP: faiss without a GPU build installed,
# NCCL on one GPU). No usable GPU is a FAIL (exit 1), never a silent pass.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" AMBIENT_EVAL_PROGRESS=0
if command -v nvidia-smi >/dev/null 2>&1; then
  timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PY" benchmarks/gpu_check.py "$@"
