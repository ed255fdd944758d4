"""Export a checkpoint for fast CPU runtimes (ONNX Runtime, OpenVINO), cached by a fingerprint of its weights.

An export directory holds everything inference needs, and nothing that needs torch:

    DIR/
      instructembed-onnx.json   manifest: fingerprint of the source weights, pooling, dims, files
      model.onnx                ONNX fp32 graph, transformer ops fused (ids, masks, pool_mask) -> (B, D)
      model.int8.onnx           optional: dynamic int8 (weights int8 per channel, activations at run time)
      openvino_model.xml/.bin   optional: OpenVINO fp32 IR (`export_openvino.py`)
      openvino_model.int8.xml/.bin  optional: OpenVINO static int8, calibrated with NNCF
      config.json, tokenizer.json, vocab.txt, ...   the encoder config and tokenizer files

Each graph is the whole `EmbeddingModel.forward`: encoder, per-row masked pooling, Dense, normalize.
`pool_mask` is a graph *input* (B, T), so each row keeps its own instruction offset, exactly as on
torch. Batch and sequence axes are dynamic; batches are padded only to their own longest row.

Each graph also carries the source fingerprint in its metadata, so a model file swapped in
from another export is refused, and an export whose source weights have changed since is refused too.
Exporting needs torch (and the `onnx` / `openvino` extra); loading an export needs only that extra.
(The manifest keeps its first name, `instructembed-onnx.json`, so format-1 exports still load.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from instructembed.checkpoint import ModelSpec, read_spec, resolve_model_dir
from instructembed.errors import CheckpointError, MissingExtraError
from instructembed.inputs import Item

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


class Format(str, Enum):
    """Which runtime a graph is for: ONNX Runtime (`backend="onnx"`) or OpenVINO (`backend="openvino"`)."""

    ONNX = "onnx"
    OPENVINO = "openvino"


def graph_key(fmt: Format, quantize: Quantization) -> str:
    """The manifest's `files` key of a graph: "fp32"/"int8" (ONNX, as in format 1), "openvino-fp32"/..."""
    return quantize.value if fmt is Format.ONNX else f"{fmt.value}-{quantize.value}"


def graph_filename(fmt: Format, quantize: Quantization) -> str:
    if fmt is Format.ONNX:
        return quantize.filename
    from instructembed.export_openvino import FP32_FILE, INT8_FILE

    return FP32_FILE if quantize is Quantization.FP32 else INT8_FILE


def _graph_files(root: Path, fmt: Format, quantize: Quantization) -> list[Path]:
    """Every file of one graph (an OpenVINO IR is an .xml plus its .bin)."""
    main = root / graph_filename(fmt, quantize)
    return [main, main.with_suffix(".bin")] if fmt is Format.OPENVINO else [main]


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
    openvino_calibration: str = ""  # "default" or "sha256:..." of the texts the OpenVINO int8 graph saw
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
            f"{root} is not an export ({MANIFEST} is missing); make one with "
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


def export_backend(root: Path, quantize: str | Quantization | None = None) -> str:
    """The backend that can load export `root` at this quantization: "onnx" if it has that ONNX graph,
    else "openvino" if it has the OpenVINO one (for `info` and other callers that were not told)."""
    q = parse_quantize(quantize)
    files = read_manifest(root).files
    for fmt in Format:
        if graph_key(fmt, q) in files:
            return fmt.value
    raise CheckpointError(
        f"{root} has no {q.value} graph; add one with `instructembed export SOURCE --onnx|--openvino"
        f"{' --int8' if q is Quantization.INT8 else ''} --out {root}`"
    )


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


def check_stamp(path: Path, stamped: str | None, expected: str | None) -> None:
    """Refuse a graph whose embedded fingerprint is not the one its directory's manifest records."""
    if expected is not None and stamped != expected:
        raise CheckpointError(
            f"{path} was exported from different weights than its manifest says "
            f"({(stamped or 'none')[:12]} vs {expected[:12]}); re-export the directory"
        )


def open_graph(
    name_or_path: str | Path,
    fmt: Format,
    quantize: Quantization,
    *,
    allow_pickle: bool,
    revision: str | None,
    cache_dir: Path | None,
) -> tuple[ExportManifest, Path]:
    """The manifest and graph file a backend runs: an export directory as is (refused if its source
    changed since), a checkpoint through the cache (exported there first when missing)."""
    root = resolve_model_dir(name_or_path, revision)
    if is_export_dir(root):
        manifest = read_manifest(root)
        check_fresh(root, manifest)
    else:  # keyed by the fingerprint just computed: fresh by construction
        root = cached_export(
            root, quantize, fmt=fmt, cache_dir=cache_dir, allow_pickle=allow_pickle, revision=revision
        )
        manifest = read_manifest(root)
    filename = manifest.files.get(graph_key(fmt, quantize))
    if filename is None or not (root / filename).is_file():
        flag = " --int8" if quantize is Quantization.INT8 else ""
        raise CheckpointError(
            f"{root} has no {quantize.value} graph for {fmt.value}; add one with "
            f"`instructembed export {manifest.source} --{fmt.value}{flag} --out {root}`"
        )
    return manifest, root / filename


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
    for package in ("instructembed", "torch", "transformers", "onnx", "onnxruntime", "openvino", "nncf"):
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
    """Export `name_or_path` to ONNX in `out` (fp32, plus dynamic int8 if asked); see `export_model`."""
    return export_model(
        name_or_path,
        out,
        formats=(Format.ONNX,),
        int8=int8,
        allow_pickle=allow_pickle,
        revision=revision,
        overwrite=overwrite,
        int8_coverage=int8_coverage,
    )


def export_model(
    name_or_path: str | Path,
    out: Path,
    *,
    formats: Sequence[Format | str] = (Format.ONNX,),
    int8: bool = False,
    allow_pickle: bool = False,
    revision: str | None = None,
    overwrite: bool = False,
    int8_coverage: Int8Coverage | str = Int8Coverage.NO_FFN_DOWN,
    calibration: Sequence[Item] | None = None,
) -> Path:
    """Export `name_or_path` to `out` for each of `formats` (fp32, plus int8 if asked) and return `out`.

    ONNX int8 is dynamic (`int8_coverage` picks the matmuls); OpenVINO int8 is static, calibrated on
    `calibration` items (default: the packaged set). Cached: if `out` already holds an export of the
    same weights, only what is missing is made. If it holds an export of *different* weights, or an
    int8 graph made with another coverage or calibration, this refuses unless `overwrite=True`.
    """
    chosen = [Format(f) for f in formats]
    if not chosen:
        raise ValueError("nothing to export; choose at least one format (onnx, openvino)")
    source = resolve_model_dir(name_or_path, revision)
    return _export(
        source,
        fingerprint(source),
        Path(out).expanduser(),
        formats=chosen,
        int8=int8,
        allow_pickle=allow_pickle,
        overwrite=overwrite,
        coverage=Int8Coverage(int8_coverage),
        calibration=list(calibration) if calibration is not None else None,
    )


def _stale_int8(
    existing: ExportManifest, formats: Sequence[Format], coverage: Int8Coverage, calibration_key: str
) -> list[tuple[Format, str]]:
    """int8 graphs in `existing` made differently from what is asked now, with what differs."""
    recipes = {  # format -> (what its int8 graph depends on, recorded in the manifest, asked now)
        Format.ONNX: ("coverage", existing.int8_coverage, coverage.value),
        Format.OPENVINO: ("calibration", existing.openvino_calibration, calibration_key),
    }
    stale = []
    for fmt in formats:
        what, recorded, asked = recipes[fmt]
        if existing.files.get(graph_key(fmt, Quantization.INT8)) and recorded != asked:
            stale.append((fmt, f"{what} {recorded!r}, not {asked[:19]!r}"))
    return stale


def _export(
    source: Path,
    fp: str,
    out: Path,
    *,
    formats: Sequence[Format],
    int8: bool,
    allow_pickle: bool,
    overwrite: bool,
    coverage: Int8Coverage = Int8Coverage.NO_FFN_DOWN,
    calibration: list[Item] | None = None,
) -> Path:
    from instructembed.export_openvino import calibration_id

    if is_export_dir(source):
        raise CheckpointError(f"{source} is already an export; give the original model directory")
    spec = read_spec(source)
    quantizations = [Quantization.FP32] + ([Quantization.INT8] if int8 else [])
    wanted = [(f, q) for f in formats for q in quantizations]
    calibration_key = calibration_id(calibration)

    existing: ExportManifest | None = None
    if out.exists() and any(out.iterdir()):
        if not is_export_dir(out):
            raise FileExistsError(f"{out} exists, is not empty and is not an export; choose a new --out")
        existing = read_manifest(out)
        stale = _stale_int8(existing, formats, coverage, calibration_key) if int8 else []
        if existing.fingerprint != fp:
            if not overwrite:
                raise CheckpointError(
                    f"{out} holds an export of different weights (fingerprint {existing.fingerprint[:12]}, "
                    f"{source} is {fp[:12]}); choose a new --out, or pass --overwrite to replace it"
                )
            shutil.rmtree(out)
            existing = None
        elif stale:
            if not overwrite:
                what = "; ".join(f"its {fmt.value} int8 graph was made with {why}" for fmt, why in stale)
                raise CheckpointError(f"{out}: {what}; choose a new --out, or pass --overwrite to replace it")
            for fmt, _ in stale:
                for path in _graph_files(out, fmt, Quantization.INT8):
                    path.unlink(missing_ok=True)
            dropped = {graph_key(fmt, Quantization.INT8) for fmt, _ in stale}
            existing = replace(existing, files={k: v for k, v in existing.files.items() if k not in dropped})
        elif all(
            graph_key(f, q) in existing.files and (out / existing.files[graph_key(f, q)]).is_file()
            for f, q in wanted
        ):
            log.info("%s already holds this export (fingerprint %s)", out, fp[:12])
            return out

    if Format.ONNX in formats:
        _require_export_deps()
    if Format.OPENVINO in formats:
        from instructembed.export_openvino import require_export_deps

        require_export_deps(int8)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temp dir, then rename: a crash never leaves a half-written export behind.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if existing is not None:
            for item in out.iterdir():
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        excluded = list(existing.int8_excluded) if existing is not None else []
        if Format.ONNX in formats:
            excluded = _write_onnx(spec, tmp, fp, int8, allow_pickle, coverage, excluded)
        if Format.OPENVINO in formats:
            from instructembed.export_openvino import write_graphs

            missing = {q for q in quantizations if not (tmp / graph_filename(Format.OPENVINO, q)).is_file()}
            if missing:
                write_graphs(
                    spec,
                    tmp,
                    fp,
                    fp32=Quantization.FP32 in missing,
                    int8=Quantization.INT8 in missing,
                    allow_pickle=allow_pickle,
                    calibration=calibration,
                )
        _copy_tokenizer_files(spec, tmp)
        files = {
            graph_key(f, q): graph_filename(f, q)
            for f in Format
            for q in Quantization
            if (tmp / graph_filename(f, q)).is_file()
        }
        manifest = _manifest(
            spec,
            source,
            fp,
            files,
            excluded,
            int8_coverage=_recorded(
                files,
                Format.ONNX,
                int8 and Format.ONNX in formats,
                coverage.value,
                existing.int8_coverage if existing else "",
            ),
            openvino_calibration=_recorded(
                files,
                Format.OPENVINO,
                int8 and Format.OPENVINO in formats,
                calibration_key,
                existing.openvino_calibration if existing else "",
            ),
        )
        _write_manifest(tmp, manifest)
        tmp.chmod(0o755)  # mkdtemp makes it private; an export is as readable as any model directory
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote export %s (%s)", out, ", ".join(files.values()))
    return out


def _recorded(files: dict[str, str], fmt: Format, made_now: bool, now: str, before: str) -> str:
    """What a manifest records about how an int8 graph was made: now's, the earlier one's, or ""."""
    if graph_key(fmt, Quantization.INT8) not in files:
        return ""
    return now if made_now else before


def _write_onnx(
    spec: ModelSpec,
    tmp: Path,
    fp: str,
    int8: bool,
    allow_pickle: bool,
    coverage: Int8Coverage,
    excluded: list[str],
) -> list[str]:
    """The fp32 ONNX graph and, if asked, its dynamic int8 twin, where missing; returns int8 exclusions."""
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


def _manifest(
    spec: ModelSpec,
    source: Path,
    fp: str,
    files: dict[str, str],
    excluded: list[str],
    *,
    int8_coverage: str,
    openvino_calibration: str,
) -> ExportManifest:
    dense = None
    if spec.dense is not None:
        d = spec.dense
        dense = {
            "in_features": d.in_features,
            "out_features": d.out_features,
            "bias": d.bias,
            "activation": d.activation,
        }
    return ExportManifest(
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
        int8_excluded=excluded if graph_key(Format.ONNX, Quantization.INT8) in files else [],
        int8_coverage=int8_coverage,
        openvino_calibration=openvino_calibration,
        versions=_versions(),
    )


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
    fmt: Format = Format.ONNX,
    cache_dir: Path | None = None,
    allow_pickle: bool = False,
    revision: str | None = None,
) -> Path:
    """The export of `name_or_path` in the cache (keyed by its fingerprint), made if missing.

    One cache directory per fingerprint holds the graphs of every format asked for so far.
    OpenVINO int8 graphs in the cache are always calibrated on the packaged default set.
    """
    source = resolve_model_dir(name_or_path, revision)
    fp = fingerprint(source)
    out = (cache_dir or default_cache_dir()) / fp[:24]
    key = graph_key(fmt, quantize)
    if is_export_dir(out):
        manifest = read_manifest(out)
        fresh = manifest.fingerprint == fp and key in manifest.files
        if fresh and (
            fmt is Format.ONNX or quantize is Quantization.FP32 or manifest.openvino_calibration == "default"
        ):
            return out  # cache hit: nothing to check or import
    return _export(
        source,
        fp,
        out,
        formats=[fmt],
        int8=quantize is Quantization.INT8,
        allow_pickle=allow_pickle,
        overwrite=True,
    )
