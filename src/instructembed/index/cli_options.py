"""The `index` commands' shared option types (typer `Annotated` aliases), apart from the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

InputOpt = Annotated[
    Path,
    typer.Option("--input", "-i", envvar="INSTRUCTEMBED_INPUT", help="JSONL, CSV, TSV or parquet records."),
]
IdFieldOpt = Annotated[
    str, typer.Option(envvar="INSTRUCTEMBED_ID_FIELD", help="Field/column with each document's unique id.")
]
TextFieldOpt = Annotated[
    str, typer.Option(envvar="INSTRUCTEMBED_TEXT_FIELD", help="Field/column with the document text.")
]
MetadataFieldOpt = Annotated[
    str | None,
    typer.Option(
        envvar="INSTRUCTEMBED_METADATA_FIELD",
        help="Field/column with a JSON object of metadata (filters match on its keys).",
    ),
]
CommitOpt = Annotated[
    int,
    typer.Option(
        min=1,
        envvar="INSTRUCTEMBED_COMMIT_EVERY",
        help="Records per committed batch (a crash loses at most one).",
    ),
]
RescoreOpt = Annotated[
    int,
    typer.Option(
        min=1,
        help="int8 / binary: candidates per wanted result rescored from the float rows. 40 reaches "
        "recall@10 1.000 at 1M synthetic vectors; at 10M it takes 250 (docs/index.md).",
    ),
]
ProgressOpt = Annotated[
    bool, typer.Option(envvar="INSTRUCTEMBED_PROGRESS", help="Show a progress bar on stderr.")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")]
DirArg = Annotated[Path, typer.Argument(envvar="INSTRUCTEMBED_INDEX", help="The index directory.")]
