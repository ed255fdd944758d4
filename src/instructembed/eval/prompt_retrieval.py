"""Prompt retrieval: choose in-context demonstrations with the embedder, then let an LM answer.

The INSTRUCTOR paper's protocol (`evaluation/prompt_retrieval/main_geo.py`, `main_answerbility.py`):

1. embed the pool under the task's instruction and **mean-centre** it (the pool's own mean; the test
   inputs are embedded the same way but not centred, as in those scripts);
2. for each test input, walk the pool from the highest cosine down, adding demonstrations while the
   whole prompt (header + demonstrations + the test's query) stays within the token budget; the first
   one that does not fit ends the walk;
3. write the prompt least-similar first, so the most similar demonstration sits next to the query;
4. `generate` tasks (GeoQuery): the LM continues after `SELECT`; ROUGE-L F1 of "SELECT ..." against the
   gold SQL. `choose` tasks (MultiRC): the option with the highest mean token log-probability; ROUGE-L
   of one-word labels is accuracy.

Without an LM only the retrieval side is measured: the share of chosen demonstrations whose `key`
(GeoQuery: SQL template; MultiRC: label) equals the test example's, the same for the top one, and the
share a random draw from the pool would give (`chance_*`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .encoder import CachingEncoder, normalize_rows
from .lm import LanguageModel, TokenCounter
from .records import PromptRetrievalData

__all__ = [
    "Selection",
    "build_prompt",
    "centre",
    "evaluate_prompt_retrieval",
    "greedy_within_budget",
    "rouge_l",
    "select_demonstrations",
]

GENERATE_MAX_TOKENS = 128
GENERATE_STOP = ("\n\n", ";", "\n--")


def centre(pool: np.ndarray) -> np.ndarray:
    """The pool minus its mean row (float64); a new array."""
    x = np.asarray(pool, dtype=np.float64)
    return x - x.mean(axis=0, keepdims=True)


def greedy_within_budget(order: Sequence[int], lengths: Sequence[int], room: int) -> list[int]:
    """The longest prefix of `order` whose summed `lengths` stays <= `room` (the paper stops, not skips)."""
    chosen, used = [], 0
    for i in order:
        used += int(lengths[i])
        if used > room:
            break
        chosen.append(int(i))
    return chosen


@dataclass(frozen=True)
class Selection:
    """Pool indices chosen for one test input, most similar first, and their cosines."""

    indices: tuple[int, ...]
    cosines: tuple[float, ...]


def select_demonstrations(
    pool_emb: np.ndarray, test_emb: np.ndarray, lengths: Sequence[int], rooms: Sequence[int]
) -> list[Selection]:
    """Per test row: pool rows by cosine (descending, ties by index) within that row's token room.

    `pool_emb` (P, D) is used as given (centre it first); `test_emb` (T, D); `lengths` (P,) tokens per
    demonstration; `rooms` (T,) tokens left for demonstrations per test input.
    """
    cos = normalize_rows(test_emb) @ normalize_rows(pool_emb).T  # (T, P)
    out = []
    for t in range(cos.shape[0]):
        order = np.lexsort((np.arange(cos.shape[1]), -cos[t]))  # cosine descending, then index
        chosen = greedy_within_budget(order.tolist(), lengths, int(rooms[t]))
        out.append(Selection(tuple(chosen), tuple(float(cos[t, i]) for i in chosen)))
    return out


def build_prompt(data: PromptRetrievalData, selection: Selection, test_index: int) -> str:
    """Header, demonstrations least-similar first, then the test query (the paper's layout)."""
    chosen = [data.pool[i] for i in reversed(selection.indices)]
    if data.mode == "choose":  # MetaICL "direct": input, a space, the label; examples apart by a blank line
        return "".join(f"{e.query} {e.answer}\n\n" for e in chosen) + data.tests[test_index].query
    demos = [e.demonstration for e in chosen]
    return data.header + "".join(demos) + data.tests[test_index].query


_TOKEN = re.compile(r"[a-z0-9]+")


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased alphanumeric tokens (rouge-score's tokenisation, without stemming)."""
    a, b = _TOKEN.findall(prediction.lower()), _TOKEN.findall(reference.lower())
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:  # longest common subsequence, one row at a time
        row = [0]
        for j, y in enumerate(b):
            row.append(prev[j] + 1 if x == y else max(prev[j + 1], row[j]))
        prev = row
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def _retrieval_scores(data: PromptRetrievalData, selections: Sequence[Selection]) -> dict[str, float]:
    shares, top1, counts, chance = [], [], [], []
    pool_keys = np.array([e.key for e in data.pool])
    for test, sel in zip(data.tests, selections, strict=True):
        chance.append(
            float(np.mean(pool_keys == test.key))
        )  # what demonstrations drawn at random would share
        keys = [data.pool[i].key == test.key for i in sel.indices]
        shares.append(float(np.mean(keys)) if keys else 0.0)
        top1.append(float(keys[0]) if keys else 0.0)
        counts.append(len(keys))
    name = "template_match" if data.mode == "generate" else "label_agreement"
    return {
        name: float(np.mean(shares)),
        f"top1_{name}": float(np.mean(top1)),
        f"chance_{name}": float(np.mean(chance)),
        "mean_demonstrations": float(np.mean(counts)),
        "tests": float(len(selections)),
    }


def evaluate_prompt_retrieval(
    encoder: CachingEncoder,
    data: PromptRetrievalData,
    instruction: str | None,
    counter: TokenCounter,
    lm: LanguageModel | None = None,
) -> dict[str, float]:
    """Retrieval-side scores always; the paper's `rouge_l` (x1) and `exact_match` / `accuracy` with an LM."""
    pool = centre(encoder.embed([e.embed_text for e in data.pool], instruction))  # (P, D)
    tests = encoder.embed([e.embed_text for e in data.tests], instruction)  # (T, D), not centred
    lengths = [counter.count(e.demonstration) for e in data.pool]  # the paper's get_instance_length texts
    fixed = counter.count(data.header) if data.header else 0
    rooms = [data.budget - fixed - counter.count(e.query) for e in data.tests]
    selections = select_demonstrations(pool, tests, lengths, rooms)
    scores = _retrieval_scores(data, selections)
    used = [
        data.budget - room + sum(lengths[i] for i in s.indices)
        for room, s in zip(rooms, selections, strict=True)
    ]
    scores["mean_prompt_tokens"] = float(np.mean(used))
    if lm is None:
        return scores
    rouge, exact = [], []
    for t, (test, sel) in enumerate(zip(data.tests, selections, strict=True)):
        prompt = build_prompt(data, sel, t)
        if data.mode == "generate":
            pred = data.answer_prefix + lm.complete(
                prompt, max_tokens=GENERATE_MAX_TOKENS, stop=GENERATE_STOP
            )
            pred = pred.replace("\n", " ")
        else:
            logp = lm.option_logprobs(prompt, [" " + o for o in data.options])
            pred = data.options[int(np.argmax(logp))]
        rouge.append(rouge_l(pred, test.answer))
        exact.append(float(" ".join(pred.split()).lower() == " ".join(test.answer.split()).lower()))
    scores["rouge_l"] = float(np.mean(rouge))
    scores["exact_match" if data.mode == "generate" else "accuracy"] = float(np.mean(exact))
    return scores
