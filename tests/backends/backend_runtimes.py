"""Which Python modules each exported-graph runtime needs (a unique module name, so it never clashes
with a conftest)."""

from __future__ import annotations

import pytest

#: The modules of each runtime's extra, by backend name.
RUNTIME_MODULES = {"onnx": ("onnxruntime",), "openvino": ("openvino", "nncf")}


def require_runtime(backend: str) -> None:
    """Skip the calling test or fixture when `backend`'s extra is not installed."""
    for module in RUNTIME_MODULES[backend]:
        pytest.importorskip(module, reason=f"the [{backend}] extra is not installed")
