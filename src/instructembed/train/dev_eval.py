"""Dev scores of *training* tasks, for choosing a recipe and a step without touching held-out tests.

    score = dev_scores(embedder, data_dir, dev_file, instructions=True)
    # {"stsb_dev": 84.1, "trecqa_dev": 71.0, "mixture_dev": 62.3, "dev_mean": 72.5, "mean_cosine": 0.21}

- `stsb_dev`: Spearman x100 on STS-B dev (1,500 pairs), instructor-large's STSBenchmark instruction;
- `trecqa_dev`: MAP x100 on TrecQA dev (questions with a right answer), our TrecQA instructions;
- `mixture_dev`: the held-back dev slice of the mixture (`medi.dev.jsonl`): per task, each query ranks
  every positive and negative of that task's slice; top-1 accuracy x100, averaged over tasks;
- `dev_mean`: the mean of the three (what a recipe is chosen on);
- `mean_cosine`: mean pairwise cosine among the slice's instructed documents, the health metric of
  `../shared/notes/instruction-collapse.md` (it rose from 0.15 to 0.55 when instructed inputs collapsed).

With `instructions=False` every text is embedded bare (how the no-instruction ablation is used).
The build keeps every dev text out of the training mixture (`medi_build.dev_texts`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from instructembed.eval.encoder import CachingEncoder, Encoder, normalize_rows
from instructembed.eval.instructions import load_instructions
from instructembed.eval.tasks import Role, get_task
from instructembed.train.data import MediExample, read_medi


def _mixture_dev(
    encoder: CachingEncoder, examples: tuple[MediExample, ...], instructions: bool
) -> tuple[float, float]:
    """(mean top-1 accuracy over tasks x100, mean pairwise cosine of the documents)."""
    by_task: dict[str, list[MediExample]] = defaultdict(list)
    for e in examples:
        by_task[e.task].append(e)
    accuracies, cosines = [], []
    for task in sorted(by_task):
        rows = by_task[task]
        q_instr = rows[0].query.instruction if instructions else None
        d_instr = rows[0].pos.instruction if instructions else None
        queries = normalize_rows(encoder.embed([e.query.text for e in rows], q_instr))  # (n, D)
        docs = list(dict.fromkeys([e.pos.text for e in rows] + [e.neg.text for e in rows]))
        doc_vecs = normalize_rows(encoder.embed(docs, d_instr))  # (m, D)
        at = {text: i for i, text in enumerate(docs)}
        best = (queries @ doc_vecs.T).argmax(1)  # (n,)
        accuracies.append(float(np.mean([best[i] == at[e.pos.text] for i, e in enumerate(rows)])))
        sims = doc_vecs @ doc_vecs.T
        m = len(docs)
        cosines.append(float((sims.sum() - np.trace(sims)) / max(m * (m - 1), 1)))
    return 100 * float(np.mean(accuracies)), float(np.mean(cosines))


def dev_scores(
    encoder: Encoder, data_dir: Path, dev_file: Path, *, instructions: bool = True
) -> dict[str, float]:
    from instructembed.eval import loaders
    from instructembed.eval.reranking import evaluate_reranking
    from instructembed.eval.sts import evaluate_sts

    table = load_instructions("instructor-large" if instructions else "none")
    sts_instr, _ = table.lookup(get_task("STSBenchmark"), Role.QUERY)
    trec = get_task("TrecQA-local")
    q_instr, _ = table.lookup(trec, Role.QUERY)
    d_instr, _ = table.lookup(trec, Role.DOCUMENT)
    stsb = evaluate_sts(CachingEncoder(encoder), loaders.load_stsbenchmark(Path(data_dir), "dev"), sts_instr)
    trecqa = evaluate_reranking(
        CachingEncoder(encoder), loaders.load_trecqa(Path(data_dir), "dev"), q_instr, d_instr
    )
    mixture, cosine = _mixture_dev(CachingEncoder(encoder), read_medi(dev_file).examples, instructions)
    out = {
        "stsb_dev": round(100 * stsb["cosine_spearman"], 2),
        "trecqa_dev": round(100 * trecqa["map_at_1000"], 2),
        "mixture_dev": round(mixture, 2),
    }
    out["dev_mean"] = round(float(np.mean(list(out.values()))), 2)
    out["mean_cosine"] = round(cosine, 4)
    return out
