"""What several command modules of the ``tfhub`` command share."""

from __future__ import annotations

import os

from tfhub.errors import UsageError

__all__ = ["check_root"]


def check_root(root: str, *, must_exist: bool) -> None:
    """A local storage root must be a directory (``serve`` creates a missing one)."""
    if "://" in root:
        return
    if os.path.exists(root) and not os.path.isdir(root):
        raise UsageError(
            f"ROOT {root} is a file, not a directory: give the hub's storage directory "
            "(created if missing) or s3://bucket/prefix."
        )
    if must_exist and not os.path.isdir(root):
        raise UsageError(
            f"ROOT {root} does not exist: give the storage directory of a hub "
            "(the ROOT of 'tfhub serve ROOT')."
        )
