"""``hub.load``: a handle → the restored SavedModel object."""

from __future__ import annotations

import os
from typing import Any

from tfhub import metagraph, protocol, safety
from tfhub.errors import InvalidHandleError, NotAModelError, UsageError
from tfhub.handles.resolve import resolve

__all__ = ["is_tf1_module", "load"]


def is_tf1_module(path: str) -> bool:
    """Whether the model directory ``path`` is in the TF1 Hub format (has tfhub_module.pb)."""
    return metagraph.exists(metagraph.join(path, protocol.TF1_MODULE_PB))


def load(
    handle: str | os.PathLike[str],
    tags: Any = None,
    options: Any = None,
    *,
    allow_ops: Any = None,
    check_ops: str | None = None,
) -> Any:
    """Resolves ``handle`` and loads the SavedModel found there.

    The result is what ``tf.saved_model.load`` returns. A Reusable SavedModel has
    ``obj(inputs, training=...)``, ``obj.variables``, ``obj.trainable_variables`` and
    ``obj.regularization_losses``; every model has ``obj.signatures``. A model in the TF1 Hub
    format is loaded from its untagged graph unless ``tags`` says otherwise, as a
    :class:`~tfhub.tf1.interop.TF1ModuleObject`: ``obj.signatures[name](**inputs)`` returns a
    dict as before, and ``obj(x, training=...)`` applies the default signature (its ``{"train"}``
    variant when training), with ``variables``, ``trainable_variables`` and
    ``regularization_losses``; ``obj._is_hub_module_v1`` is True.

    Args:
        handle: a path or URL (see :func:`tfhub.resolve`).
        tags: the MetaGraph tags to load (default: ``serve`` for TF2, the empty set for TF1).
        options: a ``tf.saved_model.LoadOptions``.
        allow_ops: op types outside the allowlist (``ReadFile``, ``PyFunc``, ...) to accept
            for this model; any other such op then refuses the load.
        check_ops: the op policy for this call: ``"error"`` (refuse a model with ops outside
            the allowlist), ``"warn"`` (log them and load) or ``"off"`` (do not scan). Without
            it (and without ``allow_ops``), ``TFHUB_CHECK_OPS`` decides, and when that is unset
            a remote handle (``http(s)://``, ``gs://``, ``s3://``, any URL but ``file://``) is
            checked under ``error`` and a local path under ``warn``. The model's protobufs are
            scanned before anything of it runs; see :mod:`tfhub.safety`.

    Returns:
        The restored object.

    Raises:
        InvalidHandleError: ``handle`` is not a string.
        NotAModelError: the directory holds neither ``saved_model.pb`` nor ``saved_model.pbtxt``.
        UnsafeOpsError: the model holds ops that the policy refuses (a ``UsageError``); the
            message names each op, where it is, and how to load the model anyway.
        Any error of :func:`tfhub.resolve`.

    Example:
        >>> obj = hub.load("https://hub.example.com/google/nnlm-en-dim50/2")
        >>> obj(["a sentence"]).shape
        TensorShape([1, 50])
    """
    if not isinstance(handle, str | os.PathLike):
        raise InvalidHandleError(
            f"Expected a string, got {handle!r} of type {type(handle).__name__}; hub.load() "
            "takes a path or URL. To wrap an already-loaded object use hub.KerasLayer(obj).",
            handle=repr(handle),
        )
    handle = os.fspath(handle)
    import tensorflow as tf

    if options is not None and not isinstance(options, tf.saved_model.LoadOptions):
        raise UsageError(
            f"options must be a tf.saved_model.LoadOptions, got {type(options).__name__}.",
            handle=handle,
        )
    path = resolve(handle)
    tf1 = is_tf1_module(path)
    if tf1 and tags is None:
        tags = []
    if not (
        metagraph.exists(metagraph.join(path, protocol.SAVED_MODEL_PB))
        or metagraph.exists(metagraph.join(path, protocol.SAVED_MODEL_PBTXT))
    ):
        raise NotAModelError(
            f"Trying to load a model of incompatible/unknown type. '{path}' (from {handle}) "
            "contains neither 'saved_model.pb' nor 'saved_model.pbtxt'. Point the handle at the "
            "directory that tf.saved_model.save() wrote.",
            handle=handle,
        )
    # Every model is checked, also one read in place (a gs:// path in UNCOMPRESSED mode).
    safety.check_ops(path, handle=handle, allow_ops=allow_ops, mode=check_ops)
    if tf1:
        from tfhub.tf1.interop import TF1ModuleObject
        from tfhub.tf1.spec import load_module_spec

        return TF1ModuleObject(load_module_spec(path, check_ops=False), tags=tags)
    obj = tf.saved_model.load(path, tags=tags, options=options)
    obj._is_hub_module_v1 = False  # tensorflow_hub's marker, read by code written for it
    return obj
