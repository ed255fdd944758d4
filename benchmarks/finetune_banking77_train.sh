#!/usr/bin/env bash
# One Banking77 fine-tuning run of docs/finetuning.md: finetune_banking77_train.sh OUT LR SEED [extra train flags]
# Data from benchmarks/finetune_banking77_data.py. Dev = the held-out 10 % of the training texts,
# scored as 5-fold probe accuracy; no --test here (scored separately, once, with
# `instructembed eval --tasks Banking77Classification`). The instruction is instructor-large's
# Banking77Classification entry, for both sides of a training pair (labelled texts are one kind).
set -euo pipefail
out=$1 lr=$2 seed=$3; shift 3
D=${BANKING77_DATA:-runs/banking77-data}
exec nice -n 10 "${PYTHON:-python}" -m instructembed train --model all-MiniLM-L6-v2 \
  --data "$D/train.csv" --shape labelled --text-field text --label-field label \
  --query-instruction "Represent the bank purpose for classification: " \
  --eval "$D/dev.csv" --eval-bf16 \
  --lr "$lr" --seed "$seed" --batch-size 32 --max-length 128 --bf16 --threads 1 \
  --out "$out" --no-progress "$@"
