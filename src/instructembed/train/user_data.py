"""Training data in the shapes people have: pairs, triplets, scored pairs, labelled texts (and MEDI).

    spec = DatasetSpec(Path("pairs.csv"), Shape.PAIRS, Fields(query="question", positive="passage"),
                       query_instruction="Represent the question for retrieval: ",
                       document_instruction="Represent the passage for retrieval: ")
    data = read_dataset(spec)        # every row validated first: errors name file:line and what to do

Each dataset becomes one *task* (its name, default the file's stem), so a batch never mixes two
datasets. Shapes and what they become:

- pairs (query, positive): a `MediExample` whose negative is another row's positive (an in-batch
  negative, never one of this query's positives) -- mine real ones with `data mine-negatives`;
- triplets (query, positive, negative or a list of negatives): the negative of each epoch is drawn
  from the list (seeded), so several mined negatives per query all get used over epochs;
- scored pairs (text1, text2, score): `ScoredExample`s, trained with the CoSENT loss (loss.py);
- labelled texts (text, label): pairs of same-label texts, each text paired with its nearest
  same-label neighbour and given a nearest other-label negative (`medi_pairs.pair_by_label`, the
  code `build-medi` uses).

Instructions come from `query_instruction` / `document_instruction` or from per-row fields
(`query_instruction_field` / `document_instruction_field`), a per-row value winning.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instructembed.errors import InputFileError
from instructembed.files import input_format, read_records
from instructembed.inputs import Item
from instructembed.train.config import Shape
from instructembed.train.data import MediExample, read_medi

log = logging.getLogger(__name__)


#: Default field names per shape (query, positive, negatives, score, label, text).
DEFAULT_FIELDS: dict[Shape, dict[str, Any]] = {
    Shape.PAIRS: {"query": "query", "positive": "positive"},
    Shape.TRIPLETS: {"query": "query", "positive": "positive", "negatives": ("negative",)},
    Shape.SCORED: {"query": "text1", "positive": "text2", "score": "score"},
    Shape.LABELLED: {"text": "text", "label": "label"},
}


@dataclass(frozen=True)
class Fields:
    """Which column holds what; None = the shape's default (`DEFAULT_FIELDS`)."""

    query: str | None = None
    positive: str | None = None
    negatives: tuple[str, ...] | None = None
    score: str | None = None
    label: str | None = None
    text: str | None = None
    query_instruction: str | None = None  # per-row instruction columns
    document_instruction: str | None = None

    def resolved(self, shape: Shape) -> Fields:
        defaults = DEFAULT_FIELDS.get(shape, {})
        return Fields(
            **{
                name: getattr(self, name) if getattr(self, name) is not None else defaults.get(name)
                for name in ("query", "positive", "negatives", "score", "label", "text")
            },
            query_instruction=self.query_instruction,
            document_instruction=self.document_instruction,
        )


@dataclass(frozen=True)
class DatasetSpec:
    path: Path
    shape: Shape = Shape.MEDI
    fields: Fields = field(default_factory=Fields)
    query_instruction: str = ""
    document_instruction: str = ""
    weight: float = 1.0  # share of batches relative to the dataset's size (2.0 = twice as many)
    name: str | None = None  # the task name; default the file's stem

    def __post_init__(self) -> None:
        if not (self.weight > 0 and math.isfinite(self.weight)):
            raise ValueError(f"{self.path}: weight must be a positive number, got {self.weight}")

    @property
    def task(self) -> str:
        return self.name or self.path.stem


@dataclass(frozen=True)
class TrainExample(MediExample):
    """A MEDI triple plus further negatives: epoch e trains on negatives[(seed, e, row) draw].

    `group`: rows of one group belong together (a labelled text's label) and are kept out of each
    other's batches by `--batch-sampler no-duplicates`; None = the row's query and positive texts."""

    negatives: tuple[Item, ...] = ()
    group: str | None = None

    def negative_for(self, epoch: int, seed: int, row: int) -> Item:
        if len(self.negatives) <= 1:
            return self.neg
        pick = np.random.default_rng([seed, epoch, row]).integers(len(self.negatives))
        return self.negatives[int(pick)]


@dataclass(frozen=True)
class ScoredExample:
    """(text1, text2, score) for graded similarity; higher score = more similar."""

    text1: Item
    text2: Item
    score: float
    task: str


@dataclass(frozen=True)
class Dataset:
    spec: DatasetSpec
    examples: tuple[MediExample, ...] | tuple[ScoredExample, ...]
    n_skipped: int = 0

    @property
    def scored(self) -> bool:
        return self.spec.shape is Shape.SCORED


class _Row:
    """One record and where it is, with typed accessors that raise `InputFileError` with file:line."""

    def __init__(self, where: str, record: dict[str, Any]) -> None:
        self.where, self.record = where, record

    def fail(self, message: str) -> InputFileError:
        return InputFileError(f"{self.where}: {message}")

    def text(self, name: str, flag: str) -> str:
        if name not in self.record:
            present = ", ".join(sorted(map(str, self.record))) or "none"
            raise self.fail(f"no field '{name}' (fields: {present}); name the right one with {flag}")
        value = self.record[name]
        if not isinstance(value, str):
            raise self.fail(f"field '{name}' is {type(value).__name__}, expected a string")
        if not value.strip():
            raise self.fail(f"field '{name}' is empty; drop the row or pass --skip-bad")
        return value

    def texts(self, names: Sequence[str], flag: str) -> list[str]:
        """Negatives: several columns, or one column holding a list (JSONL/parquet) of strings."""
        out: list[str] = []
        for name in names:
            value = self.record.get(name)
            if isinstance(value, list | tuple):
                if not value or not all(isinstance(v, str) and v.strip() for v in value):
                    raise self.fail(f"field '{name}' must be a non-empty list of non-empty strings")
                out.extend(value)
            else:
                out.append(self.text(name, flag))
        return out

    def instruction(self, name: str | None, default: str) -> str:
        if name is None:
            return default
        value = self.record.get(name)
        if value is None:
            raise self.fail(f"no instruction field '{name}'")
        if not isinstance(value, str):
            raise self.fail(f"instruction field '{name}' is {type(value).__name__}, expected a string")
        return value

    def number(self, name: str, flag: str) -> float:
        value = self.record.get(name)
        if value is None:
            raise self.fail(f"no score field '{name}'; name it with {flag}")
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise self.fail(f"score '{value}' in field '{name}' is not a number") from None
        if not math.isfinite(score):
            raise self.fail(f"score '{value}' in field '{name}' is not a finite number")
        return score

    def label(self, name: str, flag: str) -> str:
        if name not in self.record or self.record[name] is None or str(self.record[name]).strip() == "":
            raise self.fail(f"no label in field '{name}'; name it with {flag}")
        return str(self.record[name])


def _rows(spec: DatasetSpec, skip_bad: bool, parse: Callable[[_Row], Any]) -> tuple[list[Any], int]:
    if not spec.path.is_file():
        raise InputFileError(f"{spec.path}: training file not found")
    out, skipped = [], 0
    for where, record in read_records(spec.path, input_format(spec.path)):
        try:
            out.append(parse(_Row(where, record)))
        except InputFileError as exc:
            if not skip_bad:
                raise InputFileError(f"{exc}; fix the row, or pass --skip-bad to skip bad rows") from None
            skipped += 1
            log.debug("skipped: %s", exc)
    if skipped:
        log.warning("%s: skipped %d bad row(s)", spec.path, skipped)
    return out, skipped


def _contrastive(
    spec: DatasetSpec, f: Fields, skip_bad: bool
) -> tuple[list[tuple[Item, Item, list[Item]]], int]:
    negatives = f.negatives if spec.shape is Shape.TRIPLETS else None

    def parse(row: _Row) -> tuple[Item, Item, list[Item]]:
        q_instr = row.instruction(f.query_instruction, spec.query_instruction)
        d_instr = row.instruction(f.document_instruction, spec.document_instruction)
        query = Item(q_instr, row.text(f.query or "", "--query-field"))
        positive = Item(d_instr, row.text(f.positive or "", "--positive-field"))
        negs = [Item(d_instr, t) for t in row.texts(negatives, "--negative-field")] if negatives else []
        return query, positive, negs

    return _rows(spec, skip_bad, parse)


def read_pairs(spec: DatasetSpec, *, skip_bad: bool = False) -> list[tuple[str, str]]:
    """(query, positive) texts of a pairs file, validated (what `data mine-negatives` reads)."""
    rows, _ = _contrastive(
        DatasetSpec(spec.path, Shape.PAIRS, spec.fields), spec.fields.resolved(Shape.PAIRS), skip_bad
    )
    if not rows:
        raise InputFileError(f"{spec.path}: no pairs in the file")
    return [(q.text, p.text) for q, p, _ in rows]


def read_pairs_file(
    path: str | Path, *, query_field: str = "query", positive_field: str = "positive"
) -> list[tuple[str, str]]:
    """(query, positive) texts of a JSONL / CSV / TSV / parquet file, validated."""
    return read_pairs(
        DatasetSpec(Path(path), Shape.PAIRS, Fields(query=query_field, positive=positive_field))
    )


def _in_batch_negatives(
    rows: Sequence[tuple[Item, Item, list[Item]]], seed: int, where: Path
) -> list[tuple[Item, Item, list[Item]]]:
    """Pairs without negatives: each row's negative is another row's positive, never one of its own
    query's positives (a query with several positives appears in several rows)."""
    own: dict[str, set[str]] = {}
    for query, positive, _ in rows:
        own.setdefault(query.text, set()).add(positive.text)
    positives = [p for _, p, _ in rows]
    if len({p.text for p in positives}) < 2:
        raise InputFileError(f"{where}: pairs need at least two different positives to draw negatives from")
    rng = random.Random(seed)
    out = []
    for query, positive, _ in rows:
        for _ in range(100):
            candidate = positives[rng.randrange(len(positives))]
            if candidate.text not in own[query.text]:
                break
        else:
            raise InputFileError(f"{where}: query {query.text[:60]!r} is paired with nearly every passage")
        out.append((query, positive, [candidate]))
    return out


def labelled_rows(spec: DatasetSpec, skip_bad: bool = False) -> tuple[list[tuple[str, str, str]], int]:
    """(text, label, instruction) rows of a labelled file, validated, and the number skipped."""
    f = spec.fields.resolved(Shape.LABELLED)

    def parse(row: _Row) -> tuple[str, str, str]:
        return (
            row.text(f.text or "", "--text-field"),
            row.label(f.label or "", "--label-field"),
            row.instruction(f.query_instruction, spec.query_instruction),
        )

    rows, skipped = _rows(spec, skip_bad, parse)
    if len({label for _, label, _ in rows}) < 2:
        raise InputFileError(f"{spec.path}: labelled texts need at least two labels (a negative has another)")
    return rows, skipped


def batch_keys(example: MediExample | ScoredExample) -> tuple[str, ...]:
    """What two rows of a no-duplicates batch may not share: the group (label) of a labelled row, else
    the query and positive texts (a query with several positives, a passage several queries cite).
    Scored pairs have none: CoSENT has no negatives that a duplicate could make false."""
    if isinstance(example, ScoredExample):
        return ()
    if isinstance(example, TrainExample) and example.group is not None:
        return (example.group,)
    return (example.query.text, example.pos.text)


def _labelled(
    spec: DatasetSpec, skip_bad: bool, seed: int, embed: Any
) -> tuple[list[tuple[Item, Item, list[Item], str | None]], int]:
    from instructembed.train.medi_pairs import pair_by_label

    rows, skipped = labelled_rows(spec, skip_bad)
    if embed is None:
        raise ValueError("labelled texts need a model to pair texts by nearest neighbour")
    n = len(rows)
    triples = pair_by_label([(t, lab) for t, lab, _ in rows], embed, random.Random(seed), anchors=n, pool=n)
    # the anchor keeps its row's instruction; both sides of a label pair are the same kind of text
    by_text = {t: instr for t, _, instr in rows}
    label = dict((t, lab) for t, lab, _ in rows)  # as pair_by_label: a text with two labels keeps one
    doc = spec.document_instruction or spec.query_instruction
    return [
        (Item(by_text.get(q, spec.query_instruction), q), Item(doc, p), [Item(doc, n)], label[q])
        for q, p, n in triples
    ], skipped


def read_dataset(
    spec: DatasetSpec,
    *,
    skip_bad: bool = False,
    no_instructions: bool = False,
    seed: int = 42,
    embed: Any = None,
) -> Dataset:
    """Read and validate one dataset file. `embed` (texts -> (N, D) unit vectors) pairs labelled texts."""
    if spec.shape is Shape.MEDI:
        medi = read_medi(spec.path, skip_bad=skip_bad, no_instructions=no_instructions)
        return Dataset(spec, medi.examples, medi.n_skipped)
    f = spec.fields.resolved(spec.shape)
    if spec.shape is Shape.SCORED:

        def parse(row: _Row) -> ScoredExample:
            q_instr = row.instruction(f.query_instruction, spec.query_instruction)
            d_instr = row.instruction(f.document_instruction, spec.document_instruction or q_instr)
            return ScoredExample(
                Item(q_instr, row.text(f.query or "", "--query-field")),
                Item(d_instr, row.text(f.positive or "", "--positive-field")),
                row.number(f.score or "", "--score-field"),
                spec.task,
            )

        scored, skipped = _rows(spec, skip_bad, parse)
        if len({s.score for s in scored}) < 2:
            raise InputFileError(f"{spec.path}: scored pairs need at least two different scores")
        if no_instructions:
            scored = [
                ScoredExample(Item("", s.text1.text), Item("", s.text2.text), s.score, s.task) for s in scored
            ]
        return Dataset(spec, tuple(scored), skipped)
    rows: list[tuple[Item, Item, list[Item], str | None]]
    if spec.shape is Shape.LABELLED:
        rows, skipped = _labelled(spec, skip_bad, seed, embed)
    else:
        triples, skipped = _contrastive(spec, f, skip_bad)
        if spec.shape is Shape.PAIRS:
            log.info(
                "%s: pairs without negatives; each row's negative is another row's positive "
                "(mine hard ones with `instructembed data mine-negatives`)",
                spec.path,
            )
            triples = _in_batch_negatives(triples, seed, spec.path)
        rows = [(q, p, negs, None) for q, p, negs in triples]
    if not rows:
        raise InputFileError(f"{spec.path}: no training examples in the file")

    def bare(item: Item) -> Item:
        return Item("", item.text) if no_instructions else item

    examples = tuple(
        TrainExample(bare(q), bare(p), bare(negs[0]), spec.task, tuple(bare(n) for n in negs), group)
        for q, p, negs, group in rows
    )
    return Dataset(spec, examples, skipped)


def iter_tasks(datasets: Sequence[Dataset]) -> Iterator[str]:
    for d in datasets:
        yield d.spec.task
