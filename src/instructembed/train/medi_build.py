"""Build a small MEDI-style training mixture from the train/dev splits in `../shared/data`.

Tasks (instructions in INSTRUCTOR's "Represent the (domain) (text type) for (objective): " style;
asymmetric tasks get separate query and document instructions):

| task            | source                 | positive                        | hard negative                                   |
| --------------- | ---------------------- | ------------------------------- | ----------------------------------------------- |
| stsb-{genre}    | STS-B train            | partner in a pair scored >= 4   | most word-overlapping sentence not scored >= 2.5 with it |
| mrpc            | MRPC train             | paraphrase partner (label 1)    | most word-overlapping other MRPC sentence       |
| snli            | SNLI validation (dev)  | entailed hypothesis             | contradicting hypothesis of the same premise    |
| trecqa          | TrecQA train           | a correct answer sentence       | a wrong candidate answer to the same question   |
| banking77       | Banking77 train        | another query, same intent      | most word-overlapping query of another intent   |
| sst2            | SST-2 train (phrases)  | another phrase, same sentiment  | most word-overlapping phrase of the other sentiment |

Held out entirely (never read for training): SICK-R, STS12-16, TwitterSemEval2015, TwitterURLCorpus,
SummEval, AG News, SciFact. Because the sets share sentences (STS-B reuses STS12-16 pairs, MRPC feeds
STS12 MSRpar, SICK reuses MSRvid captions), every example whose query, positive or negative text
appears in a held-out *test* set (exact match after lower-casing and collapsing whitespace) is
dropped, and mined negatives are drawn only from sentences that are not in a held-out test set.
Test splits are never used. The output is deterministic given the seed.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from instructembed.errors import InputFileError

log = logging.getLogger(__name__)

HELD_OUT = (
    "SICK-R",
    "STS12",
    "STS13",
    "STS14",
    "STS15",
    "STS16",
    "TwitterSemEval2015",
    "TwitterURLCorpus",
    "SummEval",
    "AGNews",
    "SciFact",
)

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


def normalize(text: str) -> str:
    """The key used to match training texts against held-out test texts."""
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class Instructions:
    query: str
    document: str


@dataclass
class TaskStats:
    kept: int = 0
    dropped_overlap: int = 0


@dataclass
class BuildReport:
    tasks: dict[str, TaskStats] = field(default_factory=dict)
    held_out_texts: int = 0

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.tasks.values())

    @property
    def dropped(self) -> int:
        return sum(s.dropped_overlap for s in self.tasks.values())


# ---- held-out test texts ---------------------------------------------------------------------


def held_out_texts(data_dir: Path) -> set[str]:
    """Normalized texts of every held-out test set (read with the evaluation's own parsers)."""
    from instructembed.eval import loaders

    texts: list[str] = []
    sick = loaders.load_sick(data_dir)
    texts += [*sick.sentences1, *sick.sentences2]
    for year in ("sts12", "sts13", "sts14", "sts15", "sts16"):
        sts = loaders.load_semeval(data_dir, year)
        texts += [*sts.sentences1, *sts.sentences2]
    for pairs in (loaders.load_twitter_pit2015(data_dir), loaders.load_twitter_url_corpus(data_dir)):
        texts += [*pairs.sentences1, *pairs.sentences2]
    for group in loaders.load_summeval_reference_free(data_dir).groups:
        texts += [*group.references, *group.summaries]
    ag = loaders.load_ag_news_classification(data_dir)
    texts += [*ag.train_texts, *ag.test_texts]
    scifact = loaders.load_scifact(data_dir)
    texts += list(scifact.queries.values())
    for title, body in scifact.corpus.values():
        texts += [title, body]
    return {normalize(t) for t in texts}


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

Triple = tuple[str, str, str]
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


def _labelled(
    texts: Sequence[str],
    labels: Sequence[int],
    rng: random.Random,
    limit: int,
    clean_text: Callable[[str], bool],
) -> list[Triple]:
    """Positive: another text with the same label; negative: the most overlapping text of another label."""
    index = LexicalIndex(texts)
    by_label: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_label[y].append(i)
    clean = [clean_text(t) for t in texts]
    order = list(range(len(texts)))
    rng.shuffle(order)
    out: list[Triple] = []
    for i in order:
        if len(out) >= limit:
            break
        same = by_label[labels[i]]
        if len(same) < 2:
            continue
        j = i
        while j == i:
            j = rng.choice(same)
        k = index.best(texts[i], lambda c, y=labels[i]: labels[c] != y and clean[c], rng)  # type: ignore[misc]
        if k is not None:
            out.append((texts[i], texts[j], texts[k]))
    return out


def build_banking77(
    data_dir: Path, rng: random.Random, limit: int, clean_text: Callable[[str], bool]
) -> list[Triple]:
    from instructembed.eval.loaders import load_banking77

    data = load_banking77(data_dir)
    return _labelled(data.train_texts, data.train_labels, rng, limit, clean_text)


def build_sst2(
    data_dir: Path, rng: random.Random, limit: int, clean_text: Callable[[str], bool]
) -> list[Triple]:
    rows = [(t, y) for t, y in _sst2_train(data_dir) if len(t.split()) >= 8]  # phrases, not fragments
    rows = sorted(set(rows))
    return _labelled([t for t, _ in rows], [y for _, y in rows], rng, limit, clean_text)


INSTRUCTIONS: dict[str, Instructions] = {
    **{
        f"stsb-{name.replace(' ', '-')}": Instructions(
            f"Represent the {name} sentence for retrieving semantically similar sentences: ",
            f"Represent the {name} sentence for retrieving semantically similar sentences: ",
        )
        for name in STSB_GENRES.values()
    },
    "mrpc": Instructions(
        "Represent the news sentence for retrieving its paraphrases: ",
        "Represent the news sentence for retrieving its paraphrases: ",
    ),
    "snli": Instructions(
        "Represent the image caption for retrieving sentences it entails: ",
        "Represent the statement about an image for retrieval: ",
    ),
    "trecqa": Instructions(
        "Represent the factoid question for retrieving news sentences that answer it: ",
        "Represent the news sentence for retrieval: ",
    ),
    "banking77": Instructions(
        "Represent the bank customer query for retrieving queries with the same intent: ",
        "Represent the bank customer query for retrieving queries with the same intent: ",
    ),
    "sst2": Instructions(
        "Represent the movie review phrase for retrieving phrases with the same sentiment: ",
        "Represent the movie review phrase for retrieving phrases with the same sentiment: ",
    ),
}


def build_medi(data_dir: Path, out: Path, *, seed: int = 42, max_per_task: int = 3000) -> BuildReport:
    """Write the mixture to `out` (JSONL, atomically) and return per-task counts."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputFileError(f"{data_dir}: data directory not found; pass --data-dir pointing at shared/data")
    held = held_out_texts(data_dir)
    report = BuildReport(held_out_texts=len(held))

    def clean_text(text: str) -> bool:
        return normalize(text) not in held

    def rng(task: str) -> random.Random:
        return random.Random(f"{seed}:{task}")  # str seeds are hashed deterministically (sha512)

    tasks: dict[str, list[Triple]] = {}
    tasks.update(build_stsb(data_dir, rng("stsb"), clean_text))
    tasks["mrpc"] = build_mrpc(data_dir, rng("mrpc"), clean_text)
    tasks["snli"] = build_snli(data_dir, rng("snli"))
    tasks["trecqa"] = build_trecqa(data_dir, rng("trecqa"))
    tasks["banking77"] = build_banking77(data_dir, rng("banking77"), max_per_task, clean_text)
    tasks["sst2"] = build_sst2(data_dir, rng("sst2"), max_per_task, clean_text)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=out.parent, prefix=f".{out.name}.", delete=False
    ) as handle:
        tmp = Path(handle.name)
        try:
            for name, triples in tasks.items():
                stats = report.tasks.setdefault(name, TaskStats())
                kept = [t for t in triples if all(clean_text(s) for s in t)]
                stats.dropped_overlap = len(triples) - len(kept)
                rng(name + ":cap").shuffle(kept)
                kept = kept[:max_per_task]
                stats.kept = len(kept)
                instr = INSTRUCTIONS[name]
                for q, p, n in kept:
                    record = {
                        "query": [instr.query, q],
                        "pos": [instr.document, p],
                        "neg": [instr.document, n],
                        "task_name": name,
                    }
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(out)
    for name, stats in report.tasks.items():
        log.info(
            "%-22s %6d examples (%d dropped: text in a held-out test set)",
            name,
            stats.kept,
            stats.dropped_overlap,
        )
    return report
