"""Where a mirrored version came from: the ``provenance`` of its record.

``tfhub mirror pull`` sends it with the upload (a ``provenance`` JSON field of the multipart
POST, or directly when publishing into a storage root); the hub checks its shape here and
stores it in the version record, unchanged afterwards::

    {"source": "https://tfhub.dev/google/nnlm-en-dim50/2",   # the upstream handle
     "sha256": "<64 hex>" | null, "size": <bytes> | null,    # the upstream archive, if known
     "fetched": "2026-11-27T16:00:00+00:00",                  # ISO-8601, UTC
     "license": "apache-2.0" | null, "docs": "<Markdown>" | null}

Records without it (published by hand) stay valid: readers must not expect it.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from tfhub.errors import PublishError

__all__ = ["MAX_PROVENANCE_BYTES", "make_provenance", "parse_provenance"]

MAX_PROVENANCE_BYTES = 1 << 20  # the JSON text; docs are its bulk
_MAX_SOURCE = 2048
_MAX_LICENSE = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("source", "sha256", "size", "fetched", "license", "docs")


def make_provenance(
    source: str,
    *,
    sha256: str | None = None,
    size: int | None = None,
    license: str | None = None,
    docs: str | None = None,
    fetched: datetime.datetime | None = None,
) -> dict[str, Any]:
    """A checked provenance dict (``fetched`` defaults to now, UTC, whole seconds).

    Raises:
        PublishError: a field has the wrong type or size (422).
    """
    when = fetched or datetime.datetime.now(datetime.UTC)
    return check_provenance(
        {
            "source": source,
            "sha256": sha256,
            "size": size,
            "fetched": when.astimezone(datetime.UTC).isoformat(timespec="seconds"),
            "license": license,
            "docs": docs,
        }
    )


def parse_provenance(text: str) -> dict[str, Any]:
    """The ``provenance`` field of a publish request, checked (see the module docstring).

    Raises:
        PublishError: not JSON, too large, or not of the documented shape (413/422).
    """
    if len(text.encode("utf8")) > MAX_PROVENANCE_BYTES:
        raise PublishError(
            f"The provenance field exceeds {MAX_PROVENANCE_BYTES} bytes; shorten its docs.",
            status=413,
        )
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PublishError(f"The provenance field is not JSON: {exc}", status=422) from exc
    return check_provenance(value)


def _refuse(what: str) -> PublishError:
    return PublishError(
        f"Invalid provenance: {what}. Expected an object with source (str), sha256 (64 "
        "lower-case hex or null), size (int >= 0 or null), fetched (ISO-8601 UTC time), "
        "license (str or null) and docs (Markdown or null).",
        status=422,
    )


def _optional_str(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _refuse(f"{field} must be a string of at most {limit} characters or null")
    return value


def check_provenance(value: Any) -> dict[str, Any]:
    """``value`` if it is a well-formed provenance object, as a new dict with every field.

    Raises:
        PublishError: 422, naming the offending field.
    """
    if not isinstance(value, dict):
        raise _refuse("it is not a JSON object")
    unknown = sorted(set(value) - set(_FIELDS))
    if unknown:
        raise _refuse(f"unknown field(s) {', '.join(map(repr, unknown))[:200]}")
    source = value.get("source")
    if not isinstance(source, str) or not source.strip() or len(source) > _MAX_SOURCE:
        raise _refuse(f"source must be a non-empty string of at most {_MAX_SOURCE} characters")
    sha256 = value.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        raise _refuse("sha256 must be 64 lower-case hex digits or null")
    size = value.get("size")
    if size is not None and (type(size) is not int or size < 0):
        raise _refuse("size must be a non-negative integer or null")
    fetched = value.get("fetched")
    when = None
    if isinstance(fetched, str) and len(fetched) <= 40:
        try:
            when = datetime.datetime.fromisoformat(fetched)
        except ValueError:
            when = None
    if when is None or when.utcoffset() != datetime.timedelta(0):
        raise _refuse("fetched must be an ISO-8601 time in UTC, as 2026-01-31T12:00:00+00:00")
    return {
        "source": source,
        "sha256": sha256,
        "size": size,
        "fetched": fetched,
        "license": _optional_str(value.get("license"), "license", _MAX_LICENSE),
        "docs": _optional_str(value.get("docs"), "docs", MAX_PROVENANCE_BYTES),
    }
