#!/usr/bin/env bash
# The first result (docs/results-first.md) in one command -- with the 8-task mixture of commit 0d5630d (build-medi now builds the study mixture; check that commit out to reproduce it exactly): build the MEDI-style mixture, fine-tune
# all-MiniLM-L6-v2 with instructions and without (the ablation, same budget), evaluate base and both
# on the held-out tasks, plot the loss curves. Every step resumes if interrupted (re-run the script).
#   scripts/first_result.sh                      # CPU, defaults below
#   DEVICE=cuda STEPS=1500 scripts/first_result.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
DATA_DIR=${DATA_DIR:-../shared/data}
MODEL=${MODEL:-all-MiniLM-L6-v2}
DEVICE=${DEVICE:-cpu}
RUNS=${RUNS:-runs/first-result}
STEPS=${STEPS:-1500}
BATCH=${BATCH:-32}
MAX_LENGTH=${MAX_LENGTH:-128}
LIMIT=${LIMIT:-}
MEDI=${MEDI:-$RUNS/medi-small.jsonl}
export PYTHONPATH=${PYTHONPATH:-src}
mkdir -p "$RUNS"
CLI=("$PY" -m instructembed)

[ -f "$MEDI" ] || "${CLI[@]}" data build-medi --data-dir "$DATA_DIR" --out "$MEDI" --seed 42

for variant in instructions no-instructions; do
  out="$RUNS/$variant"
  [ -d "$out/model" ] && continue
  flag=--instructions; [ "$variant" = no-instructions ] && flag=--no-instructions
  resume=(); [ -d "$out/checkpoints" ] && resume=(--resume)
  "${CLI[@]}" train --model "$MODEL" --data "$MEDI" --out "$out" "$flag" "${resume[@]}" \
    --device "$DEVICE" --batch-size "$BATCH" --max-length "$MAX_LENGTH" --max-steps "$STEPS" \
    --checkpoint-every 250 --seed 42 --no-progress
done

"$PY" - "$RUNS" <<'PY'
import sys
from pathlib import Path
from instructembed.train.plot import plot_loss
runs = Path(sys.argv[1])
plot_loss({v: runs / v / "train_log.jsonl" for v in ("instructions", "no-instructions")}, runs / "loss.png")
PY
"$PY" scripts/first_result_eval.py --runs "$RUNS" --base "$MODEL" --data-dir "$DATA_DIR" --device "$DEVICE" \
  ${LIMIT:+--limit "$LIMIT"}
