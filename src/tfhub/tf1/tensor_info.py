"""Signature inputs and outputs of TF1 Hub modules: ``ParsedTensorInfo`` and conversions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from tfhub.errors import UsageError

__all__ = ["ParsedTensorInfo", "build_tensor_info", "parse_tensor_infos"]


class ParsedTensorInfo:
    """What a signature says about one input or output (``hub.Module.get_input_info_dict``)."""

    def __init__(self, dtype: tf.DType, shape: tf.TensorShape, kind: str, type_spec: Any) -> None:
        self._dtype = dtype
        self._shape = shape
        self._kind = kind  # "dense", "sparse" or "composite"
        self._type_spec = type_spec

    @property
    def dtype(self) -> tf.DType:
        return self._dtype

    def get_shape(self) -> tf.TensorShape:
        return self._shape

    @property
    def is_sparse(self) -> bool:
        return self._kind == "sparse"

    @property
    def is_composite(self) -> bool:
        return self._kind != "dense"

    @property
    def is_supported_type(self) -> bool:
        return True

    @property
    def type_spec(self) -> Any:
        return self._type_spec

    def __repr__(self) -> str:
        return (
            f"<hub.ParsedTensorInfo shape={self._shape} dtype={self._dtype.name} "
            f"is_sparse={self.is_sparse}>"
        )


def build_tensor_info(value: Any, *, where: str) -> Any:
    """A ``TensorInfo`` proto for a dense, sparse or ragged tensor of a signature."""
    if not isinstance(value, tf.Tensor | tf.SparseTensor | tf.RaggedTensor):
        raise UsageError(
            f"{where} is a {type(value).__name__}; signatures accept tf.Tensor, tf.SparseTensor "
            "and tf.RaggedTensor values only."
        )
    return tf.compat.v1.saved_model.utils.build_tensor_info(value)


def parse_tensor_infos(
    infos: Mapping[str, Any], values: Mapping[str, Any]
) -> dict[str, ParsedTensorInfo]:
    """``ParsedTensorInfo`` for each entry, using ``values`` (the tensors in some graph)."""
    result = {}
    for key, info in infos.items():
        value = values[key]
        kind = info.WhichOneof("encoding")
        kind = {"name": "dense", "coo_sparse": "sparse"}.get(kind, "composite")
        spec = getattr(value, "_type_spec", None)
        if isinstance(value, tf.Tensor):
            spec = tf.TensorSpec(value.shape, value.dtype)
        elif isinstance(value, tf.SparseTensor):
            spec = tf.SparseTensorSpec(value.shape, value.dtype)
        elif isinstance(value, tf.RaggedTensor):
            spec = tf.RaggedTensorSpec(
                value.shape, value.dtype, value.ragged_rank, value.row_splits.dtype
            )
        result[key] = ParsedTensorInfo(value.dtype, value.shape, kind, spec)
    return result
