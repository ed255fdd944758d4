"""Command-line options that several commands share, declared once (the root CLI imports the rest)."""

from __future__ import annotations

from typing import Annotated

import typer

AllowPickleOpt = Annotated[
    bool,
    typer.Option(
        "--allow-pickle",
        envvar="INSTRUCTEMBED_ALLOW_PICKLE",
        help="Allow pickled .bin weights (they can run code): only for checkpoints you trust.",
    ),
]
