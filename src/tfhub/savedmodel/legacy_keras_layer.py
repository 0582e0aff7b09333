"""``hub.KerasLayer`` for legacy Keras 2 (``tf_keras``), used when ``TF_USE_LEGACY_KERAS=1``.

Same arguments and behaviour as the Keras 3 layer in :mod:`tfhub.savedmodel.keras_layer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf
import tf_keras

from tfhub.savedmodel.layer_common import HubLayerCore, HubLayerMixin

__all__ = ["KerasLayer"]


@tf_keras.utils.register_keras_serializable(package="tfhub", name="KerasLayer")
class KerasLayer(HubLayerMixin, tf_keras.layers.Layer):
    """Wraps a SavedModel (or one of its signatures) as a ``tf_keras`` layer.

    See :class:`tfhub.savedmodel.keras_layer.KerasLayer` for the arguments.
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
        self._resolved_object = self._hub.obj
        trainable_vars, other_vars = self._hub.variables()
        # add_weight(getter=...) registers the existing variable itself as the weight.
        for variable, is_trainable in [(v, True) for v in trainable_vars] + [
            (v, False) for v in other_vars
        ]:
            self.add_weight(
                name=variable.name.split(":")[0],
                shape=variable.shape,
                dtype=variable.dtype,
                trainable=is_trainable,
                experimental_autocast=False,
                getter=lambda *_, _v=variable, **__: _v,
            )
        for loss in self._hub.regularization_losses():
            self.add_loss(lambda _loss=loss: _loss() if self.trainable else 0.0)
        self.built = True

    def call(self, inputs: Any, training: Any = None) -> Any:
        self._hub.check_trainable(self.trainable, len(self.trainable_weights))
        if training is None and self.trainable:
            training = tf_keras.backend.learning_phase()
        return self._hub.call(inputs, training=training, trainable=self.trainable)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self._hub.output_shape is None:
            return super().compute_output_shape(input_shape)
        batch = tf.TensorShape(tf.nest.flatten(input_shape)[0])[:1]
        return tf.nest.map_structure(batch.concatenate, self._hub.output_shapes())
