"""The mteb adapter, offline: an mteb task class fed local data scores the same as our evaluator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instructembed.eval import get_task, load_instructions
from instructembed.eval.encoder import CachingEncoder
from instructembed.eval.mteb_adapter import instruction_for, mteb_encoder
from instructembed.eval.runner import load_task_data, score_task

mteb = pytest.importorskip("mteb")
datasets = pytest.importorskip("datasets")


def test_instruction_for_maps_task_and_role() -> None:
    table = load_instructions("instructor-large")
    assert (
        instruction_for(table, "SciFact", "Retrieval", True)
        == "Represent a Scientific query for retrieving a supporting passage; "
    )
    assert (
        instruction_for(table, "SciFact", "Retrieval", False)
        == "represent the Scientific passage for retrieval; "
    )
    assert instruction_for(table, "Banking77Classification.v2", "Classification", True).startswith(
        "Represent the bank"
    )
    assert instruction_for(table, "NoSuchTask", "STS", True) is None
    assert instruction_for(table, "Tatoeba", "BitextMining", True) is None


def test_mteb_sts_task_on_local_data_matches_ours(fake_encoder, shared_data: Path) -> None:
    task = get_task("STSBenchmark")
    data, _ = load_task_data(task, shared_data, "test")
    data = data.limited(60)
    instructions = load_instructions("instructor-large")
    ours = score_task(CachingEncoder(fake_encoder), task, data, instructions.for_task(task))[
        "cosine_spearman"
    ]

    mteb_task = mteb.get_task("STSBenchmark")
    mteb_task.dataset = datasets.DatasetDict(
        {
            "test": datasets.Dataset.from_dict(
                {
                    "sentence1": list(data.sentences1),
                    "sentence2": list(data.sentences2),
                    "score": list(data.scores),
                }
            )
        }
    )
    mteb_task.data_loaded = True
    model = mteb_encoder(fake_encoder, instructions)  # instruction chosen by mteb's task name, from the table
    theirs = mteb_task.evaluate(model, split="test", encode_kwargs={"batch_size": 16})["default"][
        "cosine_spearman"
    ]
    assert np.isclose(ours, theirs, atol=1e-6)
