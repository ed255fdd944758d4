"""One parser per raw dataset in `../shared/data`, following each SOURCE.md's "Parsing pitfalls".

Every parser reads the files exactly as published and raises `InputFileError` naming the file and
line on malformed data. `load_local(source, data_dir)` dispatches on `Task.source`; `files_for`
lists the files a source reads (for the data fingerprint).
"""

from __future__ import annotations

import ast
import csv
import html
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np

from instructembed.errors import InputFileError

from .paper_loaders import PAPER_SOURCES
from .parsing import bad_line as _bad
from .parsing import numbered_lines as _lines
from .parsing import to_float as _float
from .records import (
    ClassificationData,
    ClusteringData,
    PairData,
    RerankingData,
    RerankingQuery,
    RetrievalData,
    STSData,
    SummarizationData,
    SummaryGroup,
    TaskData,
)

__all__ = ["SOURCES", "files_for", "load_local"]

csv.field_size_limit(1 << 24)  # SciFact abstracts are long CSV fields

SEMEVAL_FILES: dict[str, tuple[str, ...]] = {
    "sts12": ("MSRpar", "OnWN", "SMTeuroparl", "SMTnews"),
    "sts13": ("headlines", "OnWN", "FNWN"),
    "sts14": ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    "sts15": ("answers-forums", "answers-students", "belief", "headlines", "images"),
    "sts16": ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
}


# ---- STS -------------------------------------------------------------------------------------


def load_stsbenchmark(data_dir: Path, split: str = "test") -> STSData:
    """Tab split (sentences hold bare `"`), columns 4-6; some lines carry 2 extra note columns."""
    path = data_dir / "stsbenchmark" / f"sts-{split}.csv"
    s1, s2, scores = [], [], []
    for n, line in _lines(path):
        cols = line.split("\t")
        if len(cols) < 7:
            raise _bad(path, n, f"expected at least 7 tab-separated columns, found {len(cols)}")
        scores.append(_float(path, n, cols[4], "score"))
        s1.append(cols[5])
        s2.append(cols[6])
    return STSData(tuple(s1), tuple(s2), tuple(scores))


def load_sick(data_dir: Path) -> STSData:
    """All 9,927 pairs (train + trial + test, as MTEB's SICK-R test); header row; test file is CRLF."""
    s1, s2, scores = [], [], []
    for name in ("SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"):
        path = data_dir / "sick" / name
        for n, line in _lines(path):
            cols = line.split("\t")
            if n == 1:
                if cols[:4] != ["pair_ID", "sentence_A", "sentence_B", "relatedness_score"]:
                    raise _bad(path, n, f"unexpected header {cols[:4]}")
                continue
            if len(cols) != 5:
                raise _bad(path, n, f"expected 5 tab-separated columns, found {len(cols)}")
            s1.append(cols[1])
            s2.append(cols[2])
            scores.append(_float(path, n, cols[3], "relatedness_score"))
    return STSData(tuple(s1), tuple(s2), tuple(scores))


def load_semeval(data_dir: Path, year_key: str) -> STSData:
    """Per-year STS test files: score TAB s1 TAB s2; lines with an empty score are unscored (dropped)."""
    year = "20" + year_key[-2:]
    s1, s2, scores = [], [], []
    for genre in SEMEVAL_FILES[year_key]:
        path = data_dir / "semeval_sts" / year / f"{genre}.test.tsv"
        for n, line in _lines(path):
            cols = line.split("\t")
            if len(cols) != 3:
                raise _bad(path, n, f"expected 3 tab-separated columns, found {len(cols)}")
            if cols[0].strip() == "":
                continue
            scores.append(_float(path, n, cols[0], "score"))
            s1.append(cols[1])
            s2.append(cols[2])
    return STSData(tuple(s1), tuple(s2), tuple(scores))


# ---- pair classification --------------------------------------------------------------------


def load_twitter_pit2015(data_dir: Path) -> PairData:
    """Official test: expert label 0-5 in column 5; 4-5 paraphrase, 0-2 not, 3 debatable (dropped)."""
    path = data_dir / "twitter_pit2015" / "test.data"
    s1, s2, labels = [], [], []
    for n, line in _lines(path):
        cols = line.split("\t")
        if len(cols) != 7:
            raise _bad(path, n, f"expected 7 tab-separated columns, found {len(cols)}")
        if cols[4] not in {"0", "1", "2", "3", "4", "5"}:
            raise _bad(path, n, f"test label {cols[4]!r} is not a digit 0-5")
        score = int(cols[4])
        if score == 3:
            continue
        s1.append(cols[2])
        s2.append(cols[3])
        labels.append(1 if score >= 4 else 0)
    return PairData(tuple(s1), tuple(s2), tuple(labels))


_VOTES = re.compile(r"^\((\d),6\)$")


def load_twitter_url_corpus(data_dir: Path) -> PairData:
    """Raw test: CRLF, empty lines, `(n,6)` votes; n<=2 not, n>=4 paraphrase, n==3 and 5-column lines
    dropped (the paper's 9,324 pairs). Sentences end with a space: stripped."""
    path = data_dir / "twitter_url_corpus" / "Twitter_URL_Corpus_testNew.larger.txt"
    s1, s2, labels = [], [], []
    for n, line in _lines(path):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) == 5:
            continue
        if len(cols) != 4:
            raise _bad(path, n, f"expected 4 tab-separated columns, found {len(cols)}")
        match = _VOTES.match(cols[2])
        if match is None:
            raise _bad(path, n, f"vote column {cols[2]!r} is not of the form (n,6)")
        votes = int(match.group(1))
        if votes == 3:
            continue
        s1.append(cols[0].strip())
        s2.append(cols[1].strip())
        labels.append(1 if votes >= 4 else 0)
    return PairData(tuple(s1), tuple(s2), tuple(labels))


def load_mrpc(data_dir: Path, split: str = "test") -> PairData:
    """BOM on train/test, CRLF, bare `"` in sentences: utf-8-sig and a plain tab split."""
    path = data_dir / "mrpc" / f"msr-para-{split}.tsv"
    s1, s2, labels = [], [], []
    for n, line in _lines(path, encoding="utf-8-sig"):
        cols = line.split("\t")
        if n == 1:
            if cols[0] != "Quality":
                raise _bad(path, n, f"unexpected header {cols}")
            continue
        if len(cols) != 5 or cols[0] not in {"0", "1"}:
            raise _bad(path, n, "expected 5 tab-separated columns starting with a 0/1 label")
        labels.append(int(cols[0]))
        s1.append(cols[3])
        s2.append(cols[4])
    return PairData(tuple(s1), tuple(s2), tuple(labels))


def read_snli(data_dir: Path, split: str = "test") -> list[tuple[str, str, int]]:
    """(premise, hypothesis, label) rows; label 0 entailment / 1 neutral / 2 contradiction.

    CSV-quoted TSV (doubled inner quotes): a real CSV reader. Also the source of training pairs.
    """
    path = data_dir / "snli" / f"{split}.tsv"
    if not path.is_file():
        raise InputFileError(f"{path}: file not found; point --data-dir at the shared data folder")
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            if reader.line_num == 1:
                continue
            if len(row) != 3 or row[2] not in {"0", "1", "2"}:
                raise _bad(path, reader.line_num, "expected premise, hypothesis and a label 0/1/2")
            rows.append((row[0], row[1], int(row[2])))
    return rows


def load_snli(data_dir: Path, split: str = "test") -> PairData:
    """Pair classification: entailment = 1, neutral and contradiction = 0."""
    rows = read_snli(data_dir, split)
    return PairData(tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(int(r[2] == 0) for r in rows))


# ---- classification and clustering ---------------------------------------------------------


def _banking77_split(data_dir: Path, split: str) -> tuple[list[str], list[int]]:
    """CSV with quoting, CRLF; intent names mapped to ids by `categories.json` order."""
    names = json.loads((data_dir / "banking77" / "categories.json").read_text(encoding="utf-8"))
    ids = {name: i for i, name in enumerate(names)}
    path = data_dir / "banking77" / f"{split}.csv"
    if not path.is_file():
        raise InputFileError(f"{path}: file not found; point --data-dir at the shared data folder")
    texts, labels = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        for row in reader:
            if reader.line_num == 1:
                continue
            if len(row) != 2 or row[1] not in ids:
                raise _bad(path, reader.line_num, f"expected `text,category` with a known intent, got {row}")
            texts.append(row[0])
            labels.append(ids[row[1]])
    return texts, labels


def load_banking77(data_dir: Path) -> ClassificationData:
    train = _banking77_split(data_dir, "train")
    test = _banking77_split(data_dir, "test")
    return ClassificationData(tuple(train[0]), tuple(train[1]), tuple(test[0]), tuple(test[1]))


_AG_FRAGMENTS = (("#39;", "'"), ("#36;", "$"), ("quot;", '"'))


def _ag_news(data_dir: Path) -> tuple[list[str], list[int]]:
    """label TAB title. description; repairs the crawl's `#39;`-style entity fragments, unescapes HTML."""
    path = data_dir / "ag_news" / "test.txt"
    texts, labels = [], []
    for n, line in _lines(path):
        label, sep, text = line.partition("\t")
        if not sep or label not in {"0", "1", "2", "3"}:
            raise _bad(path, n, "expected `label TAB text` with a label 0-3")
        for fragment, char in _AG_FRAGMENTS:
            text = text.replace("&" + fragment, char).replace(fragment, char)
        texts.append(html.unescape(text))
        labels.append(int(label))
    return texts, labels


def load_ag_news_classification(data_dir: Path) -> ClassificationData:
    from sklearn.model_selection import train_test_split

    texts, labels = _ag_news(data_dir)
    x_tr, x_te, y_tr, y_te = train_test_split(texts, labels, test_size=0.5, stratify=labels, random_state=42)
    return ClassificationData(tuple(x_tr), tuple(y_tr), tuple(x_te), tuple(y_te))


def load_sst2(data_dir: Path) -> ClassificationData:
    """sentence TAB label, trailing space before the tab; probe trained on dev, tested on test."""

    def read(name: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
        path = data_dir / "sst2" / name
        texts, labels = [], []
        for n, line in _lines(path):
            text, sep, label = line.rpartition("\t")
            if not sep or label not in {"0", "1"}:
                raise _bad(path, n, "expected `sentence TAB 0/1`")
            texts.append(text.strip())
            labels.append(int(label))
        return tuple(texts), tuple(labels)

    train, test = read("sentiment-dev"), read("sentiment-test")
    return ClassificationData(train[0], train[1], test[0], test[1])


def _cluster_sets(texts: list[str], labels: list[int], n_sets: int) -> ClusteringData:
    """Split into `n_sets` disjoint sets by a fixed seeded permutation (seed 42)."""
    order = np.random.default_rng(42).permutation(len(texts))
    sets = tuple(
        (tuple(texts[i] for i in chunk), tuple(labels[i] for i in chunk))
        for chunk in np.array_split(order, n_sets)
    )
    return ClusteringData(sets)


def load_banking77_clustering(data_dir: Path) -> ClusteringData:
    return _cluster_sets(*_banking77_split(data_dir, "test"), n_sets=4)


def load_ag_news_clustering(data_dir: Path) -> ClusteringData:
    return _cluster_sets(*_ag_news(data_dir), n_sets=10)


#: MTEB-style clustering over TWEAC question titles: (data folder, packaged file of the fixed sets)
TWEAC_SETS = {
    "reddit_clustering": ("reddit_clustering_tweac", "reddit-clustering-sets.json"),
    "stackexchange_clustering": ("stackexchange_clustering_tweac", "stackexchange-clustering-sets.json"),
}


def tweac_files(source: str) -> tuple[str, ...]:
    """The label files the committed sets of `source` read (for the data fingerprint)."""
    from instructembed.package_data import read_text

    from .clustering_sets import decode_sets

    folder, sets_file = TWEAC_SETS[source]
    _, sizes = decode_sets(read_text(sets_file))
    return tuple(f"{folder}/test/{label}.txt" for label in sorted(sizes))


def load_tweac_clustering(data_dir: Path, source: str) -> ClusteringData:
    """The committed fixed-seed sets (`eval/clustering_sets.py`) over `<folder>/test/<label>.txt`;
    each set's texts ordered by label then line, so `--limit` keeps every set's label mix."""
    from instructembed.package_data import read_text

    from .clustering_sets import decode_sets

    folder, sets_file = TWEAC_SETS[source]
    sets, sizes = decode_sets(read_text(sets_file))
    lines: dict[str, list[str]] = {}
    for label, expected in sizes.items():
        path = data_dir / folder / "test" / f"{label}.txt"
        lines[label] = [line for _, line in _lines(path)]
        if len(lines[label]) != expected:
            raise _bad(path, len(lines[label]), f"expected {expected} lines (the sets were drawn on them)")
    out = []
    for one in sets:
        labels = sorted(one)
        texts = tuple(lines[label][i] for label in labels for i in one[label])
        ids = tuple(n for n, label in enumerate(labels) for _ in one[label])
        out.append((texts, ids))
    return ClusteringData(tuple(out))


# ---- reranking, retrieval, summarization ----------------------------------------------------


def load_trecqa(data_dir: Path, split: str = "test") -> RerankingData:
    """CSV `qtext,label,atext`, CRLF; grouped by question text; duplicate candidates merged (max label)."""
    path = data_dir / "trecqa_wang" / f"{split}.csv"
    if not path.is_file():
        raise InputFileError(f"{path}: file not found; point --data-dir at the shared data folder")
    groups: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        for row in reader:
            if reader.line_num == 1:
                if row != ["qtext", "label", "atext"]:
                    raise _bad(path, 1, f"unexpected header {row}")
                continue
            if len(row) != 3 or row[1] not in {"0", "1"}:
                raise _bad(path, reader.line_num, "expected question, 0/1 label, candidate sentence")
            cands = groups.setdefault(row[0], {})
            cands[row[2]] = max(cands.get(row[2], 0), int(row[1]))
    return RerankingData(tuple(RerankingQuery(q, tuple(c), tuple(c.values())) for q, c in groups.items()))


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)


def parse_numpy_strings(value: str) -> list[str]:
    """Elements of a printed numpy string array `['a.'\\n 'b.']` (Python literal quoting)."""
    return [ast.literal_eval(token) for token in _QUOTED.findall(value)]


def _zip_csv(path: Path, member: str) -> Iterator[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise InputFileError(f"{path}: file not found; point --data-dir at the shared data folder")
    with zipfile.ZipFile(path) as archive, archive.open(member) as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        for row in reader:
            yield reader.line_num, row


def load_scifact(data_dir: Path, claims: str = "validation") -> RetrievalData:
    """BEIR SciFact test: claims_validation (300 claims) over corpus_train; qrels = cited_doc_ids.

    `claims="train"` reads claims_train.csv instead (809 claims over the same corpus): where a dev
    split comes from (benchmarks/long_docs_dev.py holds part of it out), never the test claims.
    """
    if claims not in ("validation", "train"):
        raise ValueError(f"SciFact claims are 'validation' (the test set) or 'train', got {claims!r}")
    member = f"claims_{claims}.csv"
    path = data_dir / "scifact" / "scifact.zip"
    corpus: dict[str, tuple[str, str]] = {}
    for n, row in _zip_csv(path, "corpus_train.csv"):
        if not row.get("doc_id") or row.get("abstract") is None:
            raise _bad(path, n, "corpus_train.csv: missing doc_id or abstract")
        try:
            sentences = parse_numpy_strings(row["abstract"])
        except (ValueError, SyntaxError) as exc:
            raise _bad(path, n, f"corpus_train.csv: unreadable abstract ({exc})") from None
        corpus[row["doc_id"]] = (row["title"], " ".join(sentences))
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for n, row in _zip_csv(path, member):
        qid = row.get("id")
        if not qid:
            raise _bad(path, n, f"{member}: missing claim id")
        queries[qid] = row["claim"]
        for doc in re.findall(r"\d+", row.get("cited_doc_ids") or ""):
            if doc not in corpus:
                raise _bad(path, n, f"{member}: cited document {doc} is not in the corpus")
            qrels.setdefault(qid, {})[doc] = 1
    return RetrievalData(corpus, queries, qrels)


def load_summeval_reference_free(data_dir: Path) -> SummarizationData:
    """JSON lines grouped by article; the article stands in for the (absent) reference summaries."""
    path = data_dir / "summeval" / "summeval.jsonl"
    groups: dict[str, tuple[str, list[str], list[float]]] = {}
    for n, line in _lines(path):
        try:
            row = json.loads(line)
            article, summary, score = row["article"], row["summary"], float(row["relevance"])
            key = row["article_id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise _bad(path, n, f"not a SummEval record with article/summary/relevance ({exc})") from None
        groups.setdefault(key, (article, [], []))
        groups[key][1].append(summary)
        groups[key][2].append(score)
    return SummarizationData(tuple(SummaryGroup((a,), tuple(s), tuple(r)) for a, s, r in groups.values()))


SOURCES: dict[str, tuple[Callable[[Path], TaskData], tuple[str, ...]]] = {
    "stsbenchmark": (load_stsbenchmark, ("stsbenchmark/sts-test.csv",)),
    "sick": (
        load_sick,
        ("sick/SICK_train.txt", "sick/SICK_trial.txt", "sick/SICK_test_annotated.txt"),
    ),
    **{
        key: (
            partial(load_semeval, year_key=key),
            tuple(f"semeval_sts/20{key[-2:]}/{g}.test.tsv" for g in genres),
        )
        for key, genres in SEMEVAL_FILES.items()
    },
    "twitter_pit2015": (load_twitter_pit2015, ("twitter_pit2015/test.data",)),
    "twitter_url_corpus": (
        load_twitter_url_corpus,
        ("twitter_url_corpus/Twitter_URL_Corpus_testNew.larger.txt",),
    ),
    "mrpc": (load_mrpc, ("mrpc/msr-para-test.tsv",)),
    "snli": (load_snli, ("snli/test.tsv",)),
    "banking77": (load_banking77, ("banking77/train.csv", "banking77/test.csv", "banking77/categories.json")),
    "ag_news_classification": (load_ag_news_classification, ("ag_news/test.txt",)),
    "sst2": (load_sst2, ("sst2/sentiment-dev", "sst2/sentiment-test")),
    "banking77_clustering": (load_banking77_clustering, ("banking77/test.csv", "banking77/categories.json")),
    "ag_news_clustering": (load_ag_news_clustering, ("ag_news/test.txt",)),
    "trecqa": (load_trecqa, ("trecqa_wang/test.csv",)),
    "scifact": (load_scifact, ("scifact/scifact.zip",)),
    "summeval_reference_free": (load_summeval_reference_free, ("summeval/summeval.jsonl",)),
    **PAPER_SOURCES,
    **{
        key: (partial(load_tweac_clustering, source=key), tweac_files(key))
        for key in ("reddit_clustering", "stackexchange_clustering")
    },
}


def _source(source: str) -> tuple[Callable[[Path], TaskData], tuple[str, ...]]:
    if source not in SOURCES:
        raise ValueError(f"no local parser called {source!r}; known: {', '.join(SOURCES)}")
    return SOURCES[source]


def load_local(source: str, data_dir: Path) -> TaskData:
    """Parse the raw files of `source` under `data_dir` (the shared data folder)."""
    return _source(source)[0](Path(data_dir))


def files_for(source: str, data_dir: Path) -> list[Path]:
    """The raw files `source` reads, for the data fingerprint."""
    return [Path(data_dir) / rel for rel in _source(source)[1]]
