"""Fine-tune on your own (question, passage) pairs: mine hard negatives, train, compare on dev.

    python examples/finetune_own_pairs.py pairs.csv corpus.jsonl dev.csv runs/tuned

pairs.csv / dev.csv have columns question, passage; corpus.jsonl has one {"text": ...} per line.
"""

import os
import sys
from pathlib import Path

from instructembed import Embedder
from instructembed.train import Shape, TrainConfig, mine_negatives, read_pairs_file, read_texts, train
from instructembed.train.tracking import before_after_table

pairs, corpus, dev, out = map(Path, sys.argv[1:5])
model = os.environ.get("INSTRUCTEMBED_EXAMPLE_MODEL", "all-MiniLM-L6-v2")
query, doc = (
    "Represent the question for retrieving supporting passages: ",
    "Represent the passage for retrieval: ",
)

triplets = out.with_name(out.name + "-triplets.jsonl")
if not triplets.exists():  # step 1: hard negatives from your corpus, ranked by the base model
    rows = read_pairs_file(pairs, query_field="question", positive_field="passage")
    mine_negatives(
        Embedder.load(model),
        rows,
        read_texts(corpus),
        triplets,
        query_instruction=query,
        document_instruction=doc,
        fields=("question", "passage"),
    )

result = train(
    TrainConfig(  # step 2: the measured recipe; the best dev step is the saved model
        model=model,
        data=triplets,
        shape=Shape.TRIPLETS,
        out=out,
        query_field="question",
        positive_field="passage",
        query_instruction=query,
        document_instruction=doc,
        eval_file=dev,
        eval_corpus=corpus,
        max_length=128,
    )
)
print(before_after_table(result.scores))
