"""Small real SavedModels that the tests build (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf


class MyMulModel(tf.train.Checkpoint):
    """The TF2 SavedModel guide's example, as written there."""

    def __init__(self, v_init):
        super().__init__()
        self.v = tf.Variable(v_init)
        self.variables = [self.v]
        self.trainable_variables = [self.v]
        self.regularization_losses = [
            tf.function(input_signature=[])(lambda: 0.001 * self.v**2),
        ]

    @tf.function(input_signature=[tf.TensorSpec(shape=None, dtype=tf.float32)])
    def __call__(self, inputs):
        return tf.multiply(inputs, self.v)


def save_mul(path: Path) -> Path:
    tf.saved_model.save(MyMulModel(2.0), str(path))
    return path


class TrainingFlagModel(tf.train.Checkpoint):
    """`obj(x, training=...)`: adds 1000 in training mode, so tests can see the flag."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable([[1.0], [2.0]], name="w")
        self.frozen = tf.Variable(3.0, trainable=False, name="frozen")
        self.variables = [self.w, self.frozen]
        self.trainable_variables = [self.w]
        self.regularization_losses = []
        self.__call__.get_concrete_function(tf.TensorSpec([None, 2], tf.float32), training=True)
        self.__call__.get_concrete_function(tf.TensorSpec([None, 2], tf.float32), training=False)

    @tf.function
    def __call__(self, x, training=False):
        out = tf.matmul(x, self.w) + self.frozen
        return out + 1000.0 if training else out


def save_training_flag(path: Path) -> Path:
    tf.saved_model.save(TrainingFlagModel(), str(path))
    return path


class TextEmbedding(tf.train.Checkpoint):
    """String sentences [batch] → float32 [batch, dim]: hashed tokens, mean of embeddings.

    Dropout in training mode; an L2 regularization loss; a `serving_default` signature.
    """

    def __init__(self, buckets: int = 64, dim: int = 8, seed: int = 0):
        super().__init__()
        self.buckets = buckets
        self.embeddings = tf.Variable(
            tf.random.stateless_normal([buckets, dim], seed=[seed, 1]), name="embeddings"
        )
        self.variables = [self.embeddings]
        self.trainable_variables = [self.embeddings]
        self.regularization_losses = [
            tf.function(input_signature=[])(lambda: 1e-4 * tf.reduce_sum(self.embeddings**2))
        ]
        spec = tf.TensorSpec([None], tf.string)
        self.__call__.get_concrete_function(spec, training=True)
        self.__call__.get_concrete_function(spec, training=False)

    def _embed(self, sentences):
        tokens = tf.strings.split(sentences)
        ids = tf.strings.to_hash_bucket_fast(tokens, self.buckets)
        vectors = tf.gather(self.embeddings, ids)
        return tf.math.divide_no_nan(
            tf.reduce_sum(vectors, axis=1),
            tf.cast(tf.expand_dims(tokens.row_lengths(), 1), tf.float32),
        )

    @tf.function
    def __call__(self, sentences, training=False):
        out = self._embed(sentences)
        if training:
            out = tf.nn.dropout(out, rate=0.5, seed=1)
        return out


def save_text_embedding(path: Path, **kwargs) -> Path:
    model = TextEmbedding(**kwargs)
    serve = tf.function(
        lambda sentences: {"default": model(sentences, training=False)},
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(model, str(path), signatures={"serving_default": serve})
    return path


class DictModel(tf.train.Checkpoint):
    """Dict in, dict out; plus a named signature `combine` (a, b → sum, prod)."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(2.0, name="scale")
        self.variables = [self.scale]
        self.trainable_variables = [self.scale]

    @tf.function(
        input_signature=[
            {"a": tf.TensorSpec([None, 3], tf.float32), "b": tf.TensorSpec([None, 3], tf.float32)}
        ]
    )
    def __call__(self, inputs):
        return {
            "sum": (inputs["a"] + inputs["b"]) * self.scale,
            "prod": inputs["a"] * inputs["b"],
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 3], tf.float32, name="a"),
            tf.TensorSpec([None, 3], tf.float32, name="b"),
            tf.TensorSpec([], tf.float32, name="offset"),
        ]
    )
    def combine(self, a, b, offset):
        return {"sum": a + b + offset, "prod": a * b}


def save_dict_model(path: Path) -> Path:
    model = DictModel()
    tf.saved_model.save(
        model,
        str(path),
        signatures={"combine": model.combine, "serving_default": model.__call__},
    )
    return path


def save_tf1_module(path: Path) -> Path:
    """A minimal module in the TF1 Hub format, written with tf.compat.v1 only.

    Graph variants: the empty tag set (inference) and {"train"}. Signature `default`:
    float32 [None, 2] → {"default": x @ w, "double": 2 * x @ w}.
    """
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        w = v1.get_variable("w", initializer=[[1.0], [2.0]], use_resource=True)
        y = tf.matmul(x, w)
        info = v1.saved_model.utils.build_tensor_info
        signature = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={"default": info(x)},
            outputs={"default": info(y), "double": info(2.0 * y)},
        )
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(
                sess, tags=[], signature_def_map={"default": signature}
            )
            builder.add_meta_graph(["train"], signature_def_map={"default": signature})
            builder.save()
    (path / "tfhub_module.pb").write_bytes(b"\x08\x03")
    return path
