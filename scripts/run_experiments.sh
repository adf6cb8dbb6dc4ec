#!/usr/bin/env bash
# Train and evaluate the three modes (source-only, unsupervised, oracle) for one seed on the
# procedural data set, then evaluate each on the photo-style and synthetic test sets.
# Resumable: a rerun continues unfinished runs and skips finished evaluations.
#   [TRAIN_ARGS=...] [DATA=...] [EVAL_DATA=...] scripts/run_experiments.sh [SEED] [STEPS] [MODES...]
# EVAL_DATA (default DATA): where the test renders, voxels and split come from, e.g. the
# standard data set when training on a larger one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SEED=${1:-0}
STEPS=${2:-4000}
shift $(( $# > 2 ? 2 : $# )) || true
MODES=${*:-source-only unsupervised oracle}
DATA=${DATA:-data/procedural}
EVAL_DATA=${EVAL_DATA:-$DATA}
RUNS=${RUNS:-runs}
EVAL_VIEWS=${EVAL_VIEWS:-2}
TRAIN_ARGS=${TRAIN_ARGS:-}   # e.g. "--threads 1" to leave a core free

for mode in $MODES; do
  name="$mode-s$SEED"
  $PY -m backend train --mode "$mode" --seed "$SEED" --steps "$STEPS" --data "$DATA" \
      --runs "$RUNS" --name "$name" --resume $TRAIN_ARGS
  for domain in photo synthetic; do
    out="$RUNS/$name/eval-$domain"
    # done, and newer than the weights it scored (a longer rerun makes new weights)
    [ "$out/report.json" -nt "$RUNS/$name/model.pt" ] && continue
    $PY -m backend eval --checkpoint "$RUNS/$name/model.pt" \
        --renders "$EVAL_DATA/renders_$domain" --voxels "$EVAL_DATA/voxels" \
        --split "$EVAL_DATA/splits.json" --subset test --views "$EVAL_VIEWS" \
        --gallery 0 --out "$out"
  done
done
