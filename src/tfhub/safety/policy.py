"""The op policy: which mode applies to a model, and what happens to its findings.

============  ==============================================================================
mode          what happens when :func:`~tfhub.safety.scan.scan` finds ops
============  ==============================================================================
``error``     the load is refused with :class:`~tfhub.errors.UnsafeOpsError` (default for
              remote handles: ``http(s)://``, ``gs://``, ``s3://``, any URL but ``file://``)
``warn``      a warning is logged and the model loads (default for local paths)
``off``       nothing is scanned
============  ==============================================================================

The mode comes from, in this order: the ``check_ops=`` argument of the call; ``allow_ops=``
(which means ``error`` for every op not listed); ``TFHUB_CHECK_OPS``; the default above.
``DatasetFromGraph`` and RPC ops are refused in every mode but ``off``; ``allow_ops`` cannot
accept them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

from tfhub import config
from tfhub.errors import UnsafeOpsError, UnscannableError, UsageError
from tfhub.safety.scan import UnsafeOp, scan

__all__ = ["check_ops", "is_remote", "policy_mode"]

logger = logging.getLogger("tfhub.safety")
_URL_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_SHOWN = 10


def is_remote(handle: str | os.PathLike[str]) -> bool:
    """Whether ``handle`` names a model fetched through the network (any URL but ``file://``)."""
    match = _URL_RE.match(os.fspath(handle))
    return match is not None and match.group(1).lower() != "file"


def policy_mode(
    handle: str | os.PathLike[str], *, mode: str | None = None, allow_ops: object = None
) -> str:
    """The mode (``error``, ``warn``, ``off``) that applies to ``handle`` (see module doc).

    Raises:
        UsageError: ``mode`` is not one of the three.
        ConfigError: ``TFHUB_CHECK_OPS`` has another value.
    """
    if mode is not None:
        chosen = str(mode).strip().lower()
        if chosen not in config.CHECK_OPS_MODES:
            raise UsageError(
                f"check_ops={mode!r} is not valid; use one of {', '.join(config.CHECK_OPS_MODES)}.",
                handle=os.fspath(handle),
            )
        return chosen
    if allow_ops is not None:
        return "error"
    return config.check_ops_mode() or ("error" if is_remote(handle) else "warn")


def _allowed(allow_ops: object, handle: str) -> set[str]:
    if allow_ops is None:
        return set()
    if isinstance(allow_ops, str):
        return {allow_ops}
    if isinstance(allow_ops, Iterable) and all(isinstance(o, str) for o in allow_ops):
        return set(allow_ops)
    raise UsageError(
        f"allow_ops must be a list of op type names such as ['ReadFile'], got {allow_ops!r}.",
        handle=handle,
    )


def _listing(found: list[UnsafeOp]) -> str:
    more = f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
    return "; ".join(str(u) for u in found[:_SHOWN]) + more


def check_ops(
    path: str | os.PathLike[str],
    *,
    handle: str,
    allow_ops: object = None,
    mode: str | None = None,
) -> list[UnsafeOp]:
    """Applies the op policy to the model at ``path`` (fetched from ``handle``) before it loads.

    Args:
        path: the model directory (local, or a ``tf.io.gfile`` URL such as ``gs://...``).
        handle: what the user asked for; decides the default mode and names the model in
            messages.
        allow_ops: op types to accept (a finding of any other type refuses the load).
        mode: ``error``, ``warn`` or ``off`` for this call (see the module doc).

    Returns:
        The findings that were accepted with a warning (``warn``), else ``[]``.

    Raises:
        UnsafeOpsError: a finding the mode refuses; it names the op, where it is and how to
            load the model anyway.
        UnscannableError: under ``error``, a model that cannot be scanned (``.pbtxt``).
    """
    chosen = policy_mode(handle, mode=mode, allow_ops=allow_ops)
    if chosen == "off":
        return []
    allowed = _allowed(allow_ops, handle)
    try:
        found = scan(path)
    except UnscannableError as exc:
        if chosen == "error":
            raise UnscannableError(str(exc), handle=handle) from exc
        logger.warning("%s", exc)
        return []
    refused = [u for u in found if u.refused]
    unsafe = [u for u in found if not u.refused and u.op not in allowed]
    if refused:
        raise UnsafeOpsError(
            f"{handle} contains ops that tfhub refuses outright: {_listing(refused)}. No "
            "allow_ops= can accept them; only check_ops='off' (or TFHUB_CHECK_OPS=off), which "
            "checks nothing, loads this model.",
            handle=handle,
            findings=tuple(refused + unsafe),
        )
    if not unsafe:
        return []
    if chosen == "error":
        ops = sorted({u.op for u in unsafe} | allowed)
        origin = "a remote handle" if is_remote(handle) else "this call or TFHUB_CHECK_OPS"
        raise UnsafeOpsError(
            f"{handle} contains ops that may reach outside the model (files, processes, the "
            f"network): {_listing(unsafe)}. The op policy is 'error' for {origin}. Load it only "
            f"if you trust its author: hub.load(handle, allow_ops={ops!r}), or "
            "check_ops='warn' / TFHUB_CHECK_OPS=warn to load with a warning.",
            handle=handle,
            findings=tuple(unsafe),
        )
    logger.warning("%s contains ops that may reach outside the model: %s", handle, _listing(unsafe))
    return unsafe
