"""The three Reusable SavedModels written by :func:`tfhub.exporters.sentence_transformer`."""

from __future__ import annotations

import logging
from typing import Any

import tensorflow as tf

from tfhub.exporters._bert.checkpoint import Checkpoint, PipelineConfig
from tfhub.exporters._bert.encoder import BertEncoder, mean_pool
from tfhub.exporters._bert.packing import DEFAULT_SEQ_LENGTH, as_rows
from tfhub.exporters._bert.tokenizer import SENTENCES, WordPieceTokenizer

__all__ = ["save_models"]

logger = logging.getLogger(__name__)

_BERT_INPUTS = {
    k: tf.TensorSpec([None, None], tf.int32, name=k)
    for k in ("input_word_ids", "input_mask", "input_type_ids")
}


class _SpecialTokens(tf.train.Checkpoint):
    """``preprocessor.tokenize.get_special_tokens_dict()``: the special ids, int32 scalars."""

    def __init__(self, ids: dict[str, int]) -> None:
        super().__init__()
        self._ids = dict(ids)

    @tf.function(autograph=False, input_signature=[])
    def __call__(self) -> dict[str, Any]:
        return {k: tf.constant(v, tf.int32) for k, v in self._ids.items()}


class _Tokenize(tf.train.Checkpoint):
    """``preprocessor.tokenize``: sentences → int32 RaggedTensor [batch, (words), (pieces)]."""

    def __init__(self, tokenizer: WordPieceTokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.get_special_tokens_dict = _SpecialTokens(tokenizer.special_tokens)

    @tf.function(autograph=False, input_signature=[SENTENCES])
    def __call__(self, sentences: Any) -> Any:
        return self.tokenizer.tokenize(sentences)


class _BertPackInputs(tf.train.Checkpoint):
    """``preprocessor.bert_pack_inputs(segments, seq_length=...)``.

    ``segments`` is a list of one to three tokenized segments (int32 RaggedTensors
    [batch, (pieces)] or [batch, (words), (pieces)]; dense ids are taken as full rows, which
    lets ``hub.KerasLayer(bert_pack_inputs)`` trace on the dense specs Keras gives symbolic
    ragged tensors); ``seq_length`` a Python int or an int32 scalar, ``default_seq_length``
    when left out. The function is bound per instance so that its default is this model's.

    Its 24 traced signatures (rank 2 or 3, ragged or dense, one to three segments, with or
    without ``seq_length``) only reshape their segments into rows and call one inner function,
    ``pack_rows``, traced once per segment count and kind of ``seq_length`` (6 signatures): the
    packing graph is built and saved 6 times instead of 24 (and ``tf.saved_model.save`` traces
    every signature once more).
    """

    def __init__(self, tokenizer: WordPieceTokenizer, default_seq_length: int) -> None:
        super().__init__()
        self.tokenizer = tokenizer

        @tf.function(autograph=False)
        def pack_rows(rows: Any, seq_length: Any) -> dict[str, Any]:
            return tokenizer.pack(rows, seq_length)

        @tf.function(autograph=False)
        def call(segments: Any, seq_length: Any = default_seq_length) -> Any:
            return pack_rows(as_rows(segments), seq_length)

        self.__call__ = call
        for rank in (2, 3):
            # Dense ids too: Keras describes a symbolic RaggedTensor with a dense spec.
            for spec in (
                tf.RaggedTensorSpec([None] * rank, tf.int32),
                tf.TensorSpec([None] * rank, tf.int32),
            ):
                for count in (1, 2, 3):
                    call.get_concrete_function([spec] * count)
                    call.get_concrete_function([spec] * count, tf.TensorSpec([], tf.int32))


class Preprocessor(tf.train.Checkpoint):
    """Sentences → BERT inputs (no variables), with the published preprocessor's interface.

    ``preprocessor(sentences)`` packs single sentences to ``default_seq_length`` (128 as
    published, fewer only if the encoder takes fewer positions); ``tokenize`` and
    ``bert_pack_inputs`` are the two steps, for sentence pairs and other lengths.
    """

    def __init__(self, tokenizer: WordPieceTokenizer, default_seq_length: int) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.vocab_file = tokenizer.vocab_file
        self.seq_length = default_seq_length
        self.tokenize = _Tokenize(tokenizer)
        self.bert_pack_inputs = _BertPackInputs(tokenizer, default_seq_length)
        self.variables: list[Any] = []
        self.trainable_variables: list[Any] = []
        self.regularization_losses: list[Any] = []

    @tf.function(autograph=False, input_signature=[SENTENCES])
    def __call__(self, sentences: Any) -> Any:
        return self.tokenizer.pack(self.tokenizer.tokenize(sentences), self.seq_length)


def _weights(encoder: BertEncoder) -> list[Any]:
    """The encoder's variables in model order (embeddings, layers, pooler)."""
    out = [
        encoder.word_embeddings,
        encoder.position_embeddings,
        encoder.type_embeddings,
        encoder.embedding_norm.gamma,
        encoder.embedding_norm.beta,
    ]
    for layer in encoder.layers:
        for dense in (layer.query, layer.key, layer.value, layer.attention_output):
            out += [dense.kernel, dense.bias]
        out += [layer.attention_norm.gamma, layer.attention_norm.beta]
        for dense in (layer.intermediate, layer.output):
            out += [dense.kernel, dense.bias]
        out += [layer.output_norm.gamma, layer.output_norm.beta]
    if encoder.pooler is not None:
        out += [encoder.pooler.kernel, encoder.pooler.bias]
    return out


class Encoder(tf.train.Checkpoint):
    """BERT inputs → ``sequence_output``, ``pooled_output``, ``encoder_outputs``, ``default``."""

    def __init__(self, bert: BertEncoder) -> None:
        super().__init__()
        self.bert = bert
        self.variables = _weights(bert)
        self.trainable_variables = list(self.variables)
        self.regularization_losses: list[Any] = []
        for training in (False, True):
            self.__call__.get_concrete_function(_BERT_INPUTS, training=training)

    @tf.function(autograph=False)
    def __call__(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        return self.bert.encode(inputs, training=training)

    @tf.function(autograph=False, input_signature=[_BERT_INPUTS])
    def serve(self, inputs: dict[str, Any]) -> dict[str, Any]:
        out = self.__call__(inputs, training=False)  # calls the traced function, no new trace
        return {k: out[k] for k in ("pooled_output", "sequence_output", "default")}


def pool(sequence: Any, mask: Any, modes: tuple[str, ...]) -> Any:
    """sentence-transformers' Pooling: the chosen poolings of the tokens, concatenated."""
    parts = []
    weights = tf.cast(mask, sequence.dtype)[:, :, tf.newaxis]
    for mode in modes:
        if mode == "cls":
            parts.append(sequence[:, 0])
        elif mode == "max":
            parts.append(tf.reduce_max(sequence + (weights - 1.0) * 1e9, axis=1))
        elif mode == "mean":
            parts.append(mean_pool(sequence, mask))
        else:  # mean_sqrt_len_tokens
            total = tf.reduce_sum(sequence * weights, axis=1)
            parts.append(total / tf.sqrt(tf.maximum(tf.reduce_sum(weights, axis=1), 1e-9)))
    return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)


class SentenceEmbedding(tf.train.Checkpoint):
    """Sentences → the sentence-transformers embedding; fine-tunable.

    It calls the tokenizer's and the encoder's own ``tf.function`` s, so their graphs are
    traced once for all three models. BERT's pooler (part of ``encoder``) is not used here and
    is left out of ``variables``.
    """

    def __init__(
        self, tokenizer: WordPieceTokenizer, encoder: Encoder, pipeline: PipelineConfig
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.vocab_file = tokenizer.vocab_file
        self._pipeline = pipeline
        pooler = encoder.bert.pooler
        unused = {id(v) for v in (pooler.kernel, pooler.bias)} if pooler is not None else set()
        self.variables = [v for v in encoder.variables if id(v) not in unused]
        self.trainable_variables = list(self.variables)
        self.regularization_losses: list[Any] = []
        for training in (False, True):
            self.__call__.get_concrete_function(SENTENCES, training=training)

    def _embed(self, sentences: Any, training: bool) -> Any:
        inputs = self.tokenizer.bert_inputs(sentences)
        sequence = self.encoder(inputs, training=training)["sequence_output"]
        out = pool(sequence, inputs["input_mask"], self._pipeline.pooling_modes)
        if self._pipeline.normalize:
            out = out / tf.maximum(tf.norm(out, axis=-1, keepdims=True), 1e-12)
        return out

    @tf.function(autograph=False)
    def __call__(self, sentences: Any, training: bool = False) -> Any:
        return self._embed(sentences, training)

    @tf.function(autograph=False, input_signature=[SENTENCES])
    def serve(self, sentences: Any) -> dict[str, Any]:
        return {"default": self.__call__(sentences, training=False)}


def save_models(
    checkpoint: Checkpoint,
    *,
    preprocessor_dir: str,
    encoder_dir: str,
    sentence_embedding_dir: str,
) -> None:
    """Builds the three models from ``checkpoint`` and saves them.

    Raises:
        NotAModelError: the weights do not fit the config.
    """
    tokenizer = WordPieceTokenizer(
        checkpoint.tokenizer,
        checkpoint.vocab_path,
        checkpoint.vocab,
        checkpoint.pipeline.max_seq_length,
    )
    source = f"{checkpoint.model_dir}/model.safetensors"

    default_seq_length = min(DEFAULT_SEQ_LENGTH, checkpoint.config.max_position_embeddings)
    preprocessor = Preprocessor(tokenizer, default_seq_length)
    tf.saved_model.save(
        preprocessor, preprocessor_dir, signatures={"serving_default": preprocessor.__call__}
    )
    logger.info("Saved the preprocessor to %s", preprocessor_dir)

    encoder = Encoder(BertEncoder(checkpoint.config, checkpoint.weights, source))
    tf.saved_model.save(encoder, encoder_dir, signatures={"serving_default": encoder.serve})
    logger.info("Saved the encoder to %s", encoder_dir)
    if not encoder.bert.has_pooler:
        logger.warning(
            "%s has no pooler weights: the encoder's pooled_output is the mean of its "
            "sequence_output over the input mask.",
            source,
        )

    embedding = SentenceEmbedding(tokenizer, encoder, checkpoint.pipeline)
    tf.saved_model.save(
        embedding, sentence_embedding_dir, signatures={"serving_default": embedding.serve}
    )
    logger.info("Saved the sentence embedding to %s", sentence_embedding_dir)
