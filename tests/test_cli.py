"""The command line end to end on small files, every bad-input message, and streaming memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from instructembed import Embedder
from instructembed.cli import app
from instructembed.testing import assert_vectors_close

runner = CliRunner()
INSTRUCTION = "Represent the sentence for retrieval: "


def invoke(*args: str | Path) -> tuple[int, str]:
    """Exit code and everything printed (stdout and stderr)."""
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_embed_jsonl_to_parquet_with_ids(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    records = [{"id": f"doc{i}", "text": f"text number {i}", "other": i} for i in range(5)]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    code, output = invoke(
        "embed", "--model", tiny_bert_dir, "--input", source, "--output", out, "--instruction", INSTRUCTION
    )
    assert code == 0, output
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [r["id"] for r in records]
    got = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    expected = Embedder.load(tiny_bert_dir).embed([r["text"] for r in records], instruction=INSTRUCTION)
    assert_vectors_close(got, expected)


def test_embed_text_to_npy_one_row_per_line(tiny_bert_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"first line\r\n\nthird line\n   \nlast line without newline")
    out = tmp_path / "out.npy"
    code, output = invoke("embed", "-m", tiny_bert_dir, "-i", source, "-o", out, "--chunk-size", "2")
    assert code == 0, output
    assert "2 blank line(s)" in output
    got = np.load(out)
    expected = Embedder.load(tiny_bert_dir).embed(
        ["first line", "", "third line", "   ", "last line without newline"]
    )
    assert got.shape == (5, 16)
    assert_vectors_close(got, expected)


def test_embed_skip_blank_keeps_line_numbers(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    source = tmp_path / "in.txt"
    source.write_text("a\n\nb\n", encoding="utf-8")
    out = tmp_path / "out.parquet"
    assert invoke("embed", "-m", tiny_bert_dir, "-i", source, "-o", out, "--skip-blank")[0] == 0
    assert pq.read_table(out).column("id").to_pylist() == ["1", "3"]


def test_embed_csv_column_and_per_row_instructions(tiny_bert_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text('id,body,instr\n1,"hello, world",Represent the greeting: \n2,bye,\n', encoding="utf-8")
    out = tmp_path / "out.npy"
    code, output = invoke(
        "embed",
        "-m",
        tiny_bert_dir,
        "-i",
        source,
        "-o",
        out,
        "--field",
        "body",
        "--instruction-field",
        "instr",
    )
    assert code == 0, output
    expected = Embedder.load(tiny_bert_dir).embed([("Represent the greeting: ", "hello, world"), ("", "bye")])
    assert_vectors_close(np.load(out), expected)


@pytest.mark.parametrize(
    "name,content,extra,message",
    [
        ("missing.jsonl", None, [], "does not exist"),
        ("empty.txt", "", [], "holds no texts"),
        ("nofield.jsonl", '{"body": "x"}\n', [], "in.*:1: no field 'text' \\(fields present: body\\)"),
        ("badjson.jsonl", '{"text": "ok"}\n{oops\n', [], ":2: not valid JSON"),
        ("notobject.jsonl", '["text"]\n', [], ":1: expected a JSON object"),
        ("number.jsonl", '{"text": 5}\n', [], ":1: field 'text' is int"),
        ("nocolumn.csv", "a,b\n1,2\n", [], "no column 'text' \\(columns: a, b\\)"),
        ("latin1.txt", "caf\xe9\n".encode("latin1"), [], "not UTF-8"),
        ("ok.txt", "x\n", ["--instruction", "a", "--instruction-field", "b"], "not both"),
    ],
)
def test_embed_bad_inputs_give_clear_errors(
    tiny_bert_dir: Path,
    tmp_path: Path,
    name: str,
    content: str | bytes | None,
    extra: list[str],
    message: str,
) -> None:
    source = tmp_path / "in" / name
    source.parent.mkdir()
    if isinstance(content, bytes):
        source.write_bytes(content)
    elif content is not None:
        source.write_text(content, encoding="utf-8")
    out = tmp_path / "out.npy"
    code, output = invoke("embed", "-m", tiny_bert_dir, "-i", source, "-o", out, *extra)
    assert code == 1
    assert "error:" in output
    import re

    assert re.search(message, output), output
    assert not out.exists()
    assert not list(tmp_path.glob(".out.npy.partial*"))


def test_embed_never_clobbers_existing_output(tiny_bert_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("a\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    out.write_bytes(b"precious")
    code, output = invoke("embed", "-m", tiny_bert_dir, "-i", source, "-o", out)
    assert code == 1 and "--overwrite" in output
    assert out.read_bytes() == b"precious"
    # A failure in the middle (bad line 3, after a first chunk was written) keeps the old file too.
    source.write_text('{"text": "a"}\n{"text": "b"}\n{"text": 1}\n', encoding="utf-8")
    jsonl = source.rename(tmp_path / "in.jsonl")
    code, output = invoke(
        "embed", "-m", tiny_bert_dir, "-i", jsonl, "-o", out, "--overwrite", "--chunk-size", "1"
    )
    assert code == 1 and ":3:" in output
    assert out.read_bytes() == b"precious"


def test_embed_bad_output_paths(tiny_bert_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("a\n", encoding="utf-8")
    code, output = invoke("embed", "-m", tiny_bert_dir, "-i", source, "-o", tmp_path / "out.csv")
    assert code == 1 and ".npy or .parquet" in output
    code, output = invoke("embed", "-m", tiny_bert_dir, "-i", source, "-o", tmp_path / "nodir" / "out.npy")
    assert code == 1 and "does not exist" in output


def test_embed_bad_model_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("a\n", encoding="utf-8")
    code, output = invoke("embed", "-m", tmp_path / "nope", "-i", source, "-o", tmp_path / "o.npy")
    assert code == 1 and "does not exist" in output and "Traceback" not in output


def test_info_prints_what_was_loaded(tiny_t5_dir: Path) -> None:
    result = runner.invoke(app, ["info", str(tiny_t5_dir), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (
        info["architecture"] == "t5" and info["dimension"] == 16 and info["layout"] == "sentence-transformers"
    )
    code, output = invoke("info", tiny_t5_dir)
    assert code == 0 and "max_seq_length" in output and "pooling" in output


def test_help_reads_well() -> None:
    code, output = invoke("embed", "--help")
    assert code == 0 and "--instruction" in output and "INSTRUCTEMBED_" in output


def _peak_rss_mib(model: Path, source: Path, out: Path) -> float:
    script = (
        "import resource, sys\n"
        "from instructembed.cli import app\n"
        "try:\n"
        f"    app(['embed', '-m', {str(model)!r}, '-i', {str(source)!r}, '-o', {str(out)!r}, '--no-progress'])\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    # One thread: the tiny model gains nothing from two, and a busy machine then cannot stall it.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_streaming_memory_does_not_grow_with_input_size(tiny_bert_dir: Path, tmp_path: Path) -> None:
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_text("".join(f"line {i} of a generated file\n" for i in range(20_000)), encoding="utf-8")
    large.write_text("".join(f"line {i} of a generated file\n" for i in range(200_000)), encoding="utf-8")
    rss_small = _peak_rss_mib(tiny_bert_dir, small, tmp_path / "small.npy")
    rss_large = _peak_rss_mib(tiny_bert_dir, large, tmp_path / "large.npy")
    assert np.load(tmp_path / "large.npy", mmap_mode="r").shape == (200_000, 16)
    # 180k more rows would be 11 MiB of vectors alone if they were kept; the bound is well below
    # what holding the input or the output in memory would cost.
    assert rss_large - rss_small < 25, (rss_small, rss_large)


def test_friendly_errors_one_line_and_the_commands_own_interrupt_message() -> None:
    import typer

    from instructembed.cli_options import friendly_errors

    sub = typer.Typer()

    @sub.command("fail")
    @friendly_errors
    def fail(kind: str = "value") -> None:
        if kind == "value":
            raise ValueError("bad value; do this instead")
        if kind == "interrupt":
            raise KeyboardInterrupt
        raise RuntimeError("a bug")  # not ours to explain: the traceback stays

    @sub.command("resumable")
    @friendly_errors(interrupted=lambda kw: f"interrupted; results so far are in {kw['out']}")
    def resumable(out: str = "res") -> None:
        raise KeyboardInterrupt

    result = runner.invoke(sub, ["fail"])
    assert result.exit_code == 1 and "error: bad value; do this instead" in result.output
    result = runner.invoke(sub, ["fail", "--kind", "interrupt"])
    assert result.exit_code == 130 and "nothing was written under the output name" in result.output
    result = runner.invoke(sub, ["fail", "--kind", "bug"])
    assert isinstance(result.exception, RuntimeError)
    result = runner.invoke(sub, ["resumable", "--out", "here"])
    assert result.exit_code == 130 and "results so far are in here" in result.output


def test_version_comes_from_the_package_metadata(tiny_bert_dir: Path) -> None:
    from importlib.metadata import version

    import instructembed

    assert instructembed.__version__ == version("instructembed")
    shown = runner.invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.output.strip() == f"instructembed {instructembed.__version__}"
    info = runner.invoke(app, ["info", str(tiny_bert_dir), "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["instructembed_version"] == instructembed.__version__
