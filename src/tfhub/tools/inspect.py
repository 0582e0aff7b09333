"""``tfhub inspect``: what a model is, extracted from the model itself (never typed by hand).

Loading the model is part of inspecting it, so this is also the publishing validation: a
directory that does not load as a TF2 SavedModel, a TF1 SavedModel or a TF1 Hub module
raises :class:`~tfhub.errors.NotAModelError`. The server runs it in a subprocess
(``python -m tfhub.tools.inspect DIR``) to keep TensorFlow out of its own process.

For a TF2 SavedModel the report also describes the traces of ``__call__`` (key ``call``), and
for every model it names the common signatures the model implements (key
``common_signatures``, see :mod:`tfhub.signatures.common`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from tfhub import protocol
from tfhub.errors import HubError, NotAModelError

__all__ = [
    "describe_module_spec",
    "describe_saved_model_object",
    "format_text",
    "inspect_model",
]

FORMAT_TF1_HUB = "hub"  # the names of the tfhub.dev docs `format` field
FORMAT_SAVED_MODEL = "saved_model"
FORMAT_SAVED_MODEL_2 = "saved_model_2"


def _spec_json(value: Any) -> dict[str, Any]:
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
    return {
        "dtype": value.dtype.name,
        "shape": None if shape.rank is None else shape.as_list(),
        "kind": kind,
    }


def _files_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _checkpoint_stats(prefix: str) -> dict[str, int]:
    import numpy as np
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    names = [n for n in shapes if not n.startswith("_CHECKPOINTABLE") and n != "global_step"]
    size = sum(int(np.prod(shapes[n])) * dtypes[n].size for n in names)
    return {"count": len(names), "bytes": size}


def _inspect_tf1(path: str) -> dict[str, Any]:
    import tensorflow as tf

    from tfhub.tf1.module import Module
    from tfhub.tf1.spec import load_module_spec

    spec = load_module_spec(path, check_ops=False)  # reported below, not refused
    variants = []
    for tags in spec.get_tags():
        with tf.Graph().as_default():
            module = Module(spec, tags=tags, trainable=True)  # proves that it imports
            signatures = {}
            for name in module.get_signature_names():
                signatures[name] = {
                    "inputs": {
                        k: _spec_json(i) for k, i in module.get_input_info_dict(name).items()
                    },
                    "outputs": {
                        k: _spec_json(i) for k, i in module.get_output_info_dict(name).items()
                    },
                }
            trainable = len(tf.compat.v1.trainable_variables())
        attachments = spec.attachment_keys(tags)
        variants.append(
            {
                "tags": sorted(tags),
                "signatures": signatures,
                "attachments": attachments,
                "trainable_variables": trainable,
            }
        )
    prefix = os.path.join(path, "variables", "variables")
    variables = _checkpoint_stats(prefix) if os.path.exists(prefix + ".index") else {}
    return {
        "format": FORMAT_TF1_HUB,
        "variants": variants,
        "variables": variables,
        "fine_tunable": bool(variables),
    }


def _concrete_signature(fn: Any) -> dict[str, Any]:
    _, kwargs = fn.structured_input_signature
    outputs = fn.structured_outputs
    if not isinstance(outputs, dict):
        outputs = {"output_0": outputs}
    return {
        "inputs": {k: _spec_json(v) for k, v in sorted(kwargs.items())},
        "outputs": {k: _spec_json(v) for k, v in sorted(outputs.items())},
    }


def _is_spec(value: Any) -> bool:
    return hasattr(value, "dtype") and hasattr(value, "shape")


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    """Leaves of a nest of specs by their path ("a/0"); ``None`` and Python values are skipped."""
    if _is_spec(value):
        return {prefix: _spec_json(value)}
    items: Any
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return {}
    leaves: dict[str, Any] = {}
    for key, item in items:
        leaves.update(_flatten(item, f"{prefix}/{key}" if prefix else str(key)))
    return leaves


def _structure(value: Any, single_name: str) -> tuple[str, dict[str, Any]]:
    if _is_spec(value):
        return "tensor", {single_name: _spec_json(value)}
    kind = "dict" if isinstance(value, dict) else "list" if isinstance(value, list | tuple) else ""
    return kind or "other", _flatten(value, "")


def _describe_call(obj: Any) -> list[dict[str, Any]]:
    """The traces of a TF2 object's ``__call__``, grouped by inputs and outputs.

    Each entry: ``inputs``/``outputs`` (name → dtype, shape, kind; a single tensor is named
    ``inputs``/``output_0``), ``input_structure``/``output_structure`` (``tensor``, ``dict``,
    ``list``) and ``training``: the values of ``training`` it was traced for.
    """
    try:
        # A restored object's __call__ attribute is the restored tf.function itself.
        fn = obj.__call__
    except AttributeError:
        return []
    # A restored tf.function lists its traces; a live one with an input_signature has one.
    concrete = list(getattr(fn, "concrete_functions", None) or [])
    if not concrete and getattr(fn, "input_signature", None) is not None:
        concrete = [fn.get_concrete_function()]
    groups: dict[str, dict[str, Any]] = {}
    for cf in concrete:
        args, kwargs = cf.structured_input_signature
        if args:
            first, rest = args[0], args[1:]
        elif kwargs:
            name = "inputs" if "inputs" in kwargs else sorted(kwargs)[0]
            first, rest = kwargs[name], ()
        else:
            continue
        training = kwargs.get("training", rest[0] if rest else None)
        in_kind, inputs = _structure(first, "inputs")
        out_kind, outputs = _structure(cf.structured_outputs, "output_0")
        entry = {
            "inputs": inputs,
            "input_structure": in_kind,
            "outputs": outputs,
            "output_structure": out_kind,
        }
        group = groups.setdefault(json.dumps(entry, sort_keys=True), {**entry, "training": []})
        if isinstance(training, bool) and training not in group["training"]:
            group["training"] = sorted([*group["training"], training])
    return list(groups.values())


def describe_saved_model_object(obj: Any) -> dict[str, Any]:
    """Format, signatures, ``__call__`` traces and variables of a loaded TF2 SavedModel.

    Args:
        obj: what ``tf.saved_model.load`` (or ``hub.load`` for a TF2 model) returned.

    Returns:
        The part of :func:`inspect_model`'s report that comes from the object.
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
                "inputs": {
                    k: _spec_json(i)
                    for k, i in sorted(spec.get_input_info_dict(name, tags).items())
                },
                "outputs": {
                    k: _spec_json(i)
                    for k, i in sorted(spec.get_output_info_dict(name, tags).items())
                },
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


def _inspect_saved_model(path: str) -> dict[str, Any]:
    import tensorflow as tf

    try:
        obj = tf.saved_model.load(path)
    except (ValueError, RuntimeError, OSError, tf.errors.OpError) as exc:
        # TF1 SavedModels with several tag sets need tags; try each one.
        raise NotAModelError(f"{path} does not load as a SavedModel: {exc}", handle=path) from exc
    return describe_saved_model_object(obj)


def inspect_model(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Format, graph variants, signatures (names, dtypes, shapes), variables and size.

    Raises:
        NotAModelError: the directory holds no model, or it does not load.
    """
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, protocol.TF1_MODULE_PB)):
        result = _inspect_tf1(path)
    elif os.path.isfile(os.path.join(path, protocol.SAVED_MODEL_PB)) or os.path.isfile(
        os.path.join(path, protocol.SAVED_MODEL_PBTXT)
    ):
        result = _inspect_saved_model(path)
    else:
        raise NotAModelError(
            f"{path} holds neither saved_model.pb, saved_model.pbtxt nor tfhub_module.pb.",
            handle=path,
        )
    from tfhub.tools.unsafe_ops import UnscannableError, scan

    result["size_bytes"] = _files_size(path)
    try:
        result["unsafe_ops"] = [str(u) for u in scan(path)]
    except UnscannableError as exc:
        result["unsafe_ops"] = [f"not scanned: {exc}"]
    from tfhub.signatures.common import find_common_signatures

    result["common_signatures"] = find_common_signatures(result).to_json()
    return result


def _spec_text(spec: dict[str, Any]) -> str:
    return f"{spec['dtype']} {spec['shape']} {spec['kind']}"


def format_text(info: dict[str, Any]) -> str:
    """The report of :func:`inspect_model` for people (what ``tfhub inspect`` prints)."""
    lines = [
        f"format: {info['format']}",
        f"size: {info.get('size_bytes', 0)} bytes; variables: {info.get('variables', {})}",
    ]
    for variant in info["variants"]:
        lines.append(f"graph variant tags={variant['tags']}")
        for name, sig in sorted(variant["signatures"].items()):
            lines.append(f"  signature {name}")
            for direction in ("inputs", "outputs"):
                for key, spec in sorted(sig[direction].items()):
                    lines.append(f"    {direction[:-1]:6s} {key}: {_spec_text(spec)}")
        if variant.get("attachments"):
            lines.append(f"  attached messages: {', '.join(variant['attachments'])}")
    for trace in info.get("call", []):
        training = ", ".join(str(t) for t in trace["training"])
        lines.append(f"__call__ (training={training})" if training else "__call__")
        for direction in ("inputs", "outputs"):
            for key, spec in sorted(trace[direction].items()):
                lines.append(f"    {direction[:-1]:6s} {key}: {_spec_text(spec)}")
    lines.extend(_common_signature_lines(info))
    unsafe = info.get("unsafe_ops", [])
    lines.append(f"unsafe ops: {len(unsafe)}")
    lines.extend(f"  {u}" for u in unsafe)
    return "\n".join(lines)


def _common_signature_lines(info: dict[str, Any]) -> list[str]:
    from tfhub.signatures.common import CommonSignatures, find_common_signatures

    found = info.get("common_signatures")
    report = (
        CommonSignatures.from_json(found) if found is not None else find_common_signatures(info)
    )
    lines = [f"implements common signatures: {', '.join(report.implements) or 'none'}"]
    for name in report.implements:
        matches = [m for m in report.matches if m.name == name]
        lines.append(f"  {name} via {', '.join(m.where for m in matches)}")
        lines.extend(f"    note: {note}" for note in sorted({m.note for m in matches if m.note}))
    for miss in report.near_misses:
        lines.append(f"  almost {miss.name} via {miss.where}: {'; '.join(miss.problems)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfhub.tools.inspect")
    parser.add_argument("path")
    parser.add_argument("--text", action="store_true", help="print for people, not JSON")
    parser.add_argument(
        "--refuse-unsafe",
        action="store_true",
        help="scan first and refuse (without loading) a model with unsafe ops",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        if args.refuse_unsafe:
            from tfhub.tools.unsafe_ops import scan

            unsafe = scan(args.path)
            if unsafe:
                raise NotAModelError(
                    "the model contains ops that reach outside the model (files, Python, ...): "
                    + "; ".join(str(u) for u in unsafe[:10])
                    + ". The server refuses them unless started with TFHUB_ALLOW_UNSAFE_OPS=1."
                )
        info = inspect_model(args.path)
        print(format_text(info) if args.text else json.dumps(info))
    except HubError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    except Exception as exc:  # a model that crashes TensorFlow is not a model we accept
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
