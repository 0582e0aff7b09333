"""The op policy: which ops a model may hold before tfhub loads it (or the hub publishes it).

A SavedModel or TF1 Hub module is a program. :func:`scan` parses a model's protobufs (nothing
of it runs) and lists every op whose type is not on the reviewed allowlist of ops that compute
only on their inputs (:mod:`tfhub.safety.allowlist`), with structural exemptions for the
saver's checkpoint ops and for tables read from the model's own assets
(:mod:`tfhub.safety.scan`). :func:`check_ops` applies the policy (``error`` for remote
handles, ``warn`` for local paths; :mod:`tfhub.safety.policy`).

Public names: ``scan``, ``scan_meta_graph``, ``check_ops``, ``policy_mode``, ``is_remote``,
``UnsafeOp``, ``UnsafeOpsError``, ``UnscannableError``, ``ALLOWED``.
"""

from __future__ import annotations

from tfhub.errors import UnsafeOpsError, UnscannableError
from tfhub.safety.allowlist import ALLOWED
from tfhub.safety.policy import check_ops, is_remote, policy_mode
from tfhub.safety.scan import UnsafeOp, scan, scan_meta_graph

__all__ = [
    "ALLOWED",
    "UnsafeOp",
    "UnsafeOpsError",
    "UnscannableError",
    "check_ops",
    "is_remote",
    "policy_mode",
    "scan",
    "scan_meta_graph",
]
