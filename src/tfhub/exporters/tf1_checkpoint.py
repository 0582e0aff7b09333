"""Exporting modules from training checkpoints, without Estimators.

``register_module_for_export(module, name)`` marks a ``hub.Module`` of a training graph;
``LatestModuleExporter(name, graph_fn)`` rebuilds that graph, restores a checkpoint and
writes every registered module to ``<export_path>/<unix timestamp>/<name>``, through
:func:`tfhub.staging.staged_directory` (a failed export leaves no timestamp directory).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfhub.errors import ModelNotFoundError, UsageError
from tfhub.staging import staged_directory
from tfhub.tf1.module import Module

__all__ = ["LatestModuleExporter", "register_module_for_export"]

logger = logging.getLogger(__name__)
v1 = tf.compat.v1
_EXPORT_KEY = "__tfhub_export_modules"
_TIMESTAMP_RE = re.compile(r"^\d{10}$")


def register_module_for_export(module: Module, export_name: str) -> None:
    """Registers ``module`` (of the current graph) to be exported as ``export_name``.

    Raises:
        UsageError: another module is already registered under ``export_name``.
    """
    graph = v1.get_default_graph()
    for name, _ in graph.get_collection(_EXPORT_KEY):
        if name == export_name:
            raise UsageError(f"There is already a module registered to be exported as {name!r}")
    graph.add_to_collection(_EXPORT_KEY, (export_name, module))


class LatestModuleExporter:
    """Exports the registered modules of a training graph from its latest checkpoint.

    Args:
        name: a name for this exporter (used in log messages).
        graph_fn: builds the training graph, creating and registering the modules.
        exports_to_keep: how many timestamped exports to keep (None: all).

    Example:
        >>> exporter = hub.LatestModuleExporter("text", build_graph)
        >>> exporter.export("exports", checkpoint_dir="train_dir")
        'exports/1795440000'
    """

    def __init__(
        self, name: str, graph_fn: Callable[[], Any], exports_to_keep: int | None = 5
    ) -> None:
        if exports_to_keep is not None and exports_to_keep <= 0:
            raise UsageError("`exports_to_keep`, if provided, must be a positive number.")
        self._name = name
        self._graph_fn = graph_fn
        self._keep = exports_to_keep

    @property
    def name(self) -> str:
        return self._name

    def export(
        self,
        export_path: str | os.PathLike[str],
        checkpoint_path: str | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
    ) -> str | None:
        """Writes every registered module; returns the new ``<export_path>/<timestamp>``.

        Args:
            export_path: the directory that holds the timestamped exports.
            checkpoint_path: the checkpoint to restore (default: the latest in checkpoint_dir).
            checkpoint_dir: where to look for the latest checkpoint.

        Returns:
            The new export directory, or None (with a warning) when no module is registered.

        Raises:
            ModelNotFoundError: no checkpoint was given or found.
            UsageError: neither checkpoint_path nor checkpoint_dir.
        """
        if checkpoint_path is None:
            if checkpoint_dir is None:
                raise UsageError("Pass checkpoint_path or checkpoint_dir to export().")
            checkpoint_path = tf.train.latest_checkpoint(os.fspath(checkpoint_dir))
            if checkpoint_path is None:
                raise ModelNotFoundError(
                    f"No checkpoint found in {os.fspath(checkpoint_dir)}; train and save one first."
                )
        with tf.Graph().as_default() as graph:
            self._graph_fn()
            modules = list(graph.get_collection(_EXPORT_KEY))
            if not modules:
                logger.warning(
                    "LatestModuleExporter %s found no modules registered for export; call "
                    "hub.register_module_for_export() in graph_fn.",
                    self._name,
                )
                return None
            saver = v1.train.Saver() if v1.global_variables() else None
            root = Path(export_path)
            stamp = int(time.time())
            while os.path.lexists(root / str(stamp)):
                stamp += 1
            with v1.Session() as session:
                if saver is not None:
                    saver.restore(session, checkpoint_path)
                session.run(v1.tables_initializer())
                with staged_directory(root / str(stamp)) as staging:
                    for export_name, module in modules:
                        module.export(staging / export_name, session)
        self._garbage_collect(root)
        logger.info("Exported %d module(s) to %s", len(modules), root / str(stamp))
        return str(root / str(stamp))

    def _garbage_collect(self, root: Path) -> None:
        if self._keep is None:
            return
        stamps = sorted(p for p in root.iterdir() if _TIMESTAMP_RE.match(p.name))
        for old in stamps[: -self._keep]:
            shutil.rmtree(old, ignore_errors=True)

    def keras_callback(
        self, export_path: str | os.PathLike[str], checkpoint_dir: str | os.PathLike[str]
    ) -> Any:
        """A Keras callback that exports from the latest checkpoint after each epoch."""
        import keras

        exporter = self

        class _ExportCallback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                exporter.export(export_path, checkpoint_dir=checkpoint_dir)

        return _ExportCallback()
