"""The exceptions tfhub raises.

Every error derives from :class:`HubError` and also from the built-in exception that
``tensorflow_hub`` raised in the same situation, so existing ``except ValueError`` /
``except OSError`` clauses keep working after ``import tfhub as hub``::

    HubError(Exception)
    ├── InvalidHandleError(HubError, ValueError)      handle is not a string, unknown scheme
    ├── ConfigError(HubError, ValueError)             bad value in a TFHUB_* environment variable
    ├── NotAModelError(HubError, ValueError)          directory holds no SavedModel / Hub module
    │   └── UnscannableError                           a model the op policy cannot check (.pbtxt)
    ├── UsageError(HubError, ValueError)              arguments that do not fit together
    │   └── UnsafeOpsError                             the op policy refuses the model's ops
    ├── ModelNotFoundError(HubError, FileNotFoundError) local path or remote model missing
    │   └── OfflineError                               TFHUB_OFFLINE=1 and the handle is not cached
    ├── DownloadError(HubError, ConnectionError)      network failure, HTTP error status
    │   ├── RemoteNotFoundError(DownloadError, ModelNotFoundError)  404/410
    │   └── ProtocolError(DownloadError, ValueError)  answer the hosting protocol does not allow
    ├── ArchiveError(HubError, OSError)               the download is not a (safe) model archive
    │   └── ArchiveTooLargeError                       beyond TFHUB_MAX_MODEL_BYTES
    └── CacheError(HubError, OSError)                 the cache cannot be used (lock, permissions)

Each error carries the offending handle (``.handle``) where one is known, and its message
says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "ArchiveTooLargeError",
    "CacheError",
    "ConfigError",
    "DownloadError",
    "HubError",
    "InvalidHandleError",
    "ModelNotFoundError",
    "NotAModelError",
    "OfflineError",
    "ProtocolError",
    "RemoteNotFoundError",
    "UnsafeOpsError",
    "UnscannableError",
    "UsageError",
]


class HubError(Exception):
    """Root of every error raised by tfhub.

    Attributes:
        handle: the model handle (path or URL) the error is about, or ``None``.
    """

    def __init__(self, message: str, *, handle: str | None = None) -> None:
        super().__init__(message)
        self.handle = handle

    def __str__(self) -> str:
        # OSError subclasses format their args specially; always show our message.
        return str(self.args[0]) if self.args else ""


class InvalidHandleError(HubError, ValueError):
    """The handle is not a string, or no resolver understands it."""


class ConfigError(HubError, ValueError):
    """An environment variable or setting has a value tfhub cannot use."""


class NotAModelError(HubError, ValueError):
    """A directory was found but it is not a SavedModel or TF1 Hub module."""


class UsageError(HubError, ValueError):
    """Arguments that do not fit together (e.g. a signature without an output key)."""


class ModelNotFoundError(HubError, FileNotFoundError):
    """The model the handle names does not exist."""


class OfflineError(ModelNotFoundError):
    """Offline mode is on and the handle is not in the cache."""


class DownloadError(HubError, ConnectionError):
    """Fetching the model over the network failed.

    Attributes:
        url: the URL that was requested.
        status: the HTTP status code, when the server answered.
    """

    def __init__(
        self,
        message: str,
        *,
        handle: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, handle=handle)
        self.url = url
        self.status = status


class RemoteNotFoundError(DownloadError, ModelNotFoundError):
    """The server answered that the model does not exist (404 or 410)."""


class ProtocolError(DownloadError, ValueError):
    """The server answered in a way the hosting protocol does not allow."""


class ArchiveError(HubError, OSError):
    """The downloaded bytes are not a valid, safe model archive."""


class ArchiveTooLargeError(ArchiveError):
    """The archive expands beyond the configured size limit."""


class CacheError(HubError, OSError):
    """The cache directory cannot be used."""


class UnscannableError(NotAModelError):
    """The model cannot be checked for unsafe ops (e.g. a text ``saved_model.pbtxt``)."""


class UnsafeOpsError(UsageError):
    """The op policy refuses the model: it holds ops that may reach outside the model.

    Attributes:
        findings: the refused ops (``tfhub.safety.UnsafeOp``), in the order reported.
    """

    def __init__(
        self, message: str, *, handle: str | None = None, findings: tuple[object, ...] = ()
    ) -> None:
        super().__init__(message, handle=handle)
        self.findings = tuple(findings)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_unsafe_ops_error, (str(self), self.handle, self.findings))


def _rebuild_unsafe_ops_error(
    message: str, handle: str | None, findings: tuple[object, ...]
) -> UnsafeOpsError:
    return UnsafeOpsError(message, handle=handle, findings=findings)
