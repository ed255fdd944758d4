"""The `instructembed` command line. Every option has an `INSTRUCTEMBED_...` environment twin.

Library errors are caught here, at the edge, and printed as one line that says what to do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from instructembed.checkpoint import DEFAULT_MODEL
from instructembed.cli_options import AllowPickleOpt, BackendOpt, ModelOpt, QuantizeOpt, friendly_errors

app = typer.Typer(
    name="instructembed",
    help="Instruction-conditioned text embeddings (INSTRUCTOR-style): embed, inspect, evaluate, serve, train.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Build training data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

F = TypeVar("F", bound=Callable[..., Any])


def _print_version(value: bool) -> None:
    if value:
        from instructembed.package_data import package_version

        typer.echo(f"instructembed {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the installed version and exit."
        ),
    ] = False,
) -> None:
    """Instruction-conditioned text embeddings (INSTRUCTOR-style): embed, inspect, evaluate, serve, train."""


@app.command("info")
@friendly_errors
def info_command(
    model: Annotated[
        str, typer.Argument(envvar="INSTRUCTEMBED_MODEL", help="Packaged name, local directory or hub id.")
    ] = DEFAULT_MODEL,
    allow_pickle: AllowPickleOpt = False,
    backend: BackendOpt = None,
    quantize: QuantizeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show what a model is: architecture, dimension, max length, layout, pooling, normalization."""
    from instructembed.embedder import Embedder

    info = Embedder.load(model, allow_pickle=allow_pickle, backend=backend, quantize=quantize).info()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    width = max(len(k) for k in info)
    for key, value in info.items():
        typer.echo(f"{key:<{width}}  {value}")


@app.command("demo")
@friendly_errors
def demo_command(model: ModelOpt = DEFAULT_MODEL) -> None:
    """Embed a few texts under two instructions and show similarities and a nearest-text search."""
    from instructembed.demo import run_demo

    run_demo(model)


# Sub-commands that live with their features; each module imports its heavy dependencies lazily.
from instructembed.cli_embed import embed_command  # noqa: E402
from instructembed.eval.cli import eval_command  # noqa: E402
from instructembed.export.cli import export_command  # noqa: E402
from instructembed.index.cli import index_app, search_command  # noqa: E402
from instructembed.server.cli import serve_command  # noqa: E402
from instructembed.train.cli import build_medi_command, train_command  # noqa: E402

app.command("embed")(embed_command)
app.command("eval")(eval_command)
app.command("serve")(serve_command)
app.command("export")(export_command)
app.command("search")(search_command)
app.add_typer(index_app, name="index")
app.command("train")(train_command)
data_app.command("build-medi")(build_medi_command)


def main() -> None:
    try:  # transformers prints a progress bar per weight file; a CLI user wants our own output only
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # the onnx-only install has no transformers models to load
        pass
    app()


if __name__ == "__main__":
    main()
