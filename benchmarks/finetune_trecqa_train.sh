#!/usr/bin/env bash
# One TrecQA fine-tuning run of docs/finetuning.md: finetune_trecqa_train.sh OUT LR SEED [extra train flags]
# Data from benchmarks/finetune_trecqa_data.py. Dev = the held-out training questions, each ranking
# its own candidates (--eval-rerank: MAP, the test's metric); no --test here (scored separately, once,
# with `instructembed eval --tasks TrecQA-local`). The instructions are the ones that evaluation uses
# for TrecQA-local under --instructions instructor-large (local-task-instructions.json).
set -euo pipefail
out=$1 lr=$2 seed=$3; shift 3
D=${TRECQA_DATA:-runs/trecqa-data}
exec nice -n 10 "${PYTHON:-python}" -m instructembed train --model all-MiniLM-L6-v2 \
  --data "$D/triplets.jsonl" --shape triplets \
  --query-field question --positive-field answer --negative-field negatives \
  --query-instruction "Represent the question for retrieving sentences that answer it: " \
  --document-instruction "Represent the news sentence for retrieval: " \
  --eval "$D/dev.jsonl" --eval-rerank --eval-bf16 \
  --lr "$lr" --seed "$seed" --batch-size 32 --max-length 128 --bf16 --threads 1 \
  --out "$out" --no-progress "$@"
