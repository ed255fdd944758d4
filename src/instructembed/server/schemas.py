"""Request and response shapes for every route, and the one function that turns inputs into items.

Requests are parsed strictly: no type coercion ("1" is not an int), no unknown fields, no NaN or
infinity anywhere. Inputs are walked by hand (`parse_items`) so each refusal names the exact item
(`input[3].text`), which pydantic's union errors would not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from instructembed.checkpoint import declared_role_prompt
from instructembed.server.errors import ErrorKind, ServerError, from_validation_errors

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


# ---- requests ---------------------------------------------------------------------------------


class InstructedItem(BaseModel):
    """Our extension: one input with its own instruction, `{"instruction": ..., "text": ...}`."""

    model_config = _STRICT

    instruction: StrictStr
    text: StrictStr


class EmbeddingsRequest(BaseModel):
    """`POST /v1/embeddings`: OpenAI's request, plus `instruction` and `InstructedItem` inputs.

    `input` is typed loosely here and checked item by item in `parse_items`.
    """

    model_config = _STRICT

    input: Any = Field(description="a string, or a list of strings and {instruction, text} objects")
    model: StrictStr | None = Field(
        None, max_length=512, description="one model served: accepted and echoed back; several: which one"
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(None, ge=1, le=1 << 20)
    user: StrictStr | None = Field(None, max_length=512)
    instruction: StrictStr | None = Field(None, description="applies to every plain-string input")
    prompt_name: StrictStr | None = Field(None, description="one of the model's declared prompts (/info)")
    input_type: Literal["query", "document"] | None = Field(
        None, description="the model's declared query / document prompt (none if it declares none)"
    )
    embedding_dtype: Literal["float32", "int8", "uint8", "binary", "ubinary"] = Field(
        "float32",
        description="infinity's field: int8/uint8 (calibrated per dimension), binary/ubinary (packed "
        "sign bits); base64 then carries the raw bytes of that type",
    )


class EmbedRequest(BaseModel):
    """`POST /embed`: the compact form; items may also be `[instruction, text]` pairs."""

    model_config = _STRICT

    inputs: Any = Field(description="a string, or a list of strings, [instruction, text] pairs or objects")
    instruction: StrictStr | None = None
    prompt_name: StrictStr | None = None  # TEI's field: one of the model's declared prompts
    input_type: Literal["query", "document"] | None = None
    normalize: StrictBool = True
    model: StrictStr | None = Field(None, max_length=512, description="with several models: which one")


class SearchRequest(BaseModel):
    """`POST /v1/search` (with `serve --index`): top-k documents for each query."""

    model_config = _STRICT

    queries: Any = Field(description="a string, or a list of strings")
    k: StrictInt | None = Field(
        None, ge=1, description="documents per query; default 10 (or the server's max_search_k, if lower)"
    )
    filter: dict[str, Any] | None = Field(
        None, description="metadata key -> value (or list of values: any of); every key must match"
    )
    instruction: StrictStr | None = Field(
        None, description="query instruction; default: the index's ('' for none)"
    )
    pool: Literal["head", "max", "mean"] = Field(
        "head",
        description="a document's score: 0.5 x its head's + 0.5 x its best chunk's, best chunk's, or mean",
    )
    exact: StrictBool = Field(False, description="ignore the approximate index")


class RerankRequest(BaseModel):
    """`POST /rerank`: text-embeddings-inference's request, scored by instructed cosine."""

    model_config = _STRICT

    query: Any = Field(description="the query text")
    texts: Any = Field(description="the texts to rank against the query")
    truncate: StrictBool | None = Field(
        None,
        description="cut over-long texts (true) or refuse them (false); default: the server's --overlong",
    )
    truncation_direction: Literal["right", "Right"] = "right"
    raw_scores: StrictBool = Field(False, description="the cosine itself instead of (1 + cosine) / 2")
    return_text: StrictBool = False
    model: StrictStr | None = Field(None, max_length=512)
    query_instruction: StrictStr | None = Field(None, description="default: the server's ('' for none)")
    document_instruction: StrictStr | None = Field(None, description="default: the server's ('' for none)")


class CohereRerankRequest(BaseModel):
    """`POST /v1/rerank`: Cohere's request (v1 and v2: documents as strings or {text} objects)."""

    model_config = _STRICT

    query: Any = Field(description="the query text")
    documents: Any = Field(description="strings, or objects with a `text` field")
    model: StrictStr | None = Field(None, max_length=512)
    top_n: StrictInt | None = Field(None, ge=1, description="default: all documents")
    return_documents: StrictBool = False
    max_chunks_per_doc: StrictInt | None = Field(
        None, ge=1, description="accepted; documents are not chunked"
    )
    max_tokens_per_doc: StrictInt | None = Field(
        None, ge=1, description="accepted; the model's limit applies"
    )
    query_instruction: StrictStr | None = None
    document_instruction: StrictStr | None = None


class TokenizeRequest(BaseModel):
    """`POST /tokenize`: text-embeddings-inference's request, plus an optional `instruction`."""

    model_config = _STRICT

    inputs: Any = Field(description="a string or a list of strings")
    add_special_tokens: StrictBool = True
    truncate: StrictBool = Field(False, description="show only the tokens the model reads")
    truncation_direction: Literal["right", "Right"] = "right"
    instruction: StrictStr | None = None
    model: StrictStr | None = Field(None, max_length=512)


# ---- responses (documentation; the routes write the JSON directly, which is faster) -----------


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage


class SearchHit(BaseModel):
    id: str
    score: float
    chunk: int
    start: int
    end: int
    metadata: dict[str, Any]
    text: str | None


class SearchResult(BaseModel):
    index: int
    hits: list[SearchHit]


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[SearchResult]
    model: str
    usage: Usage


class RankedText(BaseModel):
    index: int
    score: float
    text: str | None = None


class TokenOut(BaseModel):
    id: int
    text: str
    special: bool
    start: int | None
    stop: int | None


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: int


class ErrorResponse(BaseModel):
    error: ErrorDetail


# ---- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedItem:
    """One input as the server queues it. `instruction is None` means a plain text."""

    instruction: str | None
    text: str

    def to_embed_input(self) -> str | tuple[str, str]:
        return self.text if self.instruction is None else (self.instruction, self.text)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON; send finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large to be represented; send finite numbers only")
    return value


def parse_json(body: bytes) -> dict[str, Any]:
    """Decode a request body as a JSON object, refusing NaN, infinities and overflowing numbers."""
    if not body.strip():
        raise ServerError(ErrorKind.VALIDATION, "the request body is empty; send a JSON object")
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError as error:
        raise ServerError(
            ErrorKind.VALIDATION, f"the request body is not UTF-8 (byte {error.start}); send UTF-8 JSON"
        ) from None
    except RecursionError:
        raise ServerError(ErrorKind.VALIDATION, "the request body nests too deeply") from None
    except ValueError as error:  # JSONDecodeError, our NaN refusal, int-too-long
        raise ServerError(ErrorKind.VALIDATION, f"the request body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ServerError(
            ErrorKind.VALIDATION, f"the request body must be a JSON object, got {json_type(value)}"
        )
    return value


def validate_model(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise from_validation_errors(list(error.errors())) from None  # type: ignore[arg-type]


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _check_encodable(value: str, param: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ServerError(
            ErrorKind.VALIDATION,
            f"`{param}` contains an unpaired UTF-16 surrogate (e.g. \\ud800); send valid Unicode text",
            param=param,
        ) from None


def _check_text(value: str, param: str) -> None:
    if not value.strip():
        raise ServerError(
            ErrorKind.EMPTY_INPUT, f"`{param}` is empty; every input needs some text to embed", param=param
        )
    _check_encodable(value, param)


def parse_items(
    raw: object,
    *,
    field: str,
    instruction: str | None,
    max_items: int,
    allow_pair_lists: bool,
) -> list[ServedItem]:
    """Check `raw` (the request's `input`/`inputs`) and return one `ServedItem` per input, in order.

    `instruction` applies to plain strings; `{"instruction", "text"}` objects (and, where
    `allow_pair_lists`, `[instruction, text]` lists) carry their own, and may not be mixed with
    `instruction` (the same rule as `Embedder.embed`).
    """
    if instruction is not None:
        _check_encodable(instruction, "instruction")
    if isinstance(raw, str):
        _check_text(raw, field)
        return [ServedItem(instruction, raw)]
    if not isinstance(raw, list):
        raise ServerError(
            ErrorKind.VALIDATION,
            f"`{field}` must be a string or a list of strings / {{instruction, text}} objects, "
            f"got {json_type(raw)}",
            param=field,
        )
    if not raw:
        raise ServerError(
            ErrorKind.EMPTY_INPUT, f"`{field}` is an empty list; send at least one input", param=field
        )
    if len(raw) > max_items:
        raise ServerError(
            ErrorKind.VALIDATION,
            f"`{field}` has {len(raw)} items; the limit is {max_items} per request, split it into smaller requests",
            param=field,
        )
    items: list[ServedItem] = []
    for index, value in enumerate(raw):
        param = f"{field}[{index}]"
        if isinstance(value, str):
            _check_text(value, param)
            items.append(ServedItem(instruction, value))
        elif isinstance(value, dict):
            try:
                item = InstructedItem.model_validate(value)
            except ValidationError as error:
                first = error.errors()[0]
                sub = ".".join(str(part) for part in first["loc"])
                sub_param = f"{param}.{sub}" if sub else param
                message = (
                    "unknown field; an item object has exactly `instruction` and `text`"
                    if first["type"] == "extra_forbidden"
                    else first["msg"]
                )
                raise ServerError(
                    ErrorKind.VALIDATION, f"invalid `{sub_param}`: {message}", param=sub_param
                ) from None
            if instruction is not None:
                raise ServerError(
                    ErrorKind.VALIDATION,
                    f"`{param}` carries its own instruction but `instruction` was also given; "
                    "use one or the other",
                    param=param,
                )
            _check_encodable(item.instruction, f"{param}.instruction")
            _check_text(item.text, f"{param}.text")
            items.append(ServedItem(item.instruction, item.text))
        elif (
            isinstance(value, list)
            and value
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise ServerError(
                ErrorKind.VALIDATION,
                f"`{param}` is an array of token ids; this server embeds text only, send the string",
                param=param,
            )
        elif (
            allow_pair_lists
            and isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, str) for v in value)
        ):
            if instruction is not None:
                raise ServerError(
                    ErrorKind.VALIDATION,
                    f"`{param}` is an [instruction, text] pair but `instruction` was also given; use one or the other",
                    param=param,
                )
            _check_encodable(value[0], f"{param}[0]")
            _check_text(value[1], f"{param}[1]")
            items.append(ServedItem(value[0], value[1]))
        else:
            shape = "a string, [instruction, text] pair" if allow_pair_lists else "a string"
            raise ServerError(
                ErrorKind.VALIDATION,
                f'`{param}` must be {shape} or an {{"instruction": ..., "text": ...}} object, '
                f"got {json_type(value)}",
                param=param,
            )
    return items


def request_instruction(
    prompts: dict[str, str],
    instruction: str | None,
    prompt_name: str | None,
    input_type: str | None,
) -> str | None:
    """The instruction a request's plain strings get: `instruction`, or the model's declared prompt
    named by `prompt_name`, or its declared prompt for `input_type` ("" -- none -- if it declares
    none, as sentence-transformers' encode_query / encode_document). At most one of the three."""
    given = [
        name
        for name, value in (
            ("instruction", instruction),
            ("prompt_name", prompt_name),
            ("input_type", input_type),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ServerError(
            ErrorKind.VALIDATION,
            f"give at most one of `instruction`, `prompt_name` and `input_type` (got {', '.join(given)})",
            param=given[1],
        )
    if input_type is not None:
        name = declared_role_prompt(prompts, input_type)
        return "" if name is None else prompts[name]
    if prompt_name is not None:
        if prompt_name not in prompts:
            declared = ", ".join(repr(n) for n in prompts) or "none"
            raise ServerError(
                ErrorKind.VALIDATION,
                f"`prompt_name` {prompt_name!r} is not one of this model's prompts (declared: {declared}); "
                "see GET /info, or send the instruction itself as `instruction`",
                param="prompt_name",
            )
        return prompts[prompt_name]
    return instruction
