"""Decoding the messages of a model's protobufs into :class:`~tfhub.describe.specs.Spec` nests.

``StructuredValue`` (the input signatures and outputs of a SavedModel's functions),
``TensorShapeProto``, ``DataType`` and ``TensorInfo`` (signature inputs and outputs) are read
field by field, with limits: a nest deeper than :data:`MAX_DEPTH`, a rank above
:data:`MAX_RANK`, a dimension below -1, an unknown dtype or a value of the wrong type raise
:class:`MalformedError`, which the reader of the file turns into a ``NotAModelError`` naming it.
Nothing is built from the messages but Python values: no TensorFlow decoder, no graph.
"""

from __future__ import annotations

from typing import Any

from tfhub.describe.specs import Spec

__all__ = [
    "MAX_DEPTH",
    "MAX_RANK",
    "MalformedError",
    "Opaque",
    "decode_structured",
    "dtype_name",
    "dtype_size",
    "shape_of",
    "tensor_info_spec",
]

MAX_DEPTH = 64  # TensorFlow's own nests are a few levels deep
MAX_RANK = 254  # TensorFlow's limit on the rank of a tensor


class MalformedError(ValueError):
    """A message holds something no model writer produces (internal; see the module doc)."""


class Opaque:
    """A value of a structure that is neither a tensor spec nor a plain Python value."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


class _Shape(tuple[int | None, ...]):
    """A decoded ``tensor_shape_value`` (``None`` rank is :data:`_UNKNOWN_RANK`)."""


_UNKNOWN_RANK = Opaque("unknown rank")


class _DType(str):
    """A decoded ``tensor_dtype_value``."""


def _dtype(enum: int) -> Any:
    import tensorflow as tf

    try:
        return tf.dtypes.as_dtype(int(enum)).base_dtype
    except TypeError:
        raise MalformedError(f"unknown dtype {enum}") from None


def dtype_name(enum: int) -> str:
    """``float32`` for ``DT_FLOAT`` (reference types give their base type)."""
    return str(_dtype(enum).name)


def dtype_size(enum: int) -> int:
    """Bytes per element (0 for variable-size types such as strings)."""
    return int(_dtype(enum).size)


def shape_of(proto: Any) -> tuple[int | None, ...] | None:
    """A ``TensorShapeProto`` as a tuple (``None`` for unknown dims), or ``None`` if unranked."""
    if proto.unknown_rank:
        return None
    if len(proto.dim) > MAX_RANK:
        raise MalformedError(f"a shape of rank {len(proto.dim)} (at most {MAX_RANK})")
    dims: list[int | None] = []
    for dim in proto.dim:
        if dim.size < -1:
            raise MalformedError(f"a dimension of size {dim.size}")
        dims.append(None if dim.size == -1 else int(dim.size))
    return tuple(dims)


def _type_spec(proto: Any, depth: int) -> Any:
    kind = type(proto).DESCRIPTOR.fields_by_name["type_spec_class"].enum_type
    known = kind.values_by_number.get(proto.type_spec_class)
    name = known.name if known is not None else "UNKNOWN"
    if name not in ("SPARSE_TENSOR_SPEC", "RAGGED_TENSOR_SPEC"):
        return Opaque(proto.type_spec_class_name or name)
    state = decode_structured(proto.type_state, depth + 1)
    # SparseTensorSpec: (shape, dtype); RaggedTensorSpec: (shape, dtype, ragged_rank, ...).
    if (
        not isinstance(state, tuple)
        or len(state) < 2
        or not (isinstance(state[0], _Shape) or state[0] is _UNKNOWN_RANK)
        or not isinstance(state[1], _DType)
    ):
        raise MalformedError(f"a {name} whose state is not (shape, dtype, ...)")
    shape = tuple(state[0]) if isinstance(state[0], _Shape) else None
    return Spec(str(state[1]), shape, "sparse" if name == "SPARSE_TENSOR_SPEC" else "ragged")


def decode_structured(value: Any, depth: int = 0) -> Any:
    """A ``StructuredValue`` as Python: :class:`Spec` leaves in tuples, lists and dicts.

    Raises:
        MalformedError: deeper than :data:`MAX_DEPTH`, or a value of the wrong type.
    """
    if depth > MAX_DEPTH:
        raise MalformedError(f"a structure nested deeper than {MAX_DEPTH} levels")
    kind = value.WhichOneof("kind")
    if kind is None or kind == "none_value":
        return None
    if kind in ("float64_value", "int64_value", "string_value", "bool_value"):
        return getattr(value, kind)
    if kind in ("list_value", "tuple_value"):
        items = [decode_structured(v, depth + 1) for v in getattr(value, kind).values]
        return items if kind == "list_value" else tuple(items)
    if kind == "dict_value":
        return {k: decode_structured(v, depth + 1) for k, v in value.dict_value.fields.items()}
    if kind == "named_tuple_value":  # a namedtuple is a tuple of its fields
        return tuple(decode_structured(p.value, depth + 1) for p in value.named_tuple_value.values)
    if kind == "tensor_shape_value":
        shape = shape_of(value.tensor_shape_value)
        return _UNKNOWN_RANK if shape is None else _Shape(shape)
    if kind == "tensor_dtype_value":
        return _DType(dtype_name(value.tensor_dtype_value))
    if kind in ("tensor_spec_value", "bounded_tensor_spec_value"):
        spec = getattr(value, kind)
        return Spec(dtype_name(spec.dtype), shape_of(spec.shape))
    if kind == "type_spec_value":
        return _type_spec(value.type_spec_value, depth)
    return Opaque(kind)  # a constant tensor value: not an input


def tensor_info_spec(info: Any) -> Spec:
    """The :class:`Spec` of a signature's ``TensorInfo`` (dense, COO sparse or composite)."""
    encoding = info.WhichOneof("encoding")
    if encoding == "composite_tensor":
        spec = _type_spec(info.composite_tensor.type_spec, 0)
        if not isinstance(spec, Spec):
            raise MalformedError(f"a signature tensor of type {spec!r}")
        return Spec(spec.dtype, spec.shape, "ragged")  # what hub.Module calls it
    if encoding not in ("name", "coo_sparse"):
        raise MalformedError("a signature tensor with no name")
    kind = "sparse" if encoding == "coo_sparse" else "dense"
    return Spec(dtype_name(info.dtype), shape_of(info.tensor_shape), kind)
