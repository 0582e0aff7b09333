"""The arguments of ``hub.KerasLayer`` after ``handle`` and ``trainable`` (both Keras flavours),
their docstring, and how they are saved in the layer config."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import field
from typing import Any

import tensorflow as tf

from tfhub.errors import UsageError

__all__ = ["LayerOptions", "layer_docstring", "to_shapes"]


@dataclasses.dataclass(frozen=True)
class LayerOptions:
    """The arguments of ``hub.KerasLayer`` after ``handle`` and ``trainable``: how the model is
    loaded and called. Both Keras flavours take exactly these, as keyword arguments (``arguments``
    may also come third, positionally, as in ``tensorflow_hub``); each field's ``doc`` is its
    line in the layer's docstring, and ``saved=False`` keeps it out of ``get_config``."""

    arguments: Mapping[str, Any] | None = field(
        default=None, metadata={"doc": "extra keyword arguments passed to the model on every call."}
    )
    tags: Any = field(
        default=None, metadata={"doc": "MetaGraph tags to load (string handles only)."}
    )
    signature: str | None = field(
        default=None, metadata={"doc": "call this signature instead of ``__call__``."}
    )
    signature_outputs_as_dict: bool | None = field(
        default=None, metadata={"doc": "return the signature's whole output dict."}
    )
    output_key: str | None = field(
        default=None, metadata={"doc": "return this key of the (dict) output."}
    )
    output_shape: Any = field(
        default=None,
        metadata={"doc": "the output shape without the batch dimension (or a nest of them)."},
    )
    load_options: Any = field(
        default=None,
        metadata={"doc": "a ``tf.saved_model.LoadOptions`` (string handles only).", "saved": False},
    )

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any], **given: Any) -> LayerOptions:
        """The options among ``kwargs`` (removed from it) and ``given``."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**given, **{name: kwargs.pop(name) for name in names if name in kwargs})

    def config(self) -> dict[str, Any]:
        """The options ``get_config`` saves: those set, as JSON values."""
        config: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if (
                not f.metadata.get("saved", True)
                or value is None
                or (f.name == "arguments" and not value)
            ):
                continue
            if f.name == "output_shape":
                value = _jsonable("output_shape", _shape_lists(value))
            elif f.name == "arguments":
                value = {key: _jsonable(f"arguments[{key!r}]", v) for key, v in value.items()}
            config[f.name] = value
        return config


_LAYER_DOC = """Wraps a SavedModel (or one of its signatures) as a {flavour} layer.

    The loaded object's variables are the layer's weights (the same variables,
    {weights}); with ``trainable=True`` its trainable variables train and its
    regularization losses count in the model's loss. A frozen layer always runs the model in
    inference mode.

    Args:
        handle: a path or URL (see :func:`tfhub.resolve`), or an already-loaded object.
        trainable: whether to fine-tune the model's trainable variables.
{options}
        **kwargs: passed to ``{base}`` (``name``, ``dtype``, ...).

    Raises:
        UsageError: a wrong combination of arguments (a ``ValueError``).

    Example:
        >>> model = {keras}.Sequential([
        ...     {keras}.Input(shape=(), dtype="string"),
        ...     hub.KerasLayer("https://hub.example.com/google/nnlm-en-dim50/2"),
        ...     {keras}.layers.Dense(1, activation="sigmoid"),
        ... ])
    """


def layer_docstring(flavour: str, keras: str, weights: str) -> str:
    """The docstring of a ``KerasLayer`` class, its Args from :class:`LayerOptions`."""
    options = "\n".join(
        f"        {f.name}: {f.metadata['doc']}" for f in dataclasses.fields(LayerOptions)
    )
    return _LAYER_DOC.format(
        flavour=flavour, keras=keras, weights=weights, options=options, base=f"{keras}.layers.Layer"
    )


def _is_shape(value: Any) -> bool:
    return isinstance(value, tf.TensorShape) or (
        isinstance(value, list | tuple) and all(d is None or isinstance(d, int) for d in value)
    )


def to_shapes(nest: Any) -> Any:
    if _is_shape(nest):
        return tf.TensorShape(nest)
    if isinstance(nest, Mapping):
        return {k: to_shapes(v) for k, v in nest.items()}
    return type(nest)(to_shapes(v) for v in nest)


def _shape_lists(nest: Any) -> Any:
    if _is_shape(nest):
        return list(tf.TensorShape(nest).as_list())
    if isinstance(nest, Mapping):
        return {k: _shape_lists(v) for k, v in nest.items()}
    return [_shape_lists(v) for v in nest]


def _jsonable(what: str, value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError as exc:
        raise UsageError(
            f"hub.KerasLayer {what} is not JSON-serializable ({exc}); only JSON values can be "
            "saved in the layer config."
        ) from exc
    return value
