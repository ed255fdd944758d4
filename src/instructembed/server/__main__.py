"""`python -m instructembed.server --model M ...`: the same as `instructembed serve`."""

from __future__ import annotations

import logging

import typer

from instructembed.server.cli import serve_command


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    typer.run(serve_command)


if __name__ == "__main__":
    main()
