"""tfhub: publish, host, find and reuse pretrained model pieces.

A drop-in replacement for ``tensorflow_hub`` on TensorFlow 2.16+ and Keras 3::

    import tfhub as hub

    layer = hub.KerasLayer("https://hub.example.com/google/nnlm-en-dim50/2")
    obj = hub.load("/path/to/saved_model")
    path = hub.resolve("https://hub.example.com/google/nnlm-en-dim50/2")

TensorFlow is imported only when a function that needs it is first used, so ``import tfhub``
stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tfhub.errors import (
    ArchiveError,
    ArchiveTooLargeError,
    CacheError,
    ConfigError,
    DownloadError,
    HubError,
    InvalidHandleError,
    ModelNotFoundError,
    NotAModelError,
    OfflineError,
    ProtocolError,
    RemoteNotFoundError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "ArchiveTooLargeError",
    "CacheError",
    "ConfigError",
    "DownloadError",
    "HubError",
    "InvalidHandleError",
    "KerasLayer",
    "ModelNotFoundError",
    "NotAModelError",
    "OfflineError",
    "ProtocolError",
    "RemoteNotFoundError",
    "UsageError",
    "__version__",
    "load",
    "register_resolver",
    "resolve",
]

# Public name → module that defines it; imported on first access (PEP 562).
_LAZY = {
    "resolve": "tfhub.handles.resolve",
    "register_resolver": "tfhub.handles.resolve",
    "load": "tfhub.savedmodel.load",
}

if TYPE_CHECKING:
    from tfhub.handles.resolve import register_resolver, resolve
    from tfhub.savedmodel.keras_layer import KerasLayer
    from tfhub.savedmodel.load import load


def _keras_layer_module() -> str:
    # With TF_USE_LEGACY_KERAS=1, tf.keras is tf_keras: give a tf_keras layer to match.
    from tfhub.config import env_flag

    if env_flag("TF_USE_LEGACY_KERAS"):
        return "tfhub.savedmodel.legacy_keras_layer"
    return "tfhub.savedmodel.keras_layer"


def __getattr__(name: str) -> Any:
    if name == "KerasLayer":
        module = _keras_layer_module()
    elif name in _LAZY:
        module = _LAZY[name]
    else:
        raise AttributeError(f"module 'tfhub' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
