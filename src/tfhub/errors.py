"""The exceptions tfhub raises.

Every error derives from :class:`HubError` and also from the built-in exception that
``tensorflow_hub`` raised in the same situation, so existing ``except ValueError`` /
``except OSError`` clauses keep working after ``import tfhub as hub``::

    HubError(Exception)
    ├── InvalidHandleError(HubError, ValueError)      handle is not a string, unknown scheme
    │   └── UpstreamHandleError                        not a tfhub.dev/Kaggle/hub URL we can map
    ├── ConfigError(HubError, ValueError)             bad value in a TFHUB_* environment variable
    ├── NotAModelError(HubError, ValueError)          directory holds no SavedModel / Hub module
    │   └── UnscannableError                           a model the op policy cannot check (.pbtxt)
    ├── UsageError(HubError, ValueError)              arguments that do not fit together
    │   └── UnsafeOpsError                             the op policy refuses the model's ops
    ├── CommonSignatureError(HubError, ValueError)    a model lacks a claimed common signature
    ├── ConversionError(HubError, ValueError)         hub.convert's result differs from the module
    ├── ModelNotFoundError(HubError, FileNotFoundError) local path or remote model missing
    │   └── OfflineError                               TFHUB_OFFLINE=1 and the handle is not cached
    ├── DownloadError(HubError, ConnectionError)      network failure, HTTP error status
    │   ├── RemoteNotFoundError(DownloadError, ModelNotFoundError)  404/410
    │   ├── ProtocolError(DownloadError, ValueError)  answer the hosting protocol does not allow
    │   └── SlowTransferError(DownloadError)          under TFHUB_HTTP_MIN_RATE / past the deadline
    ├── ArchiveError(HubError, OSError)               the download is not a (safe) model archive
    │   └── ArchiveTooLargeError                       beyond TFHUB_MAX_MODEL_BYTES
    ├── CacheError(HubError, OSError)                 the cache cannot be used (lock, permissions)
    ├── PublishError(HubError, ValueError)            a publish the hub refused (``.status``)
    ├── ModelNameError(HubError, ValueError)          a publisher/model/version name not accepted
    └── StorageError(HubError, OSError)               the hub's storage failed (``.key``)

Each error carries the offending handle (``.handle``) where one is known, and its message
says what to do about it. Every error survives ``pickle`` (and so a ``multiprocessing`` or
``concurrent.futures`` boundary) with its message and all its attributes, whatever its
``__init__`` takes: :meth:`HubError.__reduce__` rebuilds it without calling ``__init__``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "ArchiveError",
    "ArchiveTooLargeError",
    "CacheError",
    "CatalogError",
    "CommonSignatureError",
    "ConfigError",
    "ConversionError",
    "DownloadError",
    "HubError",
    "InvalidHandleError",
    "ModelNameError",
    "ModelNotFoundError",
    "NotAModelError",
    "OfflineError",
    "ProtocolError",
    "PublishError",
    "RemoteNotFoundError",
    "SlowTransferError",
    "StorageError",
    "UnsafeOpsError",
    "UnscannableError",
    "UpstreamHandleError",
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

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduction calls cls(*args), which loses keyword-only attributes and fails
        # for subclasses whose __init__ takes other arguments; restore args and state instead.
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(cls: type[HubError], args: tuple[Any, ...], state: dict[str, Any]) -> HubError:
    """Unpickles a :class:`HubError` (see ``HubError.__reduce__``)."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


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


class CommonSignatureError(HubError, ValueError):
    """A model does not implement the common signature it is said to implement.

    Attributes:
        signature: the common signature, e.g. ``"text-embedding"``.
        problems: what is wrong, one line per entry point (``__call__``, a signature).
    """

    def __init__(
        self,
        message: str,
        *,
        signature: str,
        problems: Iterable[str] = (),
        handle: str | None = None,
    ) -> None:
        super().__init__(message, handle=handle)
        self.signature = signature
        self.problems = list(problems)


class SlowTransferError(DownloadError):
    """A download was slower than ``TFHUB_HTTP_MIN_RATE`` or ran past
    ``TFHUB_DOWNLOAD_DEADLINE`` (the blocks already verified are kept for a retry)."""


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


class PublishError(HubError, ValueError):
    """A publish was refused (by the hub, or before anything was sent).

    Attributes:
        status: the HTTP status that says why (401 token, 403 namespace, 409 exists, 413 too
            large, 422 not an acceptable model, ...), or ``None`` when no server answered.
    """

    def __init__(self, message: str, *, status: int | None = None, handle: str | None = None):
        super().__init__(message, handle=handle)
        self.status = status

    @property
    def message(self) -> str:
        return str(self)


class ModelNameError(HubError, ValueError):
    """A publisher, model or version name the hub does not accept (ASCII, tfhub.dev rules)."""


class StorageError(HubError, OSError):
    """The hub's storage (a directory or an S3 bucket) failed or refused an operation.

    Attributes:
        key: the storage key concerned, when there is one.
    """

    def __init__(self, message: str, *, key: str | None = None, handle: str | None = None):
        super().__init__(message, handle=handle)
        self.key = key


class ConversionError(HubError, ValueError):
    """``hub.convert`` made a model that does not load, or does not give the module's outputs."""


class UpstreamHandleError(InvalidHandleError):
    """A handle that is not an upstream model URL where one is needed (a mirror path)."""


class CatalogError(StorageError):
    """The hub's catalog database (SQLite or PostgreSQL) failed: unreachable, locked too long,
    or a migration failed. The storage is untouched; ``tfhub index rebuild`` rebuilds it."""
