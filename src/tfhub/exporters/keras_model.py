"""``export_keras``: a Keras 3 model or layer → a TF2 Reusable SavedModel for the hub.

Keras 3's ``model.export()`` writes serving signatures only. A piece of a model that others
fine-tune needs the Reusable SavedModel interface as well::

    obj = hub.load(path)
    obj(inputs, training=False)      # __call__, traced for training=True and training=False
    obj.variables                    # every variable the computation reads
    obj.trainable_variables          # the ones fine-tuning may change
    obj.regularization_losses        # zero-argument functions, one per weight regularizer

``hub.KerasLayer(path, trainable=True)`` then trains the variables, runs dropout and batch
normalization in training mode, and adds the weight regularizers to the loss. The export holds
no optimizer state and no Keras metadata: only the computation and its variables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import keras
import tensorflow as tf

from tfhub.errors import UsageError
from tfhub.staging import check_new_directory, staged_directory

__all__ = ["export_keras"]

logger = logging.getLogger(__name__)

SERVING_DEFAULT = "serving_default"


class _ReusableSavedModel(tf.Module):
    """The object that is saved: the Reusable SavedModel attributes and nothing else.

    ``tf.Module`` computes ``variables`` and ``trainable_variables`` by walking its attributes;
    here they are declared lists that the SavedModel stores, so the class attributes shadow
    those properties.
    """

    variables: Any = None
    trainable_variables: Any = None
    regularization_losses: Any = None


def export_keras(
    model_or_layer: Any,
    path: str | os.PathLike[str],
    *,
    signatures: Mapping[str, Any] | None = None,
    input_signature: Any = None,
) -> str:
    """Writes a Keras 3 model or layer as a TF2 Reusable SavedModel.

    The SavedModel has ``__call__(inputs, training=False)`` traced for both values of
    ``training`` (dropout and batch normalization behave as in Keras: batch statistics and
    moving-average updates when training), ``variables``, ``trainable_variables``,
    ``regularization_losses`` and a ``serving_default`` signature. Each regularization loss
    recomputes a weight regularizer (``kernel_regularizer=...``) from its variable, so it follows
    the weights while they are fine-tuned; activity regularizers depend on the inputs and cannot
    be saved that way, so they are left out (with a warning). Optimizer state is never saved,
    even for a compiled and trained model.

    ``serving_default`` returns ``{"default": output}`` for a model with one output, the output
    dict for a model with dict outputs, and ``{name: output}`` by ``model.output_names`` for a
    list of outputs.

    Args:
        model_or_layer: a built Keras 3 model or layer: functional, ``Sequential``, subclassed,
            or a piece cut out of a bigger model
            (``keras.Model(big.input, big.get_layer("features").output)``).
        path: a local directory to create; it must not exist or be empty.
        signatures: extra serving signatures, name → ``tf.function`` with an
            ``input_signature`` (or a concrete function); a ``"serving_default"`` entry
            replaces the default one.
        input_signature: what ``__call__`` takes: a ``tf.TensorSpec`` or a dict/list of them.
            Needed only when the inputs cannot be read from the model (a subclassed model or
            layer that was never called on ``keras.Input``). The batch dimension of inputs read
            from the model is relaxed to ``None``.

    Returns:
        The absolute path of the written SavedModel.

    Raises:
        UsageError: not a Keras layer, unknown inputs, a bad signature, or ``path`` exists and
            is not an empty directory.

    Example:
        >>> features = keras.Model(full.input, full.get_layer("features").output)
        >>> hub.export_keras(features, "/tmp/features")
        >>> layer = hub.KerasLayer("/tmp/features", trainable=True)
    """
    if not isinstance(model_or_layer, keras.layers.Layer):
        raise UsageError(
            f"export_keras() takes a Keras 3 model or layer, got {type(model_or_layer).__name__}. "
            "For a tf.Module, use tf.saved_model.save()."
        )
    layer = model_or_layer
    target = _check_target(path)
    spec = _input_signature(layer, input_signature)
    module, serving = _build(layer, spec)
    all_signatures: dict[str, Any] = {SERVING_DEFAULT: serving}
    all_signatures.update(_check_signatures(signatures))
    _write(module, target, all_signatures)
    logger.info("Exported %s to %s", layer.name, target)
    return target


# -- arguments ---------------------------------------------------------------------------------


def _check_target(path: str | os.PathLike[str]) -> str:
    target = os.fspath(path)
    if "://" in target:
        raise UsageError(
            f"export_keras() writes to a local directory, got {target!r}; export locally, then "
            "copy the directory (or publish it with `tfhub publish`)."
        )
    return str(check_new_directory(target))
    return target


def _check_signatures(signatures: Mapping[str, Any] | None) -> dict[str, Any]:
    if signatures is None:
        return {}
    if not isinstance(signatures, Mapping):
        raise UsageError(
            f"signatures must be a dict of name → tf.function, got {type(signatures).__name__}."
        )
    checked = {}
    for name, fn in signatures.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"Signature names must be non-empty strings, got {name!r}.")
        if isinstance(fn, tf.types.experimental.PolymorphicFunction):
            if fn.input_signature is None:
                raise UsageError(
                    f"Signature {name!r} is a tf.function without an input_signature; declare "
                    "one, or pass fn.get_concrete_function(...)."
                )
        elif not isinstance(fn, tf.types.experimental.ConcreteFunction):
            raise UsageError(
                f"Signature {name!r} must be a tf.function or a concrete function, got "
                f"{type(fn).__name__}."
            )
        checked[name] = fn
    return checked


def _input_signature(layer: Any, explicit: Any) -> Any:
    """The nest of ``tf.TypeSpec`` that ``__call__`` takes."""
    if explicit is not None:
        return tf.nest.map_structure(_explicit_spec, explicit)
    inputs = _keras_inputs(layer)
    if inputs is None:
        raise UsageError(
            f"Cannot tell what {type(layer).__name__} {layer.name!r} takes as input: it was "
            "never called on keras.Input(...). Pass input_signature=tf.TensorSpec([None, ...], "
            "tf.float32) (or a dict/list of them), or build a functional model around it."
        )
    if isinstance(inputs, Mapping):
        return {key: _spec_from_keras(t, str(key)) for key, t in inputs.items()}
    if isinstance(inputs, list | tuple):
        return [_spec_from_keras(t, f"inputs_{i}") for i, t in enumerate(inputs)]
    return _spec_from_keras(inputs, "inputs")


def _keras_inputs(layer: Any) -> Any:
    if isinstance(layer, keras.Sequential):
        try:
            inputs = layer.inputs
        except (AttributeError, ValueError):
            return None
        return inputs[0] if inputs and len(inputs) == 1 else inputs or None
    try:
        # Functional models give their input structure (dict, list or tensor); other layers
        # the inputs of their first call on symbolic tensors.
        return layer.input
    except (AttributeError, ValueError):
        return None


def _explicit_spec(value: Any) -> Any:
    if isinstance(value, tf.TypeSpec):
        return value
    if isinstance(value, keras.KerasTensor):
        return _spec_from_keras(value, None, relax_batch=False)
    raise UsageError(
        f"input_signature must hold tf.TensorSpec (or keras.Input) values, got {value!r}."
    )


def _spec_from_keras(tensor: Any, fallback_name: str | None, *, relax_batch: bool = True) -> Any:
    if not isinstance(tensor, keras.KerasTensor):
        raise UsageError(f"Expected a Keras symbolic input, got {tensor!r}.")
    shape = list(tensor.shape)
    if relax_batch and shape:
        shape[0] = None  # a hub piece takes any batch size
    name = tensor.name
    if fallback_name is not None and (not name or name.startswith("keras_tensor")):
        name = fallback_name  # auto-generated names make poor signature keys
    if getattr(tensor, "sparse", False):
        return tf.SparseTensorSpec(shape, tensor.dtype)
    if getattr(tensor, "ragged", False):
        return tf.RaggedTensorSpec(shape, tensor.dtype)
    return tf.TensorSpec(shape, tensor.dtype, name=name)


# -- the saved object --------------------------------------------------------------------------


def _tf_variable(variable: Any) -> tf.Variable:
    # With the TensorFlow backend a keras.Variable keeps its state in a tf.Variable, `.value`.
    value = variable.value if isinstance(variable, keras.Variable) else variable
    if not isinstance(value, tf.Variable):
        raise UsageError(
            f"Variable {getattr(variable, 'path', variable)!r} is not backed by a tf.Variable; "
            "export_keras() needs Keras with the TensorFlow backend (KERAS_BACKEND=tensorflow)."
        )
    return value


def _unique(variables: list[tf.Variable]) -> list[tf.Variable]:
    seen: set[Any] = set()
    result = []
    for v in variables:
        if v.ref() not in seen:
            seen.add(v.ref())
            result.append(v)
    return result


def _regularization_loss(regularizer: Callable[[Any], Any], variable: Any) -> Any:
    # One function per weight, reading the variable when called: it follows fine-tuning.
    return tf.function(lambda: regularizer(variable), input_signature=[])


def _named_outputs(layer: Any, outputs: Any) -> dict[str, Any]:
    if isinstance(outputs, Mapping):
        return {str(k): v for k, v in outputs.items()}
    if isinstance(outputs, list | tuple):
        names = list(getattr(layer, "output_names", None) or [])
        if len(names) != len(outputs) or len(set(names)) != len(names):
            names = [f"output_{i}" for i in range(len(outputs))]
        return dict(zip(names, outputs, strict=True))
    return {"default": outputs}


def _walk_layers(layer: Any) -> Iterator[Any]:
    """``layer`` and every layer it holds, however deeply (Keras has no public walk)."""
    seen: set[int] = set()
    stack = [layer]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, keras.layers.Layer):
            yield item
            stack.extend(vars(item).values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())


def _warn_activity_regularizers(layer: Any) -> None:
    names = [
        sub.name
        for sub in _walk_layers(layer)
        if getattr(sub, "activity_regularizer", None) is not None
    ]
    if names:
        logger.warning(
            "export_keras(): activity regularizers of %s depend on the inputs and are not "
            "exported; only weight regularizers become regularization_losses.",
            ", ".join(sorted(names)),
        )


def _lookup_resources(layer: Any) -> list[Any]:
    """Lookup tables and other non-variable resources held by the layer (StringLookup, ...)."""
    resource_type = tf.saved_model.experimental.TrackableResource
    try:
        descendants = tf.train.TrackableView(layer).descendants()
    except TypeError:  # an object the checkpoint walk cannot traverse
        return []
    return [t for t in descendants if isinstance(t, resource_type)]


def _build(layer: Any, spec: Any) -> tuple[_ReusableSavedModel, Any]:
    """The object to save (with its ``__call__`` traced) and the serving function."""
    if not layer.built:
        raise UsageError(f"Layer {layer.name!r} is not built; call it on an input first.")
    module = _ReusableSavedModel(name="reusable_saved_model")
    trainable = _unique([_tf_variable(v) for v in layer.trainable_variables])
    variables = _unique([_tf_variable(v) for v in layer.variables])

    @tf.function
    def call(inputs: Any, training: bool = False) -> Any:
        return layer(inputs, training=training)

    try:
        traced = [call.get_concrete_function(spec, training=t) for t in (True, False)]
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"Calling {layer.name!r} on {spec} failed while tracing __call__: {exc}. Check the "
            "input_signature."
        ) from exc
    # A variable the computation reads that the layer does not list (state of a custom layer)
    # must still be saved; it is not trainable.
    variables = _unique(variables + [v for fn in traced for v in fn.variables])
    module.__call__ = call
    module.variables = variables
    module.trainable_variables = trainable
    module.regularization_losses = [
        _regularization_loss(v.regularizer, v)
        for v in layer.trainable_variables
        if getattr(v, "regularizer", None) is not None
    ]
    _warn_activity_regularizers(layer)
    resources = _lookup_resources(layer)
    if resources:
        module.resources = resources

    serving = tf.function(
        lambda inputs: _named_outputs(layer, layer(inputs, training=False)),
        input_signature=[spec],
    )
    return module, serving


def _write(module: _ReusableSavedModel, target: str, signatures: dict[str, Any]) -> None:
    with staged_directory(target) as tmp:
        try:
            tf.saved_model.save(module, str(tmp), signatures=signatures)
        except (ValueError, TypeError, AssertionError) as exc:
            raise UsageError(f"Could not write the SavedModel: {exc}", handle=target) from exc
