#!/usr/bin/env bash
# The transformers backend and STOP's Check at the paper's scale on one GPU (benchmarks/gpu_check.py says what
# it measures: Check vs re-encoding, KV memory, launch and the per-path sampler's cost), then, where vLLM is
# installed, issue #24's time rows on vLLM (benchmarks/time_bench.py: pathprune against plain vLLM on one
# engine: tokens/s unpruned, a batch's wall time pruned vs unpruned, problems/s under load). The first part needs
# only torch, transformers, peft, safetensors and numpy; no install, no network.
#
#   bash benchmarks/gpu_check.sh            # on the lent GPU machine (device tool: run, command as here), < 8 min
#   VLLM_MODEL=DIR bash benchmarks/gpu_check.sh   # a GPU with the vllm package: the vLLM rows on that model
#   bash benchmarks/gpu_check.sh --smoke    # tiny CPU check (the vLLM rows with SmolLM2-135M when
#                                           # .venv-vllm exists), about a minute
#
# Arguments pass through to gpu_check.py. The figures also go to $OUT/gpu_check.json and $OUT/time_bench.json
# when $OUT is set.
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

# the vLLM rows: an interpreter with vLLM (.venv-vllm here, else the one above)
VPY=$PY
if [[ -x .venv-vllm/bin/python ]]; then VPY=.venv-vllm/bin/python; fi
if ! "$VPY" -c 'import vllm' 2>/dev/null; then
  echo "vLLM rows skipped: no vllm in $VPY (pip install vllm, or make vllm-env here)"; exit 0
fi
TB=(--out "${OUT:-/tmp}/time_bench.json")
if [[ " $* " == *" --smoke "* ]]; then  # seconds on CPU: a tiny batch, a short stream, the base SmolLM2
  export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-2}
  TB+=(--model smollm2-135m --problems 2 --n 4 --max-tokens 48 --schedule 16:2 --repeats 1 --load-problems 4
       --concurrency 2)
else
  TB+=(--model "${VLLM_MODEL:-smollm2-135m-reasoner}" --problems 64 --n 16 --load-problems 256 --concurrency 32)
fi
timeout 600 "$VPY" benchmarks/time_bench.py "${TB[@]}"
