"""BERT's WordPiece tokenizer with core TensorFlow ops only (no custom ops to load).

Text flows through these steps, all batched over ragged tensors:

1. Special tokens written in the text (``[MASK]``, ``[SEP]``...) are matched verbatim, as the
   reference does before normalizing, and replaced by private-use placeholders.
2. The text is decoded to code points, which the normalization table maps to zero or more
   code points each (see :mod:`tfhub.exporters._bert.chars`).
3. Words are runs of WORD code points; SEPARATOR ones end a word and ISOLATED ones
   (punctuation, CJK, placeholders) are words of their own.
4. WordPiece: each word is cut greedily into the longest vocabulary entries from its start,
   later pieces with the ``##`` prefix; a word that cannot be cut, or is longer than
   ``max_input_chars_per_word``, becomes ``[UNK]``. A bounded ``tf.while_loop`` emits one
   piece per word and step for the words not finished yet.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfhub.exporters._bert.chars import (
    DELETE,
    ISOLATED,
    MAPPED,
    SEPARATOR,
    SPACE,
    WORD,
    build_tables,
)
from tfhub.exporters._bert.checkpoint import TokenizerConfig
from tfhub.exporters._bert.packing import pack

__all__ = ["PLACEHOLDER_BASE", "SENTENCES", "WordPieceTokenizer"]

SENTENCES = tf.TensorSpec([None], tf.string, name="sentences")

# Special tokens become these code points (plane 16 private use: removed from the input first).
PLACEHOLDER_BASE = 0x10FF00


def _regex_literal(text: str) -> str:
    """``text`` as an RE2 pattern that matches it verbatim."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):X}}}" for c in text)


class WordPieceTokenizer(tf.Module):
    """Text → word-piece ids, ready for ``tf.function`` and ``tf.saved_model.save``.

    Args:
        config: the reference tokenizer's settings.
        vocab_path: the vocabulary file (one token per line; line number = id), which the
            SavedModel ships as an asset.
        vocab: its tokens, read at export time to size the search and find special ids.
        seq_length: the longest output of :meth:`bert_inputs`, ``[CLS]`` and ``[SEP]``
            included (the checkpoint's ``max_seq_length``).
    """

    def __init__(
        self, config: TokenizerConfig, vocab_path: str, vocab: list[str], seq_length: int
    ) -> None:
        super().__init__(name="wordpiece_tokenizer")
        index = {token: i for i, token in enumerate(vocab)}
        prefix = config.continuing_subword_prefix
        # Longest first: where two special tokens start at the same place, the longer one wins.
        specials = sorted((t for t in config.special_tokens if t in index), key=len, reverse=True)
        self._specials = tuple(specials)
        placeholders = frozenset(range(PLACEHOLDER_BASE, PLACEHOLDER_BASE + len(specials)))
        tables = build_tables(
            lowercase=config.lowercase,
            strip_accents=config.strip_accents,
            clean_text=config.clean_text,
            chinese_chars=config.chinese_chars,
            kept=placeholders,
            isolated=placeholders,
        )
        self._norm_starts = tf.constant(tables.norm_starts)
        self._norm_kinds = tf.constant(tables.norm_kinds)
        self._rep_values = tf.constant(tables.replacement_values)
        self._rep_splits = tf.constant(tables.replacement_splits)
        self._class_starts = tf.constant(tables.class_starts)
        self._class_kinds = tf.constant(tables.class_kinds)
        keys = tables.mapped_keys
        self._mapped = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.int64), tf.range(1, len(keys) + 1, dtype=tf.int64)
            ),
            default_value=0,
        )
        self.vocab_file = tf.saved_model.Asset(vocab_path)
        self._vocab = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.vocab_file,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=-1,
        )
        # Placeholders are looked up by their one-character string.
        self._placeholders = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([chr(PLACEHOLDER_BASE + i) for i in range(len(specials))] or [""]),
                tf.constant([index[t] for t in specials] or [-1], tf.int64),
            ),
            default_value=-1,
        )
        self._prefix = prefix
        self._max_chars = config.max_input_chars_per_word
        # No vocabulary entry is longer than this many characters: longer candidates can't match.
        self._max_piece = max(
            len(t.removeprefix(prefix)) if t.startswith(prefix) else len(t) for t in vocab
        )
        self.unk_id = index[config.unk_token]
        self.cls_id = index[config.cls_token]
        self.sep_id = index[config.sep_token]
        self.pad_id = index.get("[PAD]", 0)
        self.seq_length = seq_length
        # What the published preprocessors' tokenize.get_special_tokens_dict() returns.
        self.special_tokens = {
            "vocab_size": len(vocab),
            "start_of_sequence_id": self.cls_id,
            "end_of_segment_id": self.sep_id,
            "padding_id": self.pad_id,
        }
        if "[MASK]" in index:
            self.special_tokens["mask_id"] = index["[MASK]"]

    @tf.function(autograph=False, input_signature=[SENTENCES])
    def tokenize(self, sentences: Any) -> Any:
        """Sentences [batch] → word-piece ids, int32 RaggedTensor [batch, (words), (pieces)]."""
        text = tf.strings.unicode_transcode(
            sentences, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        if self._specials:
            # Code points of the placeholder block would be removed by the normalizer anyway.
            last = PLACEHOLDER_BASE + len(self._specials) - 1
            text = tf.strings.regex_replace(
                text, f"[\\x{{{PLACEHOLDER_BASE:X}}}-\\x{{{last:X}}}]", ""
            )
            for i, token in enumerate(self._specials):
                text = tf.strings.regex_replace(
                    text, _regex_literal(token), chr(PLACEHOLDER_BASE + i)
                )
        codes = tf.strings.unicode_decode(text, "UTF-8")
        words = self._split_words(self._normalize(codes))
        pieces = self._wordpiece(words.values)
        return words.with_values(tf.cast(pieces, tf.int32))

    @tf.function(autograph=False, input_signature=[SENTENCES])
    def bert_inputs(self, sentences: Any) -> dict[str, Any]:
        """Sentences [batch] → BERT inputs, cut at ``seq_length`` and padded to the longest.

        The word pieces are cut after ``seq_length - 2`` (as the reference truncates, even in
        the middle of a word), then framed as ``[CLS] ... [SEP]``.
        """
        return self.pack(self.tokenize(sentences), self.seq_length, pad_to_longest=True)

    def pack(self, segments: Any, seq_length: Any, pad_to_longest: bool = False) -> dict[str, Any]:
        """Tokenized segments → BERT inputs (see :func:`tfhub.exporters._bert.packing.pack`)."""
        return pack(
            segments,
            seq_length,
            cls_id=self.cls_id,
            sep_id=self.sep_id,
            pad_id=self.pad_id,
            pad_to_longest=pad_to_longest,
        )

    def _normalize(self, codes: Any) -> Any:
        flat = codes.values
        kind = tf.gather(
            self._norm_kinds, tf.searchsorted(self._norm_starts, flat, side="right") - 1
        )
        row = tf.cast(self._mapped.lookup(tf.cast(flat, tf.int64)), tf.int32)
        row_len = tf.gather(self._rep_splits, row + 1) - tf.gather(self._rep_splits, row)
        length = tf.where(kind == MAPPED, row_len, tf.where(kind == DELETE, 0, 1))
        source = tf.repeat(tf.range(tf.size(flat)), length)
        out_start = tf.cumsum(length, exclusive=True)
        offset = tf.range(tf.reduce_sum(length)) - tf.gather(out_start, source)
        source_kind = tf.gather(kind, source)
        replacement = tf.gather(
            self._rep_values, tf.gather(self._rep_splits, tf.gather(row, source)) + offset
        )
        out = tf.where(
            source_kind == MAPPED,
            replacement,
            tf.where(source_kind == SPACE, 32, tf.gather(flat, source)),
        )
        row_lengths = tf.reduce_sum(codes.with_flat_values(tf.cast(length, tf.int64)), axis=1)
        return tf.RaggedTensor.from_row_lengths(out, row_lengths, validate=False)

    def _split_words(self, codes: Any) -> Any:
        """Code points [batch, (chars)] → [batch, (words), (chars)]."""
        flat = codes.values
        n = tf.size(flat)
        rows = codes.value_rowids()
        cls = tf.gather(
            self._class_kinds, tf.searchsorted(self._class_starts, flat, side="right") - 1
        )
        previous = tf.concat([[SEPARATOR], cls], axis=0)[:n]
        first = tf.range(n, dtype=rows.dtype) == tf.gather(codes.row_starts(), rows)
        after_word = (previous == WORD) & ~first
        keep = cls != SEPARATOR
        starts = keep & ((cls == ISOLATED) | ~after_word)
        kept_starts = tf.boolean_mask(starts, keep)
        word_of_char = tf.cumsum(tf.cast(kept_starts, tf.int64)) - 1
        num_words = tf.reduce_sum(tf.cast(kept_starts, tf.int64))
        chars = tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(flat, keep), word_of_char, nrows=num_words, validate=False
        )
        sentence_of_word = tf.boolean_mask(tf.boolean_mask(rows, keep), kept_starts)
        return tf.RaggedTensor.from_value_rowids(
            chars, sentence_of_word, nrows=codes.nrows(), validate=False
        )

    def _wordpiece(self, words: Any) -> Any:
        """Words as code points [n, (chars)] → piece ids, int64 [n, (pieces)]."""
        length = tf.cast(words.row_lengths(), tf.int32)
        text = tf.strings.unicode_encode(words, "UTF-8")
        n = tf.shape(length)[0]
        too_long = length > self._max_chars
        # Placeholders of special tokens are one-character words with a fixed id.
        special = self._placeholders.lookup(text)
        done = too_long | (special >= 0)
        prefix = tf.constant(self._prefix)
        max_piece = self._max_piece
        sizes = tf.range(1, max_piece + 1)[None, :]

        def cond(step: Any, pos: Any, done: Any, failed: Any, out: Any) -> Any:
            return (step == 0) | tf.reduce_any(~done)

        def body(step: Any, pos: Any, done: Any, failed: Any, out: Any) -> Any:
            active = tf.where(~done)
            a_text = tf.gather_nd(text, active)
            a_pos = tf.gather_nd(pos, active)
            a_len = tf.gather_nd(length, active)
            # Every candidate piece at once: [active, max_piece], longest valid one wins.
            shape = [tf.size(a_pos), max_piece]
            a_prefix = tf.broadcast_to(tf.where(a_pos > 0, prefix, "")[:, None], shape)
            piece = tf.strings.substr(
                tf.broadcast_to(a_text[:, None], shape),
                tf.broadcast_to(a_pos[:, None], shape),
                tf.broadcast_to(sizes, shape),
                unit="UTF8_CHAR",
            )
            ids = self._vocab.lookup(tf.strings.join([a_prefix, piece]))
            ok = (ids >= 0) & (a_pos[:, None] + sizes <= a_len[:, None])
            best_len = tf.reduce_max(tf.where(ok, sizes, 0), axis=1)
            best_id = tf.gather(ids, tf.maximum(best_len - 1, 0), batch_dims=1)
            best_id = tf.where(best_len > 0, best_id, -1)
            a_failed = best_len == 0
            a_pos = a_pos + best_len
            pos = tf.tensor_scatter_nd_update(pos, active, a_pos)
            done = tf.tensor_scatter_nd_update(done, active, a_failed | (a_pos >= a_len))
            failed = tf.tensor_scatter_nd_update(failed, active, a_failed)
            emitted = tf.tensor_scatter_nd_update(
                tf.fill([n], tf.constant(-1, tf.int64)), active, best_id
            )
            return step + 1, pos, done, failed, out.write(step, emitted)

        _, _, _, failed, out = tf.while_loop(
            cond,
            body,
            (
                tf.constant(0),
                tf.zeros_like(length),
                done,
                tf.zeros_like(done),
                tf.TensorArray(tf.int64, size=0, dynamic_size=True, element_shape=[None]),
            ),
            maximum_iterations=self._max_chars + 1,
        )
        ids = tf.transpose(out.stack())
        first_column = tf.range(tf.shape(ids)[1]) == 0
        unknown = (too_long | failed)[:, None]
        ids = tf.where(unknown, tf.where(first_column, tf.constant(self.unk_id, tf.int64), -1), ids)
        ids = tf.where((special >= 0)[:, None] & first_column, special[:, None], ids)
        return tf.ragged.boolean_mask(ids, ids >= 0)
