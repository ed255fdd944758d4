"""Framework integration tests: no telemetry (set before any framework is imported), a tiny model."""

from __future__ import annotations

import os

import pytest

# Chroma and Haystack would otherwise try to send usage data.
os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"


@pytest.fixture(scope="session")
def tiny_model(tiny_bert_dir):  # type: ignore[no-untyped-def]
    from instructembed import Embedder

    return Embedder.load(tiny_bert_dir)
