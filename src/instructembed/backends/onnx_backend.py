"""Fast CPU backend: an ONNX Runtime session over an export made by `instructembed.export`.

The graph takes the same padded `TokenBatch` as torch -- ids, attention mask, the per-row float
pooling mask (and token type ids for BERT) -- and returns pooled (B, D) float32, so mixed
instructions in one batch work and `Embedder.embed` behaves identically on either backend.

Nothing here imports torch: an export directory loads and embeds with only the `onnx` extra.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instructembed.backends import physical_cores
from instructembed.batching import TokenBatch
from instructembed.checkpoint import ModelSpec, resolve_model_dir
from instructembed.errors import CheckpointError, MissingExtraError
from instructembed.export import (
    FINGERPRINT_KEY,
    Quantization,
    cached_export,
    check_fresh,
    is_export_dir,
    read_manifest,
)

log = logging.getLogger(__name__)


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise MissingExtraError("onnx", "onnxruntime") from None
    return onnxruntime


@dataclass(frozen=True)
class OnnxSettings:
    """How the session runs. Threads default to the machine's physical cores."""

    quantize: Quantization = Quantization.FP32
    threads: int | None = None  # intra-op threads; None = physical cores
    spin: bool = True  # busy-wait between ops (fastest when the cores are ours; off on shared machines)

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


class OnnxBackend:
    name = "onnx"

    def __init__(self, model_path: Path, settings: OnnxSettings, expected_fingerprint: str | None = None):
        ort = _ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = settings.threads or physical_cores()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not settings.spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own (non-exported) exception types
            raise CheckpointError(
                f"onnxruntime could not load {model_path}: {exc}; re-export the model"
            ) from exc
        stamped = self.session.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY)
        if expected_fingerprint is not None and stamped != expected_fingerprint:
            raise CheckpointError(
                f"{model_path} was exported from different weights than its manifest says "
                f"({(stamped or 'none')[:12]} vs {expected_fingerprint[:12]}); re-export the directory"
            )
        self.model_path = model_path
        self.settings = settings
        self.threads = options.intra_op_num_threads
        self.input_names = [i.name for i in self.session.get_inputs()]  # CLS pooling drops pool_mask

    @property
    def precision(self) -> str:
        return "int8 (dynamic)" if self.settings.quantize is Quantization.INT8 else "fp32"

    def run(self, batch: TokenBatch) -> np.ndarray:
        feed: dict[str, np.ndarray] = {}
        for name in self.input_names:
            value = getattr(batch, name)
            if value is None:  # token_type_ids for a graph that takes them, batch built without
                value = np.zeros_like(batch.input_ids)
            feed[name] = value
        (out,) = self.session.run(["embedding"], feed)  # (B, D)
        return np.asarray(out, dtype=np.float32)


def open_onnx(
    name_or_path: str | Path,
    *,
    quantize: Quantization,
    threads: int | None,
    max_seq_length: int | None,
    allow_pickle: bool,
    revision: str | None,
    cache_dir: Path | None,
) -> tuple[ModelSpec, OnnxBackend]:
    """An export directory loads as is (no torch); a checkpoint is exported into the cache first."""
    _ort()  # the missing-extra message before anything else
    root = resolve_model_dir(name_or_path, revision)
    if is_export_dir(root):
        manifest = read_manifest(root)
        check_fresh(root, manifest)
    else:  # keyed by the fingerprint just computed: fresh by construction
        root = cached_export(
            root, quantize, cache_dir=cache_dir, allow_pickle=allow_pickle, revision=revision
        )
        manifest = read_manifest(root)
    filename = manifest.files.get(quantize.value)
    if filename is None or not (root / filename).is_file():
        flag = " --int8" if quantize is Quantization.INT8 else ""
        raise CheckpointError(
            f"{root} has no {quantize.value} graph; re-export with "
            f"`instructembed export {manifest.source} --onnx{flag} --out {root}`"
        )
    spec = manifest.to_spec(root, max_seq_length)
    backend = OnnxBackend(
        root / filename, OnnxSettings(quantize=quantize, threads=threads), manifest.fingerprint
    )
    log.info("onnx session %s (%d intra-op threads)", root / filename, backend.threads)
    return spec, backend
