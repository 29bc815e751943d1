#!/usr/bin/env bash
# STOP on SmolLM2-135M-Instruct, end to end on CPU (docs/smollm2.md): format check, label, train, score, eval.
#
#   make bootstrap && bash benchmarks/smollm2_pipeline.sh            # the documented run (about 1 h on 2 loaded cores)
#   SMALL=1 bash benchmarks/smollm2_pipeline.sh                       # a few problems, tiny N/K (a few minutes)
#
# Every stage writes under $OUT (default runs/smollm2, gitignored) and prints its wall time; the label and eval
# run directories resume when re-run with the same settings. One torch thread per process (other jobs share the
# cores); the train- and validation-split labelling run side by side, one process each.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
BIN=.venv/bin
OUT=${OUT:-runs/smollm2}
if [[ "${SMALL:-0}" == 1 ]]; then
  OUT=${OUT}-small; TRAIN=4; VAL=2; TEST=3; NF=4; K=2; CUT=16; MAX=48; N=4; KEEP=2; EPOCHS=1; FORMAT=0
  FILTER="--min-correct 0 --max-correct 1"   # keep every problem, so a handful still yields prefixes
else
  TRAIN=24; VAL=12; TEST=12; NF=8; K=8; CUT=48; MAX=128; N=16; KEEP=4; EPOCHS=6; FORMAT=1; FILTER=""
fi
SPEC=wordproblems:1      # level 1 (one arithmetic step), "Final answer:" format (the default)
mkdir -p "$OUT"
stage() { local name=$1; shift; local t0=$SECONDS; "$@"; echo "STAGE $name $((SECONDS - t0)) s" | tee -a "$OUT/timings.txt"; }

if [[ $FORMAT == 1 ]]; then
  stage format $BIN/python benchmarks/smollm2_format.py --levels 1,2 --per-level 8 --samples 6 \
    --max-new-tokens 192 --out "$OUT/format.json"
fi
label() {  # split, problems, seed, directory
  $BIN/pathprune label --out "$OUT/$4" --model smollm2-135m --benchmark $SPEC --testbed-split "$1" \
    --per-level "$2" --seed "$3" --n-filter $NF --prefix-tokens $CUT --k $K --max-new-tokens $MAX --temperature 0.7 \
    $FILTER
}
# train-split labels in one process; beside it, two validation-split sets (seeds 0 and 1: the model solves so few
# level-1 problems that one set of 12 keeps a single problem), merged into one validation file
validation() { label validation $VAL 0 labels-validation && label validation $VAL 1 labels-validation-s1; }
both_labels() {
  label train $TRAIN 0 labels-train & local a=$!
  validation & local b=$!
  wait $a; wait $b
  cat "$OUT/labels-validation/labels.jsonl" "$OUT/labels-validation-s1/labels.jsonl" > "$OUT/val-labels.jsonl"
}
stage label both_labels
stage train $BIN/pathprune train --labels "$OUT/labels-train" --val-labels "$OUT/val-labels.jsonl" \
  --out "$OUT/stop" --model smollm2-135m --epochs $EPOCHS --batch-size 16
score() {
  $BIN/python benchmarks/smollm2_stop_auroc.py --val "$OUT/val-labels.jsonl" --stop "$OUT/stop" \
    --out "$OUT/stop-auroc-val.json"
  $BIN/python benchmarks/smollm2_stop_auroc.py --val "$OUT/labels-train" --stop "$OUT/stop" \
    --out "$OUT/stop-auroc-train.json"
}
stage score score
stage eval $BIN/pathprune eval --out "$OUT/eval" --model smollm2-135m --benchmark $SPEC --per-level $TEST \
  --n $N --prefix $CUT --keep $KEEP --max-new-tokens $MAX --temperature 0.7 \
  --signals "random,jaccard,mean_logprob,conf_lowest,neg_entropy,stop:$OUT/stop"
cat "$OUT/timings.txt"
