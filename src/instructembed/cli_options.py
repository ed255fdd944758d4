"""What several commands share, declared once: options and the error handling of every command."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer

from instructembed.errors import InstructEmbedError
from instructembed.files import InputFormat

F = TypeVar("F", bound=Callable[..., Any])
#: Errors a command reports as one line (they carry what to do); anything else is a bug and shows its traceback.
REPORTED = (InstructEmbedError, ValueError, TypeError, FileExistsError, FileNotFoundError)

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        envvar="INSTRUCTEMBED_MODEL",
        help="Packaged name, local directory or Hugging Face id.",
    ),
]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        envvar="INSTRUCTEMBED_BACKEND",
        help="torch, onnx or openvino (fast CPU; see 'instructembed export'). Default: torch, or for "
        "an export directory the runtime it has a graph for.",
    ),
]
#: `embed` and the `index` commands read the same input formats
FormatOpt = Annotated[
    InputFormat | None,
    typer.Option(envvar="INSTRUCTEMBED_FORMAT", help="Input format (default: from the file suffix)."),
]
QuantizeOpt = Annotated[
    str | None,
    typer.Option(
        envvar="INSTRUCTEMBED_QUANTIZE",
        help="onnx / openvino backends: int8 (dynamic on onnx, static on openvino).",
    ),
]
DtypeOpt = Annotated[
    str | None,
    typer.Option(
        envvar="INSTRUCTEMBED_DTYPE", help="torch / openvino backends: float32 (default) or bfloat16."
    ),
]
AllowPickleOpt = Annotated[
    bool,
    typer.Option(
        "--allow-pickle",
        envvar="INSTRUCTEMBED_ALLOW_PICKLE",
        help=(
            "Allow .bin weights that need full unpickling (they can run code): only for checkpoints you "
            "trust. Plain tensor .bin files (released INSTRUCTOR checkpoints) load without it."
        ),
    ),
]


def friendly_errors(
    func: F | None = None, *, interrupted: Callable[[dict[str, Any]], str] | None = None
) -> Any:
    """Turn our errors (and bad values) into one red line on stderr and exit code 1; Ctrl-C into 130.

    `interrupted` builds the line printed on Ctrl-C from the command's keyword arguments (what was
    kept, how to resume); the default says nothing was written under the output name.
    """

    def decorate(command: F) -> F:
        @wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except REPORTED as exc:
                typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                message = (
                    interrupted(kwargs)
                    if interrupted
                    else "interrupted; nothing was written under the output name"
                )
                typer.secho(message, err=True)
                raise typer.Exit(130) from None

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


def setup_logging(verbose: bool) -> None:
    """INFO with --verbose, else WARNING, for the commands that take -v."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
