"""Tensor specs of a model description, and the ``__call__`` traces built from them.

A :class:`Spec` is what the description says about one tensor: dtype name, shape (``None``
for an unknown rank, ``None`` for an unknown dimension) and kind (``dense``, ``sparse``,
``ragged``). Both ways of describing a model produce them: the protobuf parser
(:mod:`tfhub.describe.protos`) from ``StructuredValue``/``TensorInfo`` messages, and the
description of a live object (:mod:`tfhub.describe.objects`) from ``tf.TypeSpec`` values; the
grouping of ``__call__`` traces below is shared by both. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FORMAT_SAVED_MODEL",
    "FORMAT_SAVED_MODEL_2",
    "FORMAT_TF1_HUB",
    "Spec",
    "group_call_traces",
    "structure",
]

FORMAT_TF1_HUB = "hub"  # the names of the tfhub.dev docs `format` field
FORMAT_SAVED_MODEL = "saved_model"
FORMAT_SAVED_MODEL_2 = "saved_model_2"


@dataclass(frozen=True)
class Spec:
    """One tensor of a signature or trace."""

    dtype: str
    shape: tuple[int | None, ...] | None
    kind: str = "dense"  # "dense", "sparse" or "ragged"

    def to_json(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "shape": None if self.shape is None else list(self.shape),
            "kind": self.kind,
        }


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    """Leaves of a nest of specs by their path ("a/0"); ``None`` and Python values are skipped."""
    if isinstance(value, Spec):
        return {prefix: value.to_json()}
    items: Any
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return {}
    leaves: dict[str, Any] = {}
    for key, item in items:
        leaves.update(_flatten(item, f"{prefix}/{key}" if prefix else str(key)))
    return leaves


def structure(value: Any, single_name: str) -> tuple[str, dict[str, Any]]:
    """(``tensor``/``dict``/``list``/``other``, leaves by name) of an input or output nest."""
    if isinstance(value, Spec):
        return "tensor", {single_name: value.to_json()}
    kind = "dict" if isinstance(value, dict) else "list" if isinstance(value, list | tuple) else ""
    return kind or "other", _flatten(value, "")


def group_call_traces(traces: Iterable[tuple[Any, Any, Any]]) -> list[dict[str, Any]]:
    """The traces of ``__call__``, grouped by inputs and outputs.

    Args:
        traces: ``(args, kwargs, outputs)`` of each trace, as nests of :class:`Spec` and Python
            values (``training=True`` is a ``True`` among the arguments).

    Returns:
        One entry per distinct interface: ``inputs``/``outputs`` (name → dtype, shape, kind; a
        single tensor is named ``inputs``/``output_0``), ``input_structure``/
        ``output_structure`` (``tensor``, ``dict``, ``list``) and ``training``: the values of
        ``training`` it was traced for.
    """
    groups: dict[str, dict[str, Any]] = {}
    for args, kwargs, outputs in traces:
        if args:
            first, rest = args[0], args[1:]
        elif kwargs:
            name = "inputs" if "inputs" in kwargs else sorted(kwargs)[0]
            first, rest = kwargs[name], ()
        else:
            continue
        training = kwargs.get("training", rest[0] if rest else None)
        in_kind, inputs = structure(first, "inputs")
        out_kind, outs = structure(outputs, "output_0")
        entry = {
            "inputs": inputs,
            "input_structure": in_kind,
            "outputs": outs,
            "output_structure": out_kind,
        }
        group = groups.setdefault(json.dumps(entry, sort_keys=True), {**entry, "training": []})
        if isinstance(training, bool) and training not in group["training"]:
            group["training"] = sorted([*group["training"], training])
    return list(groups.values())
