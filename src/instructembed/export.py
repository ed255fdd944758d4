"""Export a checkpoint to ONNX (fp32, optionally dynamic int8), cached by a fingerprint of its weights.

An export directory holds everything inference needs, and nothing that needs torch:

    DIR/
      instructembed-onnx.json   manifest: fingerprint of the source weights, pooling, dims, files
      model.onnx                fp32 graph, transformer ops fused (ids, masks, pool_mask) -> (B, D)
      model.int8.onnx           optional: dynamic int8 (weights int8 per channel, activations at run time)
      config.json, tokenizer.json, vocab.txt, ...   the encoder config and tokenizer files

The graph is the whole `EmbeddingModel.forward`: encoder, per-row masked pooling, Dense, normalize.
`pool_mask` is a graph *input* (B, T), so each row keeps its own instruction offset, exactly as on
torch. Batch and sequence axes are dynamic; batches are padded only to their own longest row.

Each graph also carries the source fingerprint in its ONNX metadata, so a model file swapped in
from another export is refused, and an export whose source weights have changed since is refused too.
Exporting needs torch (and the `onnx` extra); loading an export needs only the `onnx` extra.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from instructembed.checkpoint import ModelSpec, read_spec, resolve_model_dir
from instructembed.errors import CheckpointError, MissingExtraError

log = logging.getLogger(__name__)

MANIFEST = "instructembed-onnx.json"
EXPORT_FORMAT_VERSION = 1
OPSET = 17
#: Key of the ONNX metadata entry that ties a graph to the weights it was exported from.
FINGERPRINT_KEY = "instructembed.fingerprint"
#: Encoders whose graphs onnxruntime's transformer optimizer fuses (Attention, SkipLayerNorm, Gelu).
_FUSABLE = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert", "electra": "bert"}
_FINGERPRINT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")
_FINGERPRINT_SKIP_DIRS = {"onnx", "openvino", ".git", ".cache"}


class Quantization(str, Enum):
    """Which graph of an export runs. Closed set: fp32, or dynamic int8 (weights int8, activations u8)."""

    FP32 = "fp32"
    INT8 = "int8"

    @property
    def filename(self) -> str:
        return "model.onnx" if self is Quantization.FP32 else "model.int8.onnx"


class Int8Coverage(str, Enum):
    """Which matrix multiplies the int8 graph quantizes (a closed set; see docs/performance.md).

    NO_FFN_DOWN (default): everything but the feed-forward down projections, whose input (the GELU
    output) is the hardest to fit in a per-tensor u8 range; on MiniLM min cosine to fp32 0.993 on
    STS-B sentences. ALL: every MatMul and the fused attention -- faster (~1.25x over NO_FFN_DOWN),
    min cosine 0.987.
    """

    ALL = "all"
    NO_FFN_DOWN = "no-ffn-down"


def parse_quantize(quantize: str | Quantization | None) -> Quantization:
    """None / "fp32" / "none" -> FP32, "int8" -> INT8; anything else is a ValueError saying what works."""
    if quantize is None:
        return Quantization.FP32
    if isinstance(quantize, Quantization):
        return quantize
    value = str(quantize).lower()
    if value in ("none", "fp32", "float32"):
        return Quantization.FP32
    try:
        return Quantization(value)
    except ValueError:
        raise ValueError(f"quantize={quantize!r} is not supported; use None (fp32) or 'int8'") from None


@dataclass(frozen=True)
class ExportManifest:
    """What an export directory is: read back without torch to rebuild the `ModelSpec` and backend."""

    fingerprint: str  # sha256 of the source checkpoint's weights, configs and tokenizer files
    source: str  # resolved source directory at export time (used to detect stale exports)
    source_layout: str
    model_type: str
    hidden_size: int
    dimension: int
    pooling: str
    normalize: bool
    max_seq_length: int
    do_lower_case: bool
    dense: (
        dict[str, Any] | None
    )  # in/out features and activation, for `Embedder.info` (weights are in the graph)
    files: dict[str, str] = field(default_factory=dict)  # Quantization value -> file name
    int8_coverage: str = ""  # an Int8Coverage value, when there is an int8 graph
    int8_excluded: list[str] = field(default_factory=list)  # MatMuls left in fp32 in the int8 graph
    opset: int = OPSET
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = EXPORT_FORMAT_VERSION

    def to_spec(self, root: Path, max_seq_length: int | None = None) -> ModelSpec:
        from instructembed.checkpoint import DenseSpec, Layout
        from instructembed.pooling import PoolingMode

        dense = None
        if self.dense is not None:
            dense = DenseSpec(
                in_features=int(self.dense["in_features"]),
                out_features=int(self.dense["out_features"]),
                bias=bool(self.dense.get("bias", True)),
                activation=str(self.dense.get("activation", "identity")),
                directory=root,  # the Dense weights live inside the graph
            )
        if max_seq_length is not None and max_seq_length < 2:
            raise ValueError(f"max_seq_length must be at least 2, got {max_seq_length}")
        return ModelSpec(
            root=root,
            layout=Layout(self.source_layout),
            encoder_dir=root,
            model_type=self.model_type,
            hidden_size=self.hidden_size,
            pooling=PoolingMode(self.pooling),
            dense=dense,
            normalize=self.normalize,
            max_seq_length=max_seq_length or self.max_seq_length,
            do_lower_case=self.do_lower_case,
        )


def is_export_dir(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def read_manifest(root: Path) -> ExportManifest:
    path = root / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{root} is not an ONNX export ({MANIFEST} is missing); make one with "
            f"`instructembed export MODEL --onnx --out {root}`"
        ) from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} should hold a JSON object")
    if int(data.get("format_version", 0)) > EXPORT_FORMAT_VERSION:
        raise CheckpointError(
            f"{root} was exported by a newer instructembed; upgrade instructembed to load it"
        )
    try:
        return ExportManifest(**data)
    except TypeError as exc:
        raise CheckpointError(f"{path} is malformed ({exc}); re-export the model") from None


def _write_manifest(root: Path, manifest: ExportManifest) -> None:
    (root / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------- fingerprint
def fingerprint(root: Path) -> str:
    """sha256 over every config, weights and tokenizer file under `root` (names and bytes).

    Reads all weight bytes: about 0.2 s for MiniLM (90 MB), seconds for multi-GB checkpoints.
    """
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix in _FINGERPRINT_SUFFIXES
        and p.name != MANIFEST
        and not (set(p.relative_to(root).parts[:-1]) & _FINGERPRINT_SKIP_DIRS)
    )
    if not files:
        raise CheckpointError(f"{root} holds no config or weights files to fingerprint")
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def graph_fingerprint(metadata: dict[str, str]) -> str | None:
    return metadata.get(FINGERPRINT_KEY)


def check_fresh(root: Path, manifest: ExportManifest) -> None:
    """Refuse an export whose source weights changed since it was made (when the source is still there)."""
    source = Path(manifest.source)
    if not source.is_dir() or is_export_dir(source):
        return  # moved or deleted source: the export stands on its own
    current = fingerprint(source)
    if current != manifest.fingerprint:
        raise CheckpointError(
            f"{root} was exported from different weights than {source} holds now (fingerprint "
            f"{manifest.fingerprint[:12]} at export, {current[:12]} now); re-export it with "
            f"`instructembed export {source} --onnx --out {root} --overwrite`, or load {source} with "
            "backend='onnx' to export into the cache"
        )


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "instructembed" / "onnx"


# ---------------------------------------------------------------------------------------- export
def _require_export_deps() -> None:
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
    from instructembed.embedder import load_tokenizer

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


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("instructembed", "torch", "transformers", "onnx", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):
            out[package] = version(package)
    return out


def _num_heads(spec: ModelSpec) -> int:
    config = json.loads((spec.encoder_dir / "config.json").read_text(encoding="utf-8"))
    return int(config.get("num_attention_heads", config.get("num_heads", 0)))


def export_onnx(
    name_or_path: str | Path,
    out: Path,
    *,
    int8: bool = False,
    allow_pickle: bool = False,
    revision: str | None = None,
    overwrite: bool = False,
    int8_coverage: Int8Coverage | str = Int8Coverage.NO_FFN_DOWN,
) -> Path:
    """Export `name_or_path` to `out` (fp32, plus int8 if asked) and return `out`.

    Cached: if `out` already holds an export of the same weights, only what is missing is made.
    If it holds an export of *different* weights, this refuses unless `overwrite=True`.
    """
    source = resolve_model_dir(name_or_path, revision)
    coverage = Int8Coverage(int8_coverage)
    return _export(
        source, fingerprint(source), Path(out).expanduser(), int8, allow_pickle, overwrite, coverage
    )


def _export(
    source: Path,
    fp: str,
    out: Path,
    int8: bool,
    allow_pickle: bool,
    overwrite: bool,
    coverage: Int8Coverage = Int8Coverage.NO_FFN_DOWN,
) -> Path:
    if is_export_dir(source):
        raise CheckpointError(f"{source} is already an ONNX export; give the original model directory")
    spec = read_spec(source)
    wanted = [Quantization.FP32] + ([Quantization.INT8] if int8 else [])

    existing: ExportManifest | None = None
    if out.exists() and any(out.iterdir()):
        if not is_export_dir(out):
            raise FileExistsError(f"{out} exists, is not empty and is not an ONNX export; choose a new --out")
        existing = read_manifest(out)
        if existing.fingerprint != fp:
            if not overwrite:
                raise CheckpointError(
                    f"{out} holds an export of different weights (fingerprint {existing.fingerprint[:12]}, "
                    f"{source} is {fp[:12]}); choose a new --out, or pass --overwrite to replace it"
                )
            shutil.rmtree(out)
            existing = None
        elif (
            int8 and existing.files.get(Quantization.INT8.value) and existing.int8_coverage != coverage.value
        ):
            if not overwrite:
                raise CheckpointError(
                    f"{out} holds an int8 graph of coverage {existing.int8_coverage!r}, not {coverage.value!r}; "
                    "choose a new --out, or pass --overwrite to replace it"
                )
            (out / Quantization.INT8.filename).unlink()
            existing = replace(existing, files={k: v for k, v in existing.files.items() if k != "int8"})
        elif all(q.value in existing.files and (out / existing.files[q.value]).is_file() for q in wanted):
            log.info("%s already holds this export (fingerprint %s)", out, fp[:12])
            return out

    _require_export_deps()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temp dir, then rename: a crash never leaves a half-written export behind.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if existing is not None:
            for item in out.iterdir():
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        fp32 = tmp / Quantization.FP32.filename
        inputs_made = False
        if not fp32.is_file():
            log.info("exporting %s to ONNX (fp32)", source)
            _export_fp32(spec, fp32, allow_pickle)
            _fuse(spec, fp32, _num_heads(spec))
            _stamp(fp32, fp)
            inputs_made = True
        excluded = list(existing.int8_excluded) if existing is not None else []
        if int8 and not (tmp / Quantization.INT8.filename).is_file():
            log.info("quantizing to dynamic int8")
            excluded = _quantize_int8(fp32, tmp / Quantization.INT8.filename, coverage)
            _stamp(tmp / Quantization.INT8.filename, fp)
        if inputs_made or existing is None:
            _copy_tokenizer_files(spec, tmp)
        files = {q.value: q.filename for q in Quantization if (tmp / q.filename).is_file()}
        dense = None
        if spec.dense is not None:
            d = spec.dense
            dense = {
                "in_features": d.in_features,
                "out_features": d.out_features,
                "bias": d.bias,
                "activation": d.activation,
            }
        if "int8" not in files:
            int8_coverage = ""
        elif int8:
            int8_coverage = coverage.value
        else:
            int8_coverage = existing.int8_coverage if existing is not None else ""
        manifest = ExportManifest(
            fingerprint=fp,
            source=str(source),
            source_layout=spec.layout.value,
            model_type=spec.model_type,
            hidden_size=spec.hidden_size,
            dimension=spec.dimension,
            pooling=spec.pooling.value,
            normalize=spec.normalize,
            max_seq_length=spec.max_seq_length,
            do_lower_case=spec.do_lower_case,
            dense=dense,
            files=files,
            int8_excluded=excluded,
            int8_coverage=int8_coverage,
            versions=_versions(),
        )
        _write_manifest(tmp, manifest)
        tmp.chmod(0o755)  # mkdtemp makes it private; an export is as readable as any model directory
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote ONNX export %s (%s)", out, ", ".join(files.values()))
    return out


def _copy_tokenizer_files(spec: ModelSpec, target: Path) -> None:
    """The encoder's config.json and tokenizer files, so the export loads on its own."""
    names = (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "sentencepiece.bpe.model",
        "spiece.model",
        "merges.txt",
        "vocab.json",
        "added_tokens.json",
    )
    for name in names:
        if (spec.encoder_dir / name).is_file():
            shutil.copy2(spec.encoder_dir / name, target / name)
    if not (target / "tokenizer.json").is_file():
        # Older checkpoints ship only slow-tokenizer files; save the fast one we would build anyway.
        from instructembed.embedder import load_tokenizer

        load_tokenizer(spec).hf_tokenizer.save_pretrained(str(target))


def cached_export(
    name_or_path: str | Path,
    quantize: Quantization,
    *,
    cache_dir: Path | None = None,
    allow_pickle: bool = False,
    revision: str | None = None,
) -> Path:
    """The export of `name_or_path` in the cache (keyed by its fingerprint), made if missing."""
    source = resolve_model_dir(name_or_path, revision)
    fp = fingerprint(source)
    out = (cache_dir or default_cache_dir()) / fp[:24]
    if is_export_dir(out):
        manifest = read_manifest(out)
        if manifest.fingerprint == fp and quantize.value in manifest.files:
            return out  # cache hit: nothing to check or import
    return _export(source, fp, out, quantize is Quantization.INT8, allow_pickle, overwrite=True)
