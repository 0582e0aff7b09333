"""``tfhub inspect``: what a model is, extracted from the model itself (never typed by hand).

Everything comes from parsing the model's protobufs and checkpoint index
(:mod:`tfhub.describe`); nothing of the model is loaded or run, so inspecting a stranger's
model is safe, and it is also the publishing validation: a directory that is not a TF2
SavedModel, a TF1 SavedModel or a TF1 Hub module, or whose files are malformed, raises
:class:`~tfhub.errors.NotAModelError`. The server runs it in a subprocess
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

from tfhub.describe import describe_model_dir, describe_module_spec, describe_saved_model_object
from tfhub.errors import HubError, NotAModelError, UnscannableError
from tfhub.safety import scan
from tfhub.signatures.common import CommonSignatures, find_common_signatures

__all__ = [
    "describe_module_spec",
    "describe_saved_model_object",
    "format_text",
    "inspect_model",
    "validate_upload",
]


def inspect_model(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Format, graph variants, signatures (names, dtypes, shapes), variables and size.

    Read from the model's protobufs and checkpoint index (see
    :func:`tfhub.describe.describe_model_dir`): nothing of the model is loaded or run. Adds the
    model's unsafe ops (``unsafe_ops``) and the common signatures it implements
    (``common_signatures``).

    Raises:
        NotAModelError: the directory holds no model, or a file of it is malformed (the
            message names the file).
    """
    path = os.fspath(path)
    result = describe_model_dir(path)
    try:
        unsafe = [str(u) for u in scan(path)]
    except UnscannableError as exc:
        unsafe = [f"not scanned: {exc}"]
    return _report(result, unsafe)


def _report(result: dict[str, Any], unsafe_ops: list[str]) -> dict[str, Any]:
    result["unsafe_ops"] = unsafe_ops
    result["common_signatures"] = find_common_signatures(result).to_json()
    return result


def validate_upload(path: str | os.PathLike[str], *, refuse_unsafe: bool = True) -> dict[str, Any]:
    """Checks a model directory for publishing, without running anything of it.

    The op scan comes first; then the description of :func:`inspect_model` (parsed, never
    loaded), which is also what the hub stores as the version's ``info``.

    Args:
        path: the unpacked upload.
        refuse_unsafe: refuse a model with ops that reach outside the model, and one that
            cannot be scanned (a text ``saved_model.pbtxt``).

    Returns:
        The report of :func:`inspect_model`.

    Raises:
        NotAModelError: not a model, a malformed file (named in the message), unsafe ops, or
            (``UnscannableError``) a model that cannot be scanned while ``refuse_unsafe``.
    """
    path = os.fspath(path)
    if not refuse_unsafe:
        return inspect_model(path)
    unsafe = scan(path)  # scanned once: the refusal and the report share the findings
    if unsafe:
        raise NotAModelError(
            "the model contains ops that reach outside the model (files, Python, ...): "
            + "; ".join(str(u) for u in unsafe[:10])
            + ". The server refuses them unless started with TFHUB_ALLOW_UNSAFE_OPS=1.",
            handle=path,
        )
    return _report(describe_model_dir(path), [])


def _spec_text(spec: dict[str, Any]) -> str:
    return f"{spec['dtype']} {spec['shape']} {spec['kind']}"


def format_text(info: dict[str, Any]) -> str:
    """The report of :func:`inspect_model` for people (what ``tfhub inspect`` prints)."""
    variables = info.get("variables") or {}
    lines = [
        f"format: {info['format']}",
        f"size: {info.get('size_bytes', 0)} bytes; variables: {variables.get('count', 0)} "
        f"({variables.get('bytes', 0)} bytes)",
    ]
    for var in variables.get("list", []):
        trainable = {True: ", trainable", False: ""}.get(var.get("trainable"), "")
        lines.append(f"  variable {var['name']}: {var['dtype']} {var['shape']}{trainable}")
    if info.get("assets"):
        lines.append(f"assets: {', '.join(info['assets'])}")
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
        help="scan first and refuse a model with unsafe ops (nothing is ever run)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        info = validate_upload(args.path, refuse_unsafe=args.refuse_unsafe)
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
