"""Text data that ``tf_keras`` fed to a hub layer and Keras 3's data adapters refuse.

``model.fit(np.array(["a b", "c"]), y)`` (a NumPy ``str`` array) and
``model.predict(["a b", "c"])`` (a Python list of strings) worked with ``tensorflow_hub`` on
``tf_keras``; Keras 3 rejects both before any layer runs (``Invalid dtype: str352``,
``Unrecognized data type``). Importing the Keras 3 ``hub.KerasLayer`` wraps ``fit``,
``evaluate``, ``predict`` and their ``*_on_batch`` forms on ``keras.Model`` so that, **for a model
that contains a** ``hub.KerasLayer`` only, exactly those inputs are passed on as NumPy ``object``
arrays of the same strings (which Keras 3 accepts). Every other input, and every model without a
hub layer, goes through untouched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

__all__ = ["install"]

_METHODS = ("fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch")
_MARK = "_tfhub_accepts_text"


def _is_text_list(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, str | bytes) for v in value)
    )


def text_as_objects(value: Any) -> Any:
    """``value`` with NumPy ``str``/``bytes`` arrays and lists of strings as ``object`` arrays
    (also inside a dict of named inputs); anything else as it is."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "US":
        return value.astype(object)
    if _is_text_list(value):
        return np.array(value, dtype=object)
    if isinstance(value, Mapping):
        return {key: text_as_objects(v) for key, v in value.items()}
    return value


def _has_hub_layer(model: Any, hub_layer: type) -> bool:
    for layer in getattr(model, "layers", None) or ():
        if isinstance(layer, hub_layer) or (
            isinstance(layer, keras.Model) and _has_hub_layer(layer, hub_layer)
        ):
            return True
    return False


def _accepting_text(method: Callable[..., Any], hub_layer: type) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _has_hub_layer(self, hub_layer):
            if args:
                args = (text_as_objects(args[0]), *args[1:])
            elif "x" in kwargs:
                kwargs["x"] = text_as_objects(kwargs["x"])
            validation = kwargs.get("validation_data")
            if isinstance(validation, tuple) and validation:
                kwargs["validation_data"] = (text_as_objects(validation[0]), *validation[1:])
        return method(self, *args, **kwargs)

    setattr(wrapper, _MARK, True)
    return wrapper


def install(hub_layer: type) -> None:
    """Wraps ``keras.Model``'s data-taking methods once (see the module docstring)."""
    for name in _METHODS:
        method = getattr(keras.Model, name)
        if not getattr(method, _MARK, False):
            setattr(keras.Model, name, _accepting_text(method, hub_layer))
