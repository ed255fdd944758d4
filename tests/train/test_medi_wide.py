"""The wider mixture (issue 27): nearest-neighbour mining against a naive loop, the readers of the
multi-label corpora, the wider held-out texts, and the build's guarantees (42 tasks, same-texts groups,
dev texts kept out of every task over the same texts, wider held-out set kept out)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from instructembed.train import medi_sources as src
from instructembed.train.medi_held_out import file_texts
from instructembed.train.medi_wide_pairs import cached, nearest_indices


def test_nearest_indices_matches_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    queries, pool = rng.normal(size=(300, 6)), rng.normal(size=(40, 6))
    excluded = [set(rng.choice(40, size=int(rng.integers(0, 5)), replace=False).tolist()) for _ in range(300)]
    excluded[7] = set(range(40))  # nothing left for this one
    got = nearest_indices(queries, pool, excluded, block=64)
    for q in range(300):
        allowed = [j for j in range(40) if j not in excluded[q]]
        want = max(allowed, key=lambda j: float(queries[q] @ pool[j])) if allowed else None
        assert got[q] == want
    assert queries.shape == (300, 6) and not np.isinf(queries).any()  # inputs untouched


def test_cached_embed_embeds_each_text_once() -> None:
    calls: list[list[str]] = []

    def embed(texts):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts])

    fn = cached(embed)
    first = fn(["a", "bb", "a"])
    second = fn(["bb", "ccc"])
    assert calls == [["a", "bb"], ["ccc"]]
    assert first.tolist() == [[1, 1], [2, 1], [1, 1]] and second.tolist() == [[2, 1], [3, 1]]


def test_file_texts_reads_json_jsonl_and_json_lines_named_json(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"x": ["one", {"y": "two"}], "n": 3}), encoding="utf-8")
    (tmp_path / "b.json").write_text('{"r": "three"}\n{"r": "four"}\n', encoding="utf-8")
    (tmp_path / "c.tsv").write_text("five\tsix\n", encoding="utf-8")
    assert sorted(file_texts(tmp_path / "a.json")) == ["one", "two"]
    assert sorted(file_texts(tmp_path / "b.json")) == ["four", "three"]
    assert set(file_texts(tmp_path / "c.tsv")) == {"five\tsix", "five", "six"}


def test_readers_of_the_multi_label_corpora(shared_data: Path) -> None:
    product = src.read_product_sentences(shared_data)
    assert len({p.product for p in product}) == 14 and {p.polarity for p in product} == {
        "positive",
        "negative",
    }
    assert not any("##" in p.text or "[+" in p.text for p in product)
    chat = src.read_chat_posts(shared_data)
    assert len({c.session for c in chat}) == 15 and {c.age_group for c in chat} >= {"teens", "20s", "adults"}
    assert [(c.text, c.act) for c in chat] == src.read_nps_chat(shared_data)  # the same texts as the act task
    comparative = src.read_comparative_types(shared_data)
    assert set(Counter(y for _, y in comparative)) == {"1", "2", "3", "4"} and len(comparative) > 500
    assert not any(t.startswith(("<cs", "</cs", "1_")) for t, _ in comparative)
    questions = src.read_mctest_questions(shared_data)
    assert len(questions) == 660 * 4 - sum(1 for q in questions if not q.wrong)
    assert all(q.right not in q.wrong and not q.question.startswith(("one:", "multiple:")) for q in questions)
    polarity = src.read_sentence_polarity(shared_data)
    assert Counter(y for _, y in polarity).keys() == {"positive", "negative"}


def _fake_embed(texts):  # type: ignore[no-untyped-def]
    """A fast deterministic stand-in for the base model (the build's structure, not its quality)."""
    out = np.stack(
        [
            np.frombuffer(hashlib.sha256(t.encode()).digest(), dtype=np.uint8)[:16].astype(np.float64)
            for t in texts
        ]
    )
    out -= 127.5
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def wide(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from instructembed.train.medi_build import build_medi

    out = tmp_path_factory.mktemp("wide") / "medi.jsonl"
    report = build_medi(
        shared_data, out, seed=5, max_per_task=96, dev_per_task=8, embed=_fake_embed, mixture="wide"
    )
    return out, report


def test_wide_build_has_the_tasks_and_groups_it_promises(wide) -> None:  # type: ignore[no-untyped-def]
    from instructembed.train.data import read_medi
    from instructembed.train.medi_wide_tasks import WIDE_BY_NAME

    out, report = wide
    saved = report.to_json()
    assert saved["mixture"] == "wide" and saved["held_out"] == "wide"
    assert saved["non_empty_tasks"] >= 40 and saved["same_texts_tasks"] >= 6
    assert set(saved["dropped_tasks"]) <= {"stsb-forum"}  # all of STS-B forum is in STS12-16
    counts = Counter(e.task for e in read_medi(out).examples)
    assert len(counts) == saved["non_empty_tasks"]
    examples = read_medi(out).examples
    for e in examples:
        task = WIDE_BY_NAME[e.task]
        assert (e.query.instruction == e.pos.instruction) == task.symmetric
        assert e.query.instruction in {w.query for w in task.instructions}
    # one text, several instructions: a product sentence appears under product, polarity and aspect
    by_text: dict[str, set[str]] = {}
    for e in examples:
        by_text.setdefault(e.query.text, set()).add(e.query.instruction)
    assert max(len(v) for v in by_text.values()) >= 3


def test_wide_build_keeps_the_wider_held_out_set_and_group_dev_texts_out(shared_data: Path, wide) -> None:  # type: ignore[no-untyped-def]
    from instructembed.train.data import read_medi
    from instructembed.train.medi_build import held_out_texts, normalize, sibling
    from instructembed.train.medi_wide_tasks import WIDE_BY_NAME

    out, _ = wide
    held = held_out_texts(shared_data, "wide")
    reddit = (shared_data / "reddit_clustering_tweac" / "test").glob("*.txt")
    assert normalize(next(iter(reddit)).read_text(encoding="utf-8").splitlines()[0]) in held
    train = read_medi(out).examples
    for e in train:
        for item in (e.query, e.pos, e.neg):
            keys = {normalize(item.text), *(normalize(p) for p in src.iter_lines(item.text))}
            assert not keys & held
    group = {name: task.texts or name for name, task in WIDE_BY_NAME.items()}
    trained = {(group[e.task], item.text) for e in train for item in (e.query, e.pos, e.neg)}
    for e in read_medi(sibling(out, "dev")).examples:
        assert (group[e.task], e.query.text) not in trained and (group[e.task], e.pos.text) not in trained


def test_unknown_mixture_is_a_clear_error(shared_data: Path, tmp_path: Path) -> None:
    from instructembed.train.medi_build import build_medi

    with pytest.raises(ValueError, match="'v1' or 'wide'"):
        build_medi(shared_data, tmp_path / "m.jsonl", mixture="v2")
    assert not (tmp_path / "m.jsonl").exists()


def test_the_first_mixture_still_builds_byte_for_byte(shared_data: Path, tmp_path: Path) -> None:
    """mixture='v1', held_out='v1' is issue 11's build: these digests were taken with the code before
    the wider mixture existed (commit b73003b), the same arguments and the same fake embedder."""
    from instructembed.train.medi_build import build_medi

    out = tmp_path / "medi.jsonl"
    build_medi(
        shared_data,
        out,
        seed=7,
        max_per_task=160,
        dev_per_task=8,
        embed=_fake_embed,
        mixture="v1",
        held_out="v1",
    )
    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(tmp_path.glob("medi*.jsonl"))
    }
    assert digests == {
        "medi.asym.jsonl": "cd30832a350fd262",
        "medi.dev.jsonl": "bfe0a925598c78e5",
        "medi.jsonl": "cb2ba27fa0b661a2",
        "medi.sym.jsonl": "012294df6b4ea8dc",
    }


def _digest(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def test_the_mctest_readers_read_what_they_read_before(shared_data: Path) -> None:
    """Digests taken before the two MCTest readers shared one row reader (the stories task of the
    first mixture, the questions tasks of the wider one)."""
    assert _digest(src.read_mctest(shared_data)) == "14ae416657cb43f6"
    assert _digest(src.read_mctest_questions(shared_data)) == "3c0c230020ed766d"


def test_the_wide_mixture_builds_as_before(wide) -> None:  # type: ignore[no-untyped-def]
    """Digests of the wide fixture's files, taken before the MCTest readers shared one row reader."""
    out, _ = wide
    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(out.parent.glob("medi*.jsonl"))
    }
    assert digests == {
        "medi.asym.jsonl": "d5f937990335164c",
        "medi.dev.jsonl": "c41edc9c3d253afb",
        "medi.jsonl": "49b9ea8a5bd3cad8",
        "medi.sym.jsonl": "12f70ae0ec648e2c",
    }
