"""(query, positive, hard negative) triples for each task of the mixture, and the mining behind them.

Hard negatives of pair tasks are mined lexically (`LexicalIndex`: IDF-weighted word overlap), always
from texts that are not in a held-out test set. Label-defined tasks (classification turned into
pairs) are paired by the *base model*: the positive is the nearest same-label text and the negative
the nearest text of another label (MEDI picks positives by similarity; a random same-label positive
with only two labels pushes embeddings together, as the first result showed).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from instructembed.errors import InputFileError
from instructembed.train import medi_sources as src

Triple = tuple[str, str, str]
Labelled = list[tuple[str, str]]
#: find(text, accept) -> index of the best pool text that `accept`s, or None
Finder = Callable[[str, Callable[[int], bool]], "int | None"]
#: texts -> (N, D) unit vectors (the base model, no instruction)
EmbedFn = Callable[[Sequence[str]], np.ndarray]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "for",
        "with",
        "as",
        "at",
        "by",
        "from",
        "that",
        "this",
        "s",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "my",
        "your",
        "his",
        "her",
        "our",
        "their",
    ]
)


# ---- a small lexical index for mining hard negatives -------------------------------------------


class LexicalIndex:
    """IDF-weighted word overlap over a fixed pool of texts: the hardest negatives a lexical match finds."""

    def __init__(self, texts: Sequence[str], max_df: float = 0.05) -> None:
        self.texts = list(texts)
        self.words = [frozenset(w for w in _WORD.findall(t.lower()) if w not in _STOP) for t in self.texts]
        df: Counter[str] = Counter(w for ws in self.words for w in ws)
        n = max(len(self.texts), 1)
        cap = max(2, int(max_df * n))
        self.idf = {
            w: math.log(n / c) for w, c in df.items() if c <= cap
        }  # very common words carry no signal
        self.postings: dict[str, list[int]] = defaultdict(list)
        for i, ws in enumerate(self.words):
            for w in ws:
                if w in self.idf:
                    self.postings[w].append(i)

    def best(self, text: str, accept: Callable[[int], bool], rng: random.Random) -> int | None:
        """Index of the highest-overlap pool text that `accept`s, else a random accepted one."""
        scores: dict[int, float] = defaultdict(float)
        for w in set(_WORD.findall(text.lower())):
            weight = self.idf.get(w)
            if weight is None:
                continue
            for i in self.postings[w]:
                scores[i] += weight
        for i, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])):
            if accept(i):
                return i
        for _ in range(50):
            i = rng.randrange(len(self.texts))
            if accept(i):
                return i
        return None


def lexical_finder(rng: random.Random) -> Callable[[Sequence[str]], Finder]:
    """A factory: pool -> `find(text, accept)` over a `LexicalIndex` of that pool."""

    def make(pool: Sequence[str]) -> Finder:
        index = LexicalIndex(pool)
        return lambda text, accept: index.best(text, accept, rng)

    return make


# ---- readers for the training splits (the evaluation's parsers where they keep what we need) --


def _stsb_train(data_dir: Path) -> list[tuple[str, float, str, str]]:
    """(genre, score, s1, s2) from STS-B train: tab split, columns 0, 4, 5, 6 (SOURCE.md)."""
    path = data_dir / "stsbenchmark" / "sts-train.csv"
    rows = []
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) < 7:
                raise InputFileError(f"{path}:{n}: expected at least 7 tab-separated columns")
            genre = "main-forum" if cols[0] == "main-forums" else cols[0]  # spelled both ways (SOURCE.md)
            rows.append((genre, float(cols[4]), cols[5], cols[6]))
    return rows


def _sst2_train(data_dir: Path) -> list[tuple[str, int]]:
    path = data_dir / "sst2" / "sentiment-train"
    out = []
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            text, sep, label = line.rstrip("\r\n").rpartition("\t")
            if not sep or label not in {"0", "1"}:
                raise InputFileError(f"{path}:{n}: expected `phrase TAB 0/1`")
            out.append((text.strip(), int(label)))
    return out


# ---- task builders: each returns (query, pos, neg) text triples ---------------------------------

STSB_GENRES = {"main-captions": "image caption", "main-news": "news", "main-forum": "forum"}


def _mine(
    queries: Iterable[tuple[str, str, set[int]]],
    index: LexicalIndex,
    clean: Callable[[int], bool],
    rng: random.Random,
) -> list[Triple]:
    out = []
    for q, pos, excluded in queries:
        j = index.best(q, lambda i, ex=excluded: i not in ex and clean(i), rng)  # type: ignore[misc]
        if j is not None:
            out.append((q, pos, index.texts[j]))
    return out


def build_stsb(
    data_dir: Path, rng: random.Random, clean_text: Callable[[str], bool]
) -> dict[str, list[Triple]]:
    rows = _stsb_train(data_dir)
    pool = sorted({s for _, _, a, b in rows for s in (a, b)})
    at = {s: i for i, s in enumerate(pool)}
    related: dict[str, set[int]] = defaultdict(set)  # sentences scored >= 2.5 with it (not negatives)
    for _, score, a, b in rows:
        related[a].add(at[a])
        related[b].add(at[b])
        if score >= 2.5:
            related[a].add(at[b])
            related[b].add(at[a])
    index = LexicalIndex(pool)
    clean = [clean_text(s) for s in pool]
    out: dict[str, list[Triple]] = {}
    for genre, name in STSB_GENRES.items():
        queries = [(a, b, related[a]) for g, score, a, b in rows if g == genre and score >= 4.0]
        out[f"stsb-{name.replace(' ', '-')}"] = _mine(queries, index, clean.__getitem__, rng)
    return out


def build_mrpc(data_dir: Path, rng: random.Random, clean_text: Callable[[str], bool]) -> list[Triple]:
    from instructembed.eval.loaders import load_mrpc

    pairs = load_mrpc(data_dir, "train")
    pool = sorted({*pairs.sentences1, *pairs.sentences2})
    at = {s: i for i, s in enumerate(pool)}
    related: dict[str, set[int]] = defaultdict(set)
    for a, b in zip(pairs.sentences1, pairs.sentences2, strict=True):
        related[a] |= {at[a], at[b]}
        related[b] |= {at[a], at[b]}
    index = LexicalIndex(pool)
    clean = [clean_text(s) for s in pool]
    queries = [
        (a, b, related[a])
        for a, b, y in zip(pairs.sentences1, pairs.sentences2, pairs.labels, strict=True)
        if y == 1
    ]
    return _mine(queries, index, clean.__getitem__, rng)


def build_snli(data_dir: Path, rng: random.Random) -> list[Triple]:
    from instructembed.eval.loaders import read_snli

    by_premise: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for premise, hypothesis, label in read_snli(data_dir, "validation"):
        by_premise[premise][label].append(hypothesis)
    out: list[Triple] = []
    for premise, hyps in by_premise.items():
        if hyps[0] and hyps[2]:
            out.append((premise, rng.choice(hyps[0]), rng.choice(hyps[2])))
    return out


def build_trecqa(data_dir: Path, rng: random.Random) -> list[Triple]:
    from instructembed.eval.loaders import load_trecqa

    out: list[Triple] = []
    for q in load_trecqa(data_dir, "train").queries:
        positives = [c for c, y in zip(q.candidates, q.labels, strict=True) if y == 1]
        negatives = [c for c, y in zip(q.candidates, q.labels, strict=True) if y == 0]
        if negatives:
            out += [(q.query, pos, rng.choice(negatives)) for pos in positives]
    return out


# ---- builders of the added pair tasks ----------------------------------------------------------


def build_story_task(
    stories: Sequence[src.Story], rng: random.Random, nearest: Callable[[Sequence[str]], Finder]
) -> list[Triple]:
    """lead -> body; the negative is the lexically nearest other body of the same group."""
    by_group: dict[str, list[src.Story]] = defaultdict(list)
    for story in stories:
        by_group[story.group].append(story)
    out: list[Triple] = []
    for group in sorted(by_group):
        items = by_group[group]
        if len(items) < 2:
            items = list(stories)  # a group of one: any other story
        bodies = [s.body for s in items]
        find = nearest(bodies)
        for i, story in enumerate(items):
            j = find(story.lead + " " + story.body[:300], lambda c, i=i: c != i)  # type: ignore[misc]
            if j is not None:
                out.append((story.lead, story.body, bodies[j]))
    rng.shuffle(out)
    return out


def build_ai2(hypotheses: Sequence[src.Hypothesis], rng: random.Random) -> list[Triple]:
    """Correct hypothesis -> one of its evidence sentences; negative: evidence of a wrong option."""
    by_question: dict[str, list[src.Hypothesis]] = defaultdict(list)
    for h in hypotheses:
        by_question[h.question].append(h)
    out: list[Triple] = []
    for question in sorted(by_question):
        group = by_question[question]
        wrong_evidence = sorted({e for h in group if not h.correct for e in h.evidence})
        for h in group:
            if not h.correct or not wrong_evidence:
                continue
            own = set(h.evidence)
            negatives = [e for e in wrong_evidence if e not in own]
            for evidence in h.evidence[:10]:  # the first retrieved sentences are the likeliest support
                if negatives:
                    out.append((h.text, evidence, rng.choice(negatives)))
    return out


def build_argus(
    questions: dict[str, list[str]], rng: random.Random, nearest: Callable[[Sequence[str]], Finder]
) -> list[Triple]:
    """Question -> one of its snippets (weak positive); negative: the nearest snippet of another question."""
    pool: list[str] = []
    owner: list[str] = []
    for q in sorted(questions):
        for s in questions[q]:
            pool.append(s)
            owner.append(q)
    find = nearest(pool)
    out: list[Triple] = []
    for q in sorted(questions):
        snippets = [s for s in questions[q] if len(s.split()) >= 6][:32]
        for s in snippets:
            j = find(q, lambda c, q=q: owner[c] != q)  # type: ignore[misc]
            if j is not None:
                out.append((q, s, pool[j]))
    rng.shuffle(out)
    return out


def build_mctest(
    stories: Sequence[src.McStory], rng: random.Random, nearest: Callable[[Sequence[str]], Finder]
) -> list[Triple]:
    """Correct statement -> its story; negative: the story nearest the statement among the others."""
    texts = [s.story for s in stories]
    find = nearest(texts)
    out: list[Triple] = []
    for i, story in enumerate(stories):
        for statement in story.correct:
            j = find(statement, lambda c, i=i: c != i)  # type: ignore[misc]
            if j is not None:
                out.append((statement, story.story, texts[j]))
    rng.shuffle(out)
    return out


def build_rte(
    pairs: Sequence[src.EntailmentPair], rng: random.Random, nearest: Callable[[Sequence[str]], Finder]
) -> list[Triple]:
    """Text -> its entailed hypothesis; negative: the nearest non-entailed hypothesis (its own if any)."""
    non_entailed = sorted({p.hypothesis for p in pairs if not p.entailed})
    find = nearest(non_entailed)
    out: list[Triple] = []
    for p in pairs:
        if p.entailed and p.hypothesis not in non_entailed:
            j = find(p.text, lambda c: True)
            if j is not None:
                out.append((p.text, p.hypothesis, non_entailed[j]))
    rng.shuffle(out)
    return out


# ---- label-defined tasks: paired by the base model --------------------------------------------------


def pair_by_label(
    rows: Sequence[tuple[str, str]], embed: EmbedFn, rng: random.Random, *, anchors: int, pool: int
) -> list[Triple]:
    """Anchor -> nearest same-label text (positive), nearest other-label text (hard negative).

    Works on a deterministic sample of at most `pool` distinct texts (keeping every label's share) and
    returns at most `anchors` triples. Labels with a single text are skipped.
    """
    distinct = sorted(dict(rows).items())  # text -> label; a text with two labels keeps one
    rng.shuffle(distinct)
    distinct = distinct[:pool]
    texts = [t for t, _ in distinct]
    labels = np.array([label for _, label in distinct])
    if len(texts) < 3:
        return []
    vectors = embed(texts)  # (N, D), unit length
    out: list[Triple] = []
    for start in range(0, min(len(texts), anchors * 2), 256):
        block = np.arange(start, min(start + 256, len(texts)))
        sims = vectors[block] @ vectors.T  # (b, N)
        sims[np.arange(len(block)), block] = -np.inf  # never itself
        same = labels[block][:, None] == labels[None, :]
        pos = np.where(same, sims, -np.inf).argmax(1)
        neg = np.where(~same, sims, -np.inf).argmax(1)
        for row, i in enumerate(block):
            p, n = int(pos[row]), int(neg[row])
            if np.isfinite(sims[row, p]) and np.isfinite(sims[row, n]) and texts[p] != texts[i]:
                out.append((texts[i], texts[p], texts[n]))
        if len(out) >= anchors:
            break
    return out[:anchors]


def banking77_rows(data_dir: Path) -> Labelled:
    from instructembed.eval.loaders import load_banking77

    data = load_banking77(data_dir)
    return [(t, str(y)) for t, y in zip(data.train_texts, data.train_labels, strict=True)]


def sst2_rows(data_dir: Path) -> Labelled:
    return [(t, str(y)) for t, y in _sst2_train(data_dir) if len(t.split()) >= 8]  # phrases, not fragments


def labelled_sources(data_dir: Path) -> dict[str, Labelled]:
    """Raw (text, label) lists of the new label-defined tasks (Banking77 and SST-2 are read elsewhere)."""
    return {
        "question-type": src.read_qc(data_dir),
        "subjectivity": src.read_subjectivity(data_dir),
        "pros-cons": src.read_pros_cons(data_dir),
        "chat-dialogue-act": src.read_nps_chat(data_dir),
        "bug-report-project": src.read_problem_reports(data_dir),
    }
