"""The wider mixture's tasks (issue 27): the first mixture's 20 and 22 more, most over texts that
another task also uses under a different instruction.

A model that ignores the instruction cannot fit these: the same product-review sentence has one right
neighbour "by product", another "by opinion polarity" and another "by feature"; the same chat post
one by dialogue act, one by session, one by the room's age group; the same SNLI caption one
entailed, one contradicting and one neutral statement. Tasks that share texts carry the same `texts`
name (`TaskDef.texts`). The triples are built in `medi_wide_pairs.py`.
"""

from __future__ import annotations

from dataclasses import replace

from instructembed.train.medi_tasks import TASKS, Instructions, TaskDef


def _sym(*texts: str) -> tuple[Instructions, ...]:
    return tuple(Instructions(t, t) for t in texts)


def _asym(*pairs: tuple[str, str]) -> tuple[Instructions, ...]:
    return tuple(Instructions(q, d) for q, d in pairs)


def _label(name: str, texts: str, source: str, *wordings: str, long: bool = False) -> TaskDef:
    return TaskDef(name, True, True, long, _sym(*wordings), source, texts)


def _pair(name: str, texts: str, source: str, *wordings: tuple[str, str], long: bool = False) -> TaskDef:
    return TaskDef(name, False, False, long, _asym(*wordings), source, texts)


#: first-mixture tasks whose texts the added tasks reuse
_SHARED = {
    "snli": "snli-captions",
    "trecqa": "trecqa",
    "rte": "rte",
    "ai2-science-evidence": "ai2",
    "argus-news": "argus",
    "abc-news-story": "abc-stories",
    "movie-review": "movie-reviews",
    "mctest-story": "mctest",
    "product-review": "product-reviews",
    "question-type": "trec-questions",
    "subjectivity": "rt-snippets",
    "chat-dialogue-act": "chat-posts",
}

ADDED: tuple[TaskDef, ...] = (
    # ---- the same texts, labelled several ways (classification turned into pairs)
    _label(
        "product-sentence-product",
        "product-sentences",
        "Customer review sentences (both corpora) by product",
        "Represent the product review sentence for retrieving sentences about the same product: ",
        "Represent the customer review sentence for finding sentences reviewing the same item: ",
        "Represent this sentence from a product review to retrieve sentences on the same product: ",
    ),
    _label(
        "product-sentence-polarity",
        "product-sentences",
        "Customer review sentences by the sign of their opinion tags",
        "Represent the product review sentence for retrieving sentences with the same opinion polarity: ",
        "Represent the customer review sentence for finding sentences equally positive or negative: ",
        "Represent this product review sentence to retrieve sentences of the same sentiment: ",
    ),
    _label(
        "product-sentence-aspect",
        "product-sentences",
        "Customer review sentences by their first tagged feature (features with 10+ sentences)",
        "Represent the product review sentence for retrieving sentences about the same feature: ",
        "Represent the customer review sentence for finding sentences on the same product aspect: ",
        "Represent this review sentence to retrieve sentences discussing the same attribute: ",
    ),
    _label(
        "chat-session",
        "chat-posts",
        "NPS chat posts by session (15 chat-room sessions)",
        "Represent the chat message for retrieving messages from the same chat session: ",
        "Represent the chat post for finding posts of the same conversation: ",
        "Represent this online chat line to retrieve lines from the same chat-room session: ",
    ),
    _label(
        "chat-age-group",
        "chat-posts",
        "NPS chat posts by the chat room's age group",
        "Represent the chat message for retrieving messages from a room of the same age group: ",
        "Represent the chat post for finding posts written in the same age group's chat room: ",
        "Represent this chat line to retrieve lines by chatters of the same age group: ",
    ),
    _label(
        "abc-section",
        "abc-stories",
        "ABC story first lines by section (rural / science)",
        "Represent the news headline for retrieving headlines from the same news section: ",
        "Represent the news lead for finding leads of the same section, rural or science: ",
        "Represent this news headline to retrieve headlines of the same section: ",
    ),
    _label(
        "question-coarse-type",
        "trec-questions",
        "TREC question classification train (6 coarse types)",
        "Represent the question for retrieving questions with the same broad answer type: ",
        "Represent the factoid question for finding questions of the same coarse category: ",
        "Represent this question to retrieve questions asking for the same general kind of thing: ",
    ),
    _label(
        "movie-review-sentiment",
        "movie-reviews",
        "Movie reviews (the body after the first sentence) by sentiment",
        "Represent the movie review for retrieving reviews with the same sentiment: ",
        "Represent the film review for finding reviews that are equally positive or negative: ",
        "Represent this movie review to retrieve reviews of the same polarity: ",
        long=True,
    ),
    _label(
        "sentence-polarity",
        "rt-snippets",
        "Rotten Tomatoes snippets (Pang & Lee) by sentiment",
        "Represent the movie review snippet for retrieving snippets with the same sentiment: ",
        "Represent the film critic's snippet for finding snippets of the same polarity: ",
        "Represent this review snippet to retrieve snippets that are equally positive or negative: ",
    ),
    _label(
        "comparative-type",
        "",
        "Comparative sentences of one type (non-equal, equative, superlative, non-gradable)",
        "Represent the comparative sentence for retrieving sentences that compare in the same way: ",
        "Represent the sentence for finding sentences of the same comparison type: ",
        "Represent this comparison to retrieve comparisons of the same kind: ",
    ),
    # ---- the same captions, another relation
    _pair(
        "snli-contradiction",
        "snli-captions",
        "SNLI validation: contradiction / entailment of the same caption",
        (
            "Represent the image caption for retrieving sentences that contradict it: ",
            "Represent the statement about an image for retrieval: ",
        ),
        (
            "Represent the caption for finding statements that cannot be true of it: ",
            "Represent the statement for retrieval: ",
        ),
        (
            "Represent this photo description to retrieve what it rules out: ",
            "Represent the sentence about a scene for retrieval: ",
        ),
    ),
    _pair(
        "snli-neutral",
        "snli-captions",
        "SNLI validation: neutral / entailment of the same caption",
        (
            "Represent the image caption for retrieving sentences that may be true but do not follow from it: ",
            "Represent the statement about an image for retrieval: ",
        ),
        (
            "Represent the caption for finding statements it neither implies nor contradicts: ",
            "Represent the statement for retrieval: ",
        ),
        (
            "Represent this photo description to retrieve plausible details it does not state: ",
            "Represent the sentence about a scene for retrieval: ",
        ),
    ),
    _pair(
        "mctest-question-answer",
        "mctest",
        "MCTest questions: right option's statement / the nearest wrong one",
        (
            "Represent the question about a children's story for retrieving the statement that answers it: ",
            "Represent the statement about a story for retrieval: ",
        ),
        (
            "Represent the reading comprehension question for finding its correct answer: ",
            "Represent the answer statement for retrieval: ",
        ),
        (
            "Represent this story question to retrieve the right answer: ",
            "Represent the statement for retrieval: ",
        ),
    ),
    # ---- the same pairs, the other direction
    _pair(
        "rte-hypothesis-to-text",
        "rte",
        "RTE-1/2/3: entailed hypothesis -> its text / the nearest other text",
        (
            "Represent the claim for retrieving news passages that entail it: ",
            "Represent the news passage for retrieval: ",
        ),
        (
            "Represent the hypothesis for finding texts that support it: ",
            "Represent the news text for retrieval: ",
        ),
        (
            "Represent this statement to retrieve the passage it follows from: ",
            "Represent the passage for retrieval: ",
        ),
    ),
    _pair(
        "ai2-evidence-to-statement",
        "ai2",
        "AI2 8th-grade: evidence -> the correct hypothesis / the nearest wrong option",
        (
            "Represent the encyclopedia sentence for retrieving the science statement it supports: ",
            "Represent the science statement for retrieval: ",
        ),
        (
            "Represent the evidence sentence for finding the science exam hypothesis it backs: ",
            "Represent the science exam hypothesis for retrieval: ",
        ),
        (
            "Represent this Wikipedia sentence to retrieve the science claim it is evidence for: ",
            "Represent the science claim for retrieval: ",
        ),
    ),
    _pair(
        "argus-snippet-to-question",
        "argus",
        "Argus val+test: snippet -> its question / the nearest other question",
        (
            "Represent the news snippet for retrieving the yes/no question it bears on: ",
            "Represent the forecasting question for retrieval: ",
        ),
        (
            "Represent the news text for finding the question about current events it informs: ",
            "Represent the question about current events for retrieval: ",
        ),
        (
            "Represent this news headline or snippet to retrieve the question it is evidence for: ",
            "Represent the yes/no question for retrieval: ",
        ),
    ),
    _pair(
        "trecqa-answer-to-question",
        "trecqa",
        "TrecQA train: right answer sentence -> its question / the nearest other question",
        (
            "Represent the news sentence for retrieving the question it answers: ",
            "Represent the factoid question for retrieval: ",
        ),
        (
            "Represent the newswire sentence for finding the trivia question it answers: ",
            "Represent the question for retrieval: ",
        ),
        (
            "Represent this news text to retrieve the question whose answer it holds: ",
            "Represent the trivia question for retrieval: ",
        ),
    ),
    _pair(
        "abc-story-to-headline",
        "abc-stories",
        "ABC rural + science: story -> its first line / the nearest other first line",
        (
            "Represent the news article for retrieving its headline: ",
            "Represent the news headline for retrieval: ",
        ),
        (
            "Represent the news story for finding the headline it belongs to: ",
            "Represent the headline for retrieval: ",
        ),
        (
            "Represent this news report to retrieve its lead line: ",
            "Represent the news lead for retrieval: ",
        ),
        long=True,
    ),
    _pair(
        "abc-sentence-to-story",
        "abc-stories",
        "ABC rural + science: a sentence from a story's body -> the story / the nearest other story",
        (
            "Represent the sentence from a news story for retrieving the story it comes from: ",
            "Represent the news article for retrieval: ",
        ),
        (
            "Represent the news sentence for finding the article that contains it: ",
            "Represent the news story for retrieval: ",
        ),
        (
            "Represent this line of a news report to retrieve the full report: ",
            "Represent the news report for retrieval: ",
        ),
        long=True,
    ),
    _pair(
        "movie-sentence-to-review",
        "movie-reviews",
        "Movie reviews: a sentence from a review's body -> the review / the nearest other review",
        (
            "Represent the sentence from a movie review for retrieving the review it comes from: ",
            "Represent the movie review for retrieval: ",
        ),
        (
            "Represent the film review sentence for finding the review that contains it: ",
            "Represent the film review for retrieval: ",
        ),
        (
            "Represent this line of a movie review to retrieve the whole review: ",
            "Represent the review of a movie for retrieval: ",
        ),
        long=True,
    ),
    _pair(
        "mctest-story-to-statement",
        "mctest",
        "MCTest: story -> a correct statement / the nearest wrong statement of that story",
        (
            "Represent the children's story for retrieving statements that are true of it: ",
            "Represent the statement about a story for retrieval: ",
        ),
        (
            "Represent the short story for finding facts about it: ",
            "Represent the fact about a story for retrieval: ",
        ),
        (
            "Represent this fiction story to retrieve statements it supports: ",
            "Represent the statement for retrieval: ",
        ),
        long=True,
    ),
    _pair(
        "product-review-to-title",
        "product-reviews",
        "Customer reviews: review -> its title / the nearest other title",
        (
            "Represent the product review for retrieving its title: ",
            "Represent the review title for retrieval: ",
        ),
        (
            "Represent the customer review for finding the headline its author gave it: ",
            "Represent the title of a customer review for retrieval: ",
        ),
        (
            "Represent this electronics review to retrieve its title: ",
            "Represent the review headline for retrieval: ",
        ),
        long=True,
    ),
)

WIDE_TASKS: tuple[TaskDef, ...] = (
    *(replace(t, texts=_SHARED.get(t.name, "")) for t in TASKS),
    *ADDED,
)
WIDE_BY_NAME = {t.name: t for t in WIDE_TASKS}


def same_texts_groups(tasks: tuple[TaskDef, ...] = WIDE_TASKS) -> dict[str, list[str]]:
    """`texts` name -> the tasks over those texts (only names shared by two tasks or more)."""
    groups: dict[str, list[str]] = {}
    for task in tasks:
        if task.texts:
            groups.setdefault(task.texts, []).append(task.name)
    return {name: members for name, members in groups.items() if len(members) > 1}
