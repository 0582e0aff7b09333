"""A BERT encoder in plain TensorFlow ops, its weights taken from a Hugging Face checkpoint.

The computation follows the original BERT: word + position + token-type embeddings and a
LayerNorm, then post-LayerNorm transformer layers (multi-head self-attention over the
unmasked positions, a residual LayerNorm, a dense-activation-dense block, another residual
LayerNorm), and the pooler (dense + tanh on the first token). Dropout runs only when called
with ``training=True``, at the places and rates of the Hugging Face implementation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from tfhub.errors import NotAModelError
from tfhub.exporters._bert.checkpoint import BertConfig

__all__ = ["BertEncoder"]

# Added to the attention scores of padding: their softmax weight becomes exactly 0.
_MASKED_SCORE = -1e9


class _Weights:
    """Hands out checkpoint tensors as float32 variables, and checks shapes and leftovers."""

    def __init__(self, arrays: dict[str, np.ndarray], source: str) -> None:
        self._arrays = arrays
        self._source = source
        self.used: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self._arrays

    def variable(
        self, name: str, shape: tuple[int, ...], *, transpose: bool = False, var_name: str
    ) -> tf.Variable:
        if name not in self._arrays:
            raise NotAModelError(
                f"{self._source} lacks the tensor {name!r} that a BERT model with this "
                "config.json needs; the weights do not match the config."
            )
        array = np.asarray(self._arrays[name], dtype=np.float32)
        if transpose:
            array = array.T  # torch Linear stores [out, in]; we multiply x @ [in, out]
        if tuple(array.shape) != shape:
            raise NotAModelError(
                f"{self._source}: tensor {name!r} has shape {list(array.shape)}, expected "
                f"{list(shape)} from config.json."
            )
        self.used.add(name)
        return tf.Variable(np.ascontiguousarray(array), name=var_name, trainable=True)


class _Dense(tf.Module):
    def __init__(self, weights: _Weights, prefix: str, n_in: int, n_out: int, name: str) -> None:
        super().__init__(name=name.replace("/", "_"))
        self.kernel = weights.variable(
            f"{prefix}.weight", (n_in, n_out), transpose=True, var_name=f"{name}/kernel"
        )
        self.bias = weights.variable(f"{prefix}.bias", (n_out,), var_name=f"{name}/bias")

    def __call__(self, x: Any) -> Any:
        return tf.matmul(x, self.kernel) + self.bias


class _LayerNorm(tf.Module):
    def __init__(self, weights: _Weights, prefix: str, size: int, eps: float, name: str) -> None:
        super().__init__(name=name.replace("/", "_"))
        self.gamma = weights.variable(f"{prefix}.weight", (size,), var_name=f"{name}/gamma")
        self.beta = weights.variable(f"{prefix}.bias", (size,), var_name=f"{name}/beta")
        self.eps = eps

    def __call__(self, x: Any) -> Any:
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(variance + self.eps) * self.gamma + self.beta


def _activation(name: str) -> Any:
    if name == "gelu":
        return lambda x: tf.nn.gelu(x, approximate=False)
    if name == "relu":
        return tf.nn.relu
    return lambda x: tf.nn.gelu(x, approximate=True)  # gelu_new, gelu_pytorch_tanh, gelu_fast


class _Layer(tf.Module):
    def __init__(self, weights: _Weights, config: BertConfig, index: int) -> None:
        name = f"layer_{index}"
        super().__init__(name=name.replace("/", "_"))
        p = f"encoder.layer.{index}"
        h, i, eps = config.hidden_size, config.intermediate_size, config.layer_norm_eps
        self.query = _Dense(weights, f"{p}.attention.self.query", h, h, f"{name}/query")
        self.key = _Dense(weights, f"{p}.attention.self.key", h, h, f"{name}/key")
        self.value = _Dense(weights, f"{p}.attention.self.value", h, h, f"{name}/value")
        self.attention_output = _Dense(
            weights, f"{p}.attention.output.dense", h, h, f"{name}/attention_output"
        )
        self.attention_norm = _LayerNorm(
            weights, f"{p}.attention.output.LayerNorm", h, eps, f"{name}/attention_norm"
        )
        self.intermediate = _Dense(weights, f"{p}.intermediate.dense", h, i, f"{name}/intermediate")
        self.output = _Dense(weights, f"{p}.output.dense", i, h, f"{name}/output")
        self.output_norm = _LayerNorm(
            weights, f"{p}.output.LayerNorm", h, eps, f"{name}/output_norm"
        )
        self.heads = config.num_attention_heads
        self.head_size = h // config.num_attention_heads
        self.hidden_dropout = config.hidden_dropout_prob
        self.attention_dropout = config.attention_probs_dropout_prob
        self.activation = config.hidden_act

    def __call__(self, x: Any, mask_bias: Any, training: bool) -> Any:
        batch, length = tf.shape(x)[0], tf.shape(x)[1]

        def heads(t: Any) -> Any:  # [batch, len, hidden] -> [batch, heads, len, head_size]
            t = tf.reshape(t, [batch, length, self.heads, self.head_size])
            return tf.transpose(t, [0, 2, 1, 3])

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(self.head_size) + mask_bias
        probs = tf.nn.softmax(scores, axis=-1)
        probs = _dropout(probs, self.attention_dropout, training)
        context = tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3])
        context = tf.reshape(context, [batch, length, self.heads * self.head_size])
        attended = _dropout(self.attention_output(context), self.hidden_dropout, training)
        x = self.attention_norm(attended + x)
        inner = _activation(self.activation)(self.intermediate(x))
        out = _dropout(self.output(inner), self.hidden_dropout, training)
        return self.output_norm(out + x)


def _dropout(x: Any, rate: float, training: bool) -> Any:
    if training and rate > 0:
        return tf.nn.dropout(x, rate=rate)
    return x


class BertEncoder(tf.Module):
    """BERT as a ``tf.Module`` of trainable ``tf.Variable`` s.

    Args:
        config: the model's configuration.
        arrays: the checkpoint's tensors, named as in Hugging Face's ``BertModel``.
        source: the weights file, for error messages.

    Raises:
        NotAModelError: a tensor is missing or has the wrong shape.
    """

    def __init__(self, config: BertConfig, arrays: dict[str, np.ndarray], source: str) -> None:
        super().__init__(name="bert_encoder")
        weights = _Weights(arrays, source)
        h = config.hidden_size
        self.word_embeddings = weights.variable(
            "embeddings.word_embeddings.weight",
            (config.vocab_size, h),
            var_name="embeddings/word_embeddings",
        )
        self.position_embeddings = weights.variable(
            "embeddings.position_embeddings.weight",
            (config.max_position_embeddings, h),
            var_name="embeddings/position_embeddings",
        )
        self.type_embeddings = weights.variable(
            "embeddings.token_type_embeddings.weight",
            (config.type_vocab_size, h),
            var_name="embeddings/type_embeddings",
        )
        self.embedding_norm = _LayerNorm(
            weights, "embeddings.LayerNorm", h, config.layer_norm_eps, "embeddings/layer_norm"
        )
        self.layers = [_Layer(weights, config, i) for i in range(config.num_hidden_layers)]
        self.has_pooler = weights.has("pooler.dense.weight")
        self.pooler = _Dense(weights, "pooler.dense", h, h, "pooler") if self.has_pooler else None
        self.hidden_dropout = config.hidden_dropout_prob
        self.hidden_size = h

    def encode(self, inputs: dict[str, Any], training: bool = False) -> dict[str, Any]:
        """Runs BERT.

        Args:
            inputs: ``input_word_ids``, ``input_mask`` and ``input_type_ids``, int [batch, len].
            training: apply dropout.

        Returns:
            ``sequence_output`` [batch, len, hidden], ``pooled_output`` [batch, hidden] (the
            pooler on the first token; without pooler weights, the mean of the unmasked
            ``sequence_output``), ``encoder_outputs`` (each layer's output) and ``default``
            (= ``pooled_output``).
        """
        word_ids = tf.cast(inputs["input_word_ids"], tf.int32)
        mask = tf.cast(inputs["input_mask"], tf.float32)
        type_ids = tf.cast(inputs["input_type_ids"], tf.int32)
        length = tf.shape(word_ids)[1]
        x = (
            tf.gather(self.word_embeddings, word_ids)
            + tf.gather(self.position_embeddings, tf.range(length))[tf.newaxis]
            + tf.gather(self.type_embeddings, type_ids)
        )
        x = _dropout(self.embedding_norm(x), self.hidden_dropout, training)
        mask_bias = ((1.0 - mask) * _MASKED_SCORE)[:, tf.newaxis, tf.newaxis, :]
        layer_outputs = []
        for layer in self.layers:
            x = layer(x, mask_bias, training)
            layer_outputs.append(x)
        pooled = tf.tanh(self.pooler(x[:, 0])) if self.pooler is not None else mean_pool(x, mask)
        return {
            "sequence_output": x,
            "pooled_output": pooled,
            "encoder_outputs": layer_outputs,
            "default": pooled,
        }


def mean_pool(sequence: Any, mask: Any) -> Any:
    """The mean of ``sequence`` [batch, len, dim] over the positions where ``mask`` is 1."""
    weights = tf.cast(mask, sequence.dtype)[:, :, tf.newaxis]
    total = tf.reduce_sum(sequence * weights, axis=1)
    return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1e-9)
