"""What an export directory is, and whether it may be run: its manifest, fingerprints and stale checks.

An export directory holds everything inference needs, and nothing that needs torch:

    DIR/
      instructembed-onnx.json   manifest: fingerprint of the source weights, pooling, dims, files
      model.onnx                ONNX fp32 graph, transformer ops fused (ids, masks, pool_mask) -> (B, D)
      model.int8.onnx           optional: dynamic int8 (weights int8 per channel, activations at run time)
      openvino_model.xml/.bin   optional: OpenVINO fp32 IR
      openvino_model.int8.xml/.bin  optional: OpenVINO static int8, calibrated with NNCF
      config.json, tokenizer.json, vocab.txt, ...   the encoder config and tokenizer files

Each graph also carries the source fingerprint (ONNX metadata, OpenVINO runtime info), so a graph
swapped in from another export is refused, and an export whose source weights have changed since is
refused too. (The manifest keeps its first name, `instructembed-onnx.json`, so format-1 exports load.)

This module is what the backends see of an export: it imports no exporter and no runtime. The
exporters that write these directories are `onnx.py` and `openvino.py`, driven by `build.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from instructembed.checkpoint import INSTRUCTION_JOIN, DenseSpec, Layout, ModelSpec
from instructembed.errors import CheckpointError
from instructembed.pooling import PoolingMode

MANIFEST = "instructembed-onnx.json"
EXPORT_FORMAT_VERSION = 1
OPSET = 17
#: Key of the ONNX metadata entry that ties a graph to the weights it was exported from.
FINGERPRINT_KEY = "instructembed.fingerprint"
#: Where an OpenVINO IR keeps the same fingerprint (`Model.get_rt_info`).
RT_INFO_PATH = ["instructembed", "fingerprint"]
OPENVINO_FP32_FILE = "openvino_model.xml"
OPENVINO_INT8_FILE = "openvino_model.int8.xml"
_FINGERPRINT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model")
_FINGERPRINT_SKIP_DIRS = {"onnx", "openvino", ".git", ".cache"}


class Quantization(str, Enum):
    """Which graph of an export runs. Closed set: fp32, or int8 (dynamic on ONNX, static on OpenVINO)."""

    FP32 = "fp32"
    INT8 = "int8"

    @property
    def filename(self) -> str:
        return "model.onnx" if self is Quantization.FP32 else "model.int8.onnx"


class Format(str, Enum):
    """Which runtime a graph is for: ONNX Runtime (`backend="onnx"`) or OpenVINO (`backend="openvino"`)."""

    ONNX = "onnx"
    OPENVINO = "openvino"


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


def graph_key(fmt: Format, quantize: Quantization) -> str:
    """The manifest's `files` key of a graph: "fp32"/"int8" (ONNX, as in format 1), "openvino-fp32"/..."""
    return quantize.value if fmt is Format.ONNX else f"{fmt.value}-{quantize.value}"


def graph_filename(fmt: Format, quantize: Quantization) -> str:
    if fmt is Format.ONNX:
        return quantize.filename
    return OPENVINO_FP32_FILE if quantize is Quantization.FP32 else OPENVINO_INT8_FILE


def graph_files(root: Path, fmt: Format, quantize: Quantization) -> list[Path]:
    """Every file of one graph (an OpenVINO IR is an .xml plus its .bin)."""
    main = root / graph_filename(fmt, quantize)
    return [main, main.with_suffix(".bin")] if fmt is Format.OPENVINO else [main]


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
    # How instructions meet texts (checkpoint.ModelSpec); defaults are what exports before them meant.
    instruction_join: str = INSTRUCTION_JOIN
    include_prompt: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    padding_side: str = "right"
    format_version: int = EXPORT_FORMAT_VERSION

    def to_spec(self, root: Path, max_seq_length: int | None = None) -> ModelSpec:
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
            instruction_join=self.instruction_join,
            include_prompt=self.include_prompt,
            prompts=dict(self.prompts),
            default_prompt_name=self.default_prompt_name,
            padding_side=self.padding_side,
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


def write_manifest(root: Path, manifest: ExportManifest) -> None:
    (root / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")


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


def graph_path(root: Path, manifest: ExportManifest, fmt: Format, quantize: Quantization) -> Path:
    """The file of the graph a backend runs, or a CheckpointError saying how to add it."""
    filename = manifest.files.get(graph_key(fmt, quantize))
    if filename is None or not (root / filename).is_file():
        flag = " --int8" if quantize is Quantization.INT8 else ""
        raise CheckpointError(
            f"{root} has no {quantize.value} graph for {fmt.value}; add one with "
            f"`instructembed export {manifest.source} --{fmt.value}{flag} --out {root}`"
        )
    return root / filename


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


def model_identity(root: Path) -> str:
    """The sha256 identity of a model directory: an export's recorded source fingerprint, else its files'.

    An export and the checkpoint it came from share one identity, so vectors made by either compare.
    """
    return read_manifest(root).fingerprint if is_export_dir(root) else fingerprint(root)


def openvino_fingerprint(ov_model: Any) -> str | None:
    """The fingerprint an OpenVINO `Model` was stamped with, if any (read without importing openvino)."""
    if not ov_model.has_rt_info(RT_INFO_PATH):
        return None
    return str(ov_model.get_rt_info(RT_INFO_PATH).astype(str))


# ---------------------------------------------------------------------------------------- stale checks
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


def stale_int8(
    existing: ExportManifest, formats: Sequence[Format], coverage: str, calibration_key: str
) -> list[tuple[Format, str]]:
    """int8 graphs in `existing` made differently from what is asked now (ONNX `coverage`, OpenVINO
    `calibration_key`), each with what differs."""
    recipes = {  # format -> (what its int8 graph depends on, recorded in the manifest, asked now)
        Format.ONNX: ("coverage", existing.int8_coverage, coverage),
        Format.OPENVINO: ("calibration", existing.openvino_calibration, calibration_key),
    }
    stale = []
    for fmt in formats:
        what, recorded, asked = recipes[fmt]
        if existing.files.get(graph_key(fmt, Quantization.INT8)) and recorded != asked:
            stale.append((fmt, f"{what} {recorded!r}, not {asked[:19]!r}"))
    return stale
