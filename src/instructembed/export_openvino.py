"""Old import path of `instructembed.export.openvino` (and the OpenVINO names now in
`instructembed.export.manifest`), kept so code written against 0.1 keeps importing. New code imports
from `instructembed.export`."""

from __future__ import annotations

from instructembed.export.manifest import OPENVINO_FP32_FILE as FP32_FILE
from instructembed.export.manifest import OPENVINO_INT8_FILE as INT8_FILE
from instructembed.export.manifest import RT_INFO_PATH
from instructembed.export.manifest import openvino_fingerprint as stamped_fingerprint
from instructembed.export.openvino import (
    CALIBRATION_BATCH_ROWS,
    DEFAULT_CALIBRATION,
    FFN_DOWN_PATTERNS,
    calibration_batches,
    calibration_id,
    convert,
    default_calibration,
    openvino_module,
    quantize_int8,
    require_export_deps,
    save,
    write_graphs,
)

__all__ = [
    "CALIBRATION_BATCH_ROWS",
    "DEFAULT_CALIBRATION",
    "FFN_DOWN_PATTERNS",
    "FP32_FILE",
    "INT8_FILE",
    "RT_INFO_PATH",
    "calibration_batches",
    "calibration_id",
    "convert",
    "default_calibration",
    "openvino_module",
    "quantize_int8",
    "require_export_deps",
    "save",
    "stamped_fingerprint",
    "write_graphs",
]
