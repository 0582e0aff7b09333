"""Converting a local sentence-transformers checkpoint (BERT family) into hub modules.

:func:`import_sentence_transformer` reads ``config.json``, ``model.safetensors`` (as NumPy;
no torch needed), ``vocab.txt`` and the tokenizer / sentence-transformers settings, and writes
three TF2 Reusable SavedModels that need nothing but core TensorFlow to load::

    EXPORT_DIR/preprocessor        string [batch] → {input_word_ids, input_mask, input_type_ids}
    EXPORT_DIR/encoder             those inputs → {pooled_output, sequence_output, default}
    EXPORT_DIR/sentence_embedding  string [batch] → float32 [batch, dim] (fine-tunable)

The preprocessor reproduces the reference tokenizer (Hugging Face's BERT tokenizer with the
checkpoint's settings) with core TensorFlow ops only; its vocabulary is an asset of the
SavedModel. It has the interface of TF Hub's published BERT preprocessors:
``preprocessor(sentences)`` frames each sentence as ``[CLS] ... [SEP]``, cut and padded to a
fixed ``seq_length`` of 128; ``preprocessor.tokenize(sentences)`` gives the word pieces (int32
RaggedTensor [batch, (words), (pieces)]) and ``preprocessor.bert_pack_inputs(segments,
seq_length=...)`` packs one or more tokenized segments (sentence pairs: type ids 0 and 1),
cutting them round robin. The sentence embedding cuts after ``max_seq_length - 2`` pieces
(``sentence_bert_config.json``) as sentence-transformers does. The token ids equal the
reference's, except around some 560 rarely used code points that recent Unicode versions
added and the reference's older character tables classify differently (see
:mod:`tfhub.exporters._bert.chars`).

Example:
    >>> from tfhub.exporters.sentence_transformer import import_sentence_transformer
    >>> out = import_sentence_transformer("all-MiniLM-L6-v2", "minilm-hub")
    >>> embed = hub.load(out + "/sentence_embedding")
    >>> embed(["A sentence."]).shape
    TensorShape([1, 384])
"""

from __future__ import annotations

import logging
import os
import time

from tfhub.staging import check_new_directory, staged_directory

__all__ = ["import_sentence_transformer"]

logger = logging.getLogger(__name__)

PREPROCESSOR = "preprocessor"
ENCODER = "encoder"
SENTENCE_EMBEDDING = "sentence_embedding"


def import_sentence_transformer(
    model_dir: str | os.PathLike[str],
    export_dir: str | os.PathLike[str],
) -> str:
    """Converts a sentence-transformers BERT checkpoint into three Reusable SavedModels.

    ``export_dir/preprocessor`` maps sentences (string [batch]) to ``input_word_ids``,
    ``input_mask`` and ``input_type_ids`` (int32 [batch, 128], as TF Hub's BERT
    preprocessors); it also has ``tokenize`` (sentences → int32 RaggedTensor
    [batch, (words), (pieces)], with ``tokenize.get_special_tokens_dict()``),
    ``bert_pack_inputs(segments, seq_length=128)`` (a list of tokenized segments → the same
    dict; round-robin truncation, type id ``i`` for segment ``i``) and ``vocab_file``.
    ``export_dir/encoder`` maps those inputs to ``sequence_output`` [batch, seq, hidden] and
    ``pooled_output`` = ``default`` [batch, hidden] (BERT's pooler; the masked mean of
    ``sequence_output`` when the checkpoint has no pooler weights), plus ``encoder_outputs``
    (every layer's output) from ``__call__``.
    ``export_dir/sentence_embedding`` maps sentences to the sentence-transformers embedding
    (pooling and normalization as ``modules.json`` says), float32 [batch, hidden]; its
    ``tokenizer`` and ``encoder`` attributes are the other two models' pieces. The encoder
    takes at most ``max_position_embeddings`` (512) positions.

    The encoder and the sentence embedding take ``training=`` (dropout as in the config) and
    list their weights in ``trainable_variables``, so ``hub.KerasLayer(..., trainable=True)``
    fine-tunes them. Each has a ``serving_default`` signature. The export is written to a
    temporary directory beside ``export_dir`` and renamed into place when complete.

    Args:
        model_dir: a local checkpoint: ``config.json`` (``model_type`` ``bert``),
            ``model.safetensors``, ``vocab.txt``, and optionally ``tokenizer.json``,
            ``tokenizer_config.json``, ``special_tokens_map.json``,
            ``sentence_bert_config.json``, ``modules.json`` and the Pooling module's
            ``config.json``.
        export_dir: where to write; must not exist or be an empty directory.

    Returns:
        ``export_dir`` as a string.

    Raises:
        UsageError: ``export_dir`` exists and is not empty.
        ModelNotFoundError: ``model_dir`` is not a directory.
        NotAModelError: a required file is missing or unreadable, or the checkpoint is not one
            the converter handles (not BERT, other pipeline modules); the message names the file.

    Example:
        >>> import_sentence_transformer("all-MiniLM-L6-v2", "/tmp/minilm")
        '/tmp/minilm'
    """
    model_dir = os.fspath(model_dir)
    export_dir = os.fspath(export_dir)
    check_new_directory(export_dir)
    from tfhub.exporters._bert.checkpoint import read_checkpoint

    started = time.monotonic()
    checkpoint = read_checkpoint(model_dir)
    from tfhub.exporters._bert.export import save_models

    with staged_directory(export_dir) as staging:
        save_models(
            checkpoint,
            preprocessor_dir=str(staging / PREPROCESSOR),
            encoder_dir=str(staging / ENCODER),
            sentence_embedding_dir=str(staging / SENTENCE_EMBEDDING),
        )
    logger.info("Converted %s into %s in %.1f s", model_dir, export_dir, time.monotonic() - started)
    return export_dir
