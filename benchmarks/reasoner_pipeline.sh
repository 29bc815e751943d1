#!/usr/bin/env bash
# STOP on smollm2-135m-reasoner, end to end on CPU (docs/smollm2.md): Monte-Carlo labels, STOP and its
# ablations and K study, then the taxonomy evaluation against self-consistency at equal tokens.
#
#   make bootstrap && bash benchmarks/reasoner_pipeline.sh      # the documented run (about 1.5 h on 2 cores)
#   SMALL=1 bash benchmarks/reasoner_pipeline.sh                 # a few problems, tiny N/K (about 10 minutes)
#
# Labels run on vLLM when .venv-vllm exists (`make vllm-env`; 2.7x faster, the same labels), else on the
# transformers backend. Every stage writes under $OUT (gitignored) and prints its wall time; label and eval
# directories resume when re-run with the same settings, and stop_eval.py --reuse keeps finished variants.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=${OUT:-runs/reasoner}
MODEL=smollm2-135m-reasoner
SPEC=reasoner:3,4,5            # three to five arithmetic steps: the levels where paths disagree
if [[ "${SMALL:-0}" == 1 ]]; then
  OUT=${OUT}-small; TRAIN=3; VAL=2; TEST=2; K=4; NF=4; N=4; KEEP=2; EPOCHS=1; KS=2
else
  TRAIN=80; VAL=30; TEST=30; K=16; NF=8; N=16; KEEP=4,2,8; EPOCHS=8; KS=4,8
fi
CUT=24                          # about 25 % of the mean path at levels 3-5 (73-115 tokens)
LABEL_BIN=$BIN; BACKEND=transformers
if [[ -x .venv-vllm/bin/pathprune ]]; then LABEL_BIN=.venv-vllm/bin; BACKEND=vllm; fi
mkdir -p "$OUT"
stage() { local name=$1; shift; local t0=$SECONDS; "$@"; echo "STAGE $name $((SECONDS - t0)) s" | tee -a "$OUT/timings.txt"; }

label() {  # split, problems per level, directory
  $LABEL_BIN/pathprune label --out "$OUT/$3" --model $MODEL --benchmark $SPEC --testbed-split "$1" --per-level "$2" \
    --n $NF --prefix-tokens $CUT --k $K --temperature 0.7 --max-new-tokens 192 --seed 0 --backend $BACKEND
}
stage label-train label train $TRAIN labels-train
stage label-validation label validation $VAL labels-validation
# STOP (the paper's recipe), stop_lp, soft/hard labels, adapter/none, and K = 4, 8 from the same rollouts;
# epochs kept by validation MSE (official); the table is on the validation labels
stage stop $BIN/python benchmarks/stop_eval.py --model $MODEL --train "$OUT/labels-train" \
  --val "$OUT/labels-validation" --epochs $EPOCHS --sweep "" --label-ks $KS --work "$OUT/stop" --reuse \
  --out "$OUT/stop-eval.json"
W=$OUT/stop
SIGNALS="random,jaccard,mean_logprob,conf_mean,conf_lowest,neg_entropy,stop:$W/stop,stop_lp:$W/stop_lp"
SIGNALS+=",stop:$W/stop_hardlabels,stop:$W/stop_noadapter"
for k in ${KS//,/ }; do SIGNALS+=",stop:$W/stop_labelk_$k"; done
# test problems, N paths, checked at L = CUT, k kept; every signal scores the same paths
stage eval $BIN/pathprune eval --out "$OUT/eval" --model $MODEL --benchmark $SPEC --testbed-split test \
  --per-level $TEST --n $N --prefix $CUT --keep $KEEP --temperature 0.7 --max-new-tokens 192 \
  --problems-per-batch 8 --signals "$SIGNALS"
cat "$OUT/timings.txt"
