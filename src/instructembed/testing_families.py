"""Tiny random checkpoints of every family `checkpoint.FAMILIES` runs, built offline in seconds.

Each `build_family_checkpoint(root, name)` writes a few-layer random model of that architecture with
a tokenizer trained here (the `tokenizers` library, a few hundred lines of built-in text), in the
sentence-transformers layout with the conventions the real family uses: its special tokens and the
end token its tokenizer appends, its padding side, its pooling mode and `include_prompt`, and the
prompts (`config_sentence_transformers.json`) its released checkpoints declare. `FAMILY_TEXTS` is a
batch that mixes short texts, ~1,500-character ones and non-English lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from instructembed.testing import _CORPUS, save_dense_module

QWEN_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
E5_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "


@dataclass(frozen=True)
class FamilyRecipe:
    """How one family's tiny checkpoint is laid out (the real family's conventions, tiny sizes)."""

    model_type: str
    tokenizer: str  # "wordpiece" | "bpe" (byte-level) | "unigram" (sentencepiece-like)
    prefix: str | None  # special token the tokenizer puts before a text ("[CLS]", "<s>", "<bos>")
    suffix: str | None  # special token it appends after one ("[SEP]", "</s>", "<|endoftext|>")
    pad: str
    pooling: str
    include_prompt: bool
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    padding_side: str = "right"
    type_ids: bool = False
    dense_out: int | None = None
    normalize: bool = True
    like: str = ""  # the released models this one imitates


FAMILY_RECIPES: dict[str, FamilyRecipe] = {
    "bert": FamilyRecipe(
        "bert",
        "wordpiece",
        "[CLS]",
        "[SEP]",
        "[PAD]",
        "cls",
        True,
        {"query": "Represent this sentence for searching relevant passages: "},
        type_ids=True,
        like="BAAI/bge-*-en-v1.5",
    ),
    "roberta": FamilyRecipe(
        "roberta",
        "bpe",
        "<s>",
        "</s>",
        "<pad>",
        "mean_sqrt_len_tokens",
        True,
        {"query": "query: ", "document": "passage: "},
        like="RoBERTa sentence encoders",
    ),
    "xlm-roberta": FamilyRecipe(
        "xlm-roberta",
        "unigram",
        "<s>",
        "</s>",
        "<pad>",
        "mean",
        True,
        {"query": "query: ", "passage": "passage: "},
        like="intfloat/multilingual-e5-*",
    ),
    "mpnet": FamilyRecipe(
        "mpnet",
        "wordpiece",
        "<s>",
        "</s>",
        "<pad>",
        "max",
        False,
        {"query": "Represent the question: ", "document": "Represent the answer: "},
        like="multi-qa-mpnet-base (max pooling, prompt excluded)",
    ),
    "deberta-v2": FamilyRecipe(
        "deberta-v2",
        "unigram",
        "[CLS]",
        "[SEP]",
        "[PAD]",
        "weightedmean",
        False,
        {"query": "Represent the query: ", "document": "Represent the document: "},
        type_ids=True,
        dense_out=16,
        like="DeBERTa-v3 encoders",
    ),
    "modernbert": FamilyRecipe(
        "modernbert",
        "bpe",
        "[CLS]",
        "[SEP]",
        "[PAD]",
        "mean",
        True,
        {"query": "search_query: ", "document": "search_document: "},
        default_prompt_name="document",
        like="nomic-ai/modernbert-embed-base",
    ),
    "t5": FamilyRecipe(
        "t5",
        "unigram",
        None,
        "</s>",
        "<pad>",
        "mean",
        False,
        {"query": "query: "},
        dense_out=16,
        like="sentence-t5 / GTR",
    ),
    "qwen2": FamilyRecipe(
        "qwen2",
        "bpe",
        None,
        "<|endoftext|>",
        "<|endoftext|>",
        "lasttoken",
        True,
        {"query": E5_QUERY},
        padding_side="right",
        like="Alibaba-NLP/gte-Qwen2-*-instruct",
    ),
    "qwen3": FamilyRecipe(
        "qwen3",
        "bpe",
        None,
        "<|endoftext|>",
        "<|endoftext|>",
        "lasttoken",
        True,
        {"query": QWEN_QUERY, "document": ""},
        padding_side="left",
        like="Qwen/Qwen3-Embedding-*",
    ),
    "mistral": FamilyRecipe(
        "mistral",
        "bpe",
        "<s>",
        "</s>",
        "</s>",
        "lasttoken",
        True,
        {"query": E5_QUERY},
        padding_side="left",
        like="intfloat/e5-mistral-7b-instruct",
    ),
    "llama": FamilyRecipe(
        "llama",
        "bpe",
        "<s>",
        "</s>",
        "</s>",
        "lasttoken",
        False,
        {"query": E5_QUERY, "document": ""},
        padding_side="right",
        like="Llama-based embedders",
    ),
    "gemma2": FamilyRecipe(
        "gemma2",
        "bpe",
        "<bos>",
        "<eos>",
        "<pad>",
        "lasttoken",
        True,
        {"query": "<instruct>Given a web search query, retrieve relevant passages.\n<query>"},
        padding_side="left",
        like="BAAI/bge-multilingual-gemma2",
    ),
    "gemma3_text": FamilyRecipe(
        "gemma3_text",
        "bpe",
        "<bos>",
        "<eos>",
        "<pad>",
        "mean",
        True,
        {"query": "task: search result | query: ", "document": "title: none | text: "},
        dense_out=16,
        like="google/embeddinggemma-300m (bidirectional; one Dense here, it has two)",
    ),
}

_MULTILINGUAL = [
    "Les modèles d'embedding multilingues comparent des phrases écrites dans des langues différentes.",
    "Mehrsprachige Einbettungen sollen Sätze in verschiedenen Sprachen vergleichbar machen, sagt man.",
    "多言語の埋め込みモデルは異なる言語の文を比較できます。東京は日本の首都です。",
    "Многоязычные модели сравнивают предложения на разных языках и находят похожие тексты.",
    "Los modelos multilingües comparan frases en idiomas distintos; ¿funciona también en español?",
    "Τα πολύγλωσσα μοντέλα συγκρίνουν προτάσεις σε διαφορετικές γλώσσες και βρίσκουν ομοιότητες.",
    "নমুনা বাংলা বাক্য এবং 中文句子：北京是中国的首都。 العربية: هذه جملة للاختبار.",
]


def training_lines() -> list[str]:
    """A few hundred lines of built-in text (English + the lines above), for tokenizer training."""
    lines = [line for line in _CORPUS.splitlines() if line] + _MULTILINGUAL
    out: list[str] = []
    for i in range(300):
        words = lines[i % len(lines)].split()
        k = i % max(1, len(words))
        out.append(" ".join(words[k:] + words[:k]))
    return out


def _long_text(seed: int) -> str:
    words = " ".join(training_lines()[seed : seed + 40]).split()
    text = ""
    while len(text) < 1500:
        text += " ".join(words) + " "
    return text[:1500].strip()


#: One batch for parity tests: short texts, ~1,500-character ones, non-English lines, an empty text.
FAMILY_TEXTS: list[str] = [
    "what is the capital of France?",
    _long_text(0),
    _MULTILINGUAL[2],
    "a",
    _long_text(7),
    _MULTILINGUAL[3] + " " + _MULTILINGUAL[5],
    "Represent the Science title: 3D ActionSLAM wearable person tracking",
    _MULTILINGUAL[6],
    "  leading and trailing spaces stay as given  ",
]


def _train_tokenizer(recipe: FamilyRecipe, vocab_size: int = 700) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [recipe.pad]
    for token in (recipe.prefix, recipe.suffix, "<unk>" if recipe.tokenizer != "wordpiece" else "[UNK]"):
        if token is not None and token not in specials:
            specials.append(token)
    unk = specials[-1]
    mask = "[MASK]" if recipe.tokenizer == "wordpiece" or recipe.prefix == "[CLS]" else "<mask>"
    specials.append(mask)
    if recipe.tokenizer == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=unk))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer: Any = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    elif recipe.tokenizer == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    else:
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=specials, unk_token=unk, max_piece_length=8
        )
    tok.train_from_iterator(training_lines(), trainer=trainer)
    pre = [recipe.prefix] if recipe.prefix else []
    post = [recipe.suffix] if recipe.suffix else []
    single = " ".join([*pre, "$A", *post])
    pair = " ".join([*pre, "$A", *post, "$B", *post])
    used = {t for t in (*pre, *post)}
    tok.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(t, tok.token_to_id(t)) for t in sorted(used)]
    )
    names = {"pad_token": recipe.pad, "unk_token": unk, "mask_token": mask}
    if recipe.prefix in ("[CLS]",):
        names.update(cls_token="[CLS]", sep_token=recipe.suffix or "[SEP]")
    else:
        if recipe.prefix:
            names["bos_token"] = recipe.prefix
        if recipe.suffix:
            names["eos_token"] = recipe.suffix
    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if recipe.type_ids else [])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=512,
        padding_side=recipe.padding_side,
        model_input_names=inputs,
        **names,
    )


def _model(recipe: FamilyRecipe, tokenizer: Any, seed: int) -> Any:
    """A random few-layer model of `recipe`'s architecture (hidden size 32)."""
    import transformers as tf

    torch.manual_seed(seed)
    vocab = len(tokenizer)
    pad = tokenizer.pad_token_id
    small: dict[str, Any] = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}
    small["intermediate_size"] = 64
    t = recipe.model_type
    if t == "t5":
        eos = tokenizer.eos_token_id
        config: Any = tf.T5Config(
            vocab_size=vocab,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=32,
            feed_forward_proj="relu",
            pad_token_id=pad,
            eos_token_id=eos,
        )
        return tf.T5EncoderModel(config).eval()
    if t in ("bert", "roberta", "xlm-roberta", "mpnet", "deberta-v2"):
        classes: dict[str, tuple[Any, dict[str, Any]]] = {
            "bert": (tf.BertConfig, {}),
            "roberta": (tf.RobertaConfig, {"max_position_embeddings": 520}),
            "xlm-roberta": (tf.XLMRobertaConfig, {"max_position_embeddings": 520}),
            "mpnet": (tf.MPNetConfig, {"max_position_embeddings": 520}),
            "deberta-v2": (
                tf.DebertaV2Config,
                {
                    "relative_attention": True,
                    "position_buckets": 64,
                    "pos_att_type": ["p2c", "c2p"],
                    "position_biased_input": False,
                    "type_vocab_size": 0,
                },
            ),
        }
        cls, extra = classes[t]
        kwargs: dict[str, Any] = {"max_position_embeddings": 512, **small, **extra}
        config = cls(vocab_size=vocab, pad_token_id=pad, **kwargs)
        return tf.AutoModel.from_config(config).eval()
    if t == "modernbert":
        config = tf.ModernBertConfig(
            vocab_size=vocab,
            pad_token_id=pad,
            hidden_size=32,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=512,
            layer_types=["full_attention", "sliding_attention", "sliding_attention"],
            local_attention=64,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        )
        return tf.AutoModel.from_config(config).eval()
    decoder = {"num_key_value_heads": 2, "max_position_embeddings": 1024, "pad_token_id": pad}
    decoder["bos_token_id"] = tokenizer.bos_token_id
    decoder["eos_token_id"] = tokenizer.eos_token_id
    if t == "qwen2":
        config = tf.Qwen2Config(vocab_size=vocab, **small, **decoder)
    elif t == "qwen3":
        config = tf.Qwen3Config(vocab_size=vocab, head_dim=8, **small, **decoder)
    elif t == "mistral":
        config = tf.MistralConfig(vocab_size=vocab, sliding_window=None, **small, **decoder)
    elif t == "llama":
        config = tf.LlamaConfig(vocab_size=vocab, **small, **decoder)
    elif t == "gemma2":
        config = tf.Gemma2Config(vocab_size=vocab, head_dim=8, sliding_window=64, **small, **decoder)
        config._attn_implementation = "eager"  # soft-capped attention runs eager only, as trained
    elif t == "gemma3_text":
        config = tf.Gemma3TextConfig(
            vocab_size=vocab,
            head_dim=8,
            sliding_window=64,
            use_bidirectional_attention=True,
            layer_types=["sliding_attention", "full_attention"],
            **small,
            **decoder,
        )
    else:  # pragma: no cover - FAMILY_RECIPES and this function are written together
        raise ValueError(f"no tiny model for {t!r}")
    return tf.AutoModel.from_config(config).eval()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_family_checkpoint(root: str | Path, name: str, *, seed: int = 0, max_seq_length: int = 512) -> Path:
    """Write `FAMILY_RECIPES[name]`'s tiny random checkpoint (sentence-transformers layout) to `root`."""
    if name not in FAMILY_RECIPES:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILY_RECIPES)}")
    recipe = FAMILY_RECIPES[name]
    root = Path(root)
    tokenizer = _train_tokenizer(recipe)
    model = _model(recipe, tokenizer, seed)
    model.save_pretrained(str(root))
    tokenizer.save_pretrained(str(root))
    tok_config_path = root / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text(encoding="utf-8"))
    tok_config.update(tokenizer_class="PreTrainedTokenizerFast", padding_side=recipe.padding_side)
    _write_json(tok_config_path, tok_config)
    hidden = 32
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if recipe.dense_out:
        generator = torch.Generator().manual_seed(seed + 1)
        weight = torch.randn(recipe.dense_out, hidden, generator=generator) / hidden**0.5
        save_dense_module(
            root / "2_Dense", weight, torch.randn(recipe.dense_out, generator=generator) * 0.1, False
        )
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
        )
    if recipe.normalize:
        n = len(modules)
        modules.append(
            {
                "idx": n,
                "name": str(n),
                "path": f"{n}_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    _write_json(root / "modules.json", modules)
    _write_json(
        root / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False}
    )
    _write_json(
        root / "1_Pooling" / "config.json",
        {
            "embedding_dimension": hidden,
            "pooling_mode": recipe.pooling,
            "include_prompt": recipe.include_prompt,
        },
    )
    _write_json(
        root / "config_sentence_transformers.json",
        {
            "prompts": recipe.prompts,
            "default_prompt_name": recipe.default_prompt_name,
            "similarity_fn_name": "cosine",
        },
    )
    return root
