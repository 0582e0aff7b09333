"""The three Reusable SavedModels written by :func:`tfhub.exporters.sentence_transformer`."""

from __future__ import annotations

import logging
from typing import Any

import tensorflow as tf

from tfhub.exporters._bert.checkpoint import Checkpoint, PipelineConfig
from tfhub.exporters._bert.encoder import BertEncoder, mean_pool
from tfhub.exporters._bert.tokenizer import SENTENCES, WordPieceTokenizer

__all__ = ["save_models"]

logger = logging.getLogger(__name__)

_BERT_INPUTS = {
    k: tf.TensorSpec([None, None], tf.int32, name=k)
    for k in ("input_word_ids", "input_mask", "input_type_ids")
}


class Preprocessor(tf.train.Checkpoint):
    """Sentences → BERT inputs (no variables)."""

    def __init__(self, tokenizer: WordPieceTokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.vocab_file = tokenizer.vocab_file
        self.variables: list[Any] = []
        self.trainable_variables: list[Any] = []
        self.regularization_losses: list[Any] = []

    @tf.function(autograph=False, input_signature=[SENTENCES])
    def __call__(self, sentences: Any) -> Any:
        return self.tokenizer.bert_inputs(sentences)

    @tf.function(autograph=False, input_signature=[SENTENCES])
    def tokenize(self, sentences: Any) -> Any:
        return self.tokenizer.tokenize(sentences)


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

    preprocessor = Preprocessor(tokenizer)
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
