"""``hub.KerasLayer`` for Keras 3 (TensorFlow backend)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfhub.savedmodel.layer_common import HubLayerCore, HubLayerMixin

__all__ = ["KerasLayer"]


class _SavedModelRegularizer:
    """Adds the SavedModel's ``regularization_losses`` through one weight's regularizer.

    Keras 3 counts a weight regularizer only while the weight is trainable, which is exactly
    when the SavedModel's losses must count: ``layer.losses`` shows them once
    ``layer.trainable = True``, and ``fit`` adds them to the loss.
    """

    def __init__(self, losses: list[Callable[[], Any]]) -> None:
        self._losses = losses

    def __call__(self, _variable: Any) -> Any:
        terms = [tf.cast(loss(), tf.float32) for loss in self._losses]
        return tf.add_n(terms)


@keras.saving.register_keras_serializable(package="tfhub", name="KerasLayer")
class KerasLayer(HubLayerMixin, keras.layers.Layer):
    """Wraps a SavedModel (or one of its signatures) as a Keras 3 layer.

    The loaded object's variables are the layer's weights (the same variables, wrapped, never
    copied); with ``trainable=True`` its trainable variables train and its regularization
    losses count in the model's loss. A frozen layer always runs the model in inference mode.

    Args:
        handle: a path or URL (see :func:`tfhub.resolve`), or an already-loaded object.
        trainable: whether to fine-tune the model's trainable variables.
        arguments: extra keyword arguments passed to the model on every call.
        tags: MetaGraph tags to load (string handles only).
        signature: call this signature instead of ``__call__``.
        signature_outputs_as_dict: return the signature's whole output dict.
        output_key: return this key of the (dict) output.
        output_shape: the output shape without the batch dimension (or a nest of them).
        load_options: a ``tf.saved_model.LoadOptions`` (string handles only).
        **kwargs: passed to ``keras.layers.Layer`` (``name``, ``dtype``, ...).

    Raises:
        UsageError: a wrong combination of arguments (a ``ValueError``).

    Example:
        >>> model = keras.Sequential([
        ...     keras.Input(shape=(), dtype="string"),
        ...     hub.KerasLayer("https://hub.example.com/google/nnlm-en-dim50/2"),
        ...     keras.layers.Dense(1, activation="sigmoid"),
        ... ])
    """

    def __init__(
        self,
        handle: Any,
        trainable: bool = False,
        arguments: Mapping[str, Any] | None = None,
        _sentinel: None = None,
        tags: Any = None,
        signature: str | None = None,
        signature_outputs_as_dict: bool | None = None,
        output_key: str | None = None,
        output_shape: Any = None,
        load_options: Any = None,
        **kwargs: Any,
    ) -> None:
        if _sentinel is not None:
            raise TypeError("hub.KerasLayer takes its options as keyword arguments only.")
        super().__init__(trainable=trainable, **kwargs)
        self._hub = HubLayerCore(
            handle,
            arguments=arguments,
            tags=tags,
            signature=signature,
            signature_outputs_as_dict=signature_outputs_as_dict,
            output_key=output_key,
            output_shape=output_shape,
            load_options=load_options,
        )
        # The loaded object becomes a child for tf.train.Checkpoint / tf.saved_model.save.
        self._resolved_object = self._hub.obj
        trainable_vars, other_vars = self._hub.variables()
        wrapped = [_wrap(v, trainable=True) for v in trainable_vars]
        wrapped += [_wrap(v, trainable=False) for v in other_vars]
        losses = self._hub.regularization_losses()
        if losses and trainable_vars:
            wrapped[0].regularizer = _SavedModelRegularizer(losses)
        # Assigning a list of keras.Variables makes Keras track them as this layer's weights.
        self._hub_weights = wrapped
        # The trainable ones were created trainable so that Keras files them as trainable
        # weights (which `layer.trainable = ...` toggles later); a frozen layer's weights must
        # be frozen now too, or an enclosing model would still collect and train them.
        for variable in wrapped[: len(trainable_vars)]:
            variable.trainable = self.trainable
        self.built = True

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        # Keras 3 accepts only tensors positionally; `layer([10., 20.])` must still work.
        return super().__call__(_as_tensors(inputs, self._hub), *args, **kwargs)

    def call(self, inputs: Any, training: Any = None) -> Any:
        self._hub.check_trainable(self.trainable, len(self.trainable_weights))
        return self._hub.call(inputs, training=training, trainable=self.trainable)

    def compute_output_spec(self, inputs: Any, training: Any = None, **kwargs: Any) -> Any:
        # Trace `call` on symbolic inputs with tf.function (keeps dtypes such as strings).
        def spec(x: Any) -> Any:
            if isinstance(x, keras.KerasTensor):
                return tf.TensorSpec(x.shape, x.dtype)
            return x

        specs = tf.nest.map_structure(spec, inputs)
        concrete = tf.function(lambda x: self.call(x, training=training)).get_concrete_function(
            specs
        )
        return tf.nest.map_structure(
            lambda t: keras.KerasTensor(t.shape, t.dtype),
            concrete.structured_outputs,
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self._hub.output_shape is not None:
            batch = tf.nest.flatten(input_shape, expand_composites=False)
            batch_size = batch[0] if batch and not isinstance(batch[0], tuple | list) else None
            return tf.nest.map_structure(
                lambda s: (batch_size, *s.as_list()),
                self._hub.output_shapes(),
            )
        dtype = self._hub.input_dtype() or self.compute_dtype
        spec = self.compute_output_spec(keras.KerasTensor(input_shape, dtype=dtype))
        return tf.nest.map_structure(lambda t: t.shape, spec)


def _is_plain(value: Any) -> bool:
    """True for Python/NumPy data with no tensor inside (what `tf.constant` would take)."""
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return isinstance(value, int | float | str | bytes | bool | np.ndarray | np.generic)


def _as_tensors(inputs: Any, hub: HubLayerCore) -> Any:
    if isinstance(inputs, Mapping):
        return {k: _as_tensors(v, hub) for k, v in inputs.items()}
    if not _is_plain(inputs):
        return inputs
    return tf.convert_to_tensor(inputs, dtype=hub.input_dtype())


def _wrap(variable: tf.Variable, *, trainable: bool) -> keras.Variable:
    # A keras.Variable built from a tf.Variable of the same dtype keeps that very tf.Variable as
    # its value (no copy): training the layer trains the loaded object.
    return keras.Variable(
        initializer=variable,
        trainable=trainable,
        dtype=variable.dtype,
        shape=variable.shape,
        autocast=False,
        name=variable.name.split(":")[0].replace("/", "_"),
    )
