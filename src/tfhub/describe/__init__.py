"""What a model is, read from the model: format, graph variants, signatures, variables.

The lowest layer of everything that reports on a model (``tfhub inspect``, the hub's model
pages and publish validation, the common-signature checks in :mod:`tfhub.signatures`):

* :func:`describe_model_dir` parses a model directory's protobufs and checkpoint index and
  never loads, imports or runs the model (:mod:`tfhub.describe.model_dir`);
* :func:`describe` takes anything that names or holds a model: a description (returned as
  is), a path or URL (resolved, then parsed as above), or an object the user already loaded
  (described from its Python attributes, :mod:`tfhub.describe.objects`).

Importing this package imports no TensorFlow; parsing a directory does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tfhub.describe.model_dir import describe_model_dir
from tfhub.describe.objects import describe_module_spec, describe_saved_model_object
from tfhub.describe.specs import FORMAT_SAVED_MODEL, FORMAT_SAVED_MODEL_2, FORMAT_TF1_HUB
from tfhub.errors import UsageError

__all__ = [
    "FORMAT_SAVED_MODEL",
    "FORMAT_SAVED_MODEL_2",
    "FORMAT_TF1_HUB",
    "describe",
    "describe_model_dir",
    "describe_module_spec",
    "describe_saved_model_object",
]


def describe(model: Any) -> dict[str, Any]:
    """The description of ``model`` (the structure of :func:`describe_model_dir`).

    Args:
        model: a description (returned as is), a path or URL, an object from ``hub.load`` (TF2
            or TF1 Hub format), a ``hub.Module`` or a :class:`~tfhub.ModuleSpec`.

    Returns:
        A dict with ``format``, ``variants`` (their ``signatures``) and, for TF2, ``call``.

    Raises:
        UsageError: ``model`` is none of these.
        NotAModelError: the path holds no model, or a malformed one.
        Any error of :func:`tfhub.resolve`.
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

        return describe_model_dir(resolve(os.fspath(model)))
    spec = _module_spec_of(model)
    if spec is not None:
        return describe_module_spec(spec)
    if hasattr(model, "signatures"):
        return describe_saved_model_object(model)
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
