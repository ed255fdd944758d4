"""OpenVINO graphs for an export directory: fp32 IR, and static int8 calibrated with NNCF.

Two files next to the ONNX ones (see `manifest.py` for the directory and its manifest):

    openvino_model.xml/.bin        fp32 IR of the whole EmbeddingModel, converted from torch
    openvino_model.int8.xml/.bin   static int8: NNCF post-training quantization (weights int8 per
                                   channel, activations int8 with ranges measured on calibration
                                   batches; bias correction on, smooth-quant off); the feed-forward
                                   down projections stay in floating point

Static int8 differs from ONNX Runtime's dynamic int8: activation ranges are fixed at export time
from calibration data, so no quantize op runs per batch, and OpenVINO fuses the (de)quantization
into AMX / VNNI int8 matrix multiplies. The ranges depend on the calibration texts; the packaged
default set (`data/calibration.jsonl`: short sentences, questions, tweets and abstracts, each with an
INSTRUCTOR-style instruction) suits general text. Pass your own texts for a narrow domain.

Like the ONNX graph, each IR takes (input_ids, attention_mask, pool_mask[, token_type_ids]) with
dynamic batch and sequence axes and returns the pooled (B, D) `embedding`, and carries the source
fingerprint in its runtime info (`manifest.RT_INFO_PATH`). `build.py` decides what to write and where;
this module writes the graphs it is asked for. Converting needs torch, openvino and nncf; running the
graphs (`backends/openvino_backend.py`) needs only openvino.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instructembed.checkpoint import ModelSpec
from instructembed.errors import CheckpointError, MissingExtraError
from instructembed.export.manifest import OPENVINO_FP32_FILE, OPENVINO_INT8_FILE, RT_INFO_PATH
from instructembed.inputs import Item
from instructembed.package_data import read_text

if TYPE_CHECKING:
    from instructembed.tokenize import InstructionTokenizer

log = logging.getLogger(__name__)

#: Rows per calibration batch: small batches give NNCF more range samples from a few hundred texts.
CALIBRATION_BATCH_ROWS = 8
DEFAULT_CALIBRATION = "default"


def openvino_module() -> Any:
    try:
        import openvino
    except ImportError:
        raise MissingExtraError("openvino", "openvino") from None
    return openvino


def _nncf() -> Any:
    try:
        import nncf
    except ImportError:
        raise MissingExtraError("openvino", "nncf") from None
    return nncf


def default_calibration() -> list[Item]:
    """The packaged calibration set: (instruction, text) items written for instructembed."""
    text = read_text("calibration.jsonl")
    return [Item(row["instruction"], row["text"]) for row in map(json.loads, text.splitlines()) if row]


def calibration_id(items: Sequence[Item] | None) -> str:
    """ "default", or "sha256:<hex>" of the given items: recorded in the manifest, keys the int8 graph."""
    if items is None:
        return DEFAULT_CALIBRATION
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item.instruction, item.text], ensure_ascii=False).encode("utf-8") + b"\n")
    return "sha256:" + digest.hexdigest()


def require_export_deps(int8: bool) -> None:
    openvino_module()
    if int8:
        _nncf()
    try:
        import torch  # noqa: F401
    except ImportError:
        raise CheckpointError(
            "converting to OpenVINO needs torch; export once where torch is installed "
            "(`instructembed export MODEL --openvino --out DIR`), then load DIR with backend='openvino'"
        ) from None


def _example(spec: ModelSpec, input_names: Sequence[str], vocab_size: int) -> dict[str, Any]:
    import torch

    batch, width = 2, 11
    example: dict[str, torch.Tensor] = {
        "input_ids": torch.randint(3, min(1000, vocab_size), (batch, width)),
        "attention_mask": torch.ones(batch, width, dtype=torch.long),
        "pool_mask": torch.ones(batch, width, dtype=torch.float32),
        "token_type_ids": torch.zeros(batch, width, dtype=torch.long),
    }
    return {name: example[name] for name in input_names}


def convert(spec: ModelSpec, allow_pickle: bool, uses_type_ids: bool) -> Any:
    """torch EmbeddingModel -> openvino.Model with named inputs and output, dynamic (batch, sequence)."""
    import torch

    ov = openvino_module()
    from instructembed.model import load_model

    model = load_model(spec, allow_pickle=allow_pickle).eval()
    names = ["input_ids", "attention_mask", "pool_mask"] + (["token_type_ids"] if uses_type_ids else [])
    vocab = int(getattr(model.encoder.config, "vocab_size", 1000))
    types = {"pool_mask": ov.Type.f32}
    shapes = [(name, [-1, -1], types.get(name, ov.Type.i64)) for name in names]
    import warnings

    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        ov_model = ov.convert_model(
            model, example_input=tuple(_example(spec, names, vocab).values()), input=shapes
        )
    for port, name in zip(ov_model.inputs, names, strict=True):
        port.get_tensor().set_names({name})
    ov_model.outputs[0].get_tensor().set_names({"embedding"})
    return ov_model


def calibration_batches(
    tokenizer: InstructionTokenizer, items: Sequence[Item], input_names: list[str]
) -> list[dict[str, Any]]:
    """Token batches as the backend will see them (same tokenizer and collation), as input feeds."""
    from instructembed.backends import batch_feed
    from instructembed.batching import collate, plan_batches

    if not items:
        raise ValueError("the calibration set is empty; give at least a few dozen representative texts")
    encoded = tokenizer.encode(list(items))
    return [
        batch_feed(
            collate([encoded[i] for i in indices], indices, tokenizer.pad_id, tokenizer.uses_type_ids),
            input_names,
        )
        for indices in plan_batches([len(e.ids) for e in encoded], 4096, CALIBRATION_BATCH_ROWS)
    ]


#: Feed-forward down projections (BERT family, T5), left unquantized: their input is the GELU/ReLU
#: output, whose range fits int8 worst. Quantizing them too cost MiniLM min cosine 0.989 on SciFact
#: abstracts (0.996 with them in bf16/f32), for no speed we could measure on this machine.
FFN_DOWN_PATTERNS = (r".*layer\.\d+\.output\.dense/.*", r".*DenseReluDense\.wo/.*")


def quantize_int8(ov_model: Any, feeds: list[dict[str, Any]]) -> Any:
    """NNCF post-training static quantization for transformers, fast bias correction on.

    Smooth-quant (NNCF's default for transformers) is off: it moves activation outliers into the
    weights using scales fitted to the calibration texts, and inputs unlike them then clip. On MiniLM
    a repeated-word text ("token token ...") fell to min cosine 0.959 with it and 0.994 without;
    natural text stayed >= 0.993 either way.
    """
    nncf = _nncf()
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    return nncf.quantize(
        ov_model,
        nncf.Dataset(feeds),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(feeds),
        ignored_scope=nncf.IgnoredScope(patterns=list(FFN_DOWN_PATTERNS), validate=False),
        advanced_parameters=AdvancedQuantizationParameters(
            smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=-1)
        ),
    )


def save(ov_model: Any, path: Path, fingerprint_hex: str) -> None:
    """Save an IR (weights kept at their precision: no fp16 compression) stamped with the fingerprint."""
    ov = openvino_module()
    ov_model.set_rt_info(fingerprint_hex, RT_INFO_PATH)
    ov.save_model(ov_model, str(path), compress_to_fp16=False)


def write_graphs(
    spec: ModelSpec,
    target: Path,
    fingerprint_hex: str,
    *,
    fp32: bool,
    int8: bool,
    allow_pickle: bool,
    calibration: Iterable[Item] | None,
) -> None:
    """Write the fp32 and/or int8 IR into `target` (the int8 graph is quantized from the fp32 model)."""
    from instructembed.tokenize import load_tokenizer

    tokenizer = load_tokenizer(spec)
    log.info("converting %s to OpenVINO", spec.root)
    ov_model = convert(spec, allow_pickle, tokenizer.uses_type_ids)
    if fp32:
        save(ov_model, target / OPENVINO_FP32_FILE, fingerprint_hex)
    if int8:
        items = list(calibration) if calibration is not None else default_calibration()
        feeds = calibration_batches(tokenizer, items, [port.get_any_name() for port in ov_model.inputs])
        log.info("calibrating static int8 on %d texts (%d batches)", len(items), len(feeds))
        save(quantize_int8(ov_model, feeds), target / OPENVINO_INT8_FILE, fingerprint_hex)
