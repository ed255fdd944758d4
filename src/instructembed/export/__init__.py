"""Exports for fast CPU runtimes (ONNX Runtime, OpenVINO), cached by a fingerprint of the weights.

Dependencies run one way:

    cli.py ─► build.py ─┬─► onnx.py ─────┐
                        └─► openvino.py ─┴─► manifest.py ◄── backends/ (which never import an exporter)

- `manifest.py`  what an export directory is and whether it may run: manifest, fingerprints, stale checks
- `onnx.py`      the ONNX graphs (fp32 fused, dynamic int8); `openvino.py` the OpenVINO IRs (fp32, static int8)
- `build.py`     `export_model` / `cached_export`: which graphs to write, built aside and renamed into place
- `cli.py`       `instructembed export`

`Embedder.load` is the one place that decides to export (into the cache) and then opens a backend.
The names below are importable from `instructembed.export`; the exporters load only when one of theirs
is asked for, so importing this package (or `manifest`, as the backends do) never loads an exporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from instructembed.export.manifest import (
    EXPORT_FORMAT_VERSION,
    FINGERPRINT_KEY,
    MANIFEST,
    OPSET,
    ExportManifest,
    Format,
    Quantization,
    check_fresh,
    check_stamp,
    export_backend,
    fingerprint,
    graph_filename,
    graph_key,
    is_export_dir,
    parse_quantize,
    read_manifest,
)

if TYPE_CHECKING:
    from instructembed.export.build import cached_export, default_cache_dir, export_model, export_onnx
    from instructembed.export.onnx import Int8Coverage

__all__ = [
    "EXPORT_FORMAT_VERSION",
    "FINGERPRINT_KEY",
    "MANIFEST",
    "OPSET",
    "ExportManifest",
    "Format",
    "Int8Coverage",
    "Quantization",
    "cached_export",
    "check_fresh",
    "check_stamp",
    "default_cache_dir",
    "export_backend",
    "export_model",
    "export_onnx",
    "fingerprint",
    "graph_filename",
    "graph_key",
    "is_export_dir",
    "parse_quantize",
    "read_manifest",
]

_BUILD = ("cached_export", "default_cache_dir", "export_model", "export_onnx")


def __getattr__(name: str) -> Any:
    """The exporters' names, imported on first use (PEP 562), so the backends' import stays light."""
    if name in _BUILD:
        from instructembed.export import build

        return getattr(build, name)
    if name == "Int8Coverage":
        from instructembed.export.onnx import Int8Coverage

        return Int8Coverage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
