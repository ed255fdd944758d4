"""The tasks of the MEDI-style mixture: what each one pairs, and its instructions (with paraphrases).

Every task is a `TaskDef`: a name, whether it is symmetric (query and document are the same kind of
text and get the same instruction) or asymmetric (different instructions on the two sides), whether
it is label-defined (a classification set turned into pairs), and three paraphrased instruction pairs
in INSTRUCTOR's "Represent the (domain) (text type) for (objective): " template, one of which is drawn
per example (robustness to wording). The builders of the (query, positive, negative) triples are in
`medi_pairs.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Mixture(str, Enum):
    """Which task list: the first mixture (issue 11, 20 tasks) or the wider one (issue 27, 42 tasks)."""

    V1 = "v1"
    WIDE = "wide"


class HeldOut(str, Enum):
    """What is decontaminated against: the 11 first held-out tasks, or the wider held-out set."""

    V1 = "v1"
    WIDE = "wide"


@dataclass(frozen=True)
class Instructions:
    query: str
    document: str


@dataclass(frozen=True)
class TaskDef:
    name: str
    symmetric: bool
    label_defined: bool
    long_documents: bool
    instructions: tuple[Instructions, ...]  # paraphrases; the first is the canonical wording
    source: str
    #: tasks sharing a `texts` name pair the same texts under different instructions (the wider
    #: mixture's same-texts tasks): their dev texts are kept out of each other's training rows
    texts: str = ""


def _sym(*texts: str) -> tuple[Instructions, ...]:
    return tuple(Instructions(t, t) for t in texts)


def _asym(*pairs: tuple[str, str]) -> tuple[Instructions, ...]:
    return tuple(Instructions(q, d) for q, d in pairs)


def _stsb(name: str) -> tuple[Instructions, ...]:
    return _sym(
        f"Represent the {name} sentence for retrieving semantically similar sentences: ",
        f"Represent the {name} sentence for finding sentences with the same meaning: ",
        f"Represent this {name} sentence to retrieve sentences that say the same: ",
    )


TASKS: tuple[TaskDef, ...] = (
    # ---- symmetric pairs
    TaskDef("stsb-image-caption", True, False, False, _stsb("image caption"), "STS-B train, score >= 4"),
    TaskDef("stsb-news", True, False, False, _stsb("news"), "STS-B train, score >= 4"),
    TaskDef("stsb-forum", True, False, False, _stsb("forum"), "STS-B train, score >= 4"),
    TaskDef(
        "mrpc",
        True,
        False,
        False,
        _sym(
            "Represent the news sentence for retrieving its paraphrases: ",
            "Represent the news sentence for retrieving duplicate sentences: ",
            "Represent this sentence from the news to find sentences that paraphrase it: ",
        ),
        "MRPC train paraphrases",
    ),
    # ---- asymmetric: short query -> sentence
    TaskDef(
        "snli",
        False,
        False,
        False,
        _asym(
            (
                "Represent the image caption for retrieving sentences it entails: ",
                "Represent the statement about an image for retrieval: ",
            ),
            (
                "Represent the caption for finding statements that follow from it: ",
                "Represent the statement for retrieval: ",
            ),
            (
                "Represent this photo description to retrieve what it implies: ",
                "Represent the sentence about a scene for retrieval: ",
            ),
        ),
        "SNLI validation: entailment / contradiction",
    ),
    TaskDef(
        "trecqa",
        False,
        False,
        False,
        _asym(
            (
                "Represent the factoid question for retrieving news sentences that answer it: ",
                "Represent the news sentence for retrieval: ",
            ),
            (
                "Represent the question for retrieving sentences that answer it: ",
                "Represent the newswire sentence for retrieval: ",
            ),
            (
                "Represent the trivia question to find the sentence holding its answer: ",
                "Represent the news text for retrieval: ",
            ),
        ),
        "TrecQA train: right / wrong answer",
    ),
    TaskDef(
        "rte",
        False,
        False,
        False,
        _asym(
            (
                "Represent the news text for retrieving statements it entails: ",
                "Represent the statement for retrieval: ",
            ),
            (
                "Represent the news passage for finding claims that follow from it: ",
                "Represent the claim for retrieval: ",
            ),
            (
                "Represent this text to retrieve hypotheses it supports: ",
                "Represent the hypothesis for retrieval: ",
            ),
        ),
        "RTE-1/2/3 dev+test: entailed hypothesis / a non-entailed one",
    ),
    TaskDef(
        "ai2-science-evidence",
        False,
        False,
        False,
        _asym(
            (
                "Represent the science statement for retrieving evidence that supports it: ",
                "Represent the Wikipedia sentence for retrieval: ",
            ),
            (
                "Represent the science exam hypothesis for finding supporting evidence: ",
                "Represent the encyclopedia sentence for retrieval: ",
            ),
            (
                "Represent this science claim to retrieve evidence about it: ",
                "Represent the evidence sentence for retrieval: ",
            ),
        ),
        "AI2 8th-grade: correct hypothesis -> evidence / evidence of a wrong option",
    ),
    TaskDef(
        "argus-news",
        False,
        False,
        False,
        _asym(
            (
                "Represent the yes/no question for retrieving news that bears on it: ",
                "Represent the news snippet for retrieval: ",
            ),
            (
                "Represent the question about current events for finding relevant news: ",
                "Represent the news headline or snippet for retrieval: ",
            ),
            (
                "Represent this forecasting question to retrieve news about it: ",
                "Represent the news text for retrieval: ",
            ),
        ),
        "Argus val+test: question -> retrieved snippet / a snippet of another question",
    ),
    # ---- asymmetric: short query -> long document
    TaskDef(
        "abc-news-story",
        False,
        False,
        True,
        _asym(
            (
                "Represent the news headline for retrieving the article: ",
                "Represent the news article for retrieval: ",
            ),
            (
                "Represent the headline for finding the news story it belongs to: ",
                "Represent the news story for retrieval: ",
            ),
            (
                "Represent this news lead to retrieve the full report: ",
                "Represent the news report for retrieval: ",
            ),
        ),
        "ABC rural + science: first line -> the rest of the story",
    ),
    TaskDef(
        "movie-review",
        False,
        False,
        True,
        _asym(
            (
                "Represent the opening sentence of a movie review for retrieving the review: ",
                "Represent the movie review for retrieval: ",
            ),
            (
                "Represent the first line of a film review for finding the full review: ",
                "Represent the film review for retrieval: ",
            ),
            (
                "Represent this review opening to retrieve the movie review it starts: ",
                "Represent the review of a movie for retrieval: ",
            ),
        ),
        "Movie reviews: first sentence -> the rest of the review",
    ),
    TaskDef(
        "mctest-story",
        False,
        False,
        True,
        _asym(
            (
                "Represent the statement for retrieving the story it is true of: ",
                "Represent the children's story for retrieval: ",
            ),
            (
                "Represent the fact about a story for finding the story: ",
                "Represent the short story for retrieval: ",
            ),
            (
                "Represent this statement to retrieve the fiction story that supports it: ",
                "Represent the story for retrieval: ",
            ),
        ),
        "MCTest mc160+mc500: correct statement -> story / the most similar other story",
    ),
    TaskDef(
        "product-review",
        False,
        False,
        True,
        _asym(
            (
                "Represent the review title for retrieving the product review: ",
                "Represent the product review for retrieval: ",
            ),
            (
                "Represent the title of a customer review for finding the review: ",
                "Represent the customer review for retrieval: ",
            ),
            (
                "Represent this review headline to retrieve the full review: ",
                "Represent the electronics review for retrieval: ",
            ),
        ),
        "Customer reviews: title -> review",
    ),
    # ---- label-defined (classification turned into pairs)
    TaskDef(
        "banking77",
        True,
        True,
        False,
        _sym(
            "Represent the bank customer query for retrieving queries with the same intent: ",
            "Represent the banking question for finding questions with the same purpose: ",
            "Represent this customer message to a bank to retrieve messages with the same intent: ",
        ),
        "Banking77 train",
    ),
    TaskDef(
        "sst2",
        True,
        True,
        False,
        _sym(
            "Represent the movie review phrase for retrieving phrases with the same sentiment: ",
            "Represent the review phrase for finding phrases with the same opinion: ",
            "Represent this phrase from a film review to retrieve phrases of the same polarity: ",
        ),
        "SST-2 train phrases of 8+ words",
    ),
    TaskDef(
        "question-type",
        True,
        True,
        False,
        _sym(
            "Represent the question for retrieving questions that ask for the same type of answer: ",
            "Represent the factoid question for finding questions of the same type: ",
            "Represent this question to retrieve questions expecting the same kind of answer: ",
        ),
        "TREC question classification train (50 fine types)",
    ),
    TaskDef(
        "subjectivity",
        True,
        True,
        False,
        _sym(
            "Represent the movie sentence for retrieving sentences equally subjective or objective: ",
            "Represent the film sentence for finding sentences of the same subjectivity: ",
            "Represent this sentence about a movie to retrieve opinions or plot facts alike: ",
        ),
        "Subjectivity: review snippets vs plot sentences",
    ),
    TaskDef(
        "pros-cons",
        True,
        True,
        False,
        _sym(
            "Represent the product comment for retrieving comments that are also pros or also cons: ",
            "Represent the review remark for finding remarks of the same polarity: ",
            "Represent this product pro or con to retrieve comments on the same side: ",
        ),
        "Pros and cons",
    ),
    TaskDef(
        "chat-dialogue-act",
        True,
        True,
        False,
        _sym(
            "Represent the chat message for retrieving messages with the same dialogue act: ",
            "Represent the chat post for finding posts that do the same in a conversation: ",
            "Represent this online chat line to retrieve lines of the same dialogue act: ",
        ),
        "NPS chat posts (System posts dropped)",
    ),
    TaskDef(
        "bug-report-project",
        True,
        True,
        False,
        _sym(
            "Represent the bug report title for retrieving reports about the same software: ",
            "Represent the software issue title for finding issues of the same project: ",
            "Represent this problem report to retrieve reports filed against the same product: ",
        ),
        "Problem-report titles by project",
    ),
)

BY_NAME = {t.name: t for t in TASKS}
"""The first mixture's tasks (issue 11); the wider mixture (`medi_wide.py`) adds to them."""
