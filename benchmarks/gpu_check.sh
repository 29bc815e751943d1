#!/usr/bin/env bash
# The transformers backend and STOP's Check at the paper's scale on one GPU (benchmarks/gpu_check.py says what
# it measures). Needs only torch, transformers, peft, safetensors and numpy; no install, no network.
#
#   bash benchmarks/gpu_check.sh            # on the lent GPU machine (device tool: run, command as here), < 8 min
#   bash benchmarks/gpu_check.sh --smoke    # tiny CPU check, seconds
#
# Arguments pass through to gpu_check.py. The figures also go to $OUT/gpu_check.json when $OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
if [[ -n "${PYTHON:-}" ]]; then PY=$PYTHON
elif [[ -x .venv/bin/python ]]; then PY=.venv/bin/python
else PY=$(command -v python3 || command -v python); fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
"$PY" -c 'import sys, torch, transformers, peft
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU)"
print(f"python {sys.version.split()[0]} | torch {torch.__version__} (CUDA {torch.version.cuda}) | "
      f"transformers {transformers.__version__} | peft {peft.__version__} | GPU {gpu}")'
timeout 470 "$PY" benchmarks/gpu_check.py "$@"
