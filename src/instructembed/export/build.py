"""Make or complete an export directory (see `manifest.py`): `export_model`, and `cached_export`
for `Embedder.load`, which keeps one export per checkpoint fingerprint in a cache directory.

What exists is kept: only missing graphs are written (`onnx.py`, `openvino.py`), and an export of
other weights, or an int8 graph made another way, is replaced only when asked. The directory is built
aside and renamed into place, so a crash never leaves a half-written export behind.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from instructembed.checkpoint import ModelSpec, read_spec, resolve_model_dir
from instructembed.errors import CheckpointError
from instructembed.export import onnx, openvino
from instructembed.export.manifest import (
    ExportManifest,
    Format,
    Quantization,
    fingerprint,
    graph_filename,
    graph_files,
    graph_key,
    is_export_dir,
    read_manifest,
    stale_int8,
    write_manifest,
)
from instructembed.export.onnx import Int8Coverage
from instructembed.inputs import Item

log = logging.getLogger(__name__)


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


#: Families whose OpenVINO graph we measured wrong, and why (docs/models.md).
OPENVINO_REFUSED = {
    "modernbert": "its OpenVINO fp32 graph gives NaN vectors for every padded row of a batch (a padding "
    "position whose sliding-window attention is all masked turns NaN and poisons the next layer), while "
    "ONNX Runtime matches torch to 1.5e-7",
}


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
    if is_export_dir(source):
        raise CheckpointError(f"{source} is already an export; give the original model directory")
    spec = read_spec(source)
    if spec.family.decoder:
        raise CheckpointError(
            f"{source} is a {spec.family.name} decoder; decoders run on the torch backend only for now "
            "(docs/models.md): load it without backend='onnx' / 'openvino'"
        )
    if Format.OPENVINO in formats and spec.model_type in OPENVINO_REFUSED:
        raise CheckpointError(
            f"{source}: {spec.family.name} on OpenVINO is refused ({OPENVINO_REFUSED[spec.model_type]}); "
            "export it with --onnx and load it with backend='onnx'"
        )
    quantizations = [Quantization.FP32] + ([Quantization.INT8] if int8 else [])
    wanted = [(f, q) for f in formats for q in quantizations]
    calibration_key = openvino.calibration_id(calibration)

    existing: ExportManifest | None = None
    if out.exists() and any(out.iterdir()):
        if not is_export_dir(out):
            raise FileExistsError(f"{out} exists, is not empty and is not an export; choose a new --out")
        existing = read_manifest(out)
        stale = stale_int8(existing, formats, coverage.value, calibration_key) if int8 else []
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
                for path in graph_files(out, fmt, Quantization.INT8):
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
        onnx.require_export_deps()
    if Format.OPENVINO in formats:
        openvino.require_export_deps(int8)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Build in a sibling temp dir, then rename: a crash never leaves a half-written export behind.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if existing is not None:
            for item in out.iterdir():
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        excluded = list(existing.int8_excluded) if existing is not None else []
        if Format.ONNX in formats:
            excluded = onnx.write_graphs(
                spec, tmp, fp, int8=int8, allow_pickle=allow_pickle, coverage=coverage, excluded=excluded
            )
        if Format.OPENVINO in formats:
            missing = {q for q in quantizations if not (tmp / graph_filename(Format.OPENVINO, q)).is_file()}
            if missing:
                openvino.write_graphs(
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
        write_manifest(tmp, manifest)
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


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "instructembed" / "onnx"


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
        instruction_join=spec.instruction_join,
        include_prompt=spec.include_prompt,
        prompts=dict(spec.prompts),
        default_prompt_name=spec.default_prompt_name,
        padding_side=spec.padding_side,
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
        from instructembed.tokenize import load_tokenizer

        load_tokenizer(spec).hf_tokenizer.save_pretrained(str(target))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("instructembed", "torch", "transformers", "onnx", "onnxruntime", "openvino", "nncf"):
        with contextlib.suppress(PackageNotFoundError):
            out[package] = version(package)
    return out
