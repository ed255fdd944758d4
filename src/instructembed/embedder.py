"""`Embedder`: the one encode path. CLI, server, training and evaluation all embed through here.

tokenize (instruction-aware, per-row pooling offsets) -> length-sorted token-budget batches
-> backend forward + masked pooling -> float32 (N, D) in input order
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from instructembed.backends import Backend
from instructembed.batching import collate, plan_batches
from instructembed.checkpoint import (
    FORMAT_VERSION,
    OUR_CONFIG,
    ModelSpec,
    declared_role_prompt,
    declares_matryoshka,
    read_spec,
    resolve_model_dir,
)
from instructembed.errors import InstructEmbedError
from instructembed.export.manifest import (
    Format,
    check_fresh,
    export_backend,
    graph_path,
    is_export_dir,
    parse_quantize,
    read_manifest,
)
from instructembed.inputs import EmbedInput, Item, to_items
from instructembed.package_data import package_version
from instructembed.tokenize import Encoded, InstructionTokenizer, TokenInfo, load_tokenizer

if TYPE_CHECKING:  # torch is imported only by the torch backend, never by the ONNX path
    from instructembed.model import EmbeddingModel

log = logging.getLogger(__name__)
#: Names `Embedder.load(backend=...)` takes.
BACKENDS = ("torch", "onnx", "openvino")


@dataclass(frozen=True)
class EmbedConfig:
    """How `embed` batches. Results do not depend on these, only speed and memory do."""

    token_budget: int = 8192  # padded tokens per batch (rows x longest row)
    max_batch_size: int = 128
    show_progress: bool = False

    def __post_init__(self) -> None:
        if self.token_budget < 1 or self.max_batch_size < 1:
            raise ValueError("token_budget and max_batch_size must be positive integers")


class Embedder:
    """Instruction-conditioned text embeddings from one checkpoint.

    >>> model = Embedder.load("all-MiniLM-L6-v2")
    >>> model.embed([("Represent the Science title:", "3D ActionSLAM")]).shape
    (1, 384)
    """

    def __init__(
        self,
        spec: ModelSpec,
        tokenizer: InstructionTokenizer,
        backend: Backend,
        *,
        name: str,
        model: EmbeddingModel | None = None,
        config: EmbedConfig | None = None,
    ) -> None:
        self.spec = spec
        self.tokenizer = tokenizer
        self.backend = backend
        self.name = name
        self.model = model  # the torch module, when the backend has one (training, save)
        self.config = config or EmbedConfig()
        self._warned_truncation = False

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        name_or_path: str | Path,
        *,
        backend: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        max_seq_length: int | None = None,
        allow_pickle: bool = False,
        revision: str | None = None,
        threads: int | None = None,
        config: EmbedConfig | None = None,
        quantize: str | None = None,
        cache_dir: str | Path | None = None,
    ) -> Embedder:
        """Load a packaged model name, a local directory (any supported layout) or a hub id.

        backend="onnx" runs ONNX Runtime on the CPU (`quantize="int8"` for dynamic int8);
        backend="openvino" runs OpenVINO on the CPU (`quantize="int8"` for static int8 calibrated on
        the packaged calibration set, `dtype="bfloat16"` for bf16). An export directory
        (`instructembed export`) loads without torch; a checkpoint is exported once into `cache_dir`
        (default ~/.cache/instructembed/onnx), keyed by a fingerprint of its weights.
        backend=None (the default) means torch, or for an export directory the runtime it has a
        graph for at this `quantize` (ONNX first).
        """
        if backend is None:
            backend = _default_backend(name_or_path, quantize)
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r} is not available; available: {', '.join(BACKENDS)}")
        if backend != "torch" and device is not None and device != "cpu":
            raise ValueError(f"the {backend} backend runs on the CPU only; got device={device!r}")
        cache = Path(cache_dir).expanduser() if cache_dir is not None else None
        if backend != "torch":
            q = parse_quantize(quantize)
            # Arguments and the runtime's extra are checked before anything is exported.
            make: Callable[..., Backend]
            if backend == "onnx":
                from instructembed.backends.onnx_backend import OnnxBackend, onnx_settings

                fmt, make = Format.ONNX, partial(OnnxBackend, settings=onnx_settings(q, dtype, threads))
            else:
                from instructembed.backends.openvino_backend import OpenVinoBackend, openvino_settings

                settings = openvino_settings(q, dtype, threads)
                fmt, make = Format.OPENVINO, partial(OpenVinoBackend, settings=settings)
            # An export directory loads as is (no torch); a checkpoint is exported into the cache first.
            root = resolve_model_dir(name_or_path, revision)
            if is_export_dir(root):
                manifest = read_manifest(root)
                check_fresh(root, manifest)  # refused if its source weights changed since
            else:  # keyed by the fingerprint just computed: fresh by construction
                from instructembed.export.build import cached_export

                root = cached_export(
                    root, q, fmt=fmt, cache_dir=cache, allow_pickle=allow_pickle, revision=revision
                )
                manifest = read_manifest(root)
            path = graph_path(root, manifest, fmt, q)
            spec = manifest.to_spec(root, max_seq_length)
            runner = make(path, expected_fingerprint=manifest.fingerprint)
            log.info("loaded %s (%s %s, dim %d)", name_or_path, backend, runner.precision, spec.dimension)
            return cls(spec, load_tokenizer(spec), runner, name=str(name_or_path), config=config)
        if quantize is not None:
            raise ValueError(
                f"quantize={quantize!r} needs backend='onnx' or 'openvino'; on torch use dtype='bfloat16' for speed"
            )
        try:
            import torch
        except ImportError:
            raise InstructEmbedError(
                "the torch backend needs PyTorch, which is not installed here: `pip install torch`, "
                "or export the model where torch is (`instructembed export`) and load the export with "
                "backend='onnx' or backend='openvino'"
            ) from None

        from instructembed.backends.torch_backend import TorchBackend, parse_dtype
        from instructembed.model import load_model

        torch_dtype = parse_dtype(dtype)
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        root = resolve_model_dir(name_or_path, revision)
        if is_export_dir(root):
            raise ValueError(f"{root} is an export; load it with backend='onnx' or backend='openvino'")
        spec = read_spec(root, max_seq_length)
        tokenizer = load_tokenizer(spec)
        model = load_model(spec, allow_pickle=allow_pickle)
        torch_runner = TorchBackend(model, device or "cpu", torch_dtype)
        log.info(
            "loaded %s (%s, %s, dim %d)", name_or_path, spec.layout.value, spec.model_type, spec.dimension
        )
        return cls(spec, tokenizer, torch_runner, name=str(name_or_path), model=model, config=config)

    # ------------------------------------------------------------------ embedding
    @property
    def dimension(self) -> int:
        return self.spec.dimension

    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.max_seq_length

    @property
    def normalized(self) -> bool:
        return self.spec.normalize

    def embed(
        self,
        inputs: Iterable[EmbedInput],
        *,
        instruction: str | None = None,
        prompt_name: str | None = None,
    ) -> np.ndarray:
        """Embed texts or (instruction, text) pairs -> float32 (N, D), rows in input order.

        `prompt_name` names one of the instructions the checkpoint declares (`prompts`, e.g. "query")
        and is the same as passing that prompt as `instruction=`. With neither, plain strings get the
        checkpoint's `default_prompt_name` prompt if it declares one (`instruction=""` opts out)."""
        return self.embed_tokenized(self.tokenize(inputs, instruction=instruction, prompt_name=prompt_name))

    def embed_query(self, texts: Iterable[str], *, prompt_name: str | None = None) -> np.ndarray:
        """Embed search queries with the checkpoint's declared "query" prompt, if it has one (else as
        plain texts), as sentence-transformers' `encode_query`."""
        return self.embed(texts, **self.role_prompt("query", prompt_name))

    def embed_documents(self, texts: Iterable[str], *, prompt_name: str | None = None) -> np.ndarray:
        """Embed documents with the checkpoint's "document" (or "passage", "corpus") prompt, if it
        declares one (else as plain texts), as sentence-transformers' `encode_document`."""
        return self.embed(texts, **self.role_prompt("document", prompt_name))

    def role_prompt(self, role: str, prompt_name: str | None = None) -> dict[str, str | None]:
        """`embed` keyword arguments for a "query" or "document" role: the given `prompt_name`, else the
        checkpoint's declared prompt for that role, else an explicit no-prompt (no default fallback)."""
        if prompt_name is not None:
            return {"prompt_name": prompt_name}
        declared = declared_role_prompt(self.spec.prompts, role)
        return {"prompt_name": declared} if declared is not None else {"instruction": ""}

    def resolve_instruction(self, instruction: str | None, prompt_name: str | None) -> str | None:
        """The instruction `embed` applies to plain strings: `instruction`, or the named prompt."""
        if prompt_name is None:
            return instruction
        if instruction is not None:
            raise ValueError(
                "give instruction= or prompt_name=, not both (a prompt name *is* an instruction)"
            )
        prompts = self.spec.prompts
        if prompt_name not in prompts:
            declared = ", ".join(repr(n) for n in prompts) or "none"
            raise ValueError(
                f"prompt_name {prompt_name!r} is not declared by {self.name} (declared: {declared}); pass "
                "the instruction itself with instruction='...' instead"
            )
        return prompts[prompt_name]

    def tokenize(
        self,
        inputs: Iterable[EmbedInput],
        *,
        instruction: str | None = None,
        prompt_name: str | None = None,
    ) -> list[Encoded]:
        """Tokenize once, embed later: rows for `embed_tokenized`, each with `n_tokens`, its length
        before truncation (what `token_counts` gives). The server counts and embeds from one pass."""
        return self.tokenizer.encode(self._items(inputs, instruction, prompt_name))

    def _items(
        self, inputs: Iterable[EmbedInput], instruction: str | None, prompt_name: str | None
    ) -> list[Item]:
        resolved = self.resolve_instruction(instruction, prompt_name)
        items = to_items(inputs, resolved)
        default = self.spec.prompts.get(self.spec.default_prompt_name or "") if resolved is None else None
        if default is None:
            return items
        return [Item(default, it.text) if it.instruction is None else it for it in items]

    def embed_tokenized(self, encoded: Sequence[Encoded]) -> np.ndarray:
        """Embed rows from `tokenize` -> float32 (N, D), rows in input order. Uses no tokenizer, so it
        may run in one thread while another tokenizes."""
        out = np.empty((len(encoded), self.dimension), dtype=np.float32)
        if not encoded:
            return out
        truncated = sum(e.truncated for e in encoded)
        if truncated and not self._warned_truncation:
            self._warned_truncation = True
            log.warning(
                "%d input(s) longer than max_seq_length=%d tokens were truncated (this is said once)",
                truncated,
                self.max_seq_length,
            )
        batches = plan_batches(
            [len(e.ids) for e in encoded], self.config.token_budget, self.config.max_batch_size
        )
        progress = _progress(len(encoded), self.config.show_progress)
        for indices in batches:
            batch = collate(
                [encoded[i] for i in indices],
                indices,
                self.tokenizer.pad_id,
                self.tokenizer.uses_type_ids,
                self.tokenizer.padding_side,
            )
            out[batch.indices] = self.backend.run(batch)
            if progress is not None:
                progress.update(len(indices))
        if progress is not None:
            progress.close()
        return out

    def token_details(
        self,
        inputs: Iterable[EmbedInput],
        *,
        instruction: str | None = None,
        prompt_name: str | None = None,
        add_special_tokens: bool = True,
        truncate: bool = True,
    ) -> list[list[TokenInfo]]:
        """Each row's tokens (id, text, special, character span), as the encoder reads them."""
        return self.tokenizer.token_details(
            self._items(inputs, instruction, prompt_name),
            add_special_tokens=add_special_tokens,
            truncate=truncate,
        )

    def token_counts(
        self,
        inputs: Iterable[EmbedInput],
        *,
        instruction: str | None = None,
        prompt_name: str | None = None,
    ) -> list[int]:
        """Tokens per row before truncation (special tokens included), for limits and usage reports."""
        return self.tokenizer.token_counts(self._items(inputs, instruction, prompt_name))

    # ------------------------------------------------------------------ describing and saving
    def info(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "name": self.name,
            "path": str(spec.root),
            "layout": spec.layout.value,
            "architecture": spec.model_type,
            "dimension": spec.dimension,
            "hidden_size": spec.hidden_size,
            "max_seq_length": self.max_seq_length,
            "pooling": spec.pooling.value,
            "dense": None
            if spec.dense is None
            else f"{spec.dense.in_features}->{spec.dense.out_features} ({spec.dense.activation})",
            "normalize": spec.normalize,
            "matryoshka": declares_matryoshka(spec.root),
            "do_lower_case": spec.do_lower_case,
            "backend": self.backend.name,
            "precision": self.backend.precision,
            "family": spec.family.name,
            "decoder": spec.family.decoder,
            "padding_side": self.tokenizer.padding_side,
            "end_token": self.tokenizer.end_token(),
            "include_prompt": spec.include_prompt,
            "prompts": dict(spec.prompts),
            "default_prompt_name": spec.default_prompt_name,
            "instruction_join": spec.instruction_join,
            "instructembed_version": package_version(),
        }

    def save(self, path: str | Path) -> Path:
        """Write our own layout (safetensors only); `Embedder.load(path)` reads it back identically."""
        if self.model is None:
            raise ValueError(
                f"the {self.backend.name} backend holds no torch model to save; load with backend='torch'"
            )
        target = Path(path)
        if target.exists() and any(target.iterdir()):
            raise FileExistsError(f"{target} exists and is not empty; choose a new directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write next to the target, then rename: a crash never leaves a half-written model behind.
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            encoder: Any = self.model.encoder
            encoder.save_pretrained(str(tmp / "encoder"), safe_serialization=True)
            self.tokenizer.hf_tokenizer.save_pretrained(str(tmp / "encoder"))
            from instructembed.model import save_dense

            dense = save_dense(self.model.dense, tmp / "dense") if self.model.dense is not None else None
            config = {
                "format": "instructembed",
                "format_version": FORMAT_VERSION,
                "encoder": "encoder",
                "pooling": self.spec.pooling.value,
                "dense": None if dense is None else {**dense, "path": "dense"},
                "normalize": self.spec.normalize,
                "max_seq_length": self.max_seq_length,
                "do_lower_case": self.spec.do_lower_case,
                "instruction_join": self.spec.instruction_join,
                "include_prompt": self.spec.include_prompt,
                "prompts": dict(self.spec.prompts),
                "default_prompt_name": self.spec.default_prompt_name,
                "embed_config": asdict(self.config),
            }
            (tmp / OUR_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
            if target.exists():
                target.rmdir()
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target


def _default_backend(name_or_path: str | Path, quantize: str | None) -> str:
    """torch, unless `name_or_path` is a local export directory: then the runtime it has a graph for."""
    path = Path(name_or_path).expanduser()
    return export_backend(path, quantize) if path.is_dir() and is_export_dir(path) else "torch"


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="text", desc="embedding", leave=False)
