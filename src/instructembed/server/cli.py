"""`instructembed serve`: every option has an `INSTRUCTEMBED_*` environment-variable twin.

Registered on the root CLI with `app.command("serve")(serve_command)`; also runnable alone as
`python -m instructembed.server --model M`.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from instructembed.cli_options import AllowPickleOpt, BackendOpt, DtypeOpt, QuantizeOpt
from instructembed.server.settings import OverlongPolicy, ServerSettings, parse_microbatch_overhead

logger = logging.getLogger(__name__)


def serve_command(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            envvar="INSTRUCTEMBED_MODEL",
            help="Packaged model name, local directory or hub id (default with --index: the index's). "
            "Repeat to serve several, each with its own queue, routed by the request's `model`; "
            "NAME=MODEL serves MODEL as NAME.",
        ),
    ] = None,
    models_file: Annotated[
        Path | None,
        typer.Option(
            "--models-file",
            envvar="INSTRUCTEMBED_MODELS_FILE",
            help="TOML file with one [models.NAME] table per model: its path, load options and own "
            "limits (batch_tokens, max_queue_items, ...); instead of --model. See docs/server.md.",
        ),
    ] = None,
    index: Annotated[
        Path | None,
        typer.Option(
            "--index",
            envvar="INSTRUCTEMBED_INDEX",
            help="Also serve POST /v1/search over this index (`instructembed index build`).",
        ),
    ] = None,
    max_search_k: Annotated[
        int, typer.Option(envvar="INSTRUCTEMBED_MAX_SEARCH_K", min=1, help="Largest k per search.")
    ] = ServerSettings.max_search_k,
    host: Annotated[
        str, typer.Option(envvar="INSTRUCTEMBED_HOST", help="Address to bind; 127.0.0.1 keeps it local.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="INSTRUCTEMBED_PORT", min=0, max=65535)] = 8080,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="INSTRUCTEMBED_API_KEY",
            help="Require `Authorization: Bearer KEY` on the embedding routes.",
        ),
    ] = None,
    backend: BackendOpt = None,
    quantize: QuantizeOpt = None,
    dtype: DtypeOpt = None,
    device: Annotated[
        str | None, typer.Option(envvar="INSTRUCTEMBED_DEVICE", help="cpu, cuda, cuda:1, ...")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(envvar="INSTRUCTEMBED_THREADS", min=1, help="Torch CPU threads.")
    ] = None,
    max_seq_length: Annotated[
        int | None,
        typer.Option(
            envvar="INSTRUCTEMBED_MAX_SEQ_LENGTH", min=1, help="Token limit per input (default: the model's)."
        ),
    ] = None,
    allow_pickle: AllowPickleOpt = False,
    served_model_name: Annotated[
        str | None,
        typer.Option(envvar="INSTRUCTEMBED_SERVED_MODEL_NAME", help="Model name reported to clients."),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(envvar="INSTRUCTEMBED_MAX_BODY_BYTES", min=1)
    ] = ServerSettings.max_body_bytes,
    max_items_per_request: Annotated[
        int, typer.Option(envvar="INSTRUCTEMBED_MAX_ITEMS_PER_REQUEST", min=1)
    ] = ServerSettings.max_items_per_request,
    max_queue_items: Annotated[
        int,
        typer.Option(
            envvar="INSTRUCTEMBED_MAX_QUEUE_ITEMS", min=1, help="Queued inputs before answering 429."
        ),
    ] = ServerSettings.max_queue_items,
    batch_tokens: Annotated[
        int,
        typer.Option(
            envvar="INSTRUCTEMBED_BATCH_TOKENS", min=1, help="Token budget of one batch across requests."
        ),
    ] = ServerSettings.batch_tokens,
    max_wait_ms: Annotated[
        float,
        typer.Option(
            envvar="INSTRUCTEMBED_MAX_WAIT_MS",
            min=0,
            max=60000,
            help="Wait for more requests to fill a batch.",
        ),
    ] = ServerSettings.max_wait_ms,
    microbatch_overhead_tokens: Annotated[
        str,
        typer.Option(
            envvar="INSTRUCTEMBED_MICROBATCH_OVERHEAD_TOKENS",
            help="Split each batch into micro-batches of similar lengths where the padding saved beats "
            "one more model call: 'auto' (the default: the call cost learnt from the model's own call times; "
            "95-100 % of in-process speed at 16 clients vs 58-66 % with 'off'), 'off' (one call per "
            "batch) or N padded tokens.",
        ),
    ] = "auto",
    overlong: Annotated[
        OverlongPolicy,
        typer.Option(
            envvar="INSTRUCTEMBED_OVERLONG", help="Inputs over the token limit: truncate or reject (422)."
        ),
    ] = OverlongPolicy.TRUNCATE,
    playground: Annotated[
        bool,
        typer.Option(
            "--playground/--no-playground",
            envvar="INSTRUCTEMBED_PLAYGROUND",
            help="Serve the playground page at /playground/ (static files from the package).",
        ),
    ] = True,
    rerank_query_instruction: Annotated[
        str,
        typer.Option(
            envvar="INSTRUCTEMBED_RERANK_QUERY_INSTRUCTION",
            help="Query instruction of /rerank and /v1/rerank ('' for none).",
        ),
    ] = ServerSettings.rerank_query_instruction,
    rerank_document_instruction: Annotated[
        str,
        typer.Option(
            envvar="INSTRUCTEMBED_RERANK_DOCUMENT_INSTRUCTION",
            help="Document instruction of /rerank and /v1/rerank ('' for none).",
        ),
    ] = ServerSettings.rerank_document_instruction,
    log_level: Annotated[str, typer.Option(envvar="INSTRUCTEMBED_LOG_LEVEL")] = "info",
) -> None:
    """Serve a model over HTTP: OpenAI-compatible /v1/embeddings, /embed, /rerank, /v1/rerank,
    /tokenize, /health, /info, /metrics, and a playground page at /playground/."""
    try:
        import uvicorn

        from instructembed.server.app import create_app
    except ImportError as error:
        raise typer.BadParameter(
            f"the server needs the optional package {error.name!r}: pip install 'instructembed[server]'"
        ) from None
    try:
        settings = ServerSettings(
            host=host,
            port=port,
            api_key=api_key,
            max_body_bytes=max_body_bytes,
            max_items_per_request=max_items_per_request,
            max_queue_items=max_queue_items,
            batch_tokens=batch_tokens,
            max_wait_ms=max_wait_ms,
            microbatch_overhead_tokens=parse_microbatch_overhead(microbatch_overhead_tokens),
            overlong=overlong,
            served_model_name=served_model_name,
            max_search_k=max_search_k,
            playground=playground,
            rerank_query_instruction=rerank_query_instruction,
            rerank_document_instruction=rerank_document_instruction,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        logger.warning(
            "binding %s without --api-key: anyone who can reach this address can use the model", host
        )

    options: dict[str, Any] = {
        "device": device,
        "max_seq_length": max_seq_length,
        "allow_pickle": allow_pickle,
    }
    if threads is not None:
        options["threads"] = threads
    if backend is not None:  # passed only when asked for, so older embedders keep working
        options["backend"] = backend
    if quantize is not None:
        options["quantize"] = quantize
    if dtype is not None:
        options["dtype"] = dtype
    models = list(model or [])
    entries = _models_file_entries(models_file, models, served_model_name)
    if entries:
        models = [entry.path for entry in entries]
    if index is not None:
        recorded = _index_model(index)  # fails fast on a missing or damaged index, before any model loads
        if not models:  # the model the index was built with, loaded as it was (flags given still win)
            models = [recorded.model]
            options.update({k: v for k, v in recorded.load_options().items() if options.get(k) is None})
    if not models:
        raise typer.BadParameter("give --model (or --index, to serve the model an index was built with)")
    named = {e.name: e.path for e in entries} if entries else _served_names(models, served_model_name)
    own_options = {e.name: {**options, **e.load_options} for e in entries}

    from instructembed.embedder import Embedder

    accepted = inspect.signature(Embedder.load).parameters
    unsupported = sorted(
        {
            f"--{name}"
            for chosen in [options, *own_options.values()]
            for name in ("backend", "quantize", "dtype", "threads")
            if name in chosen and name not in accepted
        }
    )
    if unsupported:
        raise typer.BadParameter(
            f"this version of instructembed cannot load models with {', '.join(unsupported)}; "
            "drop the option or upgrade / install the extra that provides it (e.g. [onnx])"
        )

    def loader(chosen: str, with_options: dict[str, Any]) -> Any:
        return lambda: Embedder.load(chosen, **with_options)

    source: Any = (
        loader(models[0], options)
        if len(models) == 1 and not entries
        else {name: loader(path, own_options.get(name, options)) for name, path in named.items()}
    )
    try:
        model_settings = {e.name: e.settings(settings) for e in entries}
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    app = create_app(source, settings, index=index, model_settings=model_settings)
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), timeout_graceful_shutdown=60)


def _models_file_entries(path: Path | None, models: list[str], served_model_name: str | None) -> list[Any]:
    """The `--models-file` entries (none without the option), or a clear CLI error."""
    if path is None:
        return []
    if models:
        raise typer.BadParameter("give --model or --models-file, not both (list every model in the file)")
    if served_model_name is not None:
        raise typer.BadParameter("--served-model-name names one model; in --models-file each table is named")
    from instructembed.server.models_file import ModelsFileError, read_models_file

    try:
        return read_models_file(path)
    except ModelsFileError as error:
        raise typer.BadParameter(str(error)) from None


def _served_names(models: list[str], served_model_name: str | None) -> dict[str, str]:
    """Served name -> model to load, from `--model` values (`NAME=MODEL`, or MODEL served as itself)."""
    if len(models) > 1 and served_model_name is not None:
        raise typer.BadParameter(
            "--served-model-name names one model; with several, write --model NAME=MODEL"
        )
    named: dict[str, str] = {}
    for value in models:
        name, sep, path = value.partition("=")
        if not sep or len(models) == 1:
            name, path = value, value
        if not name or not path:
            raise typer.BadParameter(f"--model {value!r}: write MODEL or NAME=MODEL")
        if name in named:
            raise typer.BadParameter(f"two models would be served as {name!r}; name them with NAME=MODEL")
        named[name] = path
    return named


def _index_model(path: Path) -> Any:
    """The fingerprint of the index at `path` (opened without a model), or a clear CLI error."""
    from instructembed.errors import InstructEmbedError
    from instructembed.index.core import Index

    try:
        with Index.open(path) as opened:
            return opened.fingerprint
    except InstructEmbedError as exc:
        raise typer.BadParameter(str(exc)) from None
