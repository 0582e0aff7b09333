"""Descriptions of live objects the user already holds: a loaded SavedModel, a ModuleSpec.

These read Python objects (``tf.TypeSpec`` values of traced functions, ``ParsedTensorInfo``);
they never load anything. A model on disk or behind a URL is described from its protobufs
instead (:func:`tfhub.describe.describe_model_dir`).
"""

from __future__ import annotations

from typing import Any

from tfhub.describe.specs import (
    FORMAT_SAVED_MODEL,
    FORMAT_SAVED_MODEL_2,
    FORMAT_TF1_HUB,
    Spec,
    group_call_traces,
)

__all__ = ["describe_module_spec", "describe_saved_model_object", "spec_of"]


def spec_of(value: Any) -> Spec:
    """The :class:`Spec` of a ``tf.TypeSpec``, tensor or ``ParsedTensorInfo``."""
    import tensorflow as tf

    from tfhub.tf1.tensor_info import ParsedTensorInfo

    if isinstance(value, ParsedTensorInfo):  # a TF1 Hub module's signature
        kind = "sparse" if value.is_sparse else "ragged" if value.is_composite else "dense"
        shape = value.get_shape()
    else:
        if isinstance(value, tf.SparseTensorSpec | tf.SparseTensor):
            kind = "sparse"
        elif isinstance(value, tf.RaggedTensorSpec | tf.RaggedTensor):
            kind = "ragged"
        else:
            kind = "dense"
        shape = tf.TensorShape(value.shape)
    dims = None if shape.rank is None else tuple(shape.as_list())
    return Spec(value.dtype.name, dims, kind)


def _as_specs(value: Any) -> Any:
    """A nest of ``tf.TypeSpec`` values with each spec replaced by its :class:`Spec`."""
    if hasattr(value, "dtype") and hasattr(value, "shape"):
        return spec_of(value)
    if isinstance(value, dict):
        return {k: _as_specs(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_specs(v) for v in value]
    return value


def _io_json(infos: dict[str, Any]) -> dict[str, Any]:
    return {k: spec_of(v).to_json() for k, v in sorted(infos.items())}


def _concrete_signature(fn: Any) -> dict[str, Any]:
    _, kwargs = fn.structured_input_signature
    outputs = fn.structured_outputs
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    return {"inputs": _io_json(kwargs), "outputs": _io_json(outputs)}


def _describe_call(obj: Any) -> list[dict[str, Any]]:
    try:
        # A restored object's __call__ attribute is the restored tf.function itself.
        fn = obj.__call__
    except AttributeError:
        return []
    # A restored tf.function lists its traces; a live one with an input_signature has one.
    concrete = list(getattr(fn, "concrete_functions", None) or [])
    if not concrete and getattr(fn, "input_signature", None) is not None:
        concrete = [fn.get_concrete_function()]
    traces = []
    for cf in concrete:
        args, kwargs = cf.structured_input_signature
        traces.append((_as_specs(args), _as_specs(kwargs), _as_specs(cf.structured_outputs)))
    return group_call_traces(traces)


def describe_saved_model_object(obj: Any) -> dict[str, Any]:
    """Format, signatures, ``__call__`` traces and variables of a loaded TF2 SavedModel.

    Args:
        obj: what ``tf.saved_model.load`` (or ``hub.load`` for a TF2 model) returned.

    Returns:
        The part of :func:`~tfhub.tools.inspect.inspect_model`'s report that comes from it.
    """
    signatures = {
        name: _concrete_signature(fn)
        for name, fn in sorted((getattr(obj, "signatures", None) or {}).items())
    }
    variables = list(getattr(obj, "variables", []) or [])
    trainable = list(getattr(obj, "trainable_variables", []) or [])
    size = sum(int(v.shape.num_elements() or 0) * v.dtype.size for v in variables)
    reusable = callable(obj) and hasattr(obj, "trainable_variables")
    return {
        "format": FORMAT_SAVED_MODEL_2 if reusable else FORMAT_SAVED_MODEL,
        "variants": [{"tags": ["serve"], "signatures": signatures, "attachments": []}],
        "call": _describe_call(obj) if callable(obj) else [],
        "variables": {"count": len(variables), "bytes": size},
        "callable": callable(obj),
        "trainable_variables": len(trainable),
        "regularization_losses": len(list(getattr(obj, "regularization_losses", []) or [])),
        "fine_tunable": bool(trainable),
    }


def describe_module_spec(spec: Any) -> dict[str, Any]:
    """Format and signatures of every graph variant of a TF1 Hub :class:`~tfhub.ModuleSpec`."""
    variants = []
    for tags in spec.get_tags():
        signatures = {
            name: {
                "inputs": _io_json(spec.get_input_info_dict(name, tags)),
                "outputs": _io_json(spec.get_output_info_dict(name, tags)),
            }
            for name in spec.get_signature_names(tags)
        }
        variants.append(
            {
                "tags": sorted(tags),
                "signatures": signatures,
                "attachments": spec.attachment_keys(tags),
            }
        )
    return {"format": FORMAT_TF1_HUB, "variants": variants}
