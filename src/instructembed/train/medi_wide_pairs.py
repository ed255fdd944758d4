"""Triples of the wider mixture's added tasks (`medi_wide_tasks.py`), paired as the paper describes.

MEDI keeps the example's own output as the positive where a task has one, and takes as the hard
negative a text with a similar input but a different output, "similar" under the base model. Here:

- label tasks (same texts, several label sets) go through `medi_pairs.pair_by_label`: the positive is
  the base model's nearest same-label text, the negative its nearest other-label text;
- relation tasks keep the natural positive (the caption's contradicting statement, the question's right
  option, the story's own headline) and take the negative from the texts with the same input but
  another output (the same caption's other statements, the same question's wrong options) or, where
  there are none, the base model's nearest text of another example (`nearest_indices`).

Every builder returns (query, positive, negative) text triples, deterministic for an rng seed; the
build decontaminates them afterwards (`medi_build`).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from instructembed.train import medi_sources as src
from instructembed.train.medi_pairs import EmbedFn, Labelled, Triple

#: queries a relation builder draws at most (the build keeps at most max_per_task + dev of them)
QUERY_LIMIT = 4000


def nearest_indices(
    queries: np.ndarray, pool: np.ndarray, excluded: Sequence[Collection[int]], block: int = 256
) -> list[int | None]:
    """For each row of `queries` (Q, D), the index of the `pool` row (P, D) with the highest dot
    product that is not in `excluded[q]`; None when every pool row is excluded. Ties: lowest index."""
    out: list[int | None] = []
    for start in range(0, len(queries), block):
        sims = queries[start : start + block] @ pool.T  # (b, P)
        for row, q in enumerate(range(start, min(start + block, len(queries)))):
            if excluded[q]:
                sims[row, list(excluded[q])] = -np.inf
            j = int(np.argmax(sims[row]))
            out.append(j if np.isfinite(sims[row, j]) else None)
    return out


def _sample(items: list, rng: random.Random, n: int = QUERY_LIMIT) -> list:  # type: ignore[type-arg]
    if len(items) > n:
        items = rng.sample(items, n)
    return items


def _against(
    embed: EmbedFn, queries: Sequence[str], pool: Sequence[str], excluded: Sequence[Collection[int]]
) -> list[int | None]:
    if not queries or not pool:
        return [None] * len(queries)
    return nearest_indices(embed(list(queries)), embed(list(pool)), excluded)


def cached(embed: EmbedFn) -> EmbedFn:
    """`embed` with a text -> vector cache: texts shared by several tasks are embedded once, and a
    builder can embed all its texts in one call before asking for them a few at a time."""
    cache: dict[str, np.ndarray] = {}

    def embed_cached(texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            cache.update(zip(missing, embed(missing), strict=True))
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    return embed_cached


def _closest(embed: EmbedFn, anchor: str, options: Sequence[str]) -> str:
    """The option nearest `anchor` under the base model (the hardest "same input, other output")."""
    if len(options) == 1:
        return options[0]
    vectors = embed([anchor, *options])
    return options[int(np.argmax(vectors[1:] @ vectors[0]))]


# ---- relation tasks over the first mixture's texts ---------------------------------------------


def build_snli_relations(rows: Sequence[tuple[str, str, int]], rng: random.Random) -> dict[str, list[Triple]]:
    """Caption -> its contradicting (or neutral) statement; negative: a statement of the same caption
    with another relation (entailed first: the output the other instruction wants)."""
    by_premise: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for premise, hypothesis, label in rows:
        by_premise[premise][label].append(hypothesis)
    out: dict[str, list[Triple]] = {"snli-contradiction": [], "snli-neutral": []}
    for premise in sorted(by_premise):
        hyps = by_premise[premise]
        for name, label, other in (("snli-contradiction", 2, 1), ("snli-neutral", 1, 2)):
            negatives = hyps[0] or hyps[other]
            if hyps[label] and negatives:
                out[name].append((premise, rng.choice(hyps[label]), rng.choice(negatives)))
    return out


def build_rte_reverse(
    pairs: Sequence[src.EntailmentPair], rng: random.Random, embed: EmbedFn
) -> list[Triple]:
    """Entailed hypothesis -> its text; negative: the base model's nearest text that does not entail it."""
    texts = sorted({p.text for p in pairs})
    at = {t: i for i, t in enumerate(texts)}
    entails: dict[str, set[int]] = defaultdict(set)
    for p in pairs:
        if p.entailed:
            entails[p.hypothesis].add(at[p.text])
    chosen = _sample(sorted({(p.hypothesis, p.text) for p in pairs if p.entailed}), rng)
    nearest = _against(embed, [h for h, _ in chosen], texts, [entails[h] for h, _ in chosen])
    return [(h, t, texts[j]) for (h, t), j in zip(chosen, nearest, strict=True) if j is not None]


def build_ai2_reverse(
    hypotheses: Sequence[src.Hypothesis], rng: random.Random, embed: EmbedFn
) -> list[Triple]:
    """Evidence -> the correct hypothesis it was retrieved for; negative: the same question's wrong
    option nearest the evidence."""
    by_question: dict[str, list[src.Hypothesis]] = defaultdict(list)
    for h in hypotheses:
        by_question[h.question].append(h)
    rows: list[tuple[str, str, tuple[str, ...]]] = []
    for question in sorted(by_question):
        group = by_question[question]
        wrong = sorted({h.text for h in group if not h.correct})
        for h in group:
            if h.correct and wrong:
                rows += [(e, h.text, tuple(w for w in wrong if w != h.text)) for e in h.evidence[:10]]
    rows = _sample([r for r in rows if r[2]], rng)
    embed([t for e, r, w in rows for t in (e, *w)])  # one batch (a cached embed then serves the loop)
    return [(evidence, right, _closest(embed, evidence, options)) for evidence, right, options in rows]


def build_question_reverse(
    answers: Sequence[tuple[str, str]], rng: random.Random, embed: EmbedFn
) -> list[Triple]:
    """(answer text, its question) -> triples whose negative is the nearest other question."""
    questions = sorted({q for _, q in answers})
    at = {q: i for i, q in enumerate(questions)}
    chosen = _sample(sorted(set(answers)), rng)
    nearest = _against(embed, [a for a, _ in chosen], questions, [{at[q]} for _, q in chosen])
    return [(a, q, questions[j]) for (a, q), j in zip(chosen, nearest, strict=True) if j is not None]


def argus_answers(questions: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(s, q) for q in sorted(questions) for s in questions[q] if len(s.split()) >= 6][:100_000]


def trecqa_answers(data_dir: Path) -> list[tuple[str, str]]:
    from instructembed.eval.loaders import load_trecqa

    return [
        (c, q.query)
        for q in load_trecqa(data_dir, "train").queries
        for c, y in zip(q.candidates, q.labels, strict=True)
        if y == 1
    ]


def build_story_reverse(stories: Sequence[src.Story], rng: random.Random, embed: EmbedFn) -> list[Triple]:
    """Body -> its own lead; negative: the base model's nearest other lead of the same group."""
    out: list[Triple] = []
    for group in sorted({s.group for s in stories}):
        items = [s for s in stories if s.group == group] if len(stories) > 1 else list(stories)
        if len(items) < 2:
            items = list(stories)
        leads = [s.lead for s in items]
        chosen = _sample(list(range(len(items))), rng)
        nearest = _against(embed, [items[i].body for i in chosen], leads, [{i} for i in chosen])
        out += [
            (items[i].body, leads[i], leads[j]) for i, j in zip(chosen, nearest, strict=True) if j is not None
        ]
    rng.shuffle(out)
    return out


def build_sentence_to_story(stories: Sequence[src.Story], rng: random.Random, embed: EmbedFn) -> list[Triple]:
    """A sentence of a body (8+ words) -> the body without it; negative: the nearest other body."""
    bodies = [s.body for s in stories]
    picks: list[tuple[int, str, str]] = []
    for i in _sample(list(range(len(stories))), rng):
        sentences = [p for p in src.iter_lines(bodies[i]) if len(p.split()) >= 8]
        if len(sentences) >= 3:
            sentence = rng.choice(sentences[1:])
            rest = " ".join(bodies[i].replace(sentence, " ").split())
            picks.append((i, sentence, rest))
    nearest = _against(embed, [s for _, s, _ in picks], bodies, [{i} for i, _, _ in picks])
    return [(s, rest, bodies[j]) for (_, s, rest), j in zip(picks, nearest, strict=True) if j is not None]


def build_mctest_answers(
    questions: Sequence[src.McQuestion], rng: random.Random, embed: EmbedFn
) -> list[Triple]:
    """Question -> the right option's statement; negative: the wrong option nearest to it."""
    chosen = _sample(sorted(set(questions), key=lambda q: (q.question, q.right)), rng)
    embed([t for q in chosen for t in (q.right, *q.wrong)])
    return [(q.question, q.right, _closest(embed, q.right, q.wrong)) for q in chosen]


def build_story_to_statement(
    stories: Sequence[src.McStory], rng: random.Random, embed: EmbedFn
) -> list[Triple]:
    """Story -> one of its correct statements; negative: its wrong statement nearest to that one."""
    rows = _sample([(s.story, right, s.wrong) for s in stories for right in s.correct if s.wrong], rng)
    embed([t for _, right, wrong in rows for t in (right, *wrong)])
    return [(story, right, _closest(embed, right, wrong)) for story, right, wrong in rows]


# ---- label sets over shared texts ----------------------------------------------------------------


def wide_label_rows(data_dir: Path) -> dict[str, Labelled]:
    """(text, label) lists of the added label tasks; tasks of one `texts` group list the same texts."""
    product = src.read_product_sentences(data_dir)
    aspects = Counter(p.aspect for p in product)
    chat = src.read_chat_posts(data_dir)
    abc = src.read_abc(data_dir)
    reviews = src.read_movie_reviews(data_dir)
    return {
        "product-sentence-product": [(p.text, p.product) for p in product],
        "product-sentence-polarity": [(p.text, p.polarity) for p in product],
        "product-sentence-aspect": [(p.text, p.aspect) for p in product if aspects[p.aspect] >= 10],
        "chat-session": [(c.text, c.session) for c in chat],
        "chat-age-group": [(c.text, c.age_group) for c in chat],
        "abc-section": [(s.lead, s.group) for s in abc],
        "question-coarse-type": [(q, label.split(":")[0]) for q, label in src.read_qc(data_dir)],
        "movie-review-sentiment": [(s.body, s.group) for s in reviews],
        "sentence-polarity": src.read_sentence_polarity(data_dir),
        "comparative-type": src.read_comparative_types(data_dir),
    }


def wide_pair_tasks(data_dir: Path, seed: int, embed: EmbedFn) -> dict[str, list[Triple]]:
    """Triples of the added relation tasks."""
    from instructembed.eval.loaders import read_snli

    def rng(task: str) -> random.Random:
        return random.Random(f"{seed}:{task}")

    abc, reviews = src.read_abc(data_dir), src.read_movie_reviews(data_dir)
    out = build_snli_relations(read_snli(data_dir, "validation"), rng("snli-relations"))
    out["rte-hypothesis-to-text"] = build_rte_reverse(src.read_rte(data_dir), rng("rte-rev"), embed)
    out["ai2-evidence-to-statement"] = build_ai2_reverse(src.read_ai2_8grade(data_dir), rng("ai2-rev"), embed)
    out["argus-snippet-to-question"] = build_question_reverse(
        argus_answers(src.read_argus(data_dir)), rng("argus-rev"), embed
    )
    out["trecqa-answer-to-question"] = build_question_reverse(
        trecqa_answers(data_dir), rng("trecqa-rev"), embed
    )
    out["abc-story-to-headline"] = build_story_reverse(abc, rng("abc-rev"), embed)
    out["abc-sentence-to-story"] = build_sentence_to_story(abc, rng("abc-sentence"), embed)
    out["movie-sentence-to-review"] = build_sentence_to_story(reviews, rng("movie-sentence"), embed)
    out["product-review-to-title"] = build_story_reverse(
        src.read_product_review_titles(data_dir), rng("product-rev"), embed
    )
    out["mctest-question-answer"] = build_mctest_answers(
        src.read_mctest_questions(data_dir), rng("mctest-qa"), embed
    )
    out["mctest-story-to-statement"] = build_story_to_statement(
        src.read_mctest(data_dir), rng("mctest-rev"), embed
    )
    return out
