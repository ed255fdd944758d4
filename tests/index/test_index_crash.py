"""Crash safety with real processes: `index build` killed with SIGKILL (at random moments, and at the two
moments that matter most: vectors on disk but not committed, and rows written but not committed),
then run again, ends with exactly the index of an uninterrupted build. Also: a disk that fills up
(a real RLIMIT_FSIZE on the child), one writer at a time across processes, readers during a write."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from index_helpers import CHUNKING, DOC, QUERY, corpus
from typer.testing import CliRunner

from helpers.index_files import assert_same_index
from instructembed import Embedder
from instructembed.cli import app
from instructembed.index import Index

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

# A child that runs the real CLI but SIGKILLs itself at an exact point: after the Nth append of vectors
# (on disk, not committed), or after the Nth batch's rows were written inside the transaction (not
# committed). Nothing is replaced: the real functions run, then the process dies.
CHILD = r"""
import os, signal, sys
from instructembed.index import core, store
point, n = os.environ["KILL_POINT"], int(os.environ["KILL_AT"])
calls = [0]
def die_after(real, counts):
    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        if counts(*args, **kwargs):
            calls[0] += 1
            if calls[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
        return out
    return wrapped
if point == "after_append":
    core.append_rows = die_after(core.append_rows, lambda *a, **k: True)
else:  # inside the batch's transaction, after its rows and new row count, before COMMIT
    store.set_meta = die_after(store.set_meta, lambda conn, values: "slots" in values)
from instructembed.cli import main
sys.argv = ["instructembed", *sys.argv[1:]]
main()
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}


def _build_args(source: Path, out: Path, model: Path, commit_every: int = 25) -> list[str]:
    return [
        "index", "build", "-i", str(source), "-o", str(out), "-m", str(model), "--max-seq-length", "32",
        "--instruction", DOC, "--query-instruction", QUERY, "--chunk-overlap", "4",
        "--metadata-field", "metadata", "--commit-every", str(commit_every), "--no-progress",
    ]  # fmt: skip


def _cli(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "instructembed", *args],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _commits(out: Path) -> int:
    """The committed batch counter, read as any reader would (0 while the index does not exist yet)."""
    if not (out / "index.sqlite").exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{out / 'index.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'commit'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> tuple[Path, Path, Path]:
    """The input file and an uninterrupted build of it (the reference)."""
    root = tmp_path_factory.mktemp("crash")
    source = root / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in corpus(400, seed=1)), encoding="utf-8")
    reference = root / "reference"
    result = CliRunner().invoke(app, _build_args(source, reference, tiny_bert_dir))
    assert result.exit_code == 0, result.output
    return source, reference, tiny_bert_dir


@pytest.mark.parametrize(("point", "at"), [("after_append", 3), ("before_commit", 2)])
def test_sigkill_at_the_critical_moments_then_rerun(
    job: tuple[Path, Path, Path], tmp_path: Path, point: str, at: int
) -> None:
    source, reference, model = job
    out = tmp_path / "ix"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, *_build_args(source, out, model)],
        env={**_env(), "KILL_POINT": point, "KILL_AT": str(at)},
        capture_output=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    with Index.open(out) as index:  # readable at its last commit
        info = index.info()
    assert info["documents"] == (at - 1) * 25  # the batch in flight is not there
    if point == "after_append":  # ... though its vectors are on disk, beyond the committed rows
        assert info["files"]["vectors-0.f32"] > info["vectors"] * info["dimension"] * 4
    rerun = _cli(_build_args(source, out, model))
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()[-2000:]
    assert b"continuing the build" in err and b"400 documents" in err
    assert_same_index(out, reference)


def test_sigkill_at_random_moments_then_rerun(job: tuple[Path, Path, Path], tmp_path: Path) -> None:
    source, reference, model = job
    out = tmp_path / "ix"
    rng = np.random.default_rng(7)
    kills = 0
    for _ in range(4):
        before = _commits(out)
        proc = _cli(_build_args(source, out, model, commit_every=10))
        deadline = time.monotonic() + 120
        # wait until this run has committed something, then kill it a random moment later
        while _commits(out) <= before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.4)))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        kills += 1
        with Index.open(out) as index:  # every kill leaves a readable index at a commit boundary
            assert len(index) % 10 == 0 and len(index) == index.info()["documents"]
    assert kills >= 2
    final = _cli(_build_args(source, out, model, commit_every=10))
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()[-2000:]
    # rows land at the same slots whatever the batch size, so the reference built with 25 serves
    assert_same_index(out, reference)


@pytest.mark.parametrize("dimension", [512, 16])
def test_disk_full_during_add_keeps_the_last_commit(
    job: tuple[Path, Path, Path], tmp_path: Path, dimension: int
) -> None:
    """RLIMIT_FSIZE makes the kernel refuse writes past a size (EFBIG), as a full disk refuses them
    (ENOSPC). With 512-d vectors the vectors file hits it first; with 16-d ones the SQLite WAL does."""
    from instructembed.testing import build_checkpoint

    source, _, _ = job
    model = build_checkpoint(tmp_path / "model", "bert", dense_out=dimension)
    out = tmp_path / "ix"
    limit = 1 << 18 if dimension == 16 else 1 << 20

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    child = subprocess.run(
        [sys.executable, "-m", "instructembed", *_build_args(source, out, model)],
        env=_env(),
        capture_output=True,
        timeout=300,
        preexec_fn=limited,
    )
    err = child.stderr.decode()
    assert child.returncode == 1, err[-2000:]
    assert "the index is at its last commit" in err and "run the same command again" in err, err[-2000:]
    assert ("vectors-0.f32" in err) == (dimension == 512) and ("index.sqlite" in err) == (dimension == 16)
    with Index.open(out) as index:
        committed = len(index)
        assert 0 < committed < 400 and committed % 25 == 0
        assert len(index.search(["rivers"], k=5)[0]) == 5
    rerun = _cli(_build_args(source, out, model))
    _, rerun_err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, rerun_err.decode()[-2000:]
    reference = tmp_path / "reference"
    assert CliRunner().invoke(app, _build_args(source, reference, model)).exit_code == 0
    assert_same_index(out, reference)


def test_a_second_writer_process_is_told_who_holds_the_lock(
    job: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, reference, _ = job
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "extra", "text": "one more"}) + "\n", encoding="utf-8")
    with Index.open(reference) as index, index.writer():
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "instructembed",
                "index",
                "add",
                str(reference),
                "-i",
                str(more),
                "--no-progress",
            ],
            env=_env(),
            capture_output=True,
            timeout=300,
        )
    assert child.returncode == 1
    assert f"another process (pid {os.getpid()}) is writing to {reference}" in child.stderr.decode()
    with Index.open(reference) as index:
        assert len(index) == 400  # nothing was added by the refused writer


def test_readers_see_only_committed_batches_while_a_process_writes(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    embedder = Embedder.load(tiny_bert_dir, max_seq_length=32)
    out = tmp_path / "ix"
    Index.create(out, model=str(tiny_bert_dir), doc_instruction=DOC, query_instruction=QUERY, embedder=embedder,
                 chunking=CHUNKING, max_seq_length=32).close()  # fmt: skip
    records = [
        {"id": f"r{i:04d}", "text": f"record {i} about {['rivers', 'trains'][i % 2]}"} for i in range(600)
    ]
    source = tmp_path / "docs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    writer = _cli(["index", "add", str(out), "-i", str(source), "--commit-every", "10", "--no-progress"])
    query = embedder.embed(["rivers"], instruction=QUERY)
    seen: list[int] = []
    with Index.open(out, embedder=embedder) as reader:
        while True:
            done = writer.poll() is not None
            n = len(reader)
            hits = reader.search_vectors(query, k=2000)[0]
            # one search is one snapshot: it returns every committed document and nothing else
            assert len(hits) >= n and len(hits) % 10 == 0 and n % 10 == 0
            assert {h.id for h in hits} == {f"r{i:04d}" for i in range(len(hits))}
            assert not seen or n >= seen[-1]
            seen.append(n)
            if done:
                break
            time.sleep(0.05)  # leave the (2-core) machine to the writer between looks
    assert writer.returncode == 0, writer.stderr.read().decode() if writer.stderr else ""
    assert seen[-1] == 600
    assert len({n for n in seen if 0 < n < 600}) >= 2  # the reader really ran during the write
