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

# Python's sqlite3 first: TensorFlow's library carries its own SQLite build (without FTS5),
# whose symbols win for a sqlite3 loaded after it, and the hub's catalog needs FTS5.
import sqlite3  # noqa: F401
from typing import TYPE_CHECKING, Any

from tfhub.errors import (
    ArchiveError,
    ArchiveTooLargeError,
    CacheError,
    CatalogError,
    CommonSignatureError,
    ConfigError,
    ConversionError,
    DownloadError,
    HubError,
    InvalidHandleError,
    ModelNameError,
    ModelNotFoundError,
    NotAModelError,
    OfflineError,
    ProtocolError,
    PublishError,
    RemoteNotFoundError,
    SlowTransferError,
    StorageError,
    UnsafeOpsError,
    UnscannableError,
    UpstreamHandleError,
    UsageError,
)
from tfhub.savedmodel import keras_registration as _keras_registration

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
    "ImageModuleInfo",
    "InvalidHandleError",
    "KerasLayer",
    "LatestModuleExporter",
    "ModelNameError",
    "ModelNotFoundError",
    "Module",
    "ModuleSpec",
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
    "__version__",
    "add_signature",
    "attach_image_module_info",
    "attach_message",
    "convert",
    "create_module_spec",
    "create_module_spec_from_saved_model",
    "eval_function_for_module",
    "export_keras",
    "export_text_embedding",
    "get_expected_image_size",
    "get_num_image_channels",
    "image_embedding_column",
    "load",
    "load_module_spec",
    "register_module_for_export",
    "register_resolver",
    "resolve",
    "sparse_text_embedding_column",
    "text_embedding_column",
    "text_embedding_column_v2",
]

# Public name → module that defines it; imported on first access (PEP 562).
_LAZY = {
    "resolve": "tfhub.handles.resolve",
    "register_resolver": "tfhub.handles.resolve",
    "load": "tfhub.savedmodel.load",
    "export_keras": "tfhub.exporters.keras_model",
    "export_text_embedding": "tfhub.exporters.text_embedding",
    # The TF1 Hub format.
    "Module": "tfhub.tf1.module",
    "eval_function_for_module": "tfhub.tf1.module",
    "ModuleSpec": "tfhub.tf1.spec",
    "add_signature": "tfhub.tf1.spec",
    "attach_message": "tfhub.tf1.spec",
    "create_module_spec": "tfhub.tf1.spec",
    "create_module_spec_from_saved_model": "tfhub.tf1.spec",
    "load_module_spec": "tfhub.tf1.spec",
    "LatestModuleExporter": "tfhub.exporters.tf1_checkpoint",
    "register_module_for_export": "tfhub.exporters.tf1_checkpoint",
    "convert": "tfhub.tf1.convert",
    "ImageModuleInfo": "tfhub.signatures.image",
    "attach_image_module_info": "tfhub.signatures.image",
    "get_expected_image_size": "tfhub.signatures.image",
    "get_num_image_channels": "tfhub.signatures.image",
    "text_embedding_column": "tfhub.signatures.feature_column",
    "text_embedding_column_v2": "tfhub.signatures.feature_column",
    "sparse_text_embedding_column": "tfhub.signatures.feature_column",
    "image_embedding_column": "tfhub.signatures.feature_column",
}

# `keras.models.load_model("m.keras")` finds hub.KerasLayer without importing TensorFlow here.
_keras_registration.install()

if TYPE_CHECKING:
    __version__: str
    from tfhub.exporters.keras_model import export_keras
    from tfhub.exporters.text_embedding import export_text_embedding
    from tfhub.exporters.tf1_checkpoint import LatestModuleExporter, register_module_for_export
    from tfhub.handles.resolve import register_resolver, resolve
    from tfhub.savedmodel.keras_layer import KerasLayer
    from tfhub.savedmodel.load import load
    from tfhub.signatures.feature_column import (
        image_embedding_column,
        sparse_text_embedding_column,
        text_embedding_column,
        text_embedding_column_v2,
    )
    from tfhub.signatures.image import (
        ImageModuleInfo,
        attach_image_module_info,
        get_expected_image_size,
        get_num_image_channels,
    )
    from tfhub.tf1.convert import convert
    from tfhub.tf1.module import Module, eval_function_for_module
    from tfhub.tf1.spec import (
        ModuleSpec,
        add_signature,
        attach_message,
        create_module_spec,
        create_module_spec_from_saved_model,
        load_module_spec,
    )


def _keras_layer_module() -> str:
    # With TF_USE_LEGACY_KERAS=1, tf.keras is tf_keras: give a tf_keras layer to match.
    from tfhub.config import env_flag

    if env_flag("TF_USE_LEGACY_KERAS"):
        return "tfhub.savedmodel.legacy_keras_layer"
    return "tfhub.savedmodel.keras_layer"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read on first use: scanning the metadata costs milliseconds
        from tfhub.version import version

        return version()
    if name == "KerasLayer":
        module = _keras_layer_module()
    elif name in _LAZY:
        module = _LAZY[name]
    else:
        raise AttributeError(f"module 'tfhub' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
