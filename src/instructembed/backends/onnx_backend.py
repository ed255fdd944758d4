"""Fast CPU backend: an ONNX Runtime session over an export made by `instructembed export`.

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

from instructembed.backends import batch_feed, physical_cores
from instructembed.batching import TokenBatch
from instructembed.errors import CheckpointError, MissingExtraError
from instructembed.export.manifest import FINGERPRINT_KEY, Quantization, check_stamp

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
        check_stamp(model_path, stamped, expected_fingerprint)
        self.model_path = model_path
        self.settings = settings
        self.threads = options.intra_op_num_threads
        self.input_names = [i.name for i in self.session.get_inputs()]  # CLS pooling drops pool_mask
        log.info("onnx session %s (%d intra-op threads)", model_path, self.threads)

    @property
    def precision(self) -> str:
        return "int8 (dynamic)" if self.settings.quantize is Quantization.INT8 else "fp32"

    def run(self, batch: TokenBatch) -> np.ndarray:
        (out,) = self.session.run(["embedding"], batch_feed(batch, self.input_names))  # (B, D)
        return np.asarray(out, dtype=np.float32)


def onnx_settings(quantize: Quantization, dtype: str | None, threads: int | None) -> OnnxSettings:
    """The session settings for `Embedder.load`'s arguments, checked (with the extra) before any export."""
    if dtype is not None and dtype.lower() not in ("float32", "fp32"):
        raise ValueError(
            f"dtype {dtype!r} is not supported on the onnx backend; use quantize='int8' for speed, "
            "or backend='torch' / 'openvino' with dtype='bfloat16'"
        )
    _ort()  # the missing-extra message before anything else
    return OnnxSettings(quantize=quantize, threads=threads)
