"""The check engine of the common signatures: entry points of a description, and their checks.

A description (:func:`tfhub.describe.describe`) has entry points: the traces of ``__call__``
and the ``serving_default`` signature of a TF2 SavedModel, the signatures of a TF1 Hub
module's inference graph variant. Each check takes one entry point and lists what differs from
a common signature (``problems``) and the sizes it read (``details``). Reading descriptions
needs no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tfhub.signatures.results import (
    BERT_ENCODER,
    BERT_INPUT_NAMES,
    BERT_PREPROCESSOR,
    IMAGE_CLASSIFICATION,
    IMAGE_FEATURE_VECTOR,
    TEXT_EMBEDDING,
)

__all__ = [
    "CHECKS",
    "TF1_SIGNATURES",
    "Entry",
    "Result",
    "family_of",
    "image_names",
    "module_types",
    "public_details",
    "run",
]

# TF1 Hub modules: the signatures where each common signature may live.
TF1_SIGNATURES = {
    IMAGE_FEATURE_VECTOR: ("default", "image_feature_vector", "image_classification"),
    TEXT_EMBEDDING: ("default",),
    BERT_ENCODER: ("default",),
    BERT_PREPROCESSOR: ("default",),
}
_TF1_IMAGE_NAMES = {
    "image_feature_vector": IMAGE_FEATURE_VECTOR,
    "image_classification": IMAGE_CLASSIFICATION,
}
_SERVING_DEFAULT = "serving_default"


@dataclass(frozen=True)
class Entry:
    """One way into the model: a (group of) ``__call__`` trace(s) or a signature."""

    where: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    kind: str  # "call", "signature" (TF2) or "tf1"
    signature: str = ""
    input_structure: str = "dict"
    output_structure: str = "dict"


def _entries(description: Mapping[str, Any]) -> list[Entry]:
    variants = list(description.get("variants") or [])
    if description.get("format") == "hub":
        # The inference variant (empty tag set) is the one consumers call.
        variant = next((v for v in variants if not v.get("tags")), variants[0] if variants else {})
        tags = variant.get("tags", [])
        return [
            Entry(f"signature {name!r} (tags {tags})", sig["inputs"], sig["outputs"], "tf1", name)
            for name, sig in sorted((variant.get("signatures") or {}).items())
        ]
    entries = [
        Entry(
            "__call__",
            trace["inputs"],
            trace["outputs"],
            "call",
            input_structure=trace.get("input_structure", "tensor"),
            output_structure=trace.get("output_structure", "tensor"),
        )
        for trace in description.get("call") or []
    ]
    for variant in variants:
        sig = (variant.get("signatures") or {}).get(_SERVING_DEFAULT)
        if sig is not None:
            where = f"signature {_SERVING_DEFAULT!r}"
            entries.append(
                Entry(where, sig["inputs"], sig["outputs"], "signature", _SERVING_DEFAULT)
            )
            break
    return entries


# -- checks of one entry -------------------------------------------------------------------------


def _shape_text(spec: Mapping[str, Any]) -> str:
    shape = spec.get("shape")
    return "[unknown rank]" if shape is None else str(shape)


def _spec_text(spec: Mapping[str, Any]) -> str:
    kind = "" if spec.get("kind", "dense") == "dense" else f" {spec['kind']}"
    return f"{spec['dtype']} {_shape_text(spec)}{kind}"


def _check_spec(
    what: str, spec: Mapping[str, Any], dtype: str, rank: int, expected: str
) -> list[str]:
    """Problems of a dense tensor that should be ``dtype`` with ``rank`` and any batch size."""
    shape = spec.get("shape")
    if (
        spec.get("kind", "dense") != "dense"
        or spec.get("dtype") != dtype
        or shape is None
        or len(shape) != rank
    ):
        return [f"{what} is {_spec_text(spec)}, expected {expected}"]
    if shape[0] is not None:
        return [f"{what} has a fixed batch size {shape[0]}, expected {expected} (batch: None)"]
    return []


def _only_input(entry: Entry, expected: str, *, name: str | None = None) -> tuple[Any, list[str]]:
    """The spec of the entry's single input (named ``name`` in TF1 signatures)."""
    if entry.kind == "call":
        if entry.input_structure != "tensor":
            return None, [
                f"__call__ takes a {entry.input_structure} ({', '.join(sorted(entry.inputs))}), "
                f"expected one tensor: {expected}"
            ]
        return next(iter(entry.inputs.values())), []
    keys = sorted(entry.inputs)
    if entry.kind == "tf1" and name is not None:
        if name not in entry.inputs:
            return None, [f"has no input {name!r} (inputs: {keys}), expected {name}: {expected}"]
        extra = [k for k in keys if k != name]
        if extra:
            return None, [f"has inputs {extra} besides {name!r}; expected only {name}"]
        return entry.inputs[name], []
    if len(keys) != 1:
        return None, [f"has {len(keys)} inputs {keys}, expected one: {expected}"]
    return entry.inputs[keys[0]], []


def _output(entry: Entry, expected: str) -> tuple[str, Any, list[str]]:
    """The (name, spec) of the entry's main output: its only tensor, or ``default``."""
    if entry.kind == "call" and entry.output_structure == "tensor":
        name = next(iter(entry.outputs))
        return name, entry.outputs[name], []
    if "default" in entry.outputs:
        return "default", entry.outputs["default"], []
    if entry.kind == "signature" and len(entry.outputs) == 1:
        name = next(iter(entry.outputs))
        return name, entry.outputs[name], []
    outputs = sorted(entry.outputs)
    return "", None, [f"has no output 'default' (outputs: {outputs}), expected default: {expected}"]


def _dim(spec: Mapping[str, Any], index: int) -> int | None:
    shape = spec.get("shape") or []
    return shape[index] if -len(shape) <= index < len(shape) else None


def _mismatch(what: str, actual: int | None, expected: int | None) -> list[str]:
    if expected is not None and actual is not None and actual != expected:
        return [f"{what} is {actual}, expected {expected}"]
    return []


@dataclass(frozen=True)
class Result:
    problems: list[str]
    details: dict[str, Any] = field(default_factory=dict)


def _check_image(entry: Entry, expected: Mapping[str, Any]) -> Result:
    images = "images: float32 [batch, height, width, 3]"
    spec, problems = _only_input(entry, images, name="images")
    details: dict[str, Any] = {}
    if spec is not None:
        what = "input 'images'" if entry.kind == "tf1" else "the input"
        found = _check_spec(what, spec, "float32", 4, "float32 [batch, height, width, 3]")
        problems += found
        if not found:
            if _dim(spec, 3) != 3:
                problems.append(f"{what} is {_spec_text(spec)}, expected 3 (RGB) channels")
            details["height"], details["width"] = _dim(spec, 1), _dim(spec, 2)
            size = expected.get("image_size")
            if size is not None:
                problems += _mismatch(f"{what}'s height", details["height"], size[0])
                problems += _mismatch(f"{what}'s width", details["width"], size[1])
    name, out, out_problems = _output(entry, "float32 [batch, N]")
    problems += out_problems
    if out is not None:
        found = _check_spec(f"output {name!r}", out, "float32", 2, "float32 [batch, N]")
        problems += found
        if not found:
            # Relabelled num_features or num_classes by _image_details().
            details["n"] = _dim(out, 1)
            label = expected.get("label", "N")
            problems += _mismatch(f"output {name!r}'s {label}", details["n"], expected.get("n"))
    return Result(problems, details)


def public_details(name: str, details: Mapping[str, Any]) -> dict[str, Any]:
    result = {k: v for k, v in details.items() if k != "n"}
    if "n" in details:
        result["num_classes" if name == IMAGE_CLASSIFICATION else "num_features"] = details["n"]
    return result


def _check_text_embedding(entry: Entry, expected: Mapping[str, Any]) -> Result:
    spec, problems = _only_input(entry, "string [batch]")
    if spec is not None:
        problems += _check_spec("the input", spec, "string", 1, "string [batch]")
    name, out, out_problems = _output(entry, "float32 [batch, dim]")
    problems += out_problems
    details: dict[str, Any] = {}
    if out is not None:
        found = _check_spec(f"output {name!r}", out, "float32", 2, "float32 [batch, dim]")
        problems += found
        if not found:
            details["dim"] = _dim(out, 1)
            problems += _mismatch(f"output {name!r}'s dim", details["dim"], expected.get("dim"))
    return Result(problems, details)


def _check_bert_tensors(
    specs: Mapping[str, Any], what: str, expected: Mapping[str, Any]
) -> tuple[list[str], int | None]:
    """Problems of the three int32 [batch, seq_length] tensors, and their seq_length."""
    problems = []
    missing = [n for n in BERT_INPUT_NAMES if n not in specs]
    if missing:
        problems.append(
            f"has no {what} {missing} ({what}s: {sorted(specs)}), expected int32 "
            "[batch, seq_length] input_word_ids, input_mask, input_type_ids"
        )
    lengths = set()
    for key in BERT_INPUT_NAMES:
        if key in specs:
            found = _check_spec(
                f"{what} {key!r}", specs[key], "int32", 2, "int32 [batch, seq_length]"
            )
            problems += found
            if not found:
                lengths.add(_dim(specs[key], 1))
    if len(lengths) > 1:
        problems.append(f"the {what}s have different seq_length: {sorted(lengths, key=str)}")
    seq_length = next(iter(lengths)) if len(lengths) == 1 else None
    problems += _mismatch(f"the {what}s' seq_length", seq_length, expected.get("seq_length"))
    return problems, seq_length


def _check_bert_encoder(entry: Entry, expected: Mapping[str, Any]) -> Result:
    problems = []
    if entry.kind == "call" and entry.input_structure != "dict":
        problems.append(
            f"__call__ takes a {entry.input_structure}, expected a dict of int32 [batch, "
            "seq_length] input_word_ids, input_mask, input_type_ids"
        )
    extra = sorted(set(entry.inputs) - set(BERT_INPUT_NAMES))
    if extra:
        problems.append(f"has inputs {extra} besides {list(BERT_INPUT_NAMES)}")
    found, seq_length = _check_bert_tensors(entry.inputs, "input", expected)
    problems += found
    if entry.kind == "call" and entry.output_structure != "dict":
        problems.append(
            f"__call__ returns a {entry.output_structure}, expected a dict with pooled_output, "
            "sequence_output and default"
        )
    outputs = entry.outputs
    expected_shapes = {
        "pooled_output": (2, "float32 [batch, width]"),
        "sequence_output": (3, "float32 [batch, seq_length, width]"),
        "default": (2, "float32 [batch, width] (= pooled_output)"),
    }
    good = {}
    for key, (rank, text) in expected_shapes.items():
        if key not in outputs:
            problems.append(f"has no output {key!r} (outputs: {sorted(outputs)}), expected {text}")
            continue
        spec_problems = _check_spec(f"output {key!r}", outputs[key], "float32", rank, text)
        problems += spec_problems
        if not spec_problems:
            good[key] = outputs[key]
    width = _dim(good["pooled_output"], 1) if "pooled_output" in good else None
    if "sequence_output" in good:
        problems += _mismatch("sequence_output's width", _dim(good["sequence_output"], 2), width)
        problems += _mismatch(
            "sequence_output's seq_length", _dim(good["sequence_output"], 1), seq_length
        )
    if "default" in good:
        problems += _mismatch("output 'default''s width", _dim(good["default"], 1), width)
    problems += _mismatch("pooled_output's width", width, expected.get("width"))
    return Result(problems, {"seq_length": seq_length, "width": width})


def _check_bert_preprocessor(entry: Entry, expected: Mapping[str, Any]) -> Result:
    spec, problems = _only_input(entry, "string [batch]")
    if spec is not None:
        problems += _check_spec("the input", spec, "string", 1, "string [batch]")
    if entry.kind == "call" and entry.output_structure != "dict":
        problems.append(
            f"__call__ returns a {entry.output_structure}, expected a dict of int32 "
            "input_word_ids, input_mask, input_type_ids"
        )
    found, seq_length = _check_bert_tensors(entry.outputs, "output", expected)
    return Result(problems + found, {"seq_length": seq_length})


# Whether an entry looks enough like a common signature that a failed check is worth a reason.


def _looks_like_image(entry: Entry) -> bool:
    return "images" in entry.inputs or any(
        s.get("shape") is not None and len(s["shape"]) == 4 for s in entry.inputs.values()
    )


def _string_input(entry: Entry) -> bool:
    return any(s.get("dtype") == "string" for s in entry.inputs.values())


def _looks_like_text_embedding(entry: Entry) -> bool:
    return _string_input(entry) and not set(BERT_INPUT_NAMES) & set(entry.outputs)


def _looks_like_bert_encoder(entry: Entry) -> bool:
    return bool(set(BERT_INPUT_NAMES) & set(entry.inputs))


def _looks_like_bert_preprocessor(entry: Entry) -> bool:
    return _string_input(entry) and bool(set(BERT_INPUT_NAMES) & set(entry.outputs))


Check = Callable[[Entry, Mapping[str, Any]], Result]
CHECKS: dict[str, tuple[Check, Callable[[Entry], bool]]] = {
    IMAGE_FEATURE_VECTOR: (_check_image, _looks_like_image),
    TEXT_EMBEDDING: (_check_text_embedding, _looks_like_text_embedding),
    BERT_ENCODER: (_check_bert_encoder, _looks_like_bert_encoder),
    BERT_PREPROCESSOR: (_check_bert_preprocessor, _looks_like_bert_preprocessor),
}


def family_of(name: str) -> str:
    return IMAGE_FEATURE_VECTOR if name == IMAGE_CLASSIFICATION else name


def _relevant(entry: Entry, family: str) -> bool:
    return entry.kind != "tf1" or entry.signature in TF1_SIGNATURES[family]


def run(
    description: Mapping[str, Any], family: str, expected: Mapping[str, Any]
) -> tuple[list[tuple[Entry, Result]], list[tuple[Entry, Result]]]:
    """(entries that implement ``family``, entries that look like it but fail its checks)."""
    check, _ = CHECKS[family]
    good, bad = [], []
    for entry in _entries(description):
        if not _relevant(entry, family):
            continue
        result = check(entry, expected)
        if not result.problems:
            good.append((entry, result))
        else:
            bad.append((entry, result))
    return good, bad


def module_types(module_type: str | Iterable[str] | None) -> set[str]:
    if module_type is None:
        return set()
    values = [module_type] if isinstance(module_type, str) else list(module_type)
    return {v.strip().lower() for v in values}


def image_names(good: list[tuple[Entry, Result]], hints: set[str]) -> tuple[list[str], str]:
    """Which of the two image signatures the matching entries implement, and a note."""
    names = {_TF1_IMAGE_NAMES[e.signature] for e, _ in good if e.signature in _TF1_IMAGE_NAMES}
    names |= hints & {IMAGE_FEATURE_VECTOR, IMAGE_CLASSIFICATION}
    if names:
        return [n for n in (IMAGE_FEATURE_VECTOR, IMAGE_CLASSIFICATION) if n in names], ""
    return [IMAGE_FEATURE_VECTOR], (
        "image-classification has the same interface (logits as the N outputs); the model's "
        "docs (module-type) tell which one it is"
    )
