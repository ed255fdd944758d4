"""The MEDI-style mixture: readers of the added corpora, nearest-neighbour pairing, and the build's
guarantees (held-out and dev texts kept out, asymmetric share, label-defined share, same-size halves,
determinism)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from instructembed.train import medi_sources as src
from instructembed.train.data import read_medi
from instructembed.train.medi_pairs import pair_by_label


def test_pair_by_label_matches_a_naive_nearest_neighbour_loop() -> None:
    rng = np.random.default_rng(0)
    rows = [(f"text {i}", "ab"[i % 2] if i < 20 else "c") for i in range(30)]
    table = {t: v for (t, _), v in zip(rows, rng.normal(size=(30, 8)), strict=True)}

    def embed(texts):  # type: ignore[no-untyped-def]
        v = np.stack([table[t] for t in texts])
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    triples = pair_by_label(rows, embed, random.Random(1), anchors=100, pool=100)
    label = dict(rows)
    unit = {t: table[t] / np.linalg.norm(table[t]) for t in table}
    assert len(triples) == 30
    for anchor, pos, neg in triples:
        same = [t for t in table if t != anchor and label[t] == label[anchor]]
        other = [t for t in table if label[t] != label[anchor]]
        assert pos == max(same, key=lambda t: float(unit[anchor] @ unit[t]))
        assert neg == max(other, key=lambda t: float(unit[anchor] @ unit[t]))


def test_readers_of_the_added_corpora(shared_data: Path) -> None:
    abc = src.read_abc(shared_data)
    assert len(abc) > 2500 and {s.group for s in abc} == {"rural", "science"}
    assert all("\u00c2" not in s.body for s in abc[:200])  # rural.txt's mojibake repaired
    assert len(src.read_movie_reviews(shared_data)) > 1900
    assert len(src.read_mctest(shared_data)) == 660  # mc160 + mc500, never mc660 on top
    rte = src.read_rte(shared_data)
    assert len(rte) == 4167 and 0.4 < sum(p.entailed for p in rte) / len(rte) < 0.6
    nps = src.read_nps_chat(shared_data)
    assert "System" not in {act for _, act in nps}
    reports = src.read_problem_reports(shared_data)
    assert not any("/NN" in text for text, _ in reports[:500])  # POS tags stripped
    ai2 = src.read_ai2_8grade(shared_data)
    assert any(h.correct for h in ai2) and all(h.evidence for h in ai2)


@pytest.fixture(scope="module")
def built(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from instructembed.train.medi_build import build_medi

    out = tmp_path_factory.mktemp("medi") / "medi.jsonl"
    report = build_medi(shared_data, out, seed=7, max_per_task=160, dev_per_task=8)
    return out, report


def test_build_keeps_held_out_and_dev_texts_out(shared_data: Path, built) -> None:  # type: ignore[no-untyped-def]
    from instructembed.train.medi_build import dev_texts, held_out_texts, normalize, sibling
    from instructembed.train.medi_sources import iter_lines

    out, report = built
    held, dev = held_out_texts(shared_data), dev_texts(shared_data)
    data = read_medi(out)
    for e in data.examples:
        for item in (e.query, e.pos, e.neg):
            keys = {normalize(item.text), *(normalize(p) for p in iter_lines(item.text))}
            assert not keys & held and not keys & dev
            assert item.instruction.startswith("Represent ")
    dev_rows = read_medi(sibling(out, "dev")).examples
    train_texts = {(e.task, item.text) for e in data.examples for item in (e.query, e.pos, e.neg)}
    for e in dev_rows:  # the dev slice's queries and positives are never trained on, in any role
        assert (e.task, e.query.text) not in train_texts and (e.task, e.pos.text) not in train_texts
    assert report.dropped > 0  # STS-B and MRPC do share sentences with STS12-16


def test_build_shape_of_the_mixture(built) -> None:  # type: ignore[no-untyped-def]
    from instructembed.train.medi_build import sibling
    from instructembed.train.medi_tasks import BY_NAME

    out, report = built
    data = read_medi(out)
    counts = Counter(e.task for e in data.examples)
    assert len([t for t, n in counts.items() if n >= 32]) >= 15
    asym = sum(n for t, n in counts.items() if not BY_NAME[t].symmetric)
    assert asym / sum(counts.values()) >= 0.40
    assert report.label_batch_share(32) <= 0.25
    for e in data.examples:  # asymmetric tasks really carry different instructions
        if not BY_NAME[e.task].symmetric:
            assert e.query.instruction != e.pos.instruction
        else:
            assert e.query.instruction == e.pos.instruction
    wordings = {e.query.instruction for e in data.examples if e.task == "abc-news-story"}
    assert len(wordings) > 1  # paraphrases drawn per example
    sym, asym_rows = read_medi(sibling(out, "sym")).examples, read_medi(sibling(out, "asym")).examples
    assert len(sym) == len(asym_rows)
    assert all(BY_NAME[e.task].symmetric for e in sym) and not any(
        BY_NAME[e.task].symmetric for e in asym_rows
    )
    saved = json.loads(sibling(out, "report").read_text())
    assert saved["kept"] == len(data.examples) and "abc-news-story" in saved["tasks"]


def test_build_is_deterministic(shared_data: Path, built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from instructembed.train.medi_build import build_medi

    out, _ = built
    again = tmp_path / "again.jsonl"
    build_medi(shared_data, again, seed=7, max_per_task=160, dev_per_task=8)
    assert again.read_bytes() == out.read_bytes()
