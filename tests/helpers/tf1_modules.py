"""module_fns of TF1 Hub modules for the tests (graph mode, tf.compat.v1 only)."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

import tfhub as hub

v1 = tf.compat.v1


def dense(x, units, name, regularize=0.0):
    regularizer = (lambda w: regularize * tf.nn.l2_loss(w)) if regularize else None
    kernel = v1.get_variable(
        f"{name}/kernel",
        [x.shape[-1], units],
        initializer=v1.glorot_uniform_initializer(seed=7),
        regularizer=regularizer,
    )
    bias = v1.get_variable(f"{name}/bias", [units], initializer=v1.zeros_initializer())
    return tf.matmul(x, kernel) + bias


def seed_module_fn():
    """The TF1 guide's example: [None, 50] → dense 200 → dense 100."""
    inputs = v1.placeholder(dtype=tf.float32, shape=[None, 50])
    layer1 = dense(inputs, 200, "layer1", regularize=0.01)
    layer2 = dense(layer1, 100, "layer2")
    outputs = dict(default=layer2, hidden_activations=layer1)
    hub.add_signature(inputs=inputs, outputs=outputs)


def fruit_module_fn():
    apples = v1.placeholder(tf.float32, [None, 2], name="apples")
    oranges = v1.placeholder(tf.float32, [None, 2], name="oranges")
    scale = v1.get_variable("scale", initializer=3.0)
    hub.add_signature(
        "fruit_to_pet",
        inputs={"apples": apples, "oranges": oranges},
        outputs={"cats": (apples + oranges) * scale, "dogs": apples - oranges},
    )
    hub.add_signature(inputs=apples, outputs=apples * scale)


def train_variant_module_fn(is_training):
    """Dropout and a batch-norm-like moving mean only in the {"train"} variant."""
    x = v1.placeholder(tf.float32, [None, 4])
    w = v1.get_variable("w", initializer=tf.ones([4, 4]))
    moving = v1.get_variable("moving_mean", initializer=tf.zeros([4]), trainable=False)
    h = tf.matmul(x, w)
    if is_training:  # like batch norm: batch statistics in training, updating the moving mean
        update = v1.assign(moving, 0.9 * moving + 0.1 * tf.reduce_mean(h, axis=0))
        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, update)
        out = tf.nn.dropout(h, rate=0.5, seed=3)
    else:
        out = h - moving
    hub.add_signature(inputs=x, outputs=out)


TRAIN_TAGS_AND_ARGS = [({"train"}, {"is_training": True}), (set(), {"is_training": False})]


def make_vocab_module_fn(vocab_file: Path):
    def module_fn():
        tokens = v1.placeholder(tf.string, [None])
        vocab = tf.constant(str(vocab_file), name="vocab_file")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, vocab)
        table = tf.lookup.StaticVocabularyTable(
            tf.lookup.TextFileInitializer(
                vocab,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            num_oov_buckets=1,
        )
        embeddings = v1.get_variable("embeddings", initializer=tf.reshape(tf.range(8.0), [4, 2]))
        ids = table.lookup(tokens)
        hub.add_signature(
            inputs=tokens, outputs={"default": tf.gather(embeddings, ids), "ids": ids}
        )

    return module_fn


def sparse_and_ragged_module_fn():
    sparse = v1.sparse_placeholder(tf.float32, [None, 3])
    hub.add_signature("sparse", inputs=sparse, outputs=tf.sparse.reduce_sum(sparse, axis=1))
    ragged = tf.RaggedTensor.from_row_splits(
        v1.placeholder(tf.float32, [None]), v1.placeholder(tf.int64, [None])
    )
    hub.add_signature("ragged", inputs=ragged, outputs=tf.reduce_sum(ragged, axis=1))
    hub.add_signature(inputs=sparse, outputs=sparse.values)


def image_module_fn():
    images = v1.placeholder(tf.float32, [None, 5, 6, 3], name="images")
    hub.add_signature(inputs={"images": images}, outputs=tf.reduce_mean(images, axis=[1, 2]))
    info = hub.ImageModuleInfo()
    info.default_image_size.height = 7
    info.default_image_size.width = 9
    hub.attach_image_module_info(info)
