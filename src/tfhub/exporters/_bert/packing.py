"""Packing word pieces into BERT inputs, as TF Hub's published BERT preprocessors do.

``bert_pack_inputs(segments, seq_length)`` takes a list of tokenized segments (int
RaggedTensors [batch, (pieces)] or [batch, (words), (pieces)]) and returns the encoder's input
dict (int32 [batch, seq_length] each)::

    input_word_ids  [CLS] a1 a2 ... [SEP] b1 b2 ... [SEP] 0 0 ...   (the padding id)
    input_mask        1   1  1  ...   1    1  1  ...   1  0 0 ...
    input_type_ids    0   0  0  ...   0    1  1  ...   1  0 0 ...

Segments that do not fit ``seq_length`` (minus the ``[CLS]`` and one ``[SEP]`` per segment)
are cut "round robin": the room is handed out one piece at a time to each segment in turn
that still has pieces, first segment first, so a short segment is kept whole and two long
ones get equal halves (the first one piece more when the room is odd).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

__all__ = ["DEFAULT_SEQ_LENGTH", "as_rows", "pack", "round_robin_lengths"]

# What the published preprocessors' own __call__ pads to.
DEFAULT_SEQ_LENGTH = 128


def round_robin_lengths(lengths: Any, budget: Any) -> Any:
    """How many pieces of each segment to keep: int64 [batch, segments].

    With the segments' lengths sorted (s_1 <= ... <= s_n, prefix sums P_k), the number of
    pieces kept when every segment is cut at ``t`` is ``min_k (P_k + (n - k) t)``; the
    largest ``t`` within ``budget`` is therefore ``max_k floor((budget - P_k) / (n - k))``,
    and what is left of the budget goes one piece each to the first segments longer than it.
    """
    lengths = tf.cast(lengths, tf.int64)
    budget = tf.maximum(tf.cast(budget, tf.int64), 0)
    n = tf.shape(lengths, out_type=tf.int64)[1]
    prefix = tf.cumsum(tf.sort(lengths, axis=1), axis=1, exclusive=True)
    level = tf.reduce_max(
        tf.math.floordiv(budget - prefix, n - tf.range(n, dtype=tf.int64)), axis=1, keepdims=True
    )
    kept = tf.minimum(lengths, level)
    left = budget - tf.reduce_sum(kept, axis=1, keepdims=True)
    longer = lengths > level
    order = tf.cumsum(tf.cast(longer, tf.int64), axis=1, exclusive=True)
    kept += tf.cast(longer & (order < left), tf.int64)
    fits = tf.reduce_sum(lengths, axis=1, keepdims=True) <= budget
    return tf.where(fits, lengths, kept)


def _column(batch: Any, value: Any) -> Any:
    """``value`` once per row: int32 [batch]."""
    return tf.fill(tf.reshape(batch, [1]), tf.cast(value, tf.int32))


def as_rows(segments: Any) -> list[Any]:
    """Tokenized segments as :func:`pack` takes them → int32 RaggedTensors [batch, (pieces)].

    Raises:
        ValueError: no segments, or a segment that is not a RaggedTensor of rank 2 or 3.
    """
    if not isinstance(segments, (list, tuple)):
        segments = [segments]
    if not segments:
        raise ValueError("bert_pack_inputs: pass a list of at least one tokenized segment.")
    rows = []
    for i, segment in enumerate(segments):
        rank = segment.shape.rank
        if isinstance(segment, tf.Tensor) and rank in (2, 3) and segment.dtype.is_integer:
            # Dense ids: every entry is a piece (how Keras describes a symbolic ragged input).
            shape = tf.shape(segment, out_type=tf.int64)
            width = tf.reduce_prod(shape[1:])
            segment = tf.RaggedTensor.from_row_splits(
                tf.reshape(segment, [-1]), tf.range(shape[0] + 1) * width, validate=False
            )
        elif isinstance(segment, tf.RaggedTensor) and rank == 3 and segment.ragged_rank == 2:
            # [batch, (words), (pieces)] → [batch, (pieces)]: each row ends where its last
            # word does. Built directly (merge_dims adds checks that cost tracing time).
            segment = tf.RaggedTensor.from_row_splits(
                segment.flat_values,
                tf.gather(segment.values.row_splits, segment.row_splits),
                validate=False,
            )
        elif isinstance(segment, tf.RaggedTensor) and rank == 3:
            segment = segment.merge_dims(1, 2)
        elif not isinstance(segment, tf.RaggedTensor) or rank != 2:
            raise ValueError(
                f"bert_pack_inputs: segment {i} must be a RaggedTensor [batch, (pieces)] or "
                f"[batch, (words), (pieces)] of ids (what .tokenize returns), got {segment!r}."
            )
        rows.append(segment if segment.dtype == tf.int32 else tf.cast(segment, tf.int32))
    return rows


def pack(
    segments: Any,
    seq_length: Any,
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    pad_to_longest: bool = False,
) -> dict[str, Any]:
    """Segments → ``input_word_ids``, ``input_mask``, ``input_type_ids`` (see the module doc).

    Args:
        segments: a RaggedTensor or a list of them, each [batch, (pieces)] or
            [batch, (words), (pieces)], int32 or int64, all with the same number of rows (a
            dense int Tensor of rank 2 or 3 counts as rows with no padding).
        seq_length: the output width (a Python int or an int scalar Tensor).
        cls_id, sep_id, pad_id: the ids of ``[CLS]``, ``[SEP]`` and ``[PAD]``.
        pad_to_longest: pad only to the longest packed row of the batch (at most
            ``seq_length``) instead of to ``seq_length``.

    Raises:
        ValueError: no segments, or a segment that is not a RaggedTensor of rank 2 or 3.
    """
    flat = as_rows(segments)
    batch = flat[0].nrows()
    static = seq_length if isinstance(seq_length, int) and not pad_to_longest else None
    seq_length = tf.cast(seq_length, tf.int64)
    lengths = tf.stack([s.row_lengths() for s in flat], axis=1)
    keep = round_robin_lengths(lengths, seq_length - (len(flat) + 1))
    # Built on flat values and scattered into place: each kept piece's (row, column), the
    # [CLS] at column 0 and one [SEP] after each segment. Going through RaggedTensor
    # comparisons and concats instead made tracing the preprocessor's packing functions (traced
    # 6 times per model, and again when it is saved) several times slower.
    starts = 1 + tf.cumsum(keep + 1, axis=1, exclusive=True)  # segment i's first column
    total = 1 + tf.reduce_sum(keep + 1, axis=1)
    every_row = tf.range(batch)
    rows, columns = [every_row], [tf.zeros_like(every_row)]
    ids, types = [_column(batch, cls_id)], [_column(batch, 0)]
    for i, segment in enumerate(flat):
        row = segment.value_rowids()
        position = tf.range(tf.size(row, out_type=tf.int64)) - tf.gather(segment.row_starts(), row)
        kept = position < tf.gather(keep[:, i], row)
        row = tf.boolean_mask(row, kept)
        rows += [row, every_row]
        columns += [
            tf.gather(starts[:, i], row) + tf.boolean_mask(position, kept),
            starts[:, i] + keep[:, i],
        ]
        ids += [tf.boolean_mask(segment.values, kept), _column(batch, sep_id)]
        types += [tf.fill(tf.shape(row), tf.constant(i, tf.int32)), _column(batch, i)]
    width = seq_length
    if pad_to_longest:
        width = tf.minimum(width, tf.reduce_max(tf.concat([total, [0]], axis=0)))
    column = tf.concat(columns, axis=0)
    inside = column < width  # what does not fit seq_length (only [CLS]/[SEP]) is cut
    where = tf.stack(
        [tf.boolean_mask(tf.concat(rows, axis=0), inside), tf.boolean_mask(column, inside)],
        axis=1,
    )
    shape = tf.stack([batch, width])

    def scatter(values: list[Any], fill: Any) -> Any:
        return tf.tensor_scatter_nd_update(
            tf.fill(shape, tf.cast(fill, tf.int32)),
            where,
            tf.boolean_mask(tf.concat(values, 0), inside),
        )

    out = {
        "input_word_ids": scatter(ids, pad_id),
        "input_mask": tf.sequence_mask(total, width, dtype=tf.int32),
        "input_type_ids": scatter(types, 0),
    }
    return {k: tf.ensure_shape(v, [None, static]) for k, v in out.items()}
