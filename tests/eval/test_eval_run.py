"""End to end with a fake encoder: run(), results JSON with provenance, summary, instructions, resume, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from instructembed.errors import InputFileError
from instructembed.eval import get_task, load_instructions, markdown_summary, run, write_summary
from instructembed.eval.cli import eval_command
from instructembed.eval.tasks import Role

TASKS = ["STSBenchmark", "Banking77Classification"]


def test_run_writes_results_with_provenance(fake_encoder, shared_data: Path, tmp_path: Path) -> None:
    results = run(
        fake_encoder,
        TASKS,
        data_dir=shared_data,
        limit=40,
        model_name="fake",
        out_dir=tmp_path,
        command="pytest",
        progress=False,
    )
    assert [r.task for r in results] == TASKS
    stored = json.loads((tmp_path / "STSBenchmark.json").read_text())
    assert stored["model"] == "fake" and stored["limit"] == 40 and stored["command"] == "pytest"
    assert stored["data_fingerprint"].startswith("sha256:")
    assert stored["instructions"] == {"query": "represent the statement: "}
    assert stored["main_score"] == round(100 * stored["scores"]["test"]["cosine_spearman"], 2)
    assert -100 <= stored["main_score"] <= 100 and stored["wall_time_s"] >= 0
    assert results[0].texts_embedded <= 80  # 40 pairs, each distinct text once
    md, png = write_summary(results, tmp_path)
    text = md.read_text()
    assert "| STSBenchmark | STS | cosine_spearman |" in text and "| **all** | 2 |" in text
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_resume_reuses_finished_tasks(fake_encoder, shared_data: Path, tmp_path: Path) -> None:
    first = run(
        fake_encoder,
        ["STS13"],
        data_dir=shared_data,
        limit=20,
        model_name="fake",
        out_dir=tmp_path,
        progress=False,
    )
    calls = len(fake_encoder.calls)
    again = run(
        fake_encoder,
        ["STS13"],
        data_dir=shared_data,
        limit=20,
        model_name="fake",
        out_dir=tmp_path,
        progress=False,
    )
    assert len(fake_encoder.calls) == calls and again == first


def test_instructions_none_and_file_override(fake_encoder, shared_data: Path, tmp_path: Path) -> None:
    bare = run(fake_encoder, ["STS13"], data_dir=shared_data, limit=30, instructions="none", progress=False)
    assert bare[0].instructions == {"query": None}
    table = tmp_path / "mine.json"
    table.write_text(json.dumps({"STS": {"STS13": "Represent the headline: "}}))
    mine = run(
        fake_encoder,
        ["STS13", "SciFact"],
        data_dir=shared_data,
        limit=5,
        instructions=str(table),
        progress=False,
    )
    assert mine[0].instructions == {"query": "Represent the headline: "}
    assert mine[1].instructions["query"].startswith("Represent a Scientific query")  # fell back to the table
    assert mine[0].main_score != bare[0].main_score
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(InputFileError, match=r"bad\.json:1"):
        load_instructions(tmp_path / "bad.json")


def test_instruction_lookup_roles() -> None:
    table = load_instructions("instructor-large")
    scifact = get_task("SciFact")
    assert table.lookup(scifact, Role.DOCUMENT)[0] == "represent the Scientific passage for retrieval; "
    assert table.lookup(get_task("STS12-noMSRvid"), Role.QUERY)[0] == "Represent the statement: "
    trec = table.for_task(get_task("TrecQA-local"))
    assert set(trec) == {"query", "corpus"} and all(trec.values())


def test_every_type_runs_on_a_tiny_subset(fake_encoder, shared_data: Path) -> None:
    names = [
        "TwitterSemEval2015-local",
        "Banking77Clustering-local",
        "TrecQA-local",
        "SciFact",
        "SummEvalReferenceFree-local",
    ]
    results = run(fake_encoder, names, data_dir=shared_data, limit=8, progress=False)
    assert {r.type for r in results} == {
        "PairClassification",
        "Clustering",
        "Reranking",
        "Retrieval",
        "Summarization",
    }
    assert all(r.main_score == r.main_score for r in results)  # no NaN
    assert "reference-free" in results[-1].notes[0]
    assert "SummEvalReferenceFree-local" in markdown_summary(results)


def test_cli_eval_command(
    fake_encoder, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from instructembed import embedder

    loads: list[dict[str, object]] = []

    def fake_load(cls: object, name: str, **kw: object) -> object:
        loads.append(kw)
        return fake_encoder

    monkeypatch.setattr(embedder.Embedder, "load", classmethod(fake_load))
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("other")(lambda: None)  # two commands, so "eval" is addressed by name as in the real CLI
    out = tmp_path / "res"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            "fake",
            "--tasks",
            "STS16",
            "--limit",
            "25",
            "--out",
            str(out),
            "--data-dir",
            str(shared_data),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "STS16" in result.output and (out / "STS16.json").is_file() and (out / "summary.md").is_file()
    assert loads[-1] == {"backend": None, "quantize": None, "dtype": None}
    # The backend reaches Embedder.load and the results say what ran (and do not resume across it).
    args = ["eval", "-m", "fake", "-t", "STS16", "--limit", "25", "--data-dir", str(shared_data)]
    result = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "ov"), "--backend", "openvino", "--quantize", "int8"]
    )
    assert result.exit_code == 0, result.output
    assert loads[-1] == {"backend": "openvino", "quantize": "int8", "dtype": None}
    assert json.loads((tmp_path / "ov" / "STS16.json").read_text())["model"] == "fake (openvino int8)"
    bad = CliRunner().invoke(
        app, ["eval", "--tasks", "Nope", "--out", str(out), "--data-dir", str(shared_data)]
    )
    assert bad.exit_code == 1 and "unknown task" in bad.output


def test_cli_eval_dimensions_embeds_once_and_scores_each(
    fake_encoder, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from instructembed import embedder
    from instructembed.eval.encoder import TruncatedEncoder
    from instructembed.vectors_out import truncate

    fake_encoder.dimension = fake_encoder.dim
    monkeypatch.setattr(embedder.Embedder, "load", classmethod(lambda cls, name, **kw: fake_encoder))
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("other")(lambda: None)
    out = tmp_path / "dims"
    args = [
        "eval",
        "-m",
        "fake",
        "-t",
        "STS16",
        "--limit",
        "25",
        "--data-dir",
        str(shared_data),
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(app, [*args, "--dimensions", "64", "--dimensions", "8"])
    assert result.exit_code == 0, result.output
    full = json.loads((out / "dim-64" / "STS16.json").read_text())
    short = json.loads((out / "dim-8" / "STS16.json").read_text())
    assert full["model"] == "fake @64d" and short["model"] == "fake @8d"
    once = type(fake_encoder)()  # what a single run embeds: the memo made two runs cost one
    run(once, [get_task("STS16")], data_dir=shared_data, limit=25)
    assert sum(fake_encoder.calls) == sum(once.calls)
    # the 8-d run scores exactly what truncating by hand scores
    direct = run(TruncatedEncoder(once, 8), [get_task("STS16")], data_dir=shared_data, limit=25)
    assert direct[0].main_score == pytest.approx(short["main_score"])
    assert truncate(once.embed(["a b c"]), 8).shape == (1, 8)
    too_big = CliRunner().invoke(app, [*args, "--dimensions", "65"])
    assert too_big.exit_code != 0 and "at most" in too_big.output
