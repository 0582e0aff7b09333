"""Makes ``keras.models.load_model("m.keras")`` find ``hub.KerasLayer`` after ``import tfhub``.

Keras finds a saved custom layer by its registered name (``"tfhub>KerasLayer"``) in its global
custom objects, which the class decorator fills only once the class is imported, and importing
it means importing TensorFlow. ``import tfhub`` must stay free of TensorFlow, so instead:

* if Keras (``keras``, or ``tf_keras``) is already imported, a stand-in is put into its
  ``get_custom_objects()`` dictionary at once (Keras' public registry);
* otherwise a ``sys.meta_path`` finder waits for the import of ``keras`` / ``tf_keras`` (direct,
  or through ``tf.keras``) and registers the stand-in as soon as that module has run.

The stand-in only has ``from_config``, which imports the real class of that Keras flavour and
lets it build the layer; the real class replaces the stand-in in the registry when imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["REGISTERED_NAME", "install"]

REGISTERED_NAME = "tfhub>KerasLayer"

logger = logging.getLogger(__name__)

# Keras flavour → (the module with its KerasLayer, how to reach its custom-objects dict).
_FLAVOURS: dict[str, tuple[str, Callable[[ModuleType], dict[str, Any]]]] = {
    "keras": ("tfhub.savedmodel.keras_layer", lambda m: m.saving.get_custom_objects()),
    "tf_keras": ("tfhub.savedmodel.legacy_keras_layer", lambda m: m.utils.get_custom_objects()),
}


def _stand_in(layer_module: str) -> type:
    class KerasLayer:
        """Stands in for ``hub.KerasLayer`` in Keras' registry until the class is imported."""

        @classmethod
        def from_config(cls, config: dict[str, Any], *_args: Any, **_kwargs: Any) -> Any:
            real = importlib.import_module(layer_module).KerasLayer
            return real.from_config(config)

        def get_config(self) -> dict[str, Any]:  # pragma: no cover - never instantiated
            raise NotImplementedError

    KerasLayer.__module__ = layer_module
    return KerasLayer


def _register(flavour: str, module: ModuleType) -> None:
    layer_module, custom_objects = _FLAVOURS[flavour]
    try:
        custom_objects(module).setdefault(REGISTERED_NAME, _stand_in(layer_module))
    except Exception as exc:  # never break the user's `import keras`
        logger.warning("Could not register hub.KerasLayer with %s: %s", flavour, exc)


class _Loader(importlib.abc.Loader):
    """The real loader of a Keras package, then the registration."""

    def __init__(self, loader: Any, flavour: str) -> None:
        self._loader = loader
        self._flavour = flavour

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _register(self._flavour, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of ``keras`` / ``tf_keras`` when they are
    imported (once each), so that the registration runs right after them."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _FLAVOURS or getattr(self._busy, "active", False):
            return None
        self._busy.active = True
        try:
            spec = importlib.util.find_spec(fullname)  # the finders after this one
        finally:
            self._busy.active = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _Loader(spec.loader, fullname)
        return spec


_HOOK = _KerasImportHook()


def install() -> None:
    """Registers now with the Keras flavours already imported, later with the others."""
    waiting = False
    for flavour in _FLAVOURS:
        module = sys.modules.get(flavour)
        if module is None:
            waiting = True
        elif hasattr(module, "saving" if flavour == "keras" else "utils"):
            _register(flavour, module)
    if waiting and _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
