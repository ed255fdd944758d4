"""Build the MEDI-style training mixture from `../shared/data`: tasks, decontamination, caps, variants.

    build_medi(data_dir, out)  ->  out              the mixture (train)
                                   out.dev.jsonl    a held-back dev slice per task (never trained on)
                                   out.sym.jsonl    its symmetric tasks only        } the paper's ablation,
                                   out.asym.jsonl   its asymmetric tasks only       } the same size
                                   out.report.json  what was kept, dropped and why

Tasks and their instructions are in `medi_tasks.py`, the triples in `medi_pairs.py`. What the build
guarantees:

- **Held out**: nothing from a held-out *test* set enters (SICK-R, STS12-16, TwitterSemEval2015,
  TwitterURLCorpus, SummEval, AG News, SciFact). A triple is dropped when any of its texts -- or, for a
  long document, any sentence of it -- equals a held-out test text after normalisation (lower case,
  letters and digits only, as `../shared/data/README.md` checks overlaps). The dev sets used to choose
  the recipe (STS-B dev, TrecQA dev) are kept out the same way, so dev scores are not trained on.
- **Label-defined tasks** (classification as pairs) take the base model's nearest same-label text as
  the positive and nearest other-label text as the hard negative, and together make at most
  `label_share` of the batches.
- **Instructions** are drawn per example from each task's paraphrases (robustness to wording); the dev
  slice uses each task's first wording.
- **Deterministic** for a seed (and a machine: nearest neighbours come from float arithmetic).
"""

from __future__ import annotations

import json
import logging
import random
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from instructembed.errors import InputFileError
from instructembed.train import medi_pairs as pairs
from instructembed.train import medi_sources as src
from instructembed.train import medi_wide_pairs, medi_wide_tasks
from instructembed.train.medi_tasks import TASKS, HeldOut, Instructions, Mixture, TaskDef

log = logging.getLogger(__name__)

__all__ = [
    "HELD_OUT",
    "BuildReport",
    "HeldOut",
    "Instructions",
    "Mixture",
    "build_medi",
    "held_out_texts",
    "normalize",
]

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
DEV_SETS = ("STS-B dev", "TrecQA dev")


_KEY = re.compile(r"[a-z0-9]+")


def normalize(text: str) -> str:
    """The key used to match training texts against held-out test texts: lower case, letters and digits."""
    return " ".join(_KEY.findall(text.lower()))


@dataclass
class TaskStats:
    kept: int = 0
    dev: int = 0
    dropped_held_out: int = 0
    dropped_dev: int = 0
    capped: int = 0
    symmetric: bool = True
    label_defined: bool = False
    long_documents: bool = False
    mean_document_words: float = 0.0
    source: str = ""
    texts: str = ""  # the same-texts group (wider mixture), "" when the task's texts are its own

    @property
    def dropped_overlap(self) -> int:  # the earlier report's name
        return self.dropped_held_out + self.dropped_dev


@dataclass
class BuildReport:
    tasks: dict[str, TaskStats] = field(default_factory=dict)
    held_out_texts: int = 0
    dev_texts: int = 0
    variants: dict[str, int] = field(default_factory=dict)  # file -> examples
    label_cap: int = 0
    seed: int = 42
    mixture: str = "v1"
    held_out: str = "v1"

    @property
    def kept(self) -> int:
        return sum(s.kept for s in self.tasks.values())

    @property
    def dropped(self) -> int:
        return sum(s.dropped_overlap for s in self.tasks.values())

    def asymmetric_share(self) -> float:
        return sum(s.kept for s in self.tasks.values() if not s.symmetric) / max(self.kept, 1)

    def label_batch_share(self, batch_size: int) -> float:
        batches = {n: s.kept // batch_size for n, s in self.tasks.items()}
        label = sum(b for n, b in batches.items() if self.tasks[n].label_defined)
        return label / max(sum(batches.values()), 1)

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["kept"], out["dropped"] = self.kept, self.dropped
        out["asymmetric_share"] = round(self.asymmetric_share(), 4)
        out["label_batch_share_at_32"] = round(self.label_batch_share(32), 4)
        out["non_empty_tasks"] = sum(1 for s in self.tasks.values() if s.kept)
        groups: dict[str, list[str]] = {}
        for name, stats in self.tasks.items():
            if stats.texts and stats.kept:
                groups.setdefault(stats.texts, []).append(name)
        shared = {g: names for g, names in groups.items() if len(names) > 1}
        out["same_texts_groups"] = shared
        out["same_texts_tasks"] = sum(len(names) for names in shared.values())
        out["dropped_tasks"] = {
            name: "no example left after decontamination and the dev hold-back"
            for name, stats in self.tasks.items()
            if not stats.kept
        }
        return out


# ---- what must not be trained on -----------------------------------------------------------------


def held_out_texts(data_dir: Path, held_out: HeldOut | str = "v1") -> set[str]:
    """Normalized texts of every held-out test set: the first 11 tasks' (read with the evaluation's
    own parsers), and with `held_out="wide"` every text of the wider set's folders too
    (`medi_held_out.py`), with the sentences of long ones."""
    from instructembed.eval import loaders

    if HeldOut(held_out) is HeldOut.WIDE:
        from instructembed.train.medi_held_out import file_texts, wider_held_out_files

        wide = [t for path in wider_held_out_files(data_dir) for t in file_texts(path)]
        keys = {normalize(t) for t in wide} | {normalize(p) for t in wide for p in src.iter_lines(t)}
        return (held_out_texts(data_dir, "v1") | keys) - {""}

    texts: list[str] = []
    sick = loaders.load_sick(data_dir)
    texts += [*sick.sentences1, *sick.sentences2]
    for year in ("sts12", "sts13", "sts14", "sts15", "sts16"):
        sts = loaders.load_semeval(data_dir, year)
        texts += [*sts.sentences1, *sts.sentences2]
    for pair_data in (loaders.load_twitter_pit2015(data_dir), loaders.load_twitter_url_corpus(data_dir)):
        texts += [*pair_data.sentences1, *pair_data.sentences2]
    for group in loaders.load_summeval_reference_free(data_dir).groups:
        texts += [*group.references, *group.summaries]
        texts += [p for ref in group.references for p in src.iter_lines(ref)]  # article sentences
    ag = loaders.load_ag_news_classification(data_dir)
    texts += [*ag.train_texts, *ag.test_texts]
    scifact = loaders.load_scifact(data_dir)
    texts += list(scifact.queries.values())
    for title, body in scifact.corpus.values():
        texts += [title, body, *src.iter_lines(body)]
    return {k for k in (normalize(t) for t in texts) if k}


def dev_texts(data_dir: Path) -> set[str]:
    """Normalized texts of the dev sets the recipe is chosen on (STS-B dev, TrecQA dev)."""
    from instructembed.eval import loaders

    sts = loaders.load_stsbenchmark(data_dir, "dev")
    texts = [*sts.sentences1, *sts.sentences2]
    for q in loaders.load_trecqa(data_dir, "dev").queries:
        texts += [q.query, *q.candidates]
    return {k for k in (normalize(t) for t in texts) if k}


def _keys(text: str, long_document: bool) -> Iterable[str]:
    yield normalize(text)
    if long_document:
        yield from (normalize(p) for p in src.iter_lines(text))


# ---- the tasks -------------------------------------------------------------------------------------


def _pair_tasks(data_dir: Path, seed: int, clean: Callable[[str], bool]) -> dict[str, list[pairs.Triple]]:
    def rng(task: str) -> random.Random:
        return random.Random(f"{seed}:{task}")  # str seeds are hashed deterministically (sha512)

    out: dict[str, list[pairs.Triple]] = {}
    out.update(pairs.build_stsb(data_dir, rng("stsb"), clean))
    out["mrpc"] = pairs.build_mrpc(data_dir, rng("mrpc"), clean)
    out["snli"] = pairs.build_snli(data_dir, rng("snli"))
    out["trecqa"] = pairs.build_trecqa(data_dir, rng("trecqa"))
    out["rte"] = pairs.build_rte(src.read_rte(data_dir), rng("rte"), pairs.lexical_finder(rng("rte:n")))
    out["ai2-science-evidence"] = pairs.build_ai2(src.read_ai2_8grade(data_dir), rng("ai2"))
    out["argus-news"] = pairs.build_argus(
        src.read_argus(data_dir), rng("argus"), pairs.lexical_finder(rng("argus:n"))
    )
    stories = {
        "abc-news-story": src.read_abc(data_dir),
        "movie-review": src.read_movie_reviews(data_dir),
        "product-review": src.read_product_review_titles(data_dir),
    }
    for name, items in stories.items():
        out[name] = pairs.build_story_task(items, rng(name), pairs.lexical_finder(rng(name + ":n")))
    out["mctest-story"] = pairs.build_mctest(
        src.read_mctest(data_dir), rng("mctest"), pairs.lexical_finder(rng("mctest:n"))
    )
    return out


def _label_rows(data_dir: Path) -> dict[str, pairs.Labelled]:
    return {
        "banking77": pairs.banking77_rows(data_dir),
        "sst2": pairs.sst2_rows(data_dir),
        **pairs.labelled_sources(data_dir),
    }


def default_embed(model: str) -> pairs.EmbedFn:
    """The base model without instructions (how it was trained), unit vectors."""
    from instructembed.embedder import Embedder

    embedder = Embedder.load(model)

    def embed(texts: Sequence[str]) -> np.ndarray:
        vectors = embedder.embed(list(texts))
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    return embed


def _label_cap(sizes: dict[str, int], label: set[str], cap: int, share: float, batch: int) -> int:
    """The largest per-task cap (a multiple of `batch`, <= `cap`) keeping label tasks' batches <= share."""
    other = sum(min(n, cap) // batch for t, n in sizes.items() if t not in label)
    best = 0
    for c in range(batch, cap + 1, batch):
        lab = sum(min(sizes[t], c) // batch for t in label)
        if lab <= share * (lab + other):
            best = c
    return best


# ---- writing ---------------------------------------------------------------------------------------


def _record(task: TaskDef, triple: pairs.Triple, wording: Instructions) -> str:
    q, p, n = triple
    return json.dumps(
        {
            "query": [wording.query, q],
            "pos": [wording.document, p],
            "neg": [wording.document, n],
            "task_name": task.name,
        },
        ensure_ascii=False,
    )


def _write(path: Path, lines: Sequence[str]) -> None:
    """Atomically: a temporary file renamed over `path` (a failed build never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as handle:
        tmp = Path(handle.name)
        try:
            handle.writelines(line + "\n" for line in lines)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(path)


def sibling(out: Path, kind: str) -> Path:
    """`medi.jsonl` -> `medi.<kind>.jsonl` (dev, sym, asym) or `medi.report.json`."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    suffix = ".json" if kind == "report" else ".jsonl"
    return out.with_name(f"{stem}.{kind}{suffix}")


def build_medi(
    data_dir: Path,
    out: Path,
    *,
    seed: int = 42,
    max_per_task: int = 3000,
    dev_per_task: int = 32,
    label_share: float = 0.25,
    batch_size: int = 32,
    label_pool: int = 3000,
    embed: pairs.EmbedFn | None = None,
    model: str = "all-MiniLM-L6-v2",
    mixture: Mixture | str = Mixture.V1,
    held_out: HeldOut | str = HeldOut.WIDE,
) -> BuildReport:
    """Write the mixture, its dev slice and its symmetric / asymmetric halves; return the report.

    `mixture="v1"` with `held_out="v1"` rebuilds the first study's mixture byte for byte;
    `mixture="wide"` adds the 22 tasks of `medi_wide_tasks.py`; `held_out="wide"` (the default)
    decontaminates against the wider held-out set too, and checks every sentence of every text
    (not only of long documents: "U.S. Military Academy at West Point" is a held-out sentence).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputFileError(f"{data_dir}: data directory not found; pass --data-dir pointing at shared/data")
    if not 0 < label_share <= 1:
        raise ValueError(f"label_share must be in (0, 1], got {label_share}")
    try:
        mix, held_kind = Mixture(mixture), HeldOut(held_out)
    except ValueError as exc:
        raise ValueError(f"{exc}: mixture and held_out are 'v1' or 'wide'") from None
    tasks = TASKS if mix is Mixture.V1 else medi_wide_tasks.WIDE_TASKS
    held, dev = held_out_texts(data_dir, held_kind), dev_texts(data_dir)
    report = BuildReport(
        held_out_texts=len(held), dev_texts=len(dev), seed=seed, mixture=mix.value, held_out=held_kind.value
    )

    def clean(text: str) -> bool:
        key = normalize(text)
        return key not in held and key not in dev

    triples = _pair_tasks(data_dir, seed, clean)
    embed_fn = embed or default_embed(model)
    label_rows = _label_rows(data_dir)
    if mix is Mixture.WIDE:
        embed_fn = medi_wide_pairs.cached(embed_fn)  # shared texts embedded once
        triples.update(medi_wide_pairs.wide_pair_tasks(data_dir, seed, embed_fn))
        label_rows.update(medi_wide_pairs.wide_label_rows(data_dir))
    by_name = {t.name: t for t in tasks}
    for name, rows in label_rows.items():
        anchors = max_per_task + dev_per_task
        pool = min(label_pool, max(4 * anchors, 64))
        kept_rows = [(t, y) for t, y in rows if clean(t)]
        sample = by_name[name].texts or name  # tasks over the same texts draw the same sample
        triples[name] = pairs.pair_by_label(
            kept_rows, embed_fn, random.Random(f"{seed}:{sample}"), anchors=anchors, pool=pool
        )

    # decontaminate, hold back the dev slice
    strict = held_kind is HeldOut.WIDE
    kept_by: dict[str, list[pairs.Triple]] = {}
    dev_seen: dict[str, set[str]] = {}  # texts group -> dev queries and positives of its tasks
    dev_lines: list[str] = []
    for task in tasks:
        stats = report.tasks.setdefault(
            task.name,
            TaskStats(
                symmetric=task.symmetric,
                label_defined=task.label_defined,
                long_documents=task.long_documents,
                source=task.source,
                texts=task.texts,
            ),
        )
        kept = []
        for triple in triples.get(task.name, []):
            keys = [
                k for i, t in enumerate(triple) for k in _keys(t, strict or (task.long_documents and i > 0))
            ]
            if any(k in held for k in keys):
                stats.dropped_held_out += 1
            elif any(k in dev for k in keys):
                stats.dropped_dev += 1
            else:
                kept.append(triple)
        kept = sorted(set(kept))  # exact repeats once; a canonical order before the seeded shuffle
        random.Random(f"{seed}:{task.name}:order").shuffle(kept)
        held_back = _dev_slice(kept, dev_per_task if len(kept) >= 4 * dev_per_task else 0)
        dev_lines += [_record(task, t, task.instructions[0]) for t in held_back]
        stats.dev = len(held_back)
        dev_seen.setdefault(task.texts or task.name, set()).update(text for t in held_back for text in t[:2])
        kept_by[task.name] = kept
    train: dict[str, list[pairs.Triple]] = {}
    for task in tasks:  # a dev text is never trained on by its task, nor by a task over the same texts
        kept, seen = kept_by[task.name], dev_seen[task.texts or task.name]
        train[task.name] = [t for t in kept if not seen.intersection(t)]
        stats = report.tasks[task.name]
        stats.dropped_dev += len(kept) - stats.dev - len(train[task.name])

    # caps: every task at most max_per_task; label-defined tasks together at most label_share of batches
    label = {t.name for t in tasks if t.label_defined}
    sizes = {name: len(rows) for name, rows in train.items()}
    report.label_cap = _label_cap(sizes, label, max_per_task, label_share, batch_size)
    lines: dict[str, list[str]] = {}
    for task in tasks:
        chosen = train[task.name]
        cap = report.label_cap if task.name in label else max_per_task
        stats = report.tasks[task.name]
        stats.capped = max(0, len(chosen) - cap)
        chosen = chosen[:cap]
        stats.kept = len(chosen)
        if task.long_documents and chosen:
            stats.mean_document_words = round(float(np.mean([len(p.split()) for _, p, _ in chosen])), 1)
        pick = random.Random(f"{seed}:{task.name}:wording")
        lines[task.name] = [
            _record(task, t, task.instructions[pick.randrange(len(task.instructions))]) for t in chosen
        ]

    everything = [line for task in tasks for line in lines[task.name]]
    sym = [line for task in tasks if task.symmetric for line in lines[task.name]]
    asym_by_task = {t.name: lines[t.name] for t in tasks if not t.symmetric}
    asym = _same_size(asym_by_task, len(sym), random.Random(f"{seed}:asym"))
    for kind, records in (("mixture", everything), ("dev", dev_lines), ("sym", sym), ("asym", asym)):
        path = out if kind == "mixture" else sibling(out, kind)
        _write(path, records)
        report.variants[path.name] = len(records)
    _write(sibling(out, "report"), [json.dumps(report.to_json(), indent=2)])
    for name, stats in report.tasks.items():
        log.info(
            "%-22s %6d kept, %4d dev, %5d dropped (held-out), %4d dropped (dev)",
            name,
            stats.kept,
            stats.dev,
            stats.dropped_held_out,
            stats.dropped_dev,
        )
    return report


def _dev_slice(triples: Sequence[pairs.Triple], n: int) -> list[pairs.Triple]:
    """`n` triples with distinct queries and positives. The caller then drops every training triple
    that holds a dev query or positive in any role: a question with several answers, a story with
    four statements or a text that is many anchors' nearest neighbour must not sit on both sides."""
    out: list[pairs.Triple] = []
    used: set[str] = set()
    for triple in triples:
        if len(out) == n:
            break
        if triple[0] not in used and triple[1] not in used:
            out.append(triple)
            used.update(triple[:2])
    return out


def _same_size(by_task: dict[str, list[str]], size: int, rng: random.Random) -> list[str]:
    """`size` lines sampled proportionally from each task (each task's own order kept)."""
    total = sum(len(v) for v in by_task.values())
    if total <= size:
        return [line for rows in by_task.values() for line in rows]
    out: list[str] = []
    for rows in by_task.values():
        take = round(len(rows) * size / total)
        out += rows[:take]
    rng.shuffle(out)
    return out[:size]
