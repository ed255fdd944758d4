"""Old import path of `instructembed.export.cli`, kept so code written against 0.1 keeps importing."""

from __future__ import annotations

from instructembed.export.cli import MIN_CALIBRATION_TEXTS, export_command, read_calibration

__all__ = ["MIN_CALIBRATION_TEXTS", "export_command", "read_calibration"]
