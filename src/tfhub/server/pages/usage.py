"""The model page's usage examples, written from the record's signature description.

Each example is complete Python: the imports, a sample input of the shape and dtype the
model declares (a batch of 2; strings for text models, a batch of HxWx3 floats in [0, 1] for
image models), the call, and the printed output shape (as a comment when the record knows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Usage", "usage_examples"]

BATCH = 2
_SENTENCES = ('"The quick brown fox jumps over the lazy dog."', '"A second sentence."')
_IMAGE_SIDE = 224


@dataclass(frozen=True)
class Usage:
    """One example: a title, its code, and the output shapes it prints (or None if unknown)."""

    title: str
    code: str
    output: str | None


def _dims(spec: dict[str, Any], image: bool) -> list[int] | None:
    shape = spec.get("shape")
    if shape is None:
        return None
    dims = []
    for i, dim in enumerate(shape):
        if dim is not None:
            dims.append(int(dim))
        elif i == 0:
            dims.append(BATCH)
        else:
            dims.append(_IMAGE_SIDE if image and len(shape) == 4 and i in (1, 2) else 8)
    return dims


def _is_image(spec: dict[str, Any], module_types: list[str]) -> bool:
    shape = spec.get("shape")
    floats = str(spec.get("dtype", "")).startswith("float")
    if shape is not None and len(shape) == 4 and shape[-1] == 3 and floats:
        return True
    return floats and any(t.startswith("image-") for t in module_types) and shape is None


def sample_input(spec: dict[str, Any], module_types: list[str]) -> str:
    """A TensorFlow expression for an input of ``spec``'s dtype and shape (batch of 2)."""
    dtype = str(spec.get("dtype", "float32"))
    image = _is_image(spec, module_types)
    dims = _dims(spec, image)
    if dims is None:  # any shape: the model said nothing more
        dims = [BATCH, _IMAGE_SIDE, _IMAGE_SIDE, 3] if image else [BATCH, 3]
    shape = "[" + ", ".join(str(d) for d in dims) + "]"
    if dtype == "string":
        if dims == [BATCH]:
            return "tf.constant([" + ", ".join(_SENTENCES) + "])"
        if not dims:
            return f"tf.constant({_SENTENCES[0]})"
        return f'tf.fill({shape}, "some text")'
    if dtype.startswith("float"):
        cast = "" if dtype == "float32" else f", dtype=tf.{dtype}"
        note = "  # a batch of 2 RGB images, values in [0, 1]" if image else ""
        return f"tf.random.uniform({shape}{cast}){note}"
    if dtype.startswith(("int", "uint")):
        return f"tf.ones({shape}, tf.{dtype})"
    return f"tf.zeros({shape}, tf.{dtype})"


def _shape_text(spec: dict[str, Any]) -> str | None:
    shape = spec.get("shape")
    if shape is None:
        return None
    dims = [BATCH if i == 0 and d is None else d for i, d in enumerate(shape)]
    if any(d is None for d in dims):
        return None
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def _outputs(outputs: dict[str, Any], as_dict: bool) -> tuple[str, str | None]:
    """The lines that print the output shapes, and what they print (None if not known)."""
    if not as_dict and len(outputs) == 1:
        shape = _shape_text(next(iter(outputs.values())))
        comment = f"  # {shape}" if shape else "  # the shape depends on the input"
        return f"print(outputs.shape){comment}", shape
    shapes = {name: _shape_text(spec) for name, spec in sorted(outputs.items())}
    known = None if None in shapes.values() else "; ".join(f"{k} {v}" for k, v in shapes.items())
    comment = f"  # {known}" if known else ""
    loop = "for name, value in sorted(outputs.items()):\n"
    return f"{loop}    print(name, value.shape){comment}", known


def _inputs(inputs: dict[str, Any], as_dict: bool, types: list[str], indent: str = "") -> str:
    if not as_dict and len(inputs) == 1:
        return f"{indent}inputs = {sample_input(next(iter(inputs.values())), types)}\n"
    lines = [f"{indent}inputs = {{"]
    for name, spec in sorted(inputs.items()):
        lines.append(f'{indent}    "{name}": {sample_input(spec, types)},')
    return "\n".join([*lines, f"{indent}}}"]) + "\n"


def _keras_layer(url: str, call: dict[str, Any], types: list[str]) -> Usage:
    as_dict = call.get("input_structure") != "tensor"
    printing, output = _outputs(call.get("outputs", {}), call.get("output_structure") != "tensor")
    code = (
        "import tensorflow as tf\nimport tfhub as hub\n\n"
        f'layer = hub.KerasLayer("{url}")\n'
        + _inputs(call.get("inputs", {}), as_dict, types)
        + f"outputs = layer(inputs)\n{printing}\n"
    )
    return Usage("TF2 SavedModel: hub.KerasLayer", code, output)


def _keras_model(url: str, spec: dict[str, Any]) -> Usage | None:
    shape = spec.get("shape")
    if shape is None:
        return None
    inner = ", ".join("None" if d is None else str(d) for d in shape[1:])
    inner = f"({inner},)" if len(shape) == 2 else f"({inner})"
    code = (
        "import keras\nimport tfhub as hub\n\n"
        "model = keras.Sequential([\n"
        f'    keras.Input(shape={inner}, dtype="{spec.get("dtype", "float32")}"),\n'
        f'    hub.KerasLayer("{url}"),\n'
        "])\nmodel.summary()\n"
    )
    return Usage("Keras: in a keras.Sequential model", code, None)


def _pick_signature(variants: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    for variant in sorted(variants, key=lambda v: v.get("tags") not in (["serve"], [])):
        signatures = variant.get("signatures") or {}
        for name in ("serving_default", "default", *sorted(signatures)):
            if name in signatures:
                return name, signatures[name]
    return None


def _hub_load(url: str, name: str, sig: dict[str, Any], types: list[str]) -> Usage:
    printing, output = _outputs(sig.get("outputs", {}), True)
    args = ", ".join(
        f"{key}={sample_input(spec, types)}".split("  #")[0]
        for key, spec in sorted(sig.get("inputs", {}).items())
    )
    code = (
        "import tensorflow as tf\nimport tfhub as hub\n\n"
        f'model = hub.load("{url}")\n'
        f'outputs = model.signatures["{name}"]({args})\n{printing}\n'
    )
    return Usage(f"SavedModel: hub.load, signature {name}", code, output)


def _hub_module(url: str, name: str, sig: dict[str, Any], types: list[str]) -> Usage:
    inputs = sig.get("inputs", {})
    single = list(inputs) == ["default"]
    printing, output = _outputs(sig.get("outputs", {}), True)
    body = (
        f'    module = hub.Module("{url}")\n'
        + _inputs(inputs, not single, types, indent="    ")
        + f'    outputs = module(inputs, signature="{name}", as_dict=True)\n'
        "    with tf.compat.v1.Session() as session:\n"
        "        session.run([tf.compat.v1.global_variables_initializer(),\n"
        "                     tf.compat.v1.tables_initializer()])\n"
        "        outputs = session.run(outputs)\n"
    )
    printed = "\n".join("    " + line for line in printing.splitlines())
    code = (
        "import tensorflow as tf\nimport tfhub as hub\n\n"
        "with tf.Graph().as_default():  # TF1 Hub format: a graph and a session\n"
        f"{body}{printed}\n"
    )
    return Usage("TF1 Hub format: hub.Module", code, output)


def usage_examples(record: dict[str, Any], url: str) -> list[Usage]:
    """The examples for ``record`` served at ``url``, the most direct one first."""
    info = record.get("info") or {}
    meta = (record.get("docs") or {}).get("metadata", {})
    types = [*meta.get("module-type", []), *meta.get("task", [])]
    signature = _pick_signature(info.get("variants") or [])
    if record.get("format") == "hub":
        if signature is None:
            return [Usage("TF1 Hub format: hub.Module", _bare("Module", url), None)]
        return [_hub_module(url, *signature, types)]
    examples = []
    calls = [c for c in info.get("call") or [] if c.get("input_structure") in ("tensor", "dict")]
    if calls:
        examples.append(_keras_layer(url, calls[0], types))
        if calls[0].get("input_structure") == "tensor":
            keras_model = _keras_model(url, next(iter(calls[0].get("inputs", {}).values()), {}))
            if keras_model is not None:
                examples.append(keras_model)
    if signature is not None:
        examples.append(_hub_load(url, *signature, types))
    return examples or [Usage("SavedModel: hub.load", _bare("load", url), None)]


def _bare(function: str, url: str) -> str:
    return f'import tfhub as hub\n\nmodel = hub.{function}("{url}")\n'
