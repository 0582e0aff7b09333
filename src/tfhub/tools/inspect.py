"""``tfhub inspect``: what a model is, extracted from the model itself (never typed by hand).

Loading the model is part of inspecting it, so this is also the publishing validation: a
directory that does not load as a TF2 SavedModel, a TF1 SavedModel or a TF1 Hub module
raises :class:`~tfhub.errors.NotAModelError`. The server runs it in a subprocess
(``python -m tfhub.tools.inspect DIR``) to keep TensorFlow out of its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from tfhub import protocol
from tfhub.errors import HubError, NotAModelError

__all__ = ["inspect_model"]

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


def _inspect_saved_model(path: str) -> dict[str, Any]:
    import tensorflow as tf

    try:
        obj = tf.saved_model.load(path)
    except (ValueError, RuntimeError, OSError, tf.errors.OpError) as exc:
        # TF1 SavedModels with several tag sets need tags; try each one.
        raise NotAModelError(f"{path} does not load as a SavedModel: {exc}", handle=path) from exc
    signatures = {name: _concrete_signature(fn) for name, fn in sorted(obj.signatures.items())}
    variables = list(getattr(obj, "variables", []) or [])
    trainable = list(getattr(obj, "trainable_variables", []) or [])
    size = sum(int(v.shape.num_elements() or 0) * v.dtype.size for v in variables)
    reusable = callable(obj) and hasattr(obj, "trainable_variables")
    return {
        "format": FORMAT_SAVED_MODEL_2 if reusable else FORMAT_SAVED_MODEL,
        "variants": [{"tags": ["serve"], "signatures": signatures, "attachments": []}],
        "variables": {"count": len(variables), "bytes": size},
        "callable": callable(obj),
        "trainable_variables": len(trainable),
        "regularization_losses": len(list(getattr(obj, "regularization_losses", []) or [])),
        "fine_tunable": bool(trainable),
    }


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
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfhub.tools.inspect")
    parser.add_argument("path")
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
        print(json.dumps(inspect_model(args.path)))
    except HubError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    except Exception as exc:  # a model that crashes TensorFlow is not a model we accept
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
