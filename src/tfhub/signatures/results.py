"""The names of the common signatures and the result types of their checks.

No TensorFlow, no model: what :func:`tfhub.signatures.common.find_common_signatures` and the
``validate_*`` functions return, and what ``tfhub inspect --json`` stores under
``common_signatures``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BERT_ENCODER",
    "BERT_INPUT_NAMES",
    "BERT_PREPROCESSOR",
    "COMMON_SIGNATURES",
    "IMAGE_CLASSIFICATION",
    "IMAGE_FEATURE_VECTOR",
    "TEXT_EMBEDDING",
    "CommonSignatureMatch",
    "CommonSignatureMiss",
    "CommonSignatures",
]

IMAGE_FEATURE_VECTOR = "image-feature-vector"
IMAGE_CLASSIFICATION = "image-classification"
TEXT_EMBEDDING = "text-embedding"
BERT_ENCODER = "bert-encoder"
BERT_PREPROCESSOR = "bert-preprocessor"
COMMON_SIGNATURES = (
    IMAGE_FEATURE_VECTOR,
    IMAGE_CLASSIFICATION,
    TEXT_EMBEDDING,
    BERT_ENCODER,
    BERT_PREPROCESSOR,
)
BERT_INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


@dataclass(frozen=True)
class CommonSignatureMatch:
    """A common signature the model implements.

    Attributes:
        name: e.g. ``"image-feature-vector"``.
        where: the entry point that implements it: ``"__call__"``, ``"signature
            'serving_default'"``, ``"signature 'default' (tags [])"``.
        details: sizes read from the shapes: ``height``/``width``/``num_features`` or
            ``num_classes``, ``dim``, ``seq_length``/``width`` (``None`` when not fixed).
        note: a caveat, e.g. that two common signatures share the interface.
    """

    name: str
    where: str
    details: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class CommonSignatureMiss:
    """An entry point that looks like a common signature but does not follow it.

    Attributes:
        name: the common signature it almost implements.
        where: the entry point.
        problems: what differs from the common signature.
    """

    name: str
    where: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class CommonSignatures:
    """What :func:`find_common_signatures` found."""

    matches: tuple[CommonSignatureMatch, ...] = ()
    near_misses: tuple[CommonSignatureMiss, ...] = ()

    @property
    def implements(self) -> list[str]:
        """The names of the implemented common signatures, in ``COMMON_SIGNATURES`` order."""
        names = {m.name for m in self.matches}
        return [n for n in COMMON_SIGNATURES if n in names]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict (the ``common_signatures`` key of ``tfhub inspect``)."""
        return {
            "implements": self.implements,
            "matches": [
                {"name": m.name, "where": m.where, "details": dict(m.details), "note": m.note}
                for m in self.matches
            ],
            "near_misses": [
                {"name": m.name, "where": m.where, "problems": list(m.problems)}
                for m in self.near_misses
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CommonSignatures:
        """The inverse of :meth:`to_json`."""
        return cls(
            matches=tuple(
                CommonSignatureMatch(
                    m["name"], m["where"], dict(m.get("details") or {}), m.get("note", "")
                )
                for m in data.get("matches", [])
            ),
            near_misses=tuple(
                CommonSignatureMiss(m["name"], m["where"], tuple(m["problems"]))
                for m in data.get("near_misses", [])
            ),
        )
