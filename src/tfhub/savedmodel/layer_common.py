"""What the Keras 3 ``KerasLayer`` and its ``tf_keras`` twin share: the arguments (written
once, in :class:`LayerOptions`), the constructor and docstring, argument checks, choosing the
callable, calling it, shaping outputs, and the config."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

import tensorflow as tf

from tfhub.errors import UsageError
from tfhub.savedmodel.load import load

__all__ = ["HubLayerCore", "HubLayerMixin", "LayerOptions", "layer_docstring"]

logger = logging.getLogger(__name__)


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

    def __init__(self, handle: Any, options: LayerOptions) -> None:
        if isinstance(handle, os.PathLike):
            handle = os.fspath(handle)
        self.handle = handle
        if isinstance(handle, str):
            self.obj = load(handle, tags=options.tags, options=options.load_options)
        else:
            for name in ("tags", "load_options"):
                if getattr(options, name) is not None:
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
        self.is_tf1 = bool(getattr(self.obj, "_is_hub_module_v1", False))
        self.options = self._checked(options)
        self.arguments = dict(options.arguments or {})
        self.func = self._get_callable()
        self.accepts_training = self.options.signature is None and _accepts_training(self.func)
        self.warned_no_weights = False

    def _checked(self, options: LayerOptions) -> LayerOptions:
        """``options`` with TF1 defaults filled in and tags sorted, once they fit together."""
        signature, as_dict = options.signature, options.signature_outputs_as_dict
        output_key = options.output_key
        if self.is_tf1 and (signature or as_dict or output_key):
            # A signature call; without any of these the module's __call__ applies the default
            # signature's "default" output, and can be fine-tuned.
            signature = signature or "default"
            if not as_dict:
                output_key = output_key or "default"
        if signature and (output_key is not None) == bool(as_dict):
            raise UsageError(
                f"When using a signature ({signature!r}), either output_key or "
                "signature_outputs_as_dict=True should be set: signatures return dicts."
            )
        if not signature and as_dict:
            raise UsageError(
                "signature_outputs_as_dict is only valid if specifying a signature (or using a "
                "legacy TF1 Hub format)."
            )
        tags = None if options.tags is None else sorted(options.tags)
        return dataclasses.replace(options, signature=signature, output_key=output_key, tags=tags)

    def _get_callable(self) -> Callable[..., Any]:
        obj = self.obj
        if callable(obj) and not self.options.signature:
            return obj  # type: ignore[no-any-return]
        signatures = getattr(obj, "signatures", None)
        if not signatures:
            if self.options.signature:
                raise UsageError(f"Loaded object {self._name()} has no signatures.")
            raise UsageError(f"Loaded object {self._name()} is not callable and has no signatures.")
        if self.options.signature is None:
            raise UsageError(
                f"Signature name has to be specified for non-callable saved models (if not legacy "
                f"TF1 Hub format); {self._name()} has: {sorted(signatures)}."
            )
        if self.options.signature not in signatures:
            raise UsageError(
                f"Unknown signature {self.options.signature} in {self._name()} (available "
                f"signatures: {sorted(signatures)})."
            )
        return signatures[self.options.signature]  # type: ignore[no-any-return]

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
        if self.options.signature:
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
        if self.options.signature and isinstance(inputs, Mapping):
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
        if self.options.output_key is not None:
            if not isinstance(result, Mapping):
                raise UsageError(
                    f"Specifying `output_key` is forbidden if output type {type(result)} is not a "
                    "dict."
                )
            if self.options.output_key not in result:
                raise UsageError(
                    f"KerasLayer output does not contain the output key {self.options.output_key} "
                    f"(available: {sorted(result)})."
                )
            result = result[self.options.output_key]
        if self.options.output_shape is not None:
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
        return _to_shapes(self.options.output_shape)

    # -- config -----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        if not isinstance(self.handle, str):
            raise NotImplementedError(
                "Can only generate a valid config for `hub.KerasLayer(handle, ...)` that uses a "
                f"string `handle`; got a {type(self.handle).__name__}. Save the model with "
                "tf.saved_model.save() instead, or pass the handle as a string."
            )
        return {"handle": self.handle, **self.options.config()}


class HubLayerMixin:
    """The constructor, ``resolved_object`` and ``get_config`` of both Keras flavours of
    ``KerasLayer`` (listed before the Keras base class, so ``super()`` reaches that class).
    A flavour adds the loaded variables as its weights in ``_add_hub_weights``."""

    _hub: HubLayerCore

    def __init__(
        self,
        handle: Any,
        trainable: bool = False,
        arguments: Mapping[str, Any] | None = None,
        _sentinel: None = None,
        **kwargs: Any,
    ) -> None:
        if _sentinel is not None:
            raise TypeError("hub.KerasLayer takes its options as keyword arguments only.")
        options = LayerOptions.pop_from(kwargs, arguments=arguments)
        super().__init__(trainable=trainable, **kwargs)  # type: ignore[call-arg]
        self._hub = HubLayerCore(handle, options)
        # The loaded object becomes a child for tf.train.Checkpoint / tf.saved_model.save.
        self._resolved_object = self._hub.obj
        self._add_hub_weights(*self._hub.variables())
        self.built = True

    def _add_hub_weights(self, trainable: list[tf.Variable], others: list[tf.Variable]) -> None:
        raise NotImplementedError

    @property
    def resolved_object(self) -> Any:
        """The object loaded from the handle (or the object passed as handle)."""
        return self._hub.obj

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = dict(super().get_config())  # type: ignore[misc]
        config.update(self._hub.config())
        return config


def _init_signature() -> inspect.Signature:
    """What ``inspect.signature(hub.KerasLayer)`` and ``help()`` show: every option by name."""
    param = inspect.Parameter
    head = [
        param(name, param.POSITIONAL_OR_KEYWORD, default=default)
        for name, default in (("self", param.empty), ("handle", param.empty), ("trainable", False))
    ]
    head += [
        param("arguments", param.POSITIONAL_OR_KEYWORD, default=None),
        param("_sentinel", param.POSITIONAL_OR_KEYWORD, default=None),
    ]
    options = [
        param(f.name, param.KEYWORD_ONLY, default=None)
        for f in dataclasses.fields(LayerOptions)
        if f.name != "arguments"
    ]
    return inspect.Signature([*head, *options, param("kwargs", param.VAR_KEYWORD)])


HubLayerMixin.__init__.__signature__ = _init_signature()  # type: ignore[attr-defined]


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
