"""What the Keras 3 ``KerasLayer`` and its ``tf_keras`` twin share: the arguments (written
once, in :class:`LayerOptions`), the constructor and docstring, argument checks, choosing the
callable, calling it, shaping outputs, and the config."""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from tfhub.config import check_ops_mode
from tfhub.errors import UnsafeOpsError, UsageError
from tfhub.savedmodel.layer_options import LayerOptions, layer_docstring, to_shapes
from tfhub.savedmodel.load import load

__all__ = ["HubLayerCore", "HubLayerMixin", "LayerOptions", "layer_docstring"]

logger = logging.getLogger(__name__)

_SERVING_DEFAULT = "serving_default"
_EXPORT_KERAS = "hub.export_keras(model, directory)"


# True while a layer is rebuilt from a config (keras.models.load_model of a .keras file, ...).
_FROM_CONFIG: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tfhub_layer_from_config", default=False
)


def _load(handle: str, options: LayerOptions) -> Any:
    """Loads ``handle``; under the strict op policy when rebuilding from a config.

    A config names a handle whose graph will run, and a ``.keras`` file may come from anyone:
    rebuilt from one, the layer refuses a model with ops that reach outside it (``ReadFile``,
    ``WriteFile``, ``PyFunc``, ...) whatever ``TFHUB_CHECK_OPS`` says, unless it says ``off``.
    """
    if not _FROM_CONFIG.get() or check_ops_mode() == "off":
        return load(handle, tags=options.tags, options=options.load_options)
    try:
        return load(handle, tags=options.tags, options=options.load_options, check_ops="error")
    except UnsafeOpsError as exc:
        listing = "; ".join(str(f) for f in exc.findings[:10])
        raise UnsafeOpsError(
            f"Refusing to rebuild hub.KerasLayer({handle!r}) from its config (a .keras file, "
            "keras.models.load_model): the model holds ops that may reach outside it: "
            f"{listing}. A layer rebuilt from a config loads its model "
            "under the strict op policy whatever TFHUB_CHECK_OPS says; only if you trust this "
            "file and the model, load it with TFHUB_CHECK_OPS=off.",
            handle=handle,
            findings=exc.findings,
        ) from exc


def _same_function(a: Any, b: Any) -> bool:
    """Whether two signatures are aliases: the same inputs and outputs, calling the same
    function (what ``model.export()`` writes as ``serve`` and ``serving_default``)."""

    def called(sig: Any) -> set[str]:
        ops = sig.graph.get_operations()
        calls = ("PartitionedCall", "StatefulPartitionedCall")
        return {op.get_attr("f").name for op in ops if op.type in calls}

    return bool(
        a.structured_input_signature == b.structured_input_signature
        and a.structured_outputs == b.structured_outputs
        and called(a)
        and called(a) == called(b)
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
            self.obj = _load(handle, options)
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
        # The serving signature chosen for a model that is not callable (see _only_signature).
        self.auto_signature: str | None = None
        self.func = self._get_callable()
        self.accepts_training = self.options.signature is None and _accepts_training(self.func)
        self.warned_no_weights = False
        # The batch input shape the user declared (Keras 3 handles `input_shape=` here).
        self.batch_input_shape: tuple[int | None, ...] | None = None

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
            raise UsageError(
                f"Loaded object {self._name()} is not callable and has no signatures. A Keras 3 "
                f"model saved for reuse needs {_EXPORT_KERAS}."
            )
        if self.options.signature is None:
            self.auto_signature = self._only_signature(signatures)
            logger.info(
                "hub.KerasLayer: %s is not callable (as Keras' model.export() and "
                "tf.saved_model.save(keras_model) write it); calling its only serving signature "
                "%r. Writing the model with %s gives a callable, fine-tunable SavedModel.",
                self._name(),
                self.auto_signature,
                _EXPORT_KERAS,
            )
            return signatures[self.auto_signature]  # type: ignore[no-any-return]
        if self.options.signature not in signatures:
            raise UsageError(
                f"Unknown signature {self.options.signature} in {self._name()} (available "
                f"signatures: {sorted(signatures)})."
            )
        return signatures[self.options.signature]  # type: ignore[no-any-return]

    def _only_signature(self, signatures: Mapping[str, Any]) -> str:
        """The one serving signature; ``model.export()`` writes ``serve`` as an alias of
        ``serving_default`` (same inputs and outputs), which does not count as another."""
        names = sorted(signatures)
        if len(names) == 1:
            return names[0]
        default = signatures.get(_SERVING_DEFAULT)
        if default is not None and all(_same_function(signatures[name], default) for name in names):
            return _SERVING_DEFAULT
        raise UsageError(
            f"Loaded object {self._name()} is not callable and has several signatures {names}: "
            "pick one with hub.KerasLayer(handle, signature=..., output_key=...) (or "
            f"signature_outputs_as_dict=True), or re-save the Keras model with {_EXPORT_KERAS}."
        )

    def signature_input_names(self) -> list[str]:
        """The input names of the signature that is called (empty for ``__call__``)."""
        structured = getattr(self.func, "structured_input_signature", None)
        if not self.signature_name() or structured is None:
            return []
        return sorted(structured[1])

    def signature_name(self) -> str | None:
        """The signature that is called: the one asked for, or the only serving one."""
        return self.options.signature or self.auto_signature

    def _name(self) -> str:
        return repr(self.handle) if isinstance(self.handle, str) else type(self.handle).__name__

    def input_dtype(self) -> tf.DType | None:
        """The dtype of the single input the callable declares, if it declares exactly one.

        From the function's ``input_signature``, else from every traced concrete function of a
        restored ``tf.function`` (they must agree), else from a signature's only input.
        """
        func: Any = self.func
        if not any(
            hasattr(func, name)
            for name in ("input_signature", "structured_input_signature", "concrete_functions")
        ):
            func = func.__call__  # a restored object: its `__call__` is the tf.function
        spec = getattr(func, "input_signature", None)
        if spec:
            return spec[0].dtype if len(spec) == 1 and isinstance(spec[0], tf.TensorSpec) else None
        structured = getattr(func, "structured_input_signature", None)
        if structured is not None:  # a concrete function (a signature)
            specs = tf.nest.flatten(structured)
            return specs[0].dtype if len(specs) == 1 else None
        dtypes = set()
        for concrete in getattr(func, "concrete_functions", None) or ():
            args = concrete.structured_input_signature[0]
            if not args or not isinstance(args[0], tf.TensorSpec):
                return None
            dtypes.add(args[0].dtype)
        return dtypes.pop() if len(dtypes) == 1 else None

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
        if self.signature_name():
            fix = (
                f"it has no __call__ to fine-tune (Keras' model.export() writes serving "
                f"signatures only): write the Keras model with {_EXPORT_KERAS} instead"
                if self.auto_signature
                else "call the model's __call__ (no signature=) to fine-tune it"
            )
            raise UsageError(
                "Setting hub.KerasLayer.trainable = True is unsupported when calling a SavedModel "
                f"signature ({self.signature_name()!r} of {self._name()}); {fix}."
            )
        if n_trainable_weights == 0 and not self.warned_no_weights:
            logger.error("hub.KerasLayer is trainable but has zero trainable weights.")
            self.warned_no_weights = True

    @tf.autograph.experimental.do_not_convert
    def call(self, inputs: Any, *, training: Any, trainable: bool) -> Any:
        """Runs the model on ``inputs``; ``training`` reaches it only when the layer trains."""
        kwargs = dict(self.arguments)
        args: tuple[Any, ...] = ()
        if self.signature_name() and isinstance(inputs, Mapping):
            kwargs.update(inputs)
        elif self.auto_signature:
            kwargs.update(self._named_input(inputs))
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
        elif self.auto_signature and isinstance(result, Mapping) and len(result) == 1:
            (result,) = result.values()
        if self.options.output_shape is not None:
            result = self._apply_output_shape(inputs, result)
        return result

    def _named_input(self, inputs: Any) -> dict[str, Any]:
        names = self.signature_input_names()
        if len(names) != 1:
            raise UsageError(
                f"Signature {self.auto_signature!r} of {self._name()} takes the inputs {names}: "
                "call the layer on a dict with those keys."
            )
        return {names[0]: inputs}

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
        return to_shapes(self.options.output_shape)

    # -- config -----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        if not isinstance(self.handle, str):
            raise NotImplementedError(
                "Can only generate a valid config for `hub.KerasLayer(handle, ...)` that uses a "
                f"string `handle`; got a {type(self.handle).__name__}. Save the model with "
                "tf.saved_model.save() instead, or pass the handle as a string."
            )
        config = {"handle": self.handle, **self.options.config()}
        if self.batch_input_shape is not None:
            config["batch_input_shape"] = list(self.batch_input_shape)
        return config


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
        hub = HubLayerCore(handle, options)
        kwargs = self._layer_kwargs(hub, kwargs)
        super().__init__(trainable=trainable, **kwargs)  # type: ignore[call-arg]
        self._hub = hub
        # The loaded object becomes a child for tf.train.Checkpoint / tf.saved_model.save.
        self._resolved_object = self._hub.obj
        self._add_hub_weights(*self._hub.variables())
        self.built = True

    def _layer_kwargs(self, hub: HubLayerCore, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the Keras base class, once the model is loaded."""
        return kwargs

    def _add_hub_weights(self, trainable: list[tf.Variable], others: list[tf.Variable]) -> None:
        raise NotImplementedError

    @property
    def resolved_object(self) -> Any:
        """The object loaded from the handle (or the object passed as handle)."""
        return self._hub.obj

    @classmethod
    def from_config(cls, config: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Rebuilds the layer, loading its handle under the strict op policy (see ``_load``)."""
        token = _FROM_CONFIG.set(True)
        try:
            return super().from_config(config, *args, **kwargs)  # type: ignore[misc]
        finally:
            _FROM_CONFIG.reset(token)

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
