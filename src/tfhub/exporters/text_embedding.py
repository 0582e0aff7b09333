"""``tfhub export-text-embedding``: a word-vector file → a sentence-embedding module.

The file (word2vec or GloVe text, with or without the ``<count> <dim>`` header, or word2vec
binary; see :mod:`tfhub.exporters.embedding_file`) is streamed once into a vocabulary and a raw
float32 matrix on disk, then copied in chunks into the module's embedding variable: memory
holds one copy of the matrix, never Python lists of numbers.

What the module computes, for a batch of sentences (``tf.string [batch]``):

1. with ``lowercase=True``, Unicode lower-casing (``tf.strings.lower(..., encoding="utf-8")``);
   otherwise case is kept;
2. every run of punctuation or whitespace becomes one space: the RE2 pattern
   :data:`SEPARATORS`, i.e. Unicode punctuation ``\\pP``, ASCII punctuation and symbols
   ``[[:punct:]]`` (so also ``$+<=>^`|~``), ASCII whitespace ``[[:space:]]`` and Unicode
   separators ``\\pZ`` (no-break space, ideographic space, ...). ``"don't"`` gives the tokens
   ``don`` and ``t``;
3. the sentence is split on those spaces (empty tokens never arise);
4. each token is looked up in the vocabulary (the file's tokens, exactly as written there,
   shipped as the asset ``assets/tokens.txt``): row ``i`` for the ``i``-th token of the file;
5. a token not in the vocabulary gets row ``vocab_size + hash(token) % num_oov_buckets``
   (``tf.strings.to_hash_bucket_fast``, the semantics of ``tf.lookup.StaticVocabularyTable``).
   The OOV rows start as zeros and are trainable; an OOV token counts in the denominator
   below. With ``num_oov_buckets=0`` unknown tokens are dropped: no vector, not counted;
6. the token vectors are combined with "sqrtn": ``sum / sqrt(number of tokens)``. A sentence
   without (counted) tokens gives zeros.

With ``preprocessing=False`` the module embeds tokens one by one, as the tokens module of
TF Hub's text-embedding exporter: the input is ``tf.string [num_tokens]`` and the output
``float32 [num_tokens, dim]``, each token's row (steps 1, 4 and 5 apply); a token with no row
(``""``, or an unknown token when ``num_oov_buckets=0``) gives zeros. Such a module works with
``hub.sparse_text_embedding_column``.

Formats:

* ``"tf2"``: a Reusable SavedModel. ``obj(sentences, training=False)`` (traced for
  ``tf.TensorSpec([None], tf.string)``, for tokens too), ``obj.variables`` =
  ``obj.trainable_variables`` = ``[embeddings]`` (float32 ``[vocab_size + num_oov_buckets,
  dim]``), ``obj.regularization_losses = []`` and a ``serving_default`` signature with input
  ``sentences`` (or ``tokens``) and output ``default``. Works with ``hub.load`` and
  ``hub.KerasLayer(path, trainable=True)``.
* ``"tf1"``: a TF1 Hub module with the graph variant ``set()`` and the signature ``default``:
  input ``sentences`` (or ``tokens``) → output ``default``, one variable ``embeddings`` and a
  vocabulary table initialised from the ``ASSET_FILEPATHS`` asset. Works with
  ``hub.Module`` and ``hub.load``, with the same numbers as ``"tf2"``.

The matrix is never a graph constant (protobuf's 2 GB limit): it lives in the checkpoint.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tfhub import config
from tfhub.errors import HubError, UsageError
from tfhub.exporters.embedding_file import EmbeddingTable, iter_vector_chunks, read_embedding_file
from tfhub.staging import check_new_directory, staged_directory

__all__ = ["SEPARATORS", "export_text_embedding"]

logger = logging.getLogger(__name__)

SEPARATORS = r"[\pP[:punct:][:space:]\pZ]+"
"""RE2 pattern of the character runs that separate tokens (replaced by one space)."""

_FORMATS = ("tf2", "tf1")


# --------------------------------------------------------------------------------------------
# The computation, shared by both formats (eager tf.function and tf.compat.v1 graph alike)


@dataclass(frozen=True)
class _Options:
    """What the module does with its input (the arguments of :func:`export_text_embedding`)."""

    num_oov_buckets: int
    preprocessing: bool
    lowercase: bool


def _eager_table(vocab_file: Any) -> Any:
    """TF2: a token → row table from the vocabulary asset; unknown tokens give -1.

    Anonymous: a named table is shared by every table of that name in the process, and the
    name TensorFlow derives for this one is not unique (it holds the Asset object's address),
    so two loaded models could otherwise end up with one vocabulary.
    """
    import tensorflow as tf

    initializer = tf.lookup.TextFileInitializer(
        vocab_file,
        tf.string,
        tf.lookup.TextFileIndex.WHOLE_LINE,
        tf.int64,
        tf.lookup.TextFileIndex.LINE_NUMBER,
    )
    return tf.lookup.StaticHashTable(initializer, default_value=-1, experimental_is_anonymous=True)


class _GraphTable:
    """TF1 graph: the same table, from raw ops, under a shared name unique to this export.

    Anonymous tables do not work in a TF1 session (each run would make a new one), and the
    name ``tf.lookup`` derives in a graph is the same for every module of this exporter,
    so TF1 modules loaded side by side in TF2 would share one table.
    """

    def __init__(self, vocab_file: Any) -> None:
        import tensorflow as tf

        self._handle = tf.raw_ops.HashTableV2(
            key_dtype=tf.string,
            value_dtype=tf.int64,
            shared_name=f"text_embedding_vocabulary_{uuid.uuid4().hex}",
            name="vocabulary_table",
        )
        init = tf.raw_ops.InitializeTableFromTextFileV2(
            table_handle=self._handle,
            filename=vocab_file,
            key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            name="vocabulary_table_init",
        )
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS, init)

    def lookup(self, keys: Any) -> Any:
        import tensorflow as tf

        ids = tf.raw_ops.LookupTableFindV2(
            table_handle=self._handle, keys=keys, default_value=tf.constant(-1, tf.int64)
        )
        ids.set_shape(keys.shape)  # the raw op's shape function does not know it
        return ids


def _tokens(sentences: Any, *, lowercase: bool) -> Any:
    """Sentences ``[batch]`` → ragged tokens ``[batch, (n)]`` (steps 1-3)."""
    import tensorflow as tf

    if lowercase:
        sentences = tf.strings.lower(sentences, encoding="utf-8")
    return tf.strings.split(tf.strings.regex_replace(sentences, SEPARATORS, " "))


def _embed(tokens: Any, table: Any, embeddings: Any, vocab_size: int, num_oov_buckets: int) -> Any:
    """Ragged tokens → float32 ``[batch, dim]``: the sqrtn combination of their rows."""
    import tensorflow as tf

    ids = table.lookup(tokens.flat_values)
    if num_oov_buckets > 0:
        buckets = tf.strings.to_hash_bucket_fast(tokens.flat_values, num_oov_buckets)
        ids = tokens.with_flat_values(tf.where(ids < 0, buckets + vocab_size, ids))
    else:
        ids = tokens.with_flat_values(ids)
        ids = tf.ragged.boolean_mask(ids, ids >= 0)
    vectors = ids.with_flat_values(tf.gather(embeddings, ids.flat_values))
    sums = tf.reduce_sum(vectors, axis=1)
    counts = tf.cast(ids.row_lengths(), sums.dtype)
    return tf.math.divide_no_nan(sums, tf.sqrt(counts)[:, tf.newaxis])


def _embed_each(
    tokens: Any, table: Any, embeddings: Any, vocab_size: int, num_oov_buckets: int
) -> Any:
    """Tokens ``[n]`` → float32 ``[n, dim]``: each token's row, zeros for one without a row."""
    import tensorflow as tf

    ids = table.lookup(tokens)
    if num_oov_buckets > 0:
        buckets = tf.strings.to_hash_bucket_fast(tokens, num_oov_buckets)
        ids = tf.where(ids < 0, buckets + vocab_size, ids)
    keep = tf.logical_and(ids >= 0, tf.not_equal(tokens, ""))
    vectors = tf.gather(embeddings, tf.maximum(ids, 0))
    return vectors * tf.cast(keep, vectors.dtype)[:, tf.newaxis]


def _compute(inputs: Any, options: _Options, table: Any, embeddings: Any, vocab_size: int) -> Any:
    """The module's output for its input (both formats)."""
    import tensorflow as tf

    if not options.preprocessing:
        if options.lowercase:
            inputs = tf.strings.lower(inputs, encoding="utf-8")
        return _embed_each(inputs, table, embeddings, vocab_size, options.num_oov_buckets)
    tokens = _tokens(inputs, lowercase=options.lowercase)
    return _embed(tokens, table, embeddings, vocab_size, options.num_oov_buckets)


def _input_spec(preprocessing: bool) -> Any:
    import tensorflow as tf

    return tf.TensorSpec([None], tf.string, name="sentences" if preprocessing else "tokens")


# --------------------------------------------------------------------------------------------
# TF2: a Reusable SavedModel


def _build_tf2(table_data: EmbeddingTable, options: _Options) -> Any:
    """The object to save: a ``tf.train.Checkpoint`` with ``__call__`` and the variables."""
    import tensorflow as tf

    num_oov_buckets, preprocessing = options.num_oov_buckets, options.preprocessing

    vocab_size = table_data.vocab_size
    model = tf.train.Checkpoint()
    model.vocabulary_file = tf.saved_model.Asset(str(table_data.vocab_path))
    model.vocabulary_table = _eager_table(model.vocabulary_file)
    # Zeros first, then the rows in chunks: the matrix exists once, in the variable.
    model.embeddings = tf.Variable(
        tf.zeros([vocab_size + num_oov_buckets, table_data.dim], tf.float32),
        name="embeddings",
        trainable=True,
    )
    _fill(table_data, lambda start, rows: _scatter(model.embeddings, start, rows))
    model.variables = [model.embeddings]
    model.trainable_variables = [model.embeddings]
    model.regularization_losses = []

    def call(inputs: Any, training: bool = False) -> Any:
        del training  # the same computation in training and inference
        return _compute(inputs, options, model.vocabulary_table, model.embeddings, vocab_size)

    spec = _input_spec(preprocessing)
    model.__call__ = tf.function(call)
    for training in (False, True):
        model.__call__.get_concrete_function(spec, training=training)

    def serve(inputs: Any) -> Any:
        return {"default": model.__call__(inputs, training=False)}

    model.serving_default = tf.function(serve, input_signature=[spec])
    return model


def _scatter(variable: Any, start: Any, rows: Any) -> Any:
    """Writes ``rows`` into ``variable`` from row ``start`` on, in place.

    A scatter, because a strided-slice assignment copies the whole variable (twice the
    memory for a big matrix).
    """
    import tensorflow as tf

    stop = start + tf.shape(rows, out_type=tf.int64)[0]
    return variable.scatter_update(tf.IndexedSlices(rows, tf.range(start, stop)))


def _fill(table_data: EmbeddingTable, assign: Callable[[int, Any], Any]) -> None:
    """Calls ``assign(first_row, rows)`` for each chunk of the file's vectors, in order."""
    start = 0
    for chunk in iter_vector_chunks(table_data):
        assign(start, chunk)
        start += len(chunk)


def _export_tf2(table_data: EmbeddingTable, out: Path, options: _Options) -> None:
    import tensorflow as tf

    model = _build_tf2(table_data, options)
    tf.saved_model.save(model, str(out), signatures={"serving_default": model.serving_default})


# --------------------------------------------------------------------------------------------
# TF1: a TF1 Hub module


def _export_tf1(table_data: EmbeddingTable, out: Path, options: _Options) -> None:
    import tensorflow as tf

    from tfhub.tf1.spec import add_signature, create_module_spec

    v1 = tf.compat.v1
    vocab_size, dim = table_data.vocab_size, table_data.dim
    num_oov_buckets, preprocessing = options.num_oov_buckets, options.preprocessing
    key = "sentences" if preprocessing else "tokens"

    def module_fn() -> None:
        spec = _input_spec(preprocessing)
        inputs = v1.placeholder(tf.string, spec.shape, name=key)
        vocab_file = tf.constant(str(table_data.vocab_path), name="vocabulary_file")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, vocab_file)
        embeddings = v1.get_variable(
            "embeddings",
            [vocab_size + num_oov_buckets, dim],
            dtype=tf.float32,
            initializer=v1.zeros_initializer(),
            trainable=True,
        )
        outputs = _compute(inputs, options, _GraphTable(vocab_file), embeddings, vocab_size)
        add_signature(inputs={key: inputs}, outputs={"default": outputs})

    spec = create_module_spec(module_fn)
    checkpoint = _write_checkpoint(table_data, num_oov_buckets)
    # tf.train.Checkpoint keys the value by object path: map the module's variable name to it.
    spec.export(
        str(out),
        checkpoint_path=checkpoint,
        name_transform_fn=lambda name: f"{name}/.ATTRIBUTES/VARIABLE_VALUE",
    )


def _write_checkpoint(table_data: EmbeddingTable, num_oov_buckets: int) -> str:
    """A checkpoint with the matrix as ``embeddings``, beside the scratch files; its prefix.

    Filled eagerly by scatters, the variable is the one copy of the matrix in memory; it is
    released before the module is exported from the checkpoint.
    """
    import tensorflow as tf

    variable = tf.Variable(
        tf.zeros([table_data.vocab_size + num_oov_buckets, table_data.dim], tf.float32)
    )
    _fill(table_data, lambda start, rows: _scatter(variable, start, rows))
    prefix = str(table_data.vectors_path.with_name("embeddings"))
    return str(tf.train.Checkpoint(embeddings=variable).write(prefix))


# --------------------------------------------------------------------------------------------
# The entry point


def export_text_embedding(
    embedding_file: str | os.PathLike[str],
    export_dir: str | os.PathLike[str],
    *,
    format: Literal["tf2", "tf1"] = "tf2",
    num_oov_buckets: int = 1,
    preprocessing: bool = True,
    lowercase: bool = False,
    binary: bool = False,
) -> str:
    """Turns a word-vector file into a text-embedding module (see the module docstring).

    The module is written into a temporary directory beside ``export_dir`` and moved into
    place at the end: on any error nothing is left behind and ``export_dir`` is untouched.
    A token that appears twice in the file keeps its first vector; the later lines are
    skipped with a logged warning naming them.

    Args:
        embedding_file: word2vec/GloVe text (header line optional, detected), or word2vec
            binary.
        export_dir: the directory to create; it must not exist, or be empty.
        format: ``"tf2"`` (Reusable SavedModel) or ``"tf1"`` (TF1 Hub module).
        num_oov_buckets: hash buckets (extra, zero-initialised rows) for out-of-vocabulary
            tokens; 0 ignores such tokens.
        preprocessing: the module takes sentences ``tf.string [batch]`` and splits them;
            False: it takes tokens ``tf.string [n]`` and gives one row per token.
        lowercase: lower-case the input (Unicode) before the lookup.
        binary: the file is in the word2vec binary format (implied by a ``.bin`` name).

    Returns:
        ``export_dir``, as a string.

    Raises:
        UsageError: bad arguments, an export directory that is not empty, or a missing or
            malformed embedding file (the message names the file and the line).

    Example:
        >>> export_text_embedding("glove.6B.50d.txt", "/models/glove50", lowercase=True)
        '/models/glove50'
        >>> hub.load("/models/glove50")(["Hello world"]).shape
        TensorShape([1, 50])
    """
    if format not in _FORMATS:
        raise UsageError(f"format={format!r} is not one of {', '.join(_FORMATS)}.")
    if isinstance(num_oov_buckets, bool) or not isinstance(num_oov_buckets, int):
        raise UsageError(f"num_oov_buckets={num_oov_buckets!r} must be an integer.")
    if num_oov_buckets < 0:
        raise UsageError(f"num_oov_buckets={num_oov_buckets} must be 0 or more.")
    source = Path(embedding_file)
    if not source.is_file():
        raise UsageError(f"{source}: no such embedding file.")
    target = check_new_directory(export_dir)
    try:
        with (
            staged_directory(target) as out,
            tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as scratch,
        ):
            table_data = read_embedding_file(
                source,
                Path(scratch),
                binary=True if binary else None,
                progress=config.download_progress(),
            )
            export = _export_tf2 if format == "tf2" else _export_tf1
            export(table_data, out, _Options(num_oov_buckets, preprocessing, lowercase))
    except HubError:
        raise
    except OSError as exc:
        raise UsageError(f"Cannot export the module to {target}: {exc}") from exc
    logger.info(
        "Exported %d tokens x %d dims (+%d OOV buckets) from %s to %s (%s).",
        table_data.vocab_size,
        table_data.dim,
        num_oov_buckets,
        source,
        target,
        format,
    )
    return os.fspath(export_dir)
