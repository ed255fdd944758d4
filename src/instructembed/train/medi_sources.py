"""Readers for the corpora added to `../shared/data` for a wider training mixture.

Each reader parses the raw files exactly as published (zips kept as nltk_data ships them) and returns
plain Python structures; the task builders in `medi_tasks.py` turn them into training triples. The
parsing pitfalls each reader handles are the ones listed in the corpus's `SOURCE.md`.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from instructembed.errors import InputFileError

csv.field_size_limit(1 << 24)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_PTB_TAG = re.compile(r"/([A-Z]+\$?|[.,:#$`'()]+|-[LR]RB-)(?=\s|$)")


def _zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise InputFileError(f"{path}: not found; is --data-dir the shared data folder (see its README)?")
    return zipfile.ZipFile(path)


def _member_text(archive: zipfile.ZipFile, name: str, encoding: str = "utf-8") -> str:
    return archive.read(name).decode(encoding, errors="replace")


def _clean(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())


# ---- long documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """A document with a short lead (headline, first sentence, title) and the rest as its body."""

    lead: str
    body: str
    group: str  # sub-collection (e.g. rural / science, pos / neg): negatives come from the same one


def read_abc(data_dir: Path) -> list[Story]:
    """ABC news stories: first line -> rest. rural.txt is UTF-8, science.txt latin-1 with CRLF."""
    archive = _zip(data_dir / "nltk_abc" / "abc.zip")
    out: list[Story] = []
    for member, encoding in (("abc/rural.txt", "utf-8"), ("abc/science.txt", "latin-1")):
        text = _member_text(archive, member, encoding).replace("\r\n", "\n")
        text = text.replace("\u00c2\u0085", "...").replace("\u00c2", "")  # rural.txt's mojibake
        for block in re.split(r"\n\s*\n", text):
            lines = [_clean(line) for line in block.split("\n") if line.strip()]
            # a first line of <= 3 words is a sub-heading of a continued story, not a headline
            if len(lines) < 2 or len(lines[0].split()) <= 3:
                continue
            body = " ".join(lines[1:])
            if len(body.split()) >= 40:
                out.append(Story(lines[0], body, member.split("/")[1].split(".")[0]))
    return out


def read_movie_reviews(data_dir: Path) -> list[Story]:
    """Movie reviews (lower-cased, one sentence a line): first sentence -> the rest of the review."""
    archive = _zip(data_dir / "nltk_movie_reviews" / "movie_reviews.zip")
    out: list[Story] = []
    for name in sorted(archive.namelist()):
        if not name.endswith(".txt"):
            continue
        lines = [_clean(line) for line in _member_text(archive, name).split("\n") if line.strip()]
        if len(lines) >= 4 and len(lines[0].split()) >= 6:
            out.append(Story(lines[0], " ".join(lines[1:]), name.split("/")[1]))
    return out


def read_product_review_titles(data_dir: Path) -> list[Story]:
    """Customer reviews: `[t]title` -> the review's sentences (features stripped)."""
    archive = _zip(data_dir / "nltk_product_reviews_1" / "product_reviews_1.zip")
    out: list[Story] = []
    for name in sorted(archive.namelist()):
        if not name.endswith(".txt") or name.endswith("README.txt"):
            continue
        reviews: list[tuple[str, list[str]]] = []
        for line in _member_text(archive, name, "latin-1").split("\n"):
            if line.startswith("[t]"):
                reviews.append((_clean(line[3:]), []))
            elif "##" in line and reviews:
                sentence = _clean(line.split("##", 1)[1])
                if sentence:
                    reviews[-1][1].append(sentence)
        out += [
            Story(title, " ".join(sentences), name)
            for title, sentences in reviews
            if len(title.split()) >= 2 and len(sentences) >= 2
        ]
    return out


# ---- question / statement -> evidence ------------------------------------------------------------


@dataclass(frozen=True)
class Hypothesis:
    question: str  # question id: hypotheses of one question are each other's hard negatives
    text: str
    correct: bool
    evidence: tuple[str, ...]


def read_ai2_8grade(data_dir: Path) -> list[Hypothesis]:
    """AI2 8th-grade science: hypothesis (question + option) with its retrieved evidence sentences.

    Reads the Wikipedia-evidence train/dev/test files and the CK-12 dev file (never `v0-dev.csv`, which
    is their union). The corpus is not an evaluation task here, so every split may train.
    """
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    correct: dict[tuple[str, str], bool] = {}
    for name in ("enwv0-train.csv", "enwv0-dev.csv", "enwv0-test.csv", "ck12v0-dev.csv"):
        path = data_dir / "ai2_8grade" / name
        if not path.is_file():
            raise InputFileError(f"{path}: not found; is --data-dir the shared data folder?")
        with path.open(encoding="utf-8", newline="") as handle:
            for n, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    key = (f"{name}:{row['qid']}", _clean(row["htext"]).rstrip(" ?"))
                    groups[key].append(_clean(row["mtext"]))
                    correct[key] = row["label"] == "1"
                except KeyError as exc:
                    raise InputFileError(f"{path}:{n}: missing column {exc}") from None
    return [
        Hypothesis(qid, text, correct[(qid, text)], tuple(dict.fromkeys(ev)))
        for (qid, text), ev in groups.items()
    ]


def read_argus(data_dir: Path) -> dict[str, list[str]]:
    """Argus yes/no questions -> their retrieved news snippets (val and test; repeats dropped)."""
    out: dict[str, list[str]] = defaultdict(list)
    for name in ("argus_val.csv", "argus_test.csv"):
        path = data_dir / "argus" / name
        if not path.is_file():
            raise InputFileError(f"{path}: not found; is --data-dir the shared data folder?")
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                question, snippet = _clean(row["htext"]), _clean(row["mtext"])
                if snippet and snippet not in out[question]:
                    out[question].append(snippet)
    return dict(out)


@dataclass(frozen=True)
class McStory:
    story: str
    correct: tuple[str, ...]  # the right statement of each question
    wrong: tuple[str, ...]


@dataclass(frozen=True)
class _McItem:
    question: str  # as the file has it ("one: What ...")
    options: tuple[str, ...]  # the four option statements, cleaned
    right: int  # index of the right option


@dataclass(frozen=True)
class _McRow:
    """One MCTest row: the story and its four questions (both readers parse the files here)."""

    story: str
    items: tuple[_McItem, ...]


def _mctest_rows(data_dir: Path) -> Iterator[_McRow]:
    """MCTest mc160 + mc500 (never mc660, their concatenation), all splits, row by row."""
    for part in ("mc160", "mc500"):
        for split in ("train", "dev", "test"):
            tsv = data_dir / "mctest" / f"{part}.{split}.statements.tsv"
            ans = data_dir / "mctest" / f"{part}.{split}.ans"
            for path in (tsv, ans):
                if not path.is_file():
                    raise InputFileError(f"{path}: not found; is --data-dir the shared data folder?")
            rows = tsv.read_text(encoding="utf-8", errors="replace").split("\n")
            answers = ans.read_text(encoding="utf-8").split("\n")
            for n, (line, letters) in enumerate(zip(rows, answers, strict=False), start=1):
                if not line.strip():
                    continue
                fields, keys = line.rstrip("\r").split("\t"), letters.rstrip("\r").split("\t")
                if len(fields) != 23 or len(keys) != 4:
                    raise InputFileError(f"{tsv}:{n}: expected 23 tab-separated fields and 4 answers")
                yield _McRow(
                    story=_clean(fields[2].replace("\\newline", " ").replace("\\tab", " ")),
                    items=tuple(
                        _McItem(
                            fields[3 + 5 * q],
                            tuple(_clean(o) for o in fields[4 + 5 * q : 8 + 5 * q]),
                            "ABCD".index(keys[q]),
                        )
                        for q in range(4)
                    ),
                )


def read_mctest(data_dir: Path) -> list[McStory]:
    """MCTest mc160 + mc500, all splits: statements -> story."""
    out: list[McStory] = []
    for row in _mctest_rows(data_dir):
        right = tuple(q.options[q.right] for q in row.items)
        wrong = tuple(o for q in row.items for i, o in enumerate(q.options) if i != q.right)
        out.append(McStory(row.story, right, wrong))
    return out


@dataclass(frozen=True)
class EntailmentPair:
    text: str
    hypothesis: str
    entailed: bool


def read_rte(data_dir: Path) -> list[EntailmentPair]:
    """RTE-1/2/3 dev and test pairs (labels `value=TRUE` in RTE-1, `entailment=YES` in RTE-2/3)."""
    archive = _zip(data_dir / "nltk_rte" / "rte.zip")
    out: list[EntailmentPair] = []
    for name in sorted(n for n in archive.namelist() if n.endswith(".xml")):
        raw = archive.read(name)
        # the DOCTYPEs name DTDs that are not shipped; ElementTree never fetches them
        root = ET.fromstring(re.sub(rb"<!DOCTYPE[^>]*>", b"", raw))
        for pair in root.iter("pair"):
            label = (pair.get("value") or pair.get("entailment") or "").upper()
            t, h = pair.findtext("t"), pair.findtext("h")
            if t and h and label in {"TRUE", "YES", "FALSE", "NO"}:
                out.append(EntailmentPair(_clean(t), _clean(h), label in {"TRUE", "YES"}))
    return out


# ---- labelled short texts (classification turned into pairs) --------------------------------------


def read_qc(data_dir: Path) -> list[tuple[str, str]]:
    """TREC question classification train set: (question, fine label). train.txt has one latin-1 byte."""
    archive = _zip(data_dir / "nltk_qc" / "qc.zip")
    out = []
    for line in _member_text(archive, "qc/train.txt", "latin-1").split("\n"):
        label, _, question = line.strip().partition(" ")
        if question:
            out.append((_clean(question), label))
    return out


def read_subjectivity(data_dir: Path) -> list[tuple[str, str]]:
    archive = _zip(data_dir / "nltk_subjectivity" / "subjectivity.zip")
    out = []
    for member, label in (
        ("subjectivity/quote.tok.gt9.5000", "subjective"),
        ("subjectivity/plot.tok.gt9.5000", "objective"),
    ):
        out += [(_clean(line), label) for line in _member_text(archive, member).split("\n") if line.strip()]
    return out


def read_pros_cons(data_dir: Path) -> list[tuple[str, str]]:
    archive = _zip(data_dir / "nltk_pros_cons" / "pros_cons.zip")
    out = []
    for member, tag in (("pros_cons/IntegratedPros.txt", "Pros"), ("pros_cons/IntegratedCons.txt", "Cons")):
        for item in re.findall(rf"<{tag}>(.*?)</{tag}>", _member_text(archive, member, "latin-1")):
            text = _clean(item)
            if len(text.split()) >= 3 and text.lower() not in {"none", "n/a", "nothing"}:
                out.append((text, tag.lower()))
    return out


def read_nps_chat(data_dir: Path) -> list[tuple[str, str]]:
    """Chat posts with their dialogue act; `System` posts (server events) are not dialogue."""
    archive = _zip(data_dir / "nltk_nps_chat" / "nps_chat.zip")
    out = []
    for name in sorted(n for n in archive.namelist() if n.endswith("posts.xml")):
        root = ET.fromstring(archive.read(name))
        for post in root.iter("Post"):
            act, text = post.get("class") or "", _clean(post.text or "")
            if act and act != "System" and len(text.split()) >= 2:
                out.append((text, act))
    return out


def read_problem_reports(data_dir: Path) -> list[tuple[str, str]]:
    """Bug-report titles labelled by project; Penn Treebank tags stripped from token ends."""
    archive = _zip(data_dir / "nltk_problem_reports" / "problem_reports.zip")
    out = []
    for project in ("apache", "eclipse", "firefox", "linux", "openoffice"):
        for line in _member_text(archive, f"problem_reports/{project}", "latin-1").split("\n"):
            text = _clean(_PTB_TAG.sub("", line))
            if len(text.split()) >= 4:
                out.append((text, project))
    return out


def iter_lines(text: str) -> Iterator[str]:
    """Sentence-ish pieces of a long document, for the held-out containment check."""
    for piece in re.split(r"(?<=[.!?])\s+", text):
        if len(piece) >= 20:
            yield piece


# ---- texts that carry several label sets (the wider mixture's same-texts tasks) ------------------


@dataclass(frozen=True)
class ProductSentence:
    """An opinion-tagged review sentence: which product, the sign of its opinions, its first aspect."""

    text: str
    product: str
    polarity: str  # "positive" / "negative" (sentences whose opinions cancel out are dropped)
    aspect: str  # the first tagged feature, lower-cased


_FEATURE = re.compile(r"([^,\[\]]+)\[([+-]\d)\]")


def read_product_sentences(data_dir: Path) -> list[ProductSentence]:
    """Opinion-tagged sentences of both product-review corpora (`feature[+2],other[-1]##sentence`)."""
    out: list[ProductSentence] = []
    for folder in ("product_reviews_1", "product_reviews_2"):
        archive = _zip(data_dir / f"nltk_{folder}" / f"{folder}.zip")
        for name in sorted(archive.namelist()):
            if not name.endswith(".txt") or name.endswith("README.txt"):
                continue
            product = name.rsplit("/", 1)[-1][: -len(".txt")].replace("_", " ")
            for line in _member_text(archive, name, "latin-1").split("\n"):
                tags, sep, sentence = line.partition("##")
                features = _FEATURE.findall(tags) if sep else []
                text = _clean(sentence)
                total = sum(int(sign) for _, sign in features)
                malformed = "##" in text or _FEATURE.search(
                    text
                )  # two sentences run together in the raw file
                if features and total and len(text.split()) >= 4 and not malformed:
                    aspect = features[0][0].strip().lower()
                    out.append(
                        ProductSentence(text, product, "positive" if total > 0 else "negative", aspect)
                    )
    return out


@dataclass(frozen=True)
class ChatPost:
    text: str
    act: str
    session: str  # the file: one chat room on one day
    age_group: str  # the room's age group (teens, 20s, 30s, 40s, adults)


def read_chat_posts(data_dir: Path) -> list[ChatPost]:
    """NPS chat posts (System posts dropped) with their dialogue act, session and the room's age group."""
    archive = _zip(data_dir / "nltk_nps_chat" / "nps_chat.zip")
    out = []
    for name in sorted(n for n in archive.namelist() if n.endswith("posts.xml")):
        session = name.rsplit("/", 1)[-1].split("_")[0]  # 10-19-20s
        root = ET.fromstring(archive.read(name))
        for post in root.iter("Post"):
            act, text = post.get("class") or "", _clean(post.text or "")
            if act and act != "System" and len(text.split()) >= 2:
                out.append(ChatPost(text, act, session, session.split("-")[-1]))
    return out


def read_sentence_polarity(data_dir: Path) -> list[tuple[str, str]]:
    """Rotten Tomatoes snippets (Pang & Lee sentence polarity): (snippet, positive / negative)."""
    archive = _zip(data_dir / "nltk_sentence_polarity" / "sentence_polarity.zip")
    out = []
    for member, label in (("rt-polarity.pos", "positive"), ("rt-polarity.neg", "negative")):
        text = _member_text(archive, f"sentence_polarity/{member}", "latin-1")
        out += [(_clean(line), label) for line in text.split("\n") if len(line.split()) >= 4]
    return out


def read_comparative_types(data_dir: Path) -> list[tuple[str, str]]:
    """Comparative sentences of exactly one type (1 non-equal gradable, 2 equative, 3 superlative,
    4 non-gradable); tolerant of the unbalanced tags the SOURCE.md lists."""
    archive = _zip(data_dir / "nltk_comparative_sentences" / "comparative_sentences.zip")
    lines = _member_text(archive, "comparative_sentences/labeledSentences.txt", "latin-1").split("\n")
    out = []
    for i, line in enumerate(lines[:-1]):
        types = re.findall(r"<cs-(\d)>", line)
        if len(set(types)) != 1 or re.sub(r"<cs-\d>", "", line).strip():
            continue  # several types, or text on the tag line
        sentence = _clean(lines[i + 1])
        if (
            sentence
            and not sentence.startswith(("</cs", "1_", "2_", "3_", "<cs"))
            and len(sentence.split()) >= 4
        ):
            out.append((sentence, types[0]))
    return out


@dataclass(frozen=True)
class McQuestion:
    question: str
    right: str  # the statement of the right option
    wrong: tuple[str, ...]


def read_mctest_questions(data_dir: Path) -> list[McQuestion]:
    """MCTest mc160 + mc500 questions ('one: What ...' prefix dropped) with their option statements."""
    out: list[McQuestion] = []
    for row in _mctest_rows(data_dir):
        for q in row.items:
            question, right = _clean(q.question.split(":", 1)[-1]), q.options[q.right]
            wrong = tuple(o for i, o in enumerate(q.options) if i != q.right and o != right)
            if question and wrong:
                out.append(McQuestion(question, right, wrong))
    return out
