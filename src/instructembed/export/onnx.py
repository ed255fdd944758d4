"""The ONNX graphs of an export directory: fp32 (transformer ops fused) and dynamic int8.

Each graph is the whole `EmbeddingModel.forward`: encoder, per-row masked pooling, Dense, normalize.
`pool_mask` is a graph *input* (B, T), so each row keeps its own instruction offset, exactly as on
torch. Batch and sequence axes are dynamic; batches are padded only to their own longest row. Each
graph carries the source fingerprint in its metadata (`manifest.FINGERPRINT_KEY`).

`build.py` decides what to write and where; this module writes the graphs it is asked for.
Exporting needs torch and the `onnx` extra; running the graphs (`backends/onnx_backend.py`) does not.
"""

from __future__ import annotations

import json
import logging
from enum import Enum
from pathlib import Path
from typing import Any

from instructembed.checkpoint import ModelSpec
from instructembed.errors import CheckpointError, MissingExtraError
from instructembed.export.manifest import FINGERPRINT_KEY, OPSET, Quantization

log = logging.getLogger(__name__)

#: Encoders whose graphs onnxruntime's transformer optimizer fuses (Attention, SkipLayerNorm, Gelu).
_FUSABLE = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert", "electra": "bert"}


class Int8Coverage(str, Enum):
    """Which matrix multiplies the int8 graph quantizes (a closed set; see docs/performance.md).

    NO_FFN_DOWN (default): everything but the feed-forward down projections, whose input (the GELU
    output) is the hardest to fit in a per-tensor u8 range; on MiniLM min cosine to fp32 0.993 on
    STS-B sentences. ALL: every MatMul and the fused attention -- faster (~1.25x over NO_FFN_DOWN),
    min cosine 0.987.
    """

    ALL = "all"
    NO_FFN_DOWN = "no-ffn-down"


def require_export_deps() -> None:
    """The `onnx` extra and torch, checked before anything is written."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("onnx", exc.name or "onnxruntime") from None
    try:
        import torch  # noqa: F401
    except ImportError:
        raise CheckpointError(
            "exporting to ONNX needs torch; export once where torch is installed "
            "(`instructembed export MODEL --onnx --out DIR`), then load DIR with backend='onnx'"
        ) from None


def write_graphs(
    spec: ModelSpec,
    tmp: Path,
    fp: str,
    *,
    int8: bool,
    allow_pickle: bool,
    coverage: Int8Coverage,
    excluded: list[str],
) -> list[str]:
    """Write the fp32 ONNX graph and, if asked, its dynamic int8 twin into `tmp` where missing;
    returns the MatMuls the int8 graph leaves in fp32 (`excluded` as given when it already exists)."""
    fp32 = tmp / Quantization.FP32.filename
    if not fp32.is_file():
        log.info("exporting %s to ONNX (fp32)", spec.root)
        _export_fp32(spec, fp32, allow_pickle)
        _fuse(spec, fp32, _num_heads(spec))
        _stamp(fp32, fp)
    if int8 and not (tmp / Quantization.INT8.filename).is_file():
        log.info("quantizing to dynamic int8")
        excluded = _quantize_int8(fp32, tmp / Quantization.INT8.filename, coverage)
        _stamp(tmp / Quantization.INT8.filename, fp)
    return excluded


def _export_fp32(spec: ModelSpec, path: Path, allow_pickle: bool) -> list[str]:
    """torch.onnx (TorchScript exporter) of the full EmbeddingModel; returns the graph's input names."""
    import torch

    from instructembed.model import load_model

    model = load_model(spec, allow_pickle=allow_pickle)
    encoder: Any = model.encoder
    # Eager attention traces to the MatMul/Softmax pattern onnxruntime fuses into one Attention op.
    if hasattr(encoder, "set_attn_implementation"):
        try:
            encoder.set_attn_implementation("eager")
        except (ValueError, NotImplementedError):  # pragma: no cover - architectures without eager
            log.debug("could not switch %s to eager attention", type(encoder).__name__)
    from instructembed.tokenize import load_tokenizer

    uses_type_ids = load_tokenizer(spec).uses_type_ids
    batch, width = 2, 11
    example: dict[str, torch.Tensor] = {
        "input_ids": torch.randint(
            3, min(1000, int(getattr(encoder.config, "vocab_size", 1000))), (batch, width)
        ),
        "attention_mask": torch.ones(batch, width, dtype=torch.long),
        "pool_mask": torch.ones(batch, width, dtype=torch.float32),
    }
    if uses_type_ids:
        example["token_type_ids"] = torch.zeros(batch, width, dtype=torch.long)
    names = list(example)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["embedding"] = {0: "batch"}
    import warnings

    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(
            model,
            tuple(example.values()),
            str(path),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return names


def _fuse(spec: ModelSpec, path: Path, num_heads: int) -> None:
    """Fuse attention / layer-norm / gelu subgraphs in place (onnxruntime's transformer optimizer)."""
    family = _FUSABLE.get(spec.model_type)
    if family is None:
        log.info(
            "no transformer fusion for %s; session-level graph optimizations still apply", spec.model_type
        )
        return
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(path), model_type=family, num_heads=num_heads, hidden_size=spec.hidden_size, opt_level=0
    )
    log.info("fused operators: %s", {k: v for k, v in optimized.get_fused_operator_statistics().items() if v})
    optimized.save_model_to_file(str(path))


def _quantize_int8(src: Path, dst: Path, coverage: Int8Coverage) -> list[str]:
    """Dynamic int8: weights int8 per output channel (per-tensor costs accuracy on MiniLM: min cosine
    0.934 vs 0.986), activations quantized to u8 per tensor at run time (AVX-512 VNNI / AMX kernels).
    Returns the names of the nodes left in fp32.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded: list[str] = []
    if coverage is Int8Coverage.NO_FFN_DOWN:
        graph = onnx.load(str(src), load_external_data=False).graph
        excluded = [n.name for n in graph.node if n.op_type == "MatMul" and _is_ffn_down(n.name)]
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=excluded,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return excluded


def _is_ffn_down(name: str) -> bool:
    """BERT-family names: layer.N/output/dense (FFN down projection), not attention/output/dense."""
    return name.endswith("output/dense/MatMul") and "attention" not in name


def _stamp(path: Path, fingerprint_hex: str) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = FINGERPRINT_KEY, fingerprint_hex
    onnx.save(model, str(path))


def _num_heads(spec: ModelSpec) -> int:
    config = json.loads((spec.encoder_dir / "config.json").read_text(encoding="utf-8"))
    return int(config.get("num_attention_heads", config.get("num_heads", 0)))
