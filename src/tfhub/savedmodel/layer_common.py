"""What the Keras 3 ``KerasLayer`` and its ``tf_keras`` twin share: argument checks, choosing
the callable, calling it, shaping outputs, and the config."""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from tfhub.errors import UsageError
from tfhub.savedmodel.load import load

__all__ = ["HubLayerCore", "HubLayerMixin"]

logger = logging.getLogger(__name__)


def _accepts_training(fn: Any) -> bool:
    # A restored object's class forwards __call__(*args, **kwargs); the instance's own
    # `__call__` attribute is the restored tf.function with the real parameters.
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else fn.__call__
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return "training" in params


class HubLayerCore:
    """The state and behaviour of a hub layer that do not depend on the Keras flavour."""

    def __init__(
        self,
        handle: Any,
        *,
        arguments: Mapping[str, Any] | None,
        tags: Any,
        signature: str | None,
        signature_outputs_as_dict: bool | None,
        output_key: str | None,
        output_shape: Any,
        load_options: Any,
    ) -> None:
        if isinstance(handle, os.PathLike):
            handle = os.fspath(handle)
        self.handle = handle
        if isinstance(handle, str):
            self.obj = load(handle, tags=tags, options=load_options)
        else:
            for name, value in (("tags", tags), ("load_options", load_options)):
                if value is not None:
                    raise UsageError(
                        f"Passing a callable handle is mutually exclusive with setting {name}; "
                        f"load the object with hub.load(handle, {name}=...) yourself, or pass the "
                        "handle as a string."
                    )
            if not callable(handle) and not hasattr(handle, "signatures"):
                raise UsageError(
                    f"hub.KerasLayer expects a string handle or a loaded object, got {handle!r}."
                )
            self.obj = handle
        self.tags = None if tags is None else sorted(tags)
        self.is_tf1 = bool(getattr(self.obj, "_is_hub_module_v1", False))
        if self.is_tf1 and (signature or signature_outputs_as_dict or output_key):
            # A signature call; without any of these the module's __call__ applies the default
            # signature's "default" output, and can be fine-tuned.
            signature = signature or "default"
            if not signature_outputs_as_dict:
                output_key = output_key or "default"
        if signature and (output_key is not None) == bool(signature_outputs_as_dict):
            raise UsageError(
                f"When using a signature ({signature!r}), either output_key or "
                "signature_outputs_as_dict=True should be set: signatures return dicts."
            )
        if not signature and signature_outputs_as_dict:
            raise UsageError(
                "signature_outputs_as_dict is only valid if specifying a signature (or using a "
                "legacy TF1 Hub format)."
            )
        self.signature = signature
        self.signature_outputs_as_dict = signature_outputs_as_dict
        self.output_key = output_key
        self.arguments = dict(arguments or {})
        self.output_shape = output_shape
        self.func = self._get_callable()
        self.accepts_training = self.signature is None and _accepts_training(self.func)
        self.warned_no_weights = False

    def _get_callable(self) -> Callable[..., Any]:
        obj = self.obj
        if callable(obj) and not self.signature:
            return obj  # type: ignore[no-any-return]
        signatures = getattr(obj, "signatures", None)
        if not signatures:
            if self.signature:
                raise UsageError(f"Loaded object {self._name()} has no signatures.")
            raise UsageError(f"Loaded object {self._name()} is not callable and has no signatures.")
        if self.signature is None:
            raise UsageError(
                f"Signature name has to be specified for non-callable saved models (if not legacy "
                f"TF1 Hub format); {self._name()} has: {sorted(signatures)}."
            )
        if self.signature not in signatures:
            raise UsageError(
                f"Unknown signature {self.signature} in {self._name()} (available signatures: "
                f"{sorted(signatures)})."
            )
        return signatures[self.signature]  # type: ignore[no-any-return]

    def _name(self) -> str:
        return repr(self.handle) if isinstance(self.handle, str) else type(self.handle).__name__

    def input_dtype(self) -> tf.DType | None:
        """The dtype of the single input the callable declares, if it declares exactly one."""
        spec = getattr(self.func, "input_signature", None)
        if spec and len(spec) == 1 and isinstance(spec[0], tf.TensorSpec):
            return spec[0].dtype
        return None

    # -- variables and losses ----------------------------------------------------------------

    def variables(self) -> tuple[list[tf.Variable], list[tf.Variable]]:
        """(trainable, non-trainable) variables of the loaded object, per its own declaration."""
        source = self.obj if hasattr(self.obj, "variables") else self.func
        declared = list(getattr(source, "trainable_variables", []) or [])
        trainable_refs = {v.ref() for v in declared}
        others = [
            v for v in getattr(source, "variables", []) or [] if v.ref() not in trainable_refs
        ]
        return declared, others

    def regularization_losses(self) -> list[Callable[[], Any]]:
        losses = list(getattr(self.obj, "regularization_losses", []) or [])
        for loss in losses:
            if not callable(loss):
                raise UsageError(
                    "hub.KerasLayer(obj) expects obj.regularization_losses to be an iterable of "
                    f"callables, each returning a scalar loss term; got {loss!r}."
                )
        return losses

    # -- calling ----------------------------------------------------------------------------

    def check_trainable(self, trainable: bool, n_trainable_weights: int) -> None:
        if not trainable:
            return
        if self.signature:
            raise UsageError(
                "Setting hub.KerasLayer.trainable = True is unsupported when calling a SavedModel "
                "signature; call the model's __call__ (no signature=) to fine-tune it."
            )
        if n_trainable_weights == 0 and not self.warned_no_weights:
            logger.error("hub.KerasLayer is trainable but has zero trainable weights.")
            self.warned_no_weights = True

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs: Any, *, training: Any, trainable: bool) -> Any:
        """Runs the model on ``inputs``; ``training`` reaches it only when the layer trains."""
        kwargs = dict(self.arguments)
        if self.signature and isinstance(inputs, Mapping):
            args: tuple[Any, ...] = ()
            kwargs.update(inputs)
        else:
            args = (inputs,)
        if not self.accepts_training:
            result = self.func(*args, **kwargs)
        elif not trainable or training is None:
            result = self.func(*args, training=False, **kwargs)
        elif isinstance(training, bool):
            result = self.func(*args, training=training, **kwargs)
        else:
            result = tf.cond(
                tf.cast(training, tf.bool),
                lambda: self.func(*args, training=True, **kwargs),
                lambda: self.func(*args, training=False, **kwargs),
            )
        if self.output_key is not None:
            if not isinstance(result, Mapping):
                raise UsageError(
                    f"Specifying `output_key` is forbidden if output type {type(result)} is not a "
                    "dict."
                )
            if self.output_key not in result:
                raise UsageError(
                    f"KerasLayer output does not contain the output key {self.output_key} "
                    f"(available: {sorted(result)})."
                )
            result = result[self.output_key]
        if self.output_shape is not None:
            result = self._apply_output_shape(inputs, result)
        return result

    def _apply_output_shape(self, inputs: Any, result: Any) -> Any:
        first = tf.nest.flatten(inputs)[0]
        batch = first.shape[0] if first.shape.rank else None

        def set_shape(t: Any, shape: tf.TensorShape) -> Any:
            if tf.is_tensor(t):
                t.set_shape(tf.TensorShape([batch]).concatenate(shape))
            return t

        return tf.nest.map_structure(set_shape, result, self.output_shapes())

    def output_shapes(self) -> Any:
        """``output_shape`` as a nest of ``tf.TensorShape`` (without the batch dimension)."""
        return _to_shapes(self.output_shape)

    # -- config -----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        if not isinstance(self.handle, str):
            raise NotImplementedError(
                "Can only generate a valid config for `hub.KerasLayer(handle, ...)` that uses a "
                f"string `handle`; got a {type(self.handle).__name__}. Save the model with "
                "tf.saved_model.save() instead, or pass the handle as a string."
            )
        config: dict[str, Any] = {"handle": self.handle}
        if self.output_shape is not None:
            config["output_shape"] = _jsonable("output_shape", _shape_lists(self.output_shape))
        if self.arguments:
            config["arguments"] = {
                key: _jsonable(f"arguments[{key!r}]", value)
                for key, value in self.arguments.items()
            }
        for key in ("signature", "output_key", "signature_outputs_as_dict", "tags"):
            value = getattr(self, key)
            if value is not None:
                config[key] = value
        return config


class HubLayerMixin:
    """What both Keras flavours of ``KerasLayer`` expose the same way (listed before the
    Keras base class, so ``super()`` reaches that class's ``get_config``)."""

    _hub: HubLayerCore

    @property
    def resolved_object(self) -> Any:
        """The object loaded from the handle (or the object passed as handle)."""
        return self._hub.obj

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = dict(super().get_config())  # type: ignore[misc]
        config.update(self._hub.config())
        return config


def _is_shape(value: Any) -> bool:
    return isinstance(value, tf.TensorShape) or (
        isinstance(value, list | tuple) and all(d is None or isinstance(d, int) for d in value)
    )


def _to_shapes(nest: Any) -> Any:
    if _is_shape(nest):
        return tf.TensorShape(nest)
    if isinstance(nest, Mapping):
        return {k: _to_shapes(v) for k, v in nest.items()}
    return type(nest)(_to_shapes(v) for v in nest)


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
