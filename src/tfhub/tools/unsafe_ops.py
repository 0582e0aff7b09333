"""Kept for existing imports: the op policy lives in :mod:`tfhub.safety`."""

from __future__ import annotations

from tfhub.safety import UnsafeOp, UnscannableError, check_ops, scan

__all__ = ["UnsafeOp", "UnscannableError", "check_ops", "scan"]
