"""The fixed-seed TWEAC cluster sets: drawn MTEB's way, stored exactly, loaded against the raw files."""

from __future__ import annotations

from pathlib import Path

import pytest

from instructembed.eval.clustering_sets import decode_sets, encode_sets, sample_sets


def test_sample_sets_follow_the_rule_and_are_deterministic() -> None:
    sizes = {f"label{i:02d}": n for i, n in enumerate([40, 512, 2000, 150, 900] * 12)}
    sets = sample_sets(sizes, seed=3)
    assert sets == sample_sets(sizes, seed=3) and sets != sample_sets(sizes, seed=4)
    assert len(sets) == 25
    for one in sets:
        assert 10 <= len(one) <= 50
        for label, lines in one.items():
            assert lines == sorted(set(lines)) and all(0 <= i < sizes[label] for i in lines)
            assert min(100, sizes[label]) <= len(lines) <= min(1000, sizes[label])


def test_encode_decode_round_trip_is_exact() -> None:
    sizes = {f"l{i}": 37 + 101 * i for i in range(12)}  # line counts that are not multiples of 8
    sets = sample_sets(sizes, seed=0, n_sets=4, min_per_class=1, max_per_class=60)
    got, got_sizes = decode_sets(encode_sets(sets, sizes, {"seed": 0}))
    assert got == sets
    assert got_sizes == {label: sizes[label] for label in {lab for one in sets for lab in one}}


def test_too_few_labels_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 10 labels"):
        sample_sets({"a": 5, "b": 9}, seed=0)


@pytest.mark.parametrize(
    ("source", "folder"),
    [
        ("reddit_clustering", "reddit_clustering_tweac"),
        ("stackexchange_clustering", "stackexchange_clustering_tweac"),
    ],
)
def test_committed_sets_load_from_the_raw_titles(shared_data: Path, source: str, folder: str) -> None:
    from instructembed.eval.loaders import load_local
    from instructembed.package_data import read_text

    data = load_local(source, shared_data)
    assert len(data.sets) == 25
    sets, _ = decode_sets(read_text(f"{source.replace('_', '-')}-sets.json"))
    for (texts, labels), one in zip(data.sets, sets, strict=True):
        assert 10 <= len(set(labels)) <= 50 and len(texts) == sum(len(v) for v in one.values())
        label = sorted(one)[0]  # first text of a set = the first chosen line of its first label
        lines = (shared_data / folder / "test" / f"{label}.txt").read_text(encoding="utf-8").splitlines()
        assert texts[0] == lines[one[label][0]]
    limited = data.limited(200)
    assert all(len(t) == 200 and len(set(y)) >= 10 for t, y in limited.sets)  # the label mix survives


def test_a_changed_label_file_is_refused(shared_data: Path, tmp_path: Path) -> None:
    from instructembed.errors import InputFileError
    from instructembed.eval.loaders import load_local

    root = tmp_path / "reddit_clustering_tweac" / "test"
    root.mkdir(parents=True)
    for path in (shared_data / "reddit_clustering_tweac" / "test").glob("*.txt"):
        (root / path.name).write_bytes(path.read_bytes())
    from instructembed.package_data import read_text

    _, used = decode_sets(read_text("reddit-clustering-sets.json"))
    victim = root / f"{sorted(used)[0]}.txt"  # a subreddit the sets do draw from
    victim.write_text(
        "\n".join(victim.read_text(encoding="utf-8").splitlines()[:-1]) + "\n", encoding="utf-8"
    )
    with pytest.raises(InputFileError, match="expected 512 lines"):
        load_local("reddit_clustering", tmp_path)
