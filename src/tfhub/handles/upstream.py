"""The upstream forms of a handle, and the handle map. Pure functions: no network, no files.

Recognised forms (``http://`` is accepted wherever ``https://`` is)::

    https://tfhub.dev/<publisher>/<model>/<version>                      tfhub.dev
    https://hub.tensorflow.google.cn/<publisher>/<model>/<version>       the China mirror
    https://www.kaggle.com/models/<owner>/<model>/<framework>/<variation>/<version>
    https://www.kaggle.com/models/<owner>/<model>/frameworks/<framework>/variations/<variation>
        /versions/<version>                                              Kaggle, long form

:func:`normalize` turns the Kaggle long form into the short form, lower-cased (Kaggle's names
are case-insensitive: ``TensorFlow2`` and ``tensorflow2`` are one framework); every other
handle is returned unchanged. :func:`mirror_path` is the path ``tfhub mirror pull`` gives a
model in our hub, so that one rule of the handle map sends every legacy handle of a host to
it: ``P/M/V`` for ``http(s)://host/P/M/V``, ``owner/model/framework/variation/version``
(lower-case) for Kaggle.

The handle map (``TFHUB_HANDLE_MAP``, ``TFHUB_HANDLE_MAP_FILE``; :func:`rewrite`) replaces the
longest matching prefix of the normalised handle.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from tfhub import config
from tfhub.errors import UpstreamHandleError

__all__ = [
    "CN_HOST",
    "KAGGLE_HOSTS",
    "LEGACY_HOSTS",
    "KaggleHandle",
    "MapRule",
    "cn_archive_url",
    "is_upstream",
    "kind",
    "mirror_path",
    "normalize",
    "parse_kaggle",
    "rewrite",
]

LEGACY_HOSTS = ("tfhub.dev", "www.tfhub.dev")
CN_HOST = "hub.tensorflow.google.cn"
KAGGLE_HOSTS = ("www.kaggle.com", "kaggle.com")
# tensorflow_hub 0.16 (compressed_module_resolver.py) fetches the China mirror's handles
# straight from this bucket, without asking hub.tensorflow.google.cn.
_CN_ARCHIVE = "https://gcs.tensorflow.google.cn/tfhub-modules/{}.tar.gz"

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSION = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class KaggleHandle:
    """A Kaggle model version, every name lower-cased."""

    scheme: str
    host: str
    owner: str
    model: str
    framework: str
    variation: str
    version: str

    @property
    def path(self) -> str:
        """``owner/model/framework/variation/version`` (also kagglehub's cache layout)."""
        return "/".join((self.owner, self.model, self.framework, self.variation, self.version))

    @property
    def short(self) -> str:
        """The short-form URL: ``https://www.kaggle.com/models/<path>``."""
        return f"{self.scheme}://{self.host}/models/{self.path}"

    @property
    def long(self) -> str:
        """The long-form URL (``.../frameworks/<fw>/variations/<var>/versions/<v>``)."""
        return (
            f"{self.scheme}://{self.host}/models/{self.owner}/{self.model}/frameworks/"
            f"{self.framework}/variations/{self.variation}/versions/{self.version}"
        )


def _split(handle: str) -> tuple[str, str, list[str]] | None:
    """(scheme, host, path segments) of a plain http(s) URL: no query, fragment, user, port
    oddities, empty or dot segments. A trailing slash is ignored."""
    try:
        parts = urllib.parse.urlsplit(handle)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    host = parts.netloc.lower()
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    if not host or parts.path.endswith("//") or "//" in parts.path:
        return None
    if not all(_SEGMENT.match(s) for s in segments):
        return None
    return scheme, host, segments


def parse_kaggle(handle: str) -> KaggleHandle | None:
    """The Kaggle model version ``handle`` names (either form), or None if it names none."""
    split = _split(handle)
    if split is None:
        return None
    scheme, host, seg = split
    if host not in KAGGLE_HOSTS or len(seg) < 6 or seg[0].lower() != "models":
        return None
    seg = [s.lower() for s in seg]
    if len(seg) == 6:
        owner, model, framework, variation, version = seg[1:]
    elif len(seg) == 9 and (seg[3], seg[5], seg[7]) == ("frameworks", "variations", "versions"):
        owner, model, framework, variation, version = seg[1], seg[2], seg[4], seg[6], seg[8]
    else:
        return None
    if not _VERSION.match(version):
        return None
    # kaggle.com redirects to www.kaggle.com: one host, so that both spell one model
    return KaggleHandle(scheme, KAGGLE_HOSTS[0], owner, model, framework, variation, version)


def kind(handle: str) -> str | None:
    """``"kaggle"``, ``"tfhub.dev"``, ``"tfhub-cn"`` or None (not an upstream handle)."""
    if parse_kaggle(handle) is not None:
        return "kaggle"
    split = _split(handle)
    if split is None or len(split[2]) < 3 or not _VERSION.match(split[2][-1]):
        return None
    if split[1] in LEGACY_HOSTS:
        return "tfhub.dev"
    if split[1] == CN_HOST:
        return "tfhub-cn"
    return None


def is_upstream(handle: str) -> bool:
    """Whether ``handle`` is a tfhub.dev, China-mirror or Kaggle model handle."""
    return kind(handle) is not None


def normalize(handle: str) -> str:
    """A Kaggle handle in its short form, lower-cased; any other handle unchanged."""
    parsed = parse_kaggle(handle)
    return parsed.short if parsed is not None else handle


def mirror_path(handle: str) -> str:
    """The path of ``handle``'s model in a mirror hub.

    ``https://tfhub.dev/P/M/V`` and any ``http(s)://host/P/M/V`` (``M`` may hold slashes) give
    ``P/M/V``; a Kaggle handle (either form) gives ``owner/model/framework/variation/version``,
    lower-cased.

    Raises:
        UpstreamHandleError: ``handle`` is not such a URL (a query, no version, odd names...).
    """
    parsed = parse_kaggle(handle)
    if parsed is not None:
        return parsed.path
    split = _split(handle)
    if split is not None:
        _, host, seg = split
        if host not in KAGGLE_HOSTS and len(seg) >= 3 and _VERSION.match(seg[-1]):
            return "/".join(seg)
    raise UpstreamHandleError(
        f"Cannot derive a mirror path from {handle!r}: expected "
        "'http(s)://host/<publisher>/<model>/<version>' (no query), or a Kaggle model URL "
        "'https://www.kaggle.com/models/<owner>/<model>/<framework>/<variation>/<version>'; "
        "for anything else give the path yourself (--as).",
        handle=handle,
    )


def cn_archive_url(handle: str) -> str | None:
    """Where tensorflow_hub 0.16 downloads a ``hub.tensorflow.google.cn`` handle from."""
    if kind(handle) != "tfhub-cn":
        return None
    split = _split(handle)
    assert split is not None
    return _CN_ARCHIVE.format("/".join(split[2]))


@dataclass(frozen=True)
class MapRule:
    """One rule of the handle map: ``old`` prefix → ``new`` prefix; ``origin`` says where it
    was written (``TFHUB_HANDLE_MAP`` or ``<file>:<line>``)."""

    old: str
    new: str
    origin: str

    def __str__(self) -> str:
        return f"{self.old}={self.new} ({self.origin})"


def rules() -> list[MapRule]:
    """The rules of the handle map from the current settings (see :mod:`tfhub.config`)."""
    return [MapRule(old, new, origin) for old, new, origin in config.handle_map()]


def rewrite(handle: str, rule_list: list[MapRule] | None = None) -> tuple[str, MapRule | None]:
    """``handle`` normalised (:func:`normalize`) with its longest matching map prefix replaced,
    and the rule used (None when no rule matched: then the normalised handle is returned).

    Raises:
        ConfigError: the map settings are malformed.
    """
    normal = normalize(handle)
    best: MapRule | None = None
    for rule in rules() if rule_list is None else rule_list:
        if normal.startswith(rule.old) and (best is None or len(rule.old) > len(best.old)):
            best = rule
    if best is None:
        return normal, None
    return best.new + normal[len(best.old) :], best
