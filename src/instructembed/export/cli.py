"""`instructembed export MODEL [--onnx] [--openvino] [--int8] --out DIR`: register with
`app.command("export")(export_command)`.

Kept apart from the exporters so they have no typer in them; every option has an
`INSTRUCTEMBED_...` environment twin, as in `instructembed/cli.py`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from instructembed.cli_options import AllowPickleOpt, friendly_errors
from instructembed.errors import InputFileError
from instructembed.export.onnx import Int8Coverage
from instructembed.inputs import Item

log = logging.getLogger(__name__)


@friendly_errors(
    interrupted=lambda kw: f"interrupted; {kw.get('out')} was left as it was (exports are built aside)"
)
def export_command(
    model: Annotated[
        str,
        typer.Argument(
            envvar="INSTRUCTEMBED_MODEL", help="Packaged name, local model directory or Hugging Face id."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", envvar="INSTRUCTEMBED_EXPORT_OUT", help="Directory to write the export to."
        ),
    ],
    onnx: Annotated[
        bool | None,
        typer.Option(
            "--onnx/--no-onnx",
            envvar="INSTRUCTEMBED_EXPORT_ONNX",
            help="Export to ONNX (default, unless only --openvino is given).",
        ),
    ] = None,
    openvino: Annotated[
        bool,
        typer.Option(
            "--openvino", envvar="INSTRUCTEMBED_EXPORT_OPENVINO", help="Export to OpenVINO IR (fp32)."
        ),
    ] = False,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            envvar="INSTRUCTEMBED_EXPORT_INT8",
            help="Also write int8 graphs: dynamic for ONNX, static (calibrated) for OpenVINO "
            "(load with quantize='int8' / --quantize int8).",
        ),
    ] = False,
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            envvar="INSTRUCTEMBED_EXPORT_CALIBRATION",
            help="OpenVINO int8: texts to calibrate on (JSONL/CSV/TSV with 'instruction' and 'text' "
            "fields, or one plain text per line); default: the packaged set.",
        ),
    ] = None,
    int8_coverage: Annotated[
        Int8Coverage,
        typer.Option(
            "--int8-coverage",
            envvar="INSTRUCTEMBED_EXPORT_INT8_COVERAGE",
            help="no-ffn-down: keep the FFN down projections fp32 (closer to fp32); all: quantize every matmul (fastest).",
        ),
    ] = Int8Coverage.NO_FFN_DOWN,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            envvar="INSTRUCTEMBED_EXPORT_OVERWRITE",
            help="Replace an export of different weights already in --out.",
        ),
    ] = False,
    allow_pickle: AllowPickleOpt = False,
    revision: Annotated[
        str | None,
        typer.Option(envvar="INSTRUCTEMBED_REVISION", help="Hub revision (branch, tag or commit)."),
    ] = None,
) -> None:
    """Export a model for fast CPU inference; the directory loads with Embedder.load(DIR, backend=...)."""
    from instructembed.export.build import export_model
    from instructembed.export.manifest import Format, read_manifest

    formats = [
        f
        for f, on in ((Format.ONNX, onnx if onnx is not None else not openvino), (Format.OPENVINO, openvino))
        if on
    ]
    if not formats:
        typer.secho("error: nothing to export; give --onnx and/or --openvino", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if calibration is not None and not (int8 and openvino):
        typer.secho(
            "error: --calibration is for OpenVINO int8; add --openvino --int8", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(2)
    items = read_calibration(calibration) if calibration is not None else None
    target = export_model(
        model,
        out,
        formats=formats,
        int8=int8,
        allow_pickle=allow_pickle,
        revision=revision,
        overwrite=overwrite,
        int8_coverage=int8_coverage,
        calibration=items,
    )
    manifest = read_manifest(target)
    files = ", ".join(f"{q}: {name}" for q, name in sorted(manifest.files.items()))
    typer.echo(f"{target}  ({files}; fingerprint {manifest.fingerprint[:12]})")
    flag = ", quantize='int8'" if int8 else ""
    for fmt in formats:
        typer.echo(f"load with: Embedder.load({str(target)!r}, backend={fmt.value!r}{flag})")


#: Fewer calibration texts than this give activation ranges that miss what real inputs produce.
MIN_CALIBRATION_TEXTS = 16


def read_calibration(path: Path) -> list[Item]:
    """Calibration items from a file: JSONL/CSV/TSV rows with 'instruction' and 'text' fields, or
    one plain text per line (no instruction); blank texts are skipped."""
    from instructembed.files import InputFormat, input_format, read_rows

    fmt = input_format(path)
    instruction_field = None if fmt is InputFormat.TEXT else "instruction"
    items = [
        Item(row.instruction, row.text)
        for row in read_rows(path, fmt, "text", None, instruction_field, skip_blank=True)
        if row.text.strip()
    ]
    if len(items) < MIN_CALIBRATION_TEXTS:
        raise InputFileError(
            f"{path} holds {len(items)} non-blank texts; calibrating int8 needs at least "
            f"{MIN_CALIBRATION_TEXTS} (a few hundred like the ones you will embed is better)"
        )
    return items
