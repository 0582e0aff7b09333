"""The common signatures of TF Hub: which ones a model implements, and validators.

A model that implements a common signature can replace another one for the same task. The
signatures, as TF Hub documented them:

``image-feature-vector`` and ``image-classification``
    float32 images ``[batch, height, width, 3]`` with values in [0, 1] → float32
    ``[batch, N]``: N features, or N logits. A TF2 SavedModel takes the images tensor in
    ``__call__`` (and ``serving_default``); a TF1 Hub module in the input ``images`` of its
    ``default`` signature, output ``default`` (optionally also as signatures
    ``image_feature_vector`` / ``image_classification``). Both have the same interface: a
    model's docs (``module-type``) or its TF1 signature names tell them apart.
``text-embedding``
    string sentences ``[batch]`` → float32 ``[batch, dim]`` (output ``default``).
``bert-encoder``
    a dict of int32 ``[batch, seq_length]`` tensors ``input_word_ids``, ``input_mask``,
    ``input_type_ids`` → a dict with float32 ``pooled_output`` ``[batch, width]``,
    ``sequence_output`` ``[batch, seq_length, width]`` and ``default`` (= ``pooled_output``).
``bert-preprocessor``
    string sentences ``[batch]`` → the dict of three int32 tensors a BERT encoder takes.

Everything here reads a model description (:mod:`tfhub.describe`: signatures and ``__call__``
traces, as ``tfhub inspect --json`` prints it); the functions also take a path or URL (parsed
from its protobufs, never loaded), a loaded object or a :class:`~tfhub.ModuleSpec` and
describe it first. Reading a description imports no TensorFlow, so the hub server uses it for
its model pages. The result types are in :mod:`tfhub.signatures.results`, the check engine in
:mod:`tfhub.signatures.checks`. Checks are of names, dtypes and shapes; that the
values are in the documented range (images in [0, 1]) is the publisher's promise.

Example:
    >>> find_common_signatures("/tmp/my_text_embedding").implements
    ['text-embedding']
    >>> validate_text_embedding("/tmp/my_text_embedding", dim=128)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tfhub.describe import describe
from tfhub.errors import CommonSignatureError, UsageError
from tfhub.signatures.checks import (
    CHECKS,
    TF1_SIGNATURES,
    family_of,
    image_names,
    module_types,
    public_details,
    run,
)
from tfhub.signatures.results import (
    BERT_ENCODER,
    BERT_INPUT_NAMES,
    BERT_PREPROCESSOR,
    COMMON_SIGNATURES,
    IMAGE_CLASSIFICATION,
    IMAGE_FEATURE_VECTOR,
    TEXT_EMBEDDING,
    CommonSignatureMatch,
    CommonSignatureMiss,
    CommonSignatures,
)

__all__ = [
    "BERT_ENCODER",
    "BERT_INPUT_NAMES",
    "BERT_PREPROCESSOR",
    "COMMON_SIGNATURES",
    "IMAGE_CLASSIFICATION",
    "IMAGE_FEATURE_VECTOR",
    "TEXT_EMBEDDING",
    "CommonSignatureError",
    "CommonSignatureMatch",
    "CommonSignatureMiss",
    "CommonSignatures",
    "describe",
    "find_common_signatures",
    "validate_bert_encoder",
    "validate_bert_preprocessor",
    "validate_common_signature",
    "validate_image_classification",
    "validate_image_feature_vector",
    "validate_text_embedding",
]

_EXPECTED = {
    IMAGE_FEATURE_VECTOR: "float32 images [batch, height, width, 3] → float32 [batch, N]",
    IMAGE_CLASSIFICATION: "float32 images [batch, height, width, 3] → float32 logits [batch, N]",
    TEXT_EMBEDDING: "string [batch] → float32 [batch, dim]",
    BERT_ENCODER: (
        "dict of int32 [batch, seq_length] input_word_ids, input_mask, input_type_ids → dict of "
        "float32 pooled_output [batch, width], sequence_output [batch, seq_length, width], "
        "default"
    ),
    BERT_PREPROCESSOR: (
        "string [batch] → dict of int32 [batch, seq_length] input_word_ids, input_mask, "
        "input_type_ids"
    ),
}


def find_common_signatures(
    model: Any, *, module_type: str | Iterable[str] | None = None
) -> CommonSignatures:
    """Which common signatures ``model`` implements, and which ones it almost implements.

    Args:
        model: a description from ``tfhub inspect --json`` / ``inspect_model``, a path or URL,
            a loaded object, a ``hub.Module`` or a ``hub.ModuleSpec`` (see :func:`describe`).
        module_type: the ``module-type`` of the model's docs (one or several), which tells an
            image classifier from an image feature vector; other values are ignored.

    Returns:
        The matches (name and entry point) and the near misses (entry points that look like a
        common signature, with the reasons they do not implement it).

    Raises:
        UsageError: ``model`` cannot be described.

    Example:
        >>> find_common_signatures(hub.load(path)).implements
        ['text-embedding']
    """
    description = describe(model)
    hints = module_types(module_type)
    matches: list[CommonSignatureMatch] = []
    misses: list[CommonSignatureMiss] = []
    for family, (_, looks_like) in CHECKS.items():
        good, bad = run(description, family, {})
        if good:
            names, note = (
                image_names(good, hints) if family == IMAGE_FEATURE_VECTOR else ([family], "")
            )
            for name in names:
                matches.extend(
                    CommonSignatureMatch(
                        name, entry.where, public_details(name, result.details), note
                    )
                    for entry, result in good
                )
            continue
        misses.extend(
            CommonSignatureMiss(family, entry.where, tuple(result.problems))
            for entry, result in bad
            if looks_like(entry)
        )
    return CommonSignatures(tuple(matches), tuple(misses))


def _validate(model: Any, name: str, expected: Mapping[str, Any]) -> CommonSignatureMatch:
    description = describe(model)
    family = family_of(name)
    good, bad = run(description, family, expected)
    if good:
        entry, result = good[0]
        return CommonSignatureMatch(name, entry.where, public_details(name, result.details))
    handle = os.fspath(model) if isinstance(model, str | os.PathLike) else None
    label = repr(handle) if handle else "The model"
    if bad:
        problems = [f"{entry.where}: {p}" for entry, result in bad for p in result.problems]
    elif description.get("format") == "hub":
        problems = [
            f"it has none of the signatures {list(TF1_SIGNATURES[family])} in its inference "
            "graph variant"
        ]
    else:
        problems = [
            "it has neither a __call__ with traced inputs nor a 'serving_default' signature"
        ]
    raise CommonSignatureError(
        f"{label} does not implement the {name} common signature ({_EXPECTED[name]}):\n  "
        + "\n  ".join(problems),
        signature=name,
        problems=problems,
        handle=handle,
    )


def validate_image_feature_vector(
    model: Any, *, image_size: tuple[int, int] | None = None, num_features: int | None = None
) -> CommonSignatureMatch:
    """Checks that ``model`` implements the image feature vector common signature.

    Args:
        model: see :func:`describe`.
        image_size: ``(height, width)`` the input must have, where the model fixes them.
        num_features: the size of the feature vector, where the model fixes it.

    Returns:
        Where the model implements it, and its sizes.

    Raises:
        CommonSignatureError: it does not; the message names each entry point, input or output
            and what was expected.
    """
    expected = {"image_size": image_size, "n": num_features, "label": "num_features"}
    return _validate(model, IMAGE_FEATURE_VECTOR, expected)


def validate_image_classification(
    model: Any, *, image_size: tuple[int, int] | None = None, num_classes: int | None = None
) -> CommonSignatureMatch:
    """Checks that ``model`` implements the image classification common signature (logits).

    The shapes are those of the image feature vector; that the outputs are logits is the
    publisher's promise.

    Args:
        model: see :func:`describe`.
        image_size: ``(height, width)`` the input must have, where the model fixes them.
        num_classes: the number of logits, where the model fixes it.

    Returns:
        Where the model implements it, and its sizes.

    Raises:
        CommonSignatureError: it does not.
    """
    expected = {"image_size": image_size, "n": num_classes, "label": "num_classes"}
    return _validate(model, IMAGE_CLASSIFICATION, expected)


def validate_text_embedding(model: Any, *, dim: int | None = None) -> CommonSignatureMatch:
    """Checks that ``model`` implements the text embedding common signature.

    Args:
        model: see :func:`describe`.
        dim: the embedding size, where the model fixes it.

    Returns:
        Where the model implements it, and its ``dim``.

    Raises:
        CommonSignatureError: it does not.
    """
    return _validate(model, TEXT_EMBEDDING, {"dim": dim})


def validate_bert_encoder(
    model: Any, *, width: int | None = None, seq_length: int | None = None
) -> CommonSignatureMatch:
    """Checks that ``model`` implements the BERT encoder common signature.

    Args:
        model: see :func:`describe`.
        width: the hidden size (of ``pooled_output``), where the model fixes it.
        seq_length: the sequence length of the inputs, where the model fixes it.

    Returns:
        Where the model implements it, its ``width`` and ``seq_length``.

    Raises:
        CommonSignatureError: it does not.
    """
    return _validate(model, BERT_ENCODER, {"width": width, "seq_length": seq_length})


def validate_bert_preprocessor(
    model: Any, *, seq_length: int | None = None
) -> CommonSignatureMatch:
    """Checks that ``model`` implements the BERT preprocessor common signature.

    Args:
        model: see :func:`describe`.
        seq_length: the sequence length of the outputs, where the model fixes it.

    Returns:
        Where the model implements it, and its ``seq_length``.

    Raises:
        CommonSignatureError: it does not.
    """
    return _validate(model, BERT_PREPROCESSOR, {"seq_length": seq_length})


_VALIDATORS: dict[str, Callable[..., CommonSignatureMatch]] = {
    IMAGE_FEATURE_VECTOR: validate_image_feature_vector,
    IMAGE_CLASSIFICATION: validate_image_classification,
    TEXT_EMBEDDING: validate_text_embedding,
    BERT_ENCODER: validate_bert_encoder,
    BERT_PREPROCESSOR: validate_bert_preprocessor,
}


def validate_common_signature(model: Any, name: str, **expected: Any) -> CommonSignatureMatch:
    """Checks that ``model`` implements the common signature ``name`` (e.g. a docs claim).

    Args:
        model: see :func:`describe`.
        name: one of :data:`COMMON_SIGNATURES`.
        **expected: the keyword arguments of that signature's ``validate_*`` function.

    Returns:
        Where the model implements it.

    Raises:
        UsageError: ``name`` is not a common signature.
        CommonSignatureError: the model does not implement it.
    """
    if name not in _VALIDATORS:
        raise UsageError(f"Unknown common signature {name!r}; known: {list(COMMON_SIGNATURES)}.")
    return _VALIDATORS[name](model, **expected)
