"""``hub.KerasLayer`` for legacy Keras 2 (``tf_keras``), used when ``TF_USE_LEGACY_KERAS=1``.

Same arguments (:class:`tfhub.savedmodel.layer_common.LayerOptions`) and behaviour as the
Keras 3 layer in :mod:`tfhub.savedmodel.keras_layer`.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras

from tfhub.savedmodel.layer_common import HubLayerMixin, layer_docstring

__all__ = ["KerasLayer"]


@tf_keras.utils.register_keras_serializable(package="tfhub", name="KerasLayer")
class KerasLayer(HubLayerMixin, tf_keras.layers.Layer):
    __doc__ = layer_docstring("``tf_keras``", "tf_keras", "registered as they are")

    def _add_hub_weights(self, trainable: list[tf.Variable], others: list[tf.Variable]) -> None:
        # add_weight(getter=...) registers the existing variable itself as the weight.
        for variable, is_trainable in [(v, True) for v in trainable] + [(v, False) for v in others]:
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

    def call(self, inputs: Any, training: Any = None) -> Any:
        self._hub.check_trainable(self.trainable, len(self.trainable_weights))
        if training is None and self.trainable:
            training = tf_keras.backend.learning_phase()
        return self._hub.call(inputs, training=training, trainable=self.trainable)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self._hub.options.output_shape is None:
            return super().compute_output_shape(input_shape)
        batch = tf.TensorShape(tf.nest.flatten(input_shape)[0])[:1]
        return tf.nest.map_structure(batch.concatenate, self._hub.output_shapes())
