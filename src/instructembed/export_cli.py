"""`instructembed export MODEL --onnx [--int8] --out DIR`: register with `app.command("export")(export_command)`.

Kept apart from `export.py` so the library module has no typer in it; every option has an
`INSTRUCTEMBED_...` environment twin, as in `cli.py`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from instructembed.cli_options import AllowPickleOpt
from instructembed.errors import InstructEmbedError
from instructembed.export import Int8Coverage

log = logging.getLogger(__name__)


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
        bool,
        typer.Option("--onnx/--no-onnx", envvar="INSTRUCTEMBED_EXPORT_ONNX", help="Export to ONNX (fp32)."),
    ] = True,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            envvar="INSTRUCTEMBED_EXPORT_INT8",
            help="Also write a dynamic int8 graph (load with quantize='int8' / --quantize int8).",
        ),
    ] = False,
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
    """Export a model for fast CPU inference; the directory loads with Embedder.load(DIR, backend='onnx')."""
    from instructembed.export import export_onnx, read_manifest

    if not onnx:
        typer.secho(
            "error: nothing to export; --onnx is the only export format", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(2)
    try:
        target = export_onnx(
            model,
            out,
            int8=int8,
            allow_pickle=allow_pickle,
            revision=revision,
            overwrite=overwrite,
            int8_coverage=int8_coverage,
        )
        manifest = read_manifest(target)
    except (InstructEmbedError, ValueError, FileExistsError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    files = ", ".join(f"{q}: {name}" for q, name in sorted(manifest.files.items()))
    typer.echo(f"{target}  ({files}; fingerprint {manifest.fingerprint[:12]})")
    flag = ", quantize='int8'" if int8 else ""
    typer.echo(f"load with: Embedder.load({str(target)!r}, backend='onnx'{flag})")
