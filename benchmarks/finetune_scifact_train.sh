#!/usr/bin/env bash
# One SciFact fine-tuning run of docs/finetuning.md: train.sh OUT DATA SHAPE LR SEED [extra train flags]
# Dev = the 10 % held-out training claims over dev_corpus.jsonl; no --test here (scored separately, once).
set -euo pipefail
out=$1 data=$2 shape=$3 lr=$4 seed=$5; shift 5
D=${SCIFACT_DATA:-runs/scifact-data}
exec nice -n 10 python -m instructembed train --model all-MiniLM-L6-v2 --data "$data" --shape "$shape" \
  --query-field question --positive-field passage \
  --query-instruction "Represent a Scientific query for retrieving a supporting passage; " \
  --document-instruction "represent the Scientific passage for retrieval; " \
  --eval "$D/dev.csv" --eval-corpus "$D/dev_corpus.jsonl" --eval-bf16 \
  --lr "$lr" --seed "$seed" --batch-size 32 --max-length 128 --bf16 --threads 1 \
  --out "$out" --no-progress "$@"
