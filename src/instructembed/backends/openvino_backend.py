"""Fast CPU backend: OpenVINO over the IR graphs of an export (`instructembed export --openvino`).

Same contract as the other backends: a padded `TokenBatch` (ids, attention mask, per-row pooling
mask, token type ids for BERT) in, pooled float32 (B, D) out, so mixed instructions in one batch
work and `Embedder.embed` behaves identically whichever backend runs.

Precision: OpenVINO's CPU plugin runs fp32 graphs in bf16 by default on CPUs with AMX/AVX-512 BF16.
We ask for f32 explicitly unless `dtype="bfloat16"`, so the fp32 graph gives fp32 results (equal to
torch within 1e-6). The static int8 graph runs its unquantized ops (layer norms, softmax, the
feed-forward down projections) in bf16 unless `dtype="float32"`: on MiniLM the min cosine to fp32
was the same either way (0.996) and bf16 was faster. On CPUs without bf16, OpenVINO uses f32.

Nothing here imports torch: an export directory loads and embeds with only the `openvino` extra.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instructembed.backends import batch_feed, physical_cores
from instructembed.batching import TokenBatch
from instructembed.errors import CheckpointError, MissingExtraError
from instructembed.export.manifest import Quantization, check_stamp, openvino_fingerprint

log = logging.getLogger(__name__)

#: `dtype=` values the OpenVINO backend takes, and the inference precision each asks the CPU plugin for.
PRECISIONS = {"float32": "f32", "fp32": "f32", "bfloat16": "bf16", "bf16": "bf16"}


def _ov() -> Any:
    try:
        import openvino
    except ImportError:
        raise MissingExtraError("openvino", "openvino") from None
    return openvino


@dataclass(frozen=True)
class OpenVinoSettings:
    quantize: Quantization = Quantization.FP32
    precision: str = "f32"  # inference precision of ops left in floating point: "f32" or "bf16"
    threads: int | None = None  # None = physical cores

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.precision not in ("f32", "bf16"):
            raise ValueError(f"precision must be 'f32' or 'bf16', got {self.precision!r}")


def parse_precision(dtype: str | None, quantize: Quantization) -> str:
    """Inference precision for ops in floating point: f32 for the fp32 graph (exact), bf16 for the
    int8 graph's unquantized ops (faster on AMX, same min cosine); `dtype` overrides either."""
    if dtype is None:
        return "bf16" if quantize is Quantization.INT8 else "f32"
    try:
        return PRECISIONS[dtype.lower()]
    except KeyError:
        raise ValueError(
            f"dtype {dtype!r} is not supported on the openvino backend; use 'float32' or 'bfloat16', "
            "or quantize='int8'"
        ) from None


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, model_path: Path, settings: OpenVinoSettings, expected_fingerprint: str | None = None):
        ov = _ov()
        core = ov.Core()
        try:
            model = core.read_model(str(model_path))
        except Exception as exc:  # openvino raises RuntimeError subclasses of its own
            raise CheckpointError(
                f"openvino could not read {model_path}: {exc}; re-export the model"
            ) from exc
        check_stamp(model_path, openvino_fingerprint(model), expected_fingerprint)
        self.threads = settings.threads or physical_cores()
        config = {
            "PERFORMANCE_HINT": "LATENCY",  # one stream: each batch uses every thread
            "INFERENCE_NUM_THREADS": self.threads,
            "INFERENCE_PRECISION_HINT": settings.precision,
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self.model_path = model_path
        self.settings = settings
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # an infer request serves one caller at a time
        log.info("openvino %s (%d threads, %s)", model_path, self.threads, settings.precision)

    @property
    def precision(self) -> str:
        """What the compiled model runs in: the plugin's answer, so a CPU without bf16 reports fp32."""
        used = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        rest = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(used, used)
        if self.settings.quantize is Quantization.INT8:
            return f"int8 (static; other ops {rest})"
        return rest

    def run(self, batch: TokenBatch) -> np.ndarray:
        feed = batch_feed(batch, self.input_names)
        with self._lock:
            result = self._request.infer(feed)
            out = np.array(result["embedding"], dtype=np.float32)  # copy: the request reuses its buffer
        return out


def openvino_settings(quantize: Quantization, dtype: str | None, threads: int | None) -> OpenVinoSettings:
    """The compile settings for `Embedder.load`'s arguments, checked (with the extra) before any export."""
    _ov()  # the missing-extra message before anything else
    return OpenVinoSettings(quantize=quantize, precision=parse_precision(dtype, quantize), threads=threads)
