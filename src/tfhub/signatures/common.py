"""The common signatures of TF Hub: which ones a model implements, and validators.

A model that implements a common signature can replace another one for the same task. The
signatures, as TF Hub documented them:

``image-feature-vector`` and ``image-classification``
    float32 images ``[batch, height, width, 3]`` with values in [0, 1] → float32
    ``[batch, N]``: N features, or N logits. A TF2 SavedModel takes the images tensor in
    ``__call__`` (and ``serving_default``); a TF1 Hub module in the input ``images`` of its
    ``default`` signature, output ``default`` (optionally also as signatures
    ``image_feature_vector`` / ``image_classification``). Both have the same interface: a
    model's docs (``module-type``) or its TF1 signature names tell them apart.
``text-embedding``
    string sentences ``[batch]`` → float32 ``[batch, dim]`` (output ``default``).
``bert-encoder``
    a dict of int32 ``[batch, seq_length]`` tensors ``input_word_ids``, ``input_mask``,
    ``input_type_ids`` → a dict with float32 ``pooled_output`` ``[batch, width]``,
    ``sequence_output`` ``[batch, seq_length, width]`` and ``default`` (= ``pooled_output``).
``bert-preprocessor``
    string sentences ``[batch]`` → the dict of three int32 tensors a BERT encoder takes.

Everything here reads the description :func:`tfhub.tools.inspect.inspect_model` produces
(signatures and ``__call__`` traces); the functions also take a path, a loaded object or a
:class:`~tfhub.ModuleSpec` and describe it first. Reading a description imports no TensorFlow,
so the hub server uses it for its model pages. Checks are of names, dtypes and shapes; that the
values are in the documented range (images in [0, 1]) is the publisher's promise.

Example:
    >>> find_common_signatures("/tmp/my_text_embedding").implements
    ['text-embedding']
    >>> validate_text_embedding("/tmp/my_text_embedding", dim=128)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tfhub.errors import HubError, UsageError

__all__ = [
    "BERT_ENCODER",
    "BERT_INPUT_NAMES",
    "BERT_PREPROCESSOR",
    "COMMON_SIGNATURES",
    "IMAGE_CLASSIFICATION",
    "IMAGE_FEATURE_VECTOR",
    "TEXT_EMBEDDING",
    "CommonSignatureError",
    "CommonSignatureMatch",
    "CommonSignatureMiss",
    "CommonSignatures",
    "describe",
    "find_common_signatures",
    "validate_bert_encoder",
    "validate_bert_preprocessor",
    "validate_common_signature",
    "validate_image_classification",
    "validate_image_feature_vector",
    "validate_text_embedding",
]

IMAGE_FEATURE_VECTOR = "image-feature-vector"
IMAGE_CLASSIFICATION = "image-classification"
TEXT_EMBEDDING = "text-embedding"
BERT_ENCODER = "bert-encoder"
BERT_PREPROCESSOR = "bert-preprocessor"
COMMON_SIGNATURES = (
    IMAGE_FEATURE_VECTOR,
    IMAGE_CLASSIFICATION,
    TEXT_EMBEDDING,
    BERT_ENCODER,
    BERT_PREPROCESSOR,
)
BERT_INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")

_EXPECTED = {
    IMAGE_FEATURE_VECTOR: "float32 images [batch, height, width, 3] → float32 [batch, N]",
    IMAGE_CLASSIFICATION: "float32 images [batch, height, width, 3] → float32 logits [batch, N]",
    TEXT_EMBEDDING: "string [batch] → float32 [batch, dim]",
    BERT_ENCODER: (
        "dict of int32 [batch, seq_length] input_word_ids, input_mask, input_type_ids → dict of "
        "float32 pooled_output [batch, width], sequence_output [batch, seq_length, width], "
        "default"
    ),
    BERT_PREPROCESSOR: (
        "string [batch] → dict of int32 [batch, seq_length] input_word_ids, input_mask, "
        "input_type_ids"
    ),
}

# TF1 Hub modules: the signatures where each common signature may live.
_TF1_SIGNATURES = {
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


class CommonSignatureError(HubError, ValueError):
    """A model does not implement the common signature it is said to implement.

    Attributes:
        signature: the common signature, e.g. ``"text-embedding"``.
        problems: what is wrong, one line per entry point (``__call__``, a signature).
    """

    def __init__(
        self,
        message: str,
        *,
        signature: str,
        problems: Iterable[str] = (),
        handle: str | None = None,
    ) -> None:
        super().__init__(message, handle=handle)
        self.signature = signature
        self.problems = list(problems)


@dataclass(frozen=True)
class CommonSignatureMatch:
    """A common signature the model implements.

    Attributes:
        name: e.g. ``"image-feature-vector"``.
        where: the entry point that implements it: ``"__call__"``, ``"signature
            'serving_default'"``, ``"signature 'default' (tags [])"``.
        details: sizes read from the shapes: ``height``/``width``/``num_features`` or
            ``num_classes``, ``dim``, ``seq_length``/``width`` (``None`` when not fixed).
        note: a caveat, e.g. that two common signatures share the interface.
    """

    name: str
    where: str
    details: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class CommonSignatureMiss:
    """An entry point that looks like a common signature but does not follow it.

    Attributes:
        name: the common signature it almost implements.
        where: the entry point.
        problems: what differs from the common signature.
    """

    name: str
    where: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class CommonSignatures:
    """What :func:`find_common_signatures` found."""

    matches: tuple[CommonSignatureMatch, ...] = ()
    near_misses: tuple[CommonSignatureMiss, ...] = ()

    @property
    def implements(self) -> list[str]:
        """The names of the implemented common signatures, in ``COMMON_SIGNATURES`` order."""
        names = {m.name for m in self.matches}
        return [n for n in COMMON_SIGNATURES if n in names]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict (the ``common_signatures`` key of ``tfhub inspect``)."""
        return {
            "implements": self.implements,
            "matches": [
                {"name": m.name, "where": m.where, "details": dict(m.details), "note": m.note}
                for m in self.matches
            ],
            "near_misses": [
                {"name": m.name, "where": m.where, "problems": list(m.problems)}
                for m in self.near_misses
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CommonSignatures:
        """The inverse of :meth:`to_json`."""
        return cls(
            matches=tuple(
                CommonSignatureMatch(
                    m["name"], m["where"], dict(m.get("details") or {}), m.get("note", "")
                )
                for m in data.get("matches", [])
            ),
            near_misses=tuple(
                CommonSignatureMiss(m["name"], m["where"], tuple(m["problems"]))
                for m in data.get("near_misses", [])
            ),
        )


# -- describing a model ------------------------------------------------------------------------


def describe(model: Any) -> dict[str, Any]:
    """The description of ``model`` (the structure of :func:`~tfhub.tools.inspect.inspect_model`).

    Args:
        model: a description (returned as is), a path or URL, an object from ``hub.load`` (TF2
            or TF1 Hub format), a ``hub.Module`` or a :class:`~tfhub.ModuleSpec`.

    Returns:
        A dict with ``format``, ``variants`` (their ``signatures``) and, for TF2, ``call``.

    Raises:
        UsageError: ``model`` is none of these.
        Any error of :func:`tfhub.resolve` or :func:`~tfhub.tools.inspect.inspect_model`.
    """
    if isinstance(model, Mapping):
        if "format" not in model or "variants" not in model:
            raise UsageError(
                "A model description needs 'format' and 'variants' (as `tfhub inspect --json` "
                f"prints); got keys {sorted(model)}."
            )
        return dict(model)
    if isinstance(model, str | os.PathLike):
        from tfhub.handles.resolve import resolve
        from tfhub.tools.inspect import inspect_model

        return inspect_model(resolve(os.fspath(model)))
    from tfhub.tools import inspect as inspect_tool

    spec = _module_spec_of(model)
    if spec is not None:
        return inspect_tool.describe_module_spec(spec)
    if hasattr(model, "signatures"):
        return inspect_tool.describe_saved_model_object(model)
    raise UsageError(
        "Expected a model description, a path or URL, a loaded SavedModel, a hub.Module or a "
        f"hub.ModuleSpec; got {type(model).__name__}."
    )


def _module_spec_of(model: Any) -> Any:
    from tfhub.tf1.spec import ModuleSpec

    if isinstance(model, ModuleSpec):
        return model
    # hub.Module and the TF1 object of hub.load keep the spec they were made from.
    spec = getattr(model, "_spec", None)
    return spec if isinstance(spec, ModuleSpec) else None


@dataclass(frozen=True)
class _Entry:
    """One way into the model: a (group of) ``__call__`` trace(s) or a signature."""

    where: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    kind: str  # "call", "signature" (TF2) or "tf1"
    signature: str = ""
    input_structure: str = "dict"
    output_structure: str = "dict"


def _entries(description: Mapping[str, Any]) -> list[_Entry]:
    variants = list(description.get("variants") or [])
    if description.get("format") == "hub":
        # The inference variant (empty tag set) is the one consumers call.
        variant = next((v for v in variants if not v.get("tags")), variants[0] if variants else {})
        tags = variant.get("tags", [])
        return [
            _Entry(f"signature {name!r} (tags {tags})", sig["inputs"], sig["outputs"], "tf1", name)
            for name, sig in sorted((variant.get("signatures") or {}).items())
        ]
    entries = [
        _Entry(
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
                _Entry(where, sig["inputs"], sig["outputs"], "signature", _SERVING_DEFAULT)
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


def _only_input(entry: _Entry, expected: str, *, name: str | None = None) -> tuple[Any, list[str]]:
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


def _output(entry: _Entry, expected: str) -> tuple[str, Any, list[str]]:
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
class _Result:
    problems: list[str]
    details: dict[str, Any] = field(default_factory=dict)


def _check_image(entry: _Entry, expected: Mapping[str, Any]) -> _Result:
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
    return _Result(problems, details)


def _details(name: str, details: Mapping[str, Any]) -> dict[str, Any]:
    result = {k: v for k, v in details.items() if k != "n"}
    if "n" in details:
        result["num_classes" if name == IMAGE_CLASSIFICATION else "num_features"] = details["n"]
    return result


def _check_text_embedding(entry: _Entry, expected: Mapping[str, Any]) -> _Result:
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
    return _Result(problems, details)


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


def _check_bert_encoder(entry: _Entry, expected: Mapping[str, Any]) -> _Result:
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
    return _Result(problems, {"seq_length": seq_length, "width": width})


def _check_bert_preprocessor(entry: _Entry, expected: Mapping[str, Any]) -> _Result:
    spec, problems = _only_input(entry, "string [batch]")
    if spec is not None:
        problems += _check_spec("the input", spec, "string", 1, "string [batch]")
    if entry.kind == "call" and entry.output_structure != "dict":
        problems.append(
            f"__call__ returns a {entry.output_structure}, expected a dict of int32 "
            "input_word_ids, input_mask, input_type_ids"
        )
    found, seq_length = _check_bert_tensors(entry.outputs, "output", expected)
    return _Result(problems + found, {"seq_length": seq_length})


# Whether an entry looks enough like a common signature that a failed check is worth a reason.


def _looks_like_image(entry: _Entry) -> bool:
    return "images" in entry.inputs or any(
        s.get("shape") is not None and len(s["shape"]) == 4 for s in entry.inputs.values()
    )


def _string_input(entry: _Entry) -> bool:
    return any(s.get("dtype") == "string" for s in entry.inputs.values())


def _looks_like_text_embedding(entry: _Entry) -> bool:
    return _string_input(entry) and not set(BERT_INPUT_NAMES) & set(entry.outputs)


def _looks_like_bert_encoder(entry: _Entry) -> bool:
    return bool(set(BERT_INPUT_NAMES) & set(entry.inputs))


def _looks_like_bert_preprocessor(entry: _Entry) -> bool:
    return _string_input(entry) and bool(set(BERT_INPUT_NAMES) & set(entry.outputs))


_Check = Callable[[_Entry, Mapping[str, Any]], _Result]
_CHECKS: dict[str, tuple[_Check, Callable[[_Entry], bool]]] = {
    IMAGE_FEATURE_VECTOR: (_check_image, _looks_like_image),
    TEXT_EMBEDDING: (_check_text_embedding, _looks_like_text_embedding),
    BERT_ENCODER: (_check_bert_encoder, _looks_like_bert_encoder),
    BERT_PREPROCESSOR: (_check_bert_preprocessor, _looks_like_bert_preprocessor),
}


def _family(name: str) -> str:
    return IMAGE_FEATURE_VECTOR if name == IMAGE_CLASSIFICATION else name


def _relevant(entry: _Entry, family: str) -> bool:
    return entry.kind != "tf1" or entry.signature in _TF1_SIGNATURES[family]


def _run(
    description: Mapping[str, Any], family: str, expected: Mapping[str, Any]
) -> tuple[list[tuple[_Entry, _Result]], list[tuple[_Entry, _Result]]]:
    """(entries that implement ``family``, entries that look like it but fail its checks)."""
    check, _ = _CHECKS[family]
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


def _module_types(module_type: str | Iterable[str] | None) -> set[str]:
    if module_type is None:
        return set()
    values = [module_type] if isinstance(module_type, str) else list(module_type)
    return {v.strip().lower() for v in values}


def _image_names(good: list[tuple[_Entry, _Result]], hints: set[str]) -> tuple[list[str], str]:
    """Which of the two image signatures the matching entries implement, and a note."""
    names = {_TF1_IMAGE_NAMES[e.signature] for e, _ in good if e.signature in _TF1_IMAGE_NAMES}
    names |= hints & {IMAGE_FEATURE_VECTOR, IMAGE_CLASSIFICATION}
    if names:
        return [n for n in (IMAGE_FEATURE_VECTOR, IMAGE_CLASSIFICATION) if n in names], ""
    return [IMAGE_FEATURE_VECTOR], (
        "image-classification has the same interface (logits as the N outputs); the model's "
        "docs (module-type) tell which one it is"
    )


# -- public API ----------------------------------------------------------------------------------


def find_common_signatures(
    model: Any, *, module_type: str | Iterable[str] | None = None
) -> CommonSignatures:
    """Which common signatures ``model`` implements, and which ones it almost implements.

    Args:
        model: a description from ``tfhub inspect --json`` / ``inspect_model``, a path or URL,
            a loaded object, a ``hub.Module`` or a ``hub.ModuleSpec`` (see :func:`describe`).
        module_type: the ``module-type`` of the model's docs (one or several), which tells an
            image classifier from an image feature vector; other values are ignored.

    Returns:
        The matches (name and entry point) and the near misses (entry points that look like a
        common signature, with the reasons they do not implement it).

    Raises:
        UsageError: ``model`` cannot be described.

    Example:
        >>> find_common_signatures(hub.load(path)).implements
        ['text-embedding']
    """
    description = describe(model)
    hints = _module_types(module_type)
    matches: list[CommonSignatureMatch] = []
    misses: list[CommonSignatureMiss] = []
    for family, (_, looks_like) in _CHECKS.items():
        good, bad = _run(description, family, {})
        if good:
            names, note = (
                _image_names(good, hints) if family == IMAGE_FEATURE_VECTOR else ([family], "")
            )
            for name in names:
                matches.extend(
                    CommonSignatureMatch(name, entry.where, _details(name, result.details), note)
                    for entry, result in good
                )
            continue
        misses.extend(
            CommonSignatureMiss(family, entry.where, tuple(result.problems))
            for entry, result in bad
            if looks_like(entry)
        )
    return CommonSignatures(tuple(matches), tuple(misses))


def _validate(model: Any, name: str, expected: Mapping[str, Any]) -> CommonSignatureMatch:
    description = describe(model)
    family = _family(name)
    good, bad = _run(description, family, expected)
    if good:
        entry, result = good[0]
        return CommonSignatureMatch(name, entry.where, _details(name, result.details))
    handle = os.fspath(model) if isinstance(model, str | os.PathLike) else None
    label = repr(handle) if handle else "The model"
    if bad:
        problems = [f"{entry.where}: {p}" for entry, result in bad for p in result.problems]
    elif description.get("format") == "hub":
        problems = [
            f"it has none of the signatures {list(_TF1_SIGNATURES[family])} in its inference "
            "graph variant"
        ]
    else:
        problems = [
            "it has neither a __call__ with traced inputs nor a 'serving_default' signature"
        ]
    raise CommonSignatureError(
        f"{label} does not implement the {name} common signature ({_EXPECTED[name]}):\n  "
        + "\n  ".join(problems),
        signature=name,
        problems=problems,
        handle=handle,
    )


def validate_image_feature_vector(
    model: Any, *, image_size: tuple[int, int] | None = None, num_features: int | None = None
) -> CommonSignatureMatch:
    """Checks that ``model`` implements the image feature vector common signature.

    Args:
        model: see :func:`describe`.
        image_size: ``(height, width)`` the input must have, where the model fixes them.
        num_features: the size of the feature vector, where the model fixes it.

    Returns:
        Where the model implements it, and its sizes.

    Raises:
        CommonSignatureError: it does not; the message names each entry point, input or output
            and what was expected.
    """
    expected = {"image_size": image_size, "n": num_features, "label": "num_features"}
    return _validate(model, IMAGE_FEATURE_VECTOR, expected)


def validate_image_classification(
    model: Any, *, image_size: tuple[int, int] | None = None, num_classes: int | None = None
) -> CommonSignatureMatch:
    """Checks that ``model`` implements the image classification common signature (logits).

    The shapes are those of the image feature vector; that the outputs are logits is the
    publisher's promise.

    Args:
        model: see :func:`describe`.
        image_size: ``(height, width)`` the input must have, where the model fixes them.
        num_classes: the number of logits, where the model fixes it.

    Returns:
        Where the model implements it, and its sizes.

    Raises:
        CommonSignatureError: it does not.
    """
    expected = {"image_size": image_size, "n": num_classes, "label": "num_classes"}
    return _validate(model, IMAGE_CLASSIFICATION, expected)


def validate_text_embedding(model: Any, *, dim: int | None = None) -> CommonSignatureMatch:
    """Checks that ``model`` implements the text embedding common signature.

    Args:
        model: see :func:`describe`.
        dim: the embedding size, where the model fixes it.

    Returns:
        Where the model implements it, and its ``dim``.

    Raises:
        CommonSignatureError: it does not.
    """
    return _validate(model, TEXT_EMBEDDING, {"dim": dim})


def validate_bert_encoder(
    model: Any, *, width: int | None = None, seq_length: int | None = None
) -> CommonSignatureMatch:
    """Checks that ``model`` implements the BERT encoder common signature.

    Args:
        model: see :func:`describe`.
        width: the hidden size (of ``pooled_output``), where the model fixes it.
        seq_length: the sequence length of the inputs, where the model fixes it.

    Returns:
        Where the model implements it, its ``width`` and ``seq_length``.

    Raises:
        CommonSignatureError: it does not.
    """
    return _validate(model, BERT_ENCODER, {"width": width, "seq_length": seq_length})


def validate_bert_preprocessor(
    model: Any, *, seq_length: int | None = None
) -> CommonSignatureMatch:
    """Checks that ``model`` implements the BERT preprocessor common signature.

    Args:
        model: see :func:`describe`.
        seq_length: the sequence length of the outputs, where the model fixes it.

    Returns:
        Where the model implements it, and its ``seq_length``.

    Raises:
        CommonSignatureError: it does not.
    """
    return _validate(model, BERT_PREPROCESSOR, {"seq_length": seq_length})


_VALIDATORS: dict[str, Callable[..., CommonSignatureMatch]] = {
    IMAGE_FEATURE_VECTOR: validate_image_feature_vector,
    IMAGE_CLASSIFICATION: validate_image_classification,
    TEXT_EMBEDDING: validate_text_embedding,
    BERT_ENCODER: validate_bert_encoder,
    BERT_PREPROCESSOR: validate_bert_preprocessor,
}


def validate_common_signature(model: Any, name: str, **expected: Any) -> CommonSignatureMatch:
    """Checks that ``model`` implements the common signature ``name`` (e.g. a docs claim).

    Args:
        model: see :func:`describe`.
        name: one of :data:`COMMON_SIGNATURES`.
        **expected: the keyword arguments of that signature's ``validate_*`` function.

    Returns:
        Where the model implements it.

    Raises:
        UsageError: ``name`` is not a common signature.
        CommonSignatureError: the model does not implement it.
    """
    if name not in _VALIDATORS:
        raise UsageError(f"Unknown common signature {name!r}; known: {list(COMMON_SIGNATURES)}.")
    return _VALIDATORS[name](model, **expected)
