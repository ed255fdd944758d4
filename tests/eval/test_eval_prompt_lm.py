"""Prompt retrieval end to end with a real (tiny, random) causal LM and a fake completions server."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from instructembed.cli import app
from instructembed.eval import run
from instructembed.eval.encoder import CachingEncoder
from instructembed.eval.lm import CompletionsLM, HFTokenCounter, LocalCausalLM, open_lm, truncate_at_stop
from instructembed.eval.loaders import load_local
from instructembed.eval.prompt_retrieval import (
    build_prompt,
    centre,
    evaluate_prompt_retrieval,
    select_demonstrations,
)
from instructembed.eval.records import PromptExample, PromptRetrievalData
from instructembed.testing import build_causal_lm


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_causal_lm(tmp_path_factory.mktemp("lm") / "tiny-gpt2")


class _Completions(BaseHTTPRequestHandler):
    """/v1/completions: generation answers a fixed SQL tail; echo requests score ' True' above ' False'."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        if self.path != "/v1/completions":
            self.send_error(404)
            return
        prompt = body["prompt"]
        if body.get("echo"):
            tokens = re.findall(r"\s*\S+", prompt)
            offsets = np.cumsum([0] + [len(t) for t in tokens[:-1]]).tolist()
            values = [None] + [-0.5 if t.strip() == "True" else -1.0 for t in tokens[1:]]
            choice = {
                "text": prompt + " x",
                "logprobs": {"tokens": tokens, "text_offset": offsets, "token_logprobs": values},
            }
        else:
            choice = {"text": " CITYalias0.CITY_NAME FROM CITY AS CITYalias0; trailing junk"}
        data = json.dumps({"choices": [choice]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def fake_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Completions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_local_lm_option_logprobs_match_a_direct_forward_pass(tiny_lm_dir: Path) -> None:
    lm = LocalCausalLM(tiny_lm_dir)
    prompt = "Sentence.\nanswer:"
    ids = lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    option_ids = lm.tokenizer(" True", add_special_tokens=False)["input_ids"]
    full = torch.tensor([ids + option_ids])
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(full).logits[0].double(), dim=-1)
    expected = np.mean([float(logp[len(ids) - 1 + k, option_ids[k]]) for k in range(len(option_ids))])
    assert lm.option_logprobs(prompt, [" True"])[0] == pytest.approx(expected, abs=1e-9)
    text = lm.complete("-- how big is texas\nSELECT", max_tokens=5, stop=[";"])
    assert isinstance(text, str) and ";" not in text


def test_truncate_at_stop() -> None:
    assert truncate_at_stop("a FROM b; c\n\nd", [";", "\n\n"]) == "a FROM b"
    assert truncate_at_stop("no stop here", [";"]) == "no stop here"


def test_endpoint_client_generation_and_option_scores(fake_endpoint: str) -> None:
    lm = CompletionsLM(fake_endpoint, "fake-model")
    assert (
        lm.complete("-- q\nSELECT", max_tokens=16, stop=[";"])
        == " CITYalias0.CITY_NAME FROM CITY AS CITYalias0"
    )
    true, false = lm.option_logprobs("x answer:", [" True", " False"])
    assert true == -0.5 and false == -1.0
    assert _Completions.requests[-1]["model"] == "fake-model" and _Completions.requests[-1]["echo"] is True
    with pytest.raises(RuntimeError, match="cannot reach"):
        CompletionsLM("http://127.0.0.1:9/v1", "m", timeout_s=2).complete("x", max_tokens=1, stop=[])
    with pytest.raises(Exception, match="--lm-model"):
        open_lm(fake_endpoint)
    with pytest.raises(Exception, match="not a Hugging Face model directory"):
        open_lm(str(tiny_lm_dir_missing := Path("/nonexistent-lm-dir")))
    assert not tiny_lm_dir_missing.exists()


@pytest.mark.slow
def test_run_prompt_retrieval_with_the_tiny_lm(
    fake_encoder, shared_data: Path, tiny_lm_dir: Path, tmp_path: Path
) -> None:
    lm = LocalCausalLM(tiny_lm_dir)
    results = run(
        fake_encoder,
        ["GeoQuery"],
        data_dir=shared_data,
        limit=2,
        model_name="fake",
        out_dir=tmp_path,
        progress=False,
        lm=lm,
    )
    for result in results:
        scores = result.scores["test"]
        assert result.main_score_name == "rouge_l" and 0.0 <= scores["rouge_l"] <= 1.0
        assert result.language_model == str(tiny_lm_dir)
        assert any("the language model's own tokenizer" in n for n in result.notes)
        assert scores["tests"] == 2.0 and scores["mean_demonstrations"] >= 1
        assert scores["mean_prompt_tokens"] <= 3800
    assert "exact_match" in results[0].scores["test"]
    # without an LM, the stored LM result is not reused: the retrieval-side proxy is the main score
    again = run(
        fake_encoder,
        ["GeoQuery"],
        data_dir=shared_data,
        limit=2,
        model_name="fake",
        out_dir=tmp_path,
        progress=False,
    )
    assert again[0].main_score_name == "template_match" and again[0].language_model is None
    assert any("no language model" in n for n in again[0].notes)


def _choose_task() -> PromptRetrievalData:
    def example(i: int, label: str) -> PromptExample:
        text = f"sentence {i} about {'cats' if label == 'True' else 'dogs'}"
        return PromptExample(str(i), text, f"{text}\nanswer:{label}", f"{text}\nanswer:", label, label)

    pool = tuple(example(i, "True" if i % 2 else "False") for i in range(6))
    return PromptRetrievalData(
        pool, (example(10, "True"), example(11, "False")), "choose", 60, options=("True", "False")
    )


def test_choose_mode_picks_the_likeliest_option(fake_encoder, tiny_lm_dir: Path, fake_endpoint: str) -> None:
    data = _choose_task()
    counter = HFTokenCounter(tiny_lm_dir)
    endpoint = evaluate_prompt_retrieval(
        CachingEncoder(fake_encoder), data, "Represent it: ", counter, CompletionsLM(fake_endpoint, "m")
    )
    assert endpoint["accuracy"] == endpoint["rouge_l"] == 0.5  # the fake server always prefers " True"
    assert endpoint["label_agreement"] == 1.0  # the hashing encoder matches "cats" with "cats"
    assert endpoint["chance_label_agreement"] == 0.5  # half the pool has each label
    lm = LocalCausalLM(tiny_lm_dir)
    local = evaluate_prompt_retrieval(CachingEncoder(fake_encoder), data, "Represent it: ", counter, lm)
    # the same prompts built by hand: pool centred, most similar demonstration last, then the query
    inputs = [("Represent it: ", e.embed_text) for e in data.pool]
    pool = centre(fake_encoder.embed(inputs))
    lengths = [counter.count(e.demonstration) for e in data.pool]
    right = []
    for t, test in enumerate(data.tests):
        query_emb = fake_encoder.embed([("Represent it: ", test.embed_text)])
        (sel,) = select_demonstrations(pool, query_emb, lengths, [60 - counter.count(test.query)])
        prompt = build_prompt(data, sel, t)
        assert prompt.endswith(test.query) and prompt.count("answer:") == len(sel.indices) + 1
        pick = data.options[int(np.argmax(lm.option_logprobs(prompt, [" True", " False"])))]
        right.append(pick == test.answer)
    assert local["accuracy"] == pytest.approx(np.mean(right))


def test_cli_prompt_retrieval_against_the_fake_endpoint(
    tiny_bert_dir: Path, shared_data: Path, fake_endpoint: str, tmp_path: Path
) -> None:
    _Completions.requests.clear()
    out = tmp_path / "eval"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--model",
            str(tiny_bert_dir),
            "--tasks",
            "GeoQuery",
            "--limit",
            "2",
            "--lm",
            fake_endpoint,
            "--lm-model",
            "fake-model",
            "--out",
            str(out),
            "--data-dir",
            str(shared_data),
        ],
    )
    assert result.exit_code == 0, result.output
    stored = json.loads((out / "GeoQuery.json").read_text())
    assert stored["main_score_name"] == "rouge_l" and stored["language_model"].endswith("(fake-model)")
    assert (
        0 < stored["scores"]["test"]["rouge_l"] <= 1
    )  # "SELECT CITYalias0.CITY_NAME FROM ..." shares tokens
    prompts = [r["prompt"] for r in _Completions.requests]
    data = load_local("geoquery", shared_data).limited(2)
    assert isinstance(data, PromptRetrievalData)
    assert len(prompts) == 2 and all(p.startswith(data.header) for p in prompts)
    assert [p.endswith(t.query) for p, t in zip(prompts, data.tests, strict=True)] == [True, True]
    assert (out / "summary.md").is_file()
