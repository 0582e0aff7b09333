"""``hub.KerasLayer`` for Keras 3 (TensorFlow backend); its arguments are
:class:`tfhub.savedmodel.layer_common.LayerOptions`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfhub.savedmodel import keras_text_inputs
from tfhub.savedmodel.layer_common import HubLayerCore, HubLayerMixin, layer_docstring

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
    __doc__ = layer_docstring("Keras 3", "keras", "wrapped, never copied")

    def _layer_kwargs(self, hub: HubLayerCore, kwargs: dict[str, Any]) -> dict[str, Any]:
        # tf_keras habits, Keras 3 style. `input_shape=[]` stays out of keras.layers.Layer (which
        # would give a Sequential model a float32 Input whatever the dtype); `input_shape` below
        # lets Sequential build its Input from this layer's shape and dtype instead.
        kwargs = dict(kwargs)
        shape = kwargs.pop("input_shape", None)
        batch_shape = kwargs.pop("batch_input_shape", None)
        if shape is not None:
            batch_shape = (None, *shape)
        if batch_shape is not None:
            hub.batch_input_shape = tuple(None if d is None else int(d) for d in batch_shape)
        if kwargs.get("dtype") is None:
            # A model that takes strings (or integers) gets a layer of that dtype, so that a
            # Sequential model without an Input, or fit() on NumPy data, feeds it unconverted.
            dtype = hub.input_dtype()
            if dtype is not None and not dtype.is_floating and _keras_knows(dtype.name):
                kwargs["dtype"] = dtype.name
        return kwargs

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The batch input shape given as ``input_shape=`` (``None`` first); Sequential models
        build their ``Input`` from it (with this layer's dtype)."""
        if self._hub.batch_input_shape is None:
            raise AttributeError("hub.KerasLayer was created without input_shape=")
        return self._hub.batch_input_shape

    def _add_hub_weights(self, trainable: list[tf.Variable], others: list[tf.Variable]) -> None:
        wrapped = [_wrap(v, trainable=True) for v in trainable]
        wrapped += [_wrap(v, trainable=False) for v in others]
        losses = self._hub.regularization_losses()
        if losses and trainable:
            wrapped[0].regularizer = _SavedModelRegularizer(losses)
        # Assigning a list of keras.Variables makes Keras track them as this layer's weights.
        self._hub_weights = wrapped
        # The trainable ones were created trainable so that Keras files them as trainable
        # weights (which `layer.trainable = ...` toggles later); a frozen layer's weights must
        # be frozen now too, or an enclosing model would still collect and train them.
        for variable in wrapped[: len(trainable)]:
            variable.trainable = self.trainable

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
        if self._hub.options.output_shape is not None:
            batch = tf.nest.flatten(input_shape, expand_composites=False)
            batch_size = batch[0] if batch and not isinstance(batch[0], tuple | list) else None
            return tf.nest.map_structure(
                lambda s: (batch_size, *s.as_list()),
                self._hub.output_shapes(),
            )
        dtype = self._hub.input_dtype() or self.compute_dtype
        spec = self.compute_output_spec(keras.KerasTensor(input_shape, dtype=dtype))
        return tf.nest.map_structure(lambda t: t.shape, spec)


# NumPy str arrays and lists of str reach a model with this layer, as with tf_keras.
keras_text_inputs.install(KerasLayer)


def _keras_knows(dtype: str) -> bool:
    try:
        keras.backend.standardize_dtype(dtype)
    except ValueError:
        return False
    return True


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
