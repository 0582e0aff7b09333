"""Reading a local sentence-transformers checkpoint of the BERT family (no torch needed).

The files of such a checkpoint: ``config.json`` (the Hugging Face model config),
``model.safetensors`` (the weights), ``vocab.txt`` (WordPiece vocabulary), and optionally
``tokenizer.json`` / ``tokenizer_config.json`` / ``special_tokens_map.json`` (tokenizer
settings), ``sentence_bert_config.json`` (``max_seq_length``), ``modules.json`` and
``1_Pooling/config.json`` (the sentence-transformers pipeline).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfhub.errors import ModelNotFoundError, NotAModelError

__all__ = [
    "BertConfig",
    "Checkpoint",
    "PipelineConfig",
    "TokenizerConfig",
    "read_checkpoint",
    "read_safetensors",
]

# Activation names of Hugging Face configs that the encoder implements.
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu")
# Pooling modes of sentence-transformers' Pooling module, in the order it concatenates them.
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")
_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
}


@dataclass(frozen=True)
class BertConfig:
    """The fields of ``config.json`` that define a BERT encoder."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str
    hidden_dropout_prob: float
    attention_probs_dropout_prob: float
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float


@dataclass(frozen=True)
class TokenizerConfig:
    """How the reference tokenizer normalizes, splits and frames text."""

    lowercase: bool
    strip_accents: bool
    clean_text: bool
    chinese_chars: bool
    max_input_chars_per_word: int
    unk_token: str
    cls_token: str
    sep_token: str
    continuing_subword_prefix: str
    # Tokens matched verbatim in the raw text before normalization (e.g. "[MASK]").
    special_tokens: tuple[str, ...]


@dataclass(frozen=True)
class PipelineConfig:
    """The sentence-transformers modules after the transformer."""

    max_seq_length: int
    pooling_modes: tuple[str, ...]
    normalize: bool
    # sentence_bert_config.json's do_lower_case: lower-case the text before tokenizing.
    lowercase: bool = False


@dataclass
class Checkpoint:
    """Everything read from a checkpoint directory."""

    model_dir: str
    config: BertConfig
    tokenizer: TokenizerConfig
    pipeline: PipelineConfig
    vocab_path: str
    vocab: list[str]
    weights: dict[str, np.ndarray] = field(repr=False)


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise NotAModelError(
            f"Cannot read {path}: {exc}. The file must be valid JSON as written by "
            "transformers / sentence-transformers; re-save or re-download the checkpoint."
        ) from exc


def _require(model_dir: str, name: str, what: str) -> str:
    path = os.path.join(model_dir, name)
    if not os.path.isfile(path):
        raise NotAModelError(
            f"{model_dir} has no {name} ({what}). Point MODEL_DIR at a local "
            "sentence-transformers checkpoint (the folder that SentenceTransformer.save() or "
            "a Hugging Face snapshot download writes: config.json, model.safetensors, vocab.txt).",
            handle=model_dir,
        )
    return path


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    """Reads every tensor of a ``.safetensors`` file as a NumPy array, with the ``safetensors``
    package's NumPy API (no torch). bfloat16 tensors come back as float32; every other dtype
    (float16 included) as stored.

    Raises:
        NotAModelError: the file cannot be read or is not a valid safetensors file.
    """
    # ml_dtypes (a TensorFlow dependency) gives NumPy the bfloat16 type that safetensors asks
    # NumPy for when a tensor is BF16.
    import ml_dtypes
    from safetensors import SafetensorError, safe_open

    out: dict[str, np.ndarray] = {}
    try:
        with safe_open(path, framework="np") as f:
            for name in f.keys():  # noqa: SIM118 (a safe_open handle is not a dict)
                array = f.get_tensor(name)
                out[name] = array.astype(np.float32) if array.dtype == ml_dtypes.bfloat16 else array
    except (SafetensorError, OSError, TypeError, ValueError) as exc:
        raise NotAModelError(
            f"{path} is not a valid safetensors file: {exc}. Re-download or re-save the "
            "checkpoint (safetensors.torch.save_file / model.save_pretrained)."
        ) from exc
    return out


def _bert_config(path: str, raw: Any) -> BertConfig:
    if not isinstance(raw, dict):
        raise NotAModelError(f"{path} must hold a JSON object.")
    model_type = raw.get("model_type")
    if model_type != "bert":
        raise NotAModelError(
            f"{path}: model_type is {model_type!r}, but this converter handles BERT-family "
            "checkpoints only (model_type 'bert', such as all-MiniLM-L6-v2). "
            'Use a sentence-transformers model whose config.json says "model_type": "bert".'
        )
    position = raw.get("position_embedding_type", "absolute")
    if position != "absolute":
        raise NotAModelError(
            f"{path}: position_embedding_type {position!r} is not supported (only 'absolute')."
        )
    act = raw.get("hidden_act", "gelu")
    if act not in SUPPORTED_ACTIVATIONS:
        raise NotAModelError(
            f"{path}: hidden_act {act!r} is not supported; expected one of "
            f"{', '.join(SUPPORTED_ACTIVATIONS)}."
        )
    try:
        config = BertConfig(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            num_hidden_layers=int(raw["num_hidden_layers"]),
            num_attention_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            hidden_act=str(act),
            hidden_dropout_prob=float(raw.get("hidden_dropout_prob", 0.1)),
            attention_probs_dropout_prob=float(raw.get("attention_probs_dropout_prob", 0.1)),
            max_position_embeddings=int(raw.get("max_position_embeddings", 512)),
            type_vocab_size=int(raw.get("type_vocab_size", 2)),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
        )
    except KeyError as exc:
        raise NotAModelError(
            f"{path} lacks the field {exc.args[0]!r} that every BERT config has."
        ) from exc
    except (TypeError, ValueError) as exc:
        raise NotAModelError(f"{path} has a field of the wrong type: {exc}.") from exc
    if config.hidden_size % config.num_attention_heads:
        raise NotAModelError(
            f"{path}: hidden_size {config.hidden_size} is not a multiple of "
            f"num_attention_heads {config.num_attention_heads}."
        )
    return config


def _tokenizer_config(model_dir: str) -> TokenizerConfig:
    """Reads the tokenizer settings: tokenizer.json first (what the reference uses), then the
    slow tokenizer's tokenizer_config.json / special_tokens_map.json, then BERT's defaults."""
    tok_json = os.path.join(model_dir, "tokenizer.json")
    tok_cfg_path = os.path.join(model_dir, "tokenizer_config.json")
    tok_cfg = _read_json(tok_cfg_path) if os.path.isfile(tok_cfg_path) else {}
    map_path = os.path.join(model_dir, "special_tokens_map.json")
    special_map = _read_json(map_path) if os.path.isfile(map_path) else {}
    if not isinstance(tok_cfg, dict) or not isinstance(special_map, dict):
        raise NotAModelError(
            f"{tok_cfg_path} and {map_path} must hold JSON objects.", handle=model_dir
        )

    def token(name: str, default: str) -> str:
        value = special_map.get(name, tok_cfg.get(name, default))
        if isinstance(value, dict):  # {"content": "[UNK]", ...}
            value = value.get("content", default)
        return str(value)

    unk, cls, sep = (
        token("unk_token", "[UNK]"),
        token("cls_token", "[CLS]"),
        token("sep_token", "[SEP]"),
    )
    lowercase = bool(tok_cfg.get("do_lower_case", True))
    strip = tok_cfg.get("strip_accents")
    clean_text = True
    chinese = bool(tok_cfg.get("tokenize_chinese_chars", True))
    max_chars = 100
    prefix = "##"
    specials = [
        token(name, default)
        for name, default in (
            ("pad_token", "[PAD]"),
            ("unk_token", "[UNK]"),
            ("cls_token", "[CLS]"),
            ("sep_token", "[SEP]"),
            ("mask_token", "[MASK]"),
        )
    ]
    if os.path.isfile(tok_json):
        raw = _read_json(tok_json)
        if not isinstance(raw, dict):
            raise NotAModelError(f"{tok_json} must hold a JSON object.", handle=model_dir)
        normalizer = raw.get("normalizer") or {}
        model = raw.get("model") or {}
        pre = raw.get("pre_tokenizer") or {}
        if normalizer.get("type") != "BertNormalizer" or model.get("type") != "WordPiece":
            raise NotAModelError(
                f"{tok_json}: expected a BertNormalizer and a WordPiece model, found "
                f"{normalizer.get('type')!r} and {model.get('type')!r}; only BERT tokenizers "
                "are supported."
            )
        if pre.get("type") != "BertPreTokenizer":
            raise NotAModelError(
                f"{tok_json}: pre_tokenizer {pre.get('type')!r} is not supported "
                "(only BertPreTokenizer)."
            )
        lowercase = bool(normalizer.get("lowercase", True))
        strip = normalizer.get("strip_accents")
        clean_text = bool(normalizer.get("clean_text", True))
        chinese = bool(normalizer.get("handle_chinese_chars", True))
        max_chars = int(model.get("max_input_chars_per_word", 100))
        prefix = str(model.get("continuing_subword_prefix", "##"))
        unk = str(model.get("unk_token", unk))
        specials = [
            str(t["content"])
            for t in raw.get("added_tokens") or []
            if isinstance(t, dict) and t.get("content")
        ]
    return TokenizerConfig(
        lowercase=lowercase,
        # BERT's rule: accents are stripped when lower-casing unless said otherwise.
        strip_accents=lowercase if strip is None else bool(strip),
        clean_text=clean_text,
        chinese_chars=chinese,
        max_input_chars_per_word=max_chars,
        unk_token=unk,
        cls_token=cls,
        sep_token=sep,
        continuing_subword_prefix=prefix,
        special_tokens=tuple(dict.fromkeys(specials)),
    )


def _pipeline_config(model_dir: str, config: BertConfig, model_max_length: int) -> PipelineConfig:
    modules_path = os.path.join(model_dir, "modules.json")
    pooling_dir = None
    normalize = False
    if os.path.isfile(modules_path):
        modules = _read_json(modules_path)
        if not isinstance(modules, list):
            raise NotAModelError(f"{modules_path} must hold a JSON list of modules.")
        for index, module in enumerate(modules):
            kind = str(module.get("type", "")) if isinstance(module, dict) else ""
            short = kind.rsplit(".", 1)[-1]
            if index == 0 and short == "Transformer":
                continue
            if short == "Pooling" and pooling_dir is None:
                pooling_dir = os.path.join(model_dir, str(module.get("path", "")))
            elif short == "Normalize":
                normalize = True
            else:
                raise NotAModelError(
                    f"{modules_path}: module {index} of type {kind!r} is not supported; the "
                    "converter handles Transformer, then Pooling, then optionally Normalize."
                )
    modes: tuple[str, ...] = ("mean",)
    if pooling_dir is not None:
        pool_path = _require(pooling_dir, "config.json", "the Pooling module's settings")
        pool = _read_json(pool_path)
        if not isinstance(pool, dict):
            raise NotAModelError(f"{pool_path} must hold a JSON object.")
        named = pool.get("pooling_mode")
        if isinstance(named, str):
            chosen = [named]
        elif isinstance(named, list):
            chosen = [str(m) for m in named]
        else:
            chosen = [
                _POOLING_FLAGS.get(key, key.removeprefix("pooling_mode_"))
                for key, value in pool.items()
                if key.startswith("pooling_mode_") and value is True
            ]
        bad = [m for m in chosen if m not in POOLING_MODES]
        if bad or not chosen:
            raise NotAModelError(
                f"{pool_path}: pooling mode {', '.join(bad) or '(none)'} is not supported; "
                f"expected {', '.join(POOLING_MODES)}."
            )
        modes = tuple(m for m in POOLING_MODES if m in chosen)
    st_path = os.path.join(model_dir, "sentence_bert_config.json")
    max_len = min(model_max_length, config.max_position_embeddings)
    lowercase = False
    if os.path.isfile(st_path):
        st = _read_json(st_path)
        if not isinstance(st, dict):
            raise NotAModelError(f"{st_path} must hold a JSON object.", handle=model_dir)
        try:
            if st.get("max_seq_length") is not None:
                max_len = int(st["max_seq_length"])
        except (TypeError, ValueError) as exc:
            raise NotAModelError(f"{st_path}: max_seq_length is not a number.") from exc
        lowercase = bool(st.get("do_lower_case", False))
    return PipelineConfig(
        max_seq_length=max_len, pooling_modes=modes, normalize=normalize, lowercase=lowercase
    )


def _read_vocab(path: str) -> list[str]:
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if any("\r" in line for line in lines):
        raise NotAModelError(
            f"{path} has Windows line endings; convert it to one token per '\\n'-ended line."
        )
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if line in seen:
            raise NotAModelError(
                f"{path} line {number}: the token {line!r} appears twice; a WordPiece "
                "vocabulary needs unique tokens."
            )
        seen.add(line)
    return lines


def _strip_prefix(weights: dict[str, np.ndarray], path: str) -> dict[str, np.ndarray]:
    """Drops a leading ``bert.`` (or any) prefix, so names start at ``embeddings.``."""
    anchor = "embeddings.word_embeddings.weight"
    found = [k for k in weights if k.endswith(anchor)]
    if not found:
        raise NotAModelError(
            f"{path} has no tensor '{anchor}': these are not BERT weights (or not the "
            "transformer's). Export the sentence-transformers model again with save()."
        )
    prefix = min(found, key=len)[: -len(anchor)]
    renamed = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    # Old TF-converted checkpoints call LayerNorm's parameters gamma/beta.
    return {
        k.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias"
        ): v
        for k, v in renamed.items()
    }


def read_checkpoint(model_dir: str) -> Checkpoint:
    """Reads and checks a sentence-transformers BERT checkpoint.

    Args:
        model_dir: the checkpoint directory.

    Returns:
        The configs, vocabulary and weights.

    Raises:
        ModelNotFoundError: ``model_dir`` is not a directory.
        NotAModelError: a required file is missing or unreadable, or the model is not one this
            converter handles (its message names the file and field).
    """
    if not os.path.isdir(model_dir):
        raise ModelNotFoundError(
            f"{model_dir} is not a directory. Pass the folder of a local sentence-transformers "
            "checkpoint (config.json, model.safetensors, vocab.txt, ...).",
            handle=model_dir,
        )
    config_path = _require(model_dir, "config.json", "the transformer's configuration")
    config = _bert_config(config_path, _read_json(config_path))
    weights_path = os.path.join(model_dir, "model.safetensors")
    if not os.path.isfile(weights_path):
        hint = ""
        if os.path.isfile(os.path.join(model_dir, "pytorch_model.bin")):
            hint = (
                " It has pytorch_model.bin: load it with transformers and save it with "
                "save_pretrained(..., safe_serialization=True) to get model.safetensors."
            )
        raise NotAModelError(
            f"{model_dir} has no model.safetensors (the weights).{hint}", handle=model_dir
        )
    vocab_path = _require(model_dir, "vocab.txt", "the WordPiece vocabulary")
    tokenizer = _tokenizer_config(model_dir)
    tok_cfg_path = os.path.join(model_dir, "tokenizer_config.json")
    model_max_length = config.max_position_embeddings
    if os.path.isfile(tok_cfg_path):
        value = _read_json(tok_cfg_path).get("model_max_length")
        if isinstance(value, int) and value < 10**9:
            model_max_length = value
    pipeline = _pipeline_config(model_dir, config, model_max_length)
    if pipeline.lowercase and not tokenizer.lowercase:
        # Lower-casing first and then normalizing is, character by character, the same as
        # normalizing with lower-casing (up to Python's final-sigma rule).
        tokenizer = dataclasses.replace(tokenizer, lowercase=True)
    if not 2 <= pipeline.max_seq_length <= config.max_position_embeddings:
        raise NotAModelError(
            f"{model_dir}: max_seq_length {pipeline.max_seq_length} (sentence_bert_config.json) "
            f"must be between 2 and max_position_embeddings {config.max_position_embeddings}."
        )
    vocab = _read_vocab(vocab_path)
    if len(vocab) != config.vocab_size:
        raise NotAModelError(
            f"{vocab_path} has {len(vocab)} tokens but config.json says vocab_size "
            f"{config.vocab_size}; the vocabulary does not belong to these weights."
        )
    for name in (tokenizer.unk_token, tokenizer.cls_token, tokenizer.sep_token):
        if name not in vocab:
            raise NotAModelError(f"{vocab_path} lacks the special token {name!r}.")
    weights = _strip_prefix(read_safetensors(weights_path), weights_path)
    return Checkpoint(
        model_dir=model_dir,
        config=config,
        tokenizer=tokenizer,
        pipeline=pipeline,
        vocab_path=vocab_path,
        vocab=vocab,
        weights=weights,
    )
