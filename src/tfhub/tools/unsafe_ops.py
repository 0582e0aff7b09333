"""Finding graph ops that reach outside the model: files, processes, Python, the network.

A SavedModel or TF1 Hub module is a program. Loading and calling one from a stranger can read
or write files (``ReadFile``, ``WriteFile``, dataset readers), run Python (``PyFunc``) or map
files into memory (``ImmutableConst``). :func:`scan` lists every such op in every graph and
function of a model; ``hub.load(..., allow_ops=...)``, ``TFHUB_CHECK_OPS`` and the server's
publishing check use it.

Checkpoint I/O that every SavedModel has (the saver's ``SaveV2``/``RestoreV2`` in the main
graph and in the ``__inference__traced_save/restore`` functions) is not reported, and neither
are vocabulary tables initialized from the model's own asset files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from tfhub import protocol
from tfhub.errors import ConfigError, NotAModelError, UsageError

__all__ = ["UNSAFE_OPS", "UnsafeOp", "check_ops", "scan"]

_FILES = "reads or writes files"
_DATA = "reads files through a dataset or reader"
UNSAFE_OPS: dict[str, str] = {
    "ReadFile": "reads a file",
    "WriteFile": "writes a file",
    "MatchingFiles": "lists files",
    "ImmutableConst": "maps a file into memory",
    "PyFunc": "runs Python code",
    "PyFuncStateless": "runs Python code",
    "EagerPyFunc": "runs Python code",
    "Save": _FILES,
    "SaveV2": _FILES,
    "SaveSlices": _FILES,
    "Restore": _FILES,
    "RestoreV2": _FILES,
    "RestoreSlice": _FILES,
    "MergeV2Checkpoints": "writes and deletes files",
    "TextLineDataset": _DATA,
    "TFRecordDataset": _DATA,
    "TFRecordDatasetV2": _DATA,
    "FixedLengthRecordDataset": _DATA,
    "FixedLengthRecordDatasetV2": _DATA,
    "CSVDataset": _DATA,
    "CSVDatasetV2": _DATA,
    "ExperimentalCSVDataset": _DATA,
    "SqlDataset": "opens a database",
    "ExperimentalSqlDataset": "opens a database",
    "LMDBDataset": _DATA,
    "ExperimentalLMDBDataset": _DATA,
    "SnapshotDataset": _FILES,
    "SnapshotDatasetV2": _FILES,
    "SaveDataset": "writes files",
    "SaveDatasetV2": "writes files",
    "LoadDataset": _DATA,
    "DatasetToTFRecord": "writes files",
    "ExperimentalDatasetToTFRecord": "writes files",
    "TextLineReader": _DATA,
    "TextLineReaderV2": _DATA,
    "TFRecordReader": _DATA,
    "TFRecordReaderV2": _DATA,
    "WholeFileReader": _DATA,
    "WholeFileReaderV2": _DATA,
    "FixedLengthRecordReader": _DATA,
    "FixedLengthRecordReaderV2": _DATA,
    "CreateSummaryFileWriter": "writes files",
    "CreateSummaryDbWriter": "writes files",
    "WriteFileSummary": "writes files",
    "DebugIdentityV2": "writes debug dumps",
    "DebugIdentityV3": "writes debug dumps",
    "PrintV2": "may write to a file",
}
logger = logging.getLogger(__name__)
_CHECKPOINT_OPS = frozenset(
    {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "Save", "Restore", "SaveSlices", "RestoreSlice"}
)
_SAVER_FUNCTIONS = ("__inference__traced_save", "__inference__traced_restore")


class UnscannableError(NotAModelError):
    """The model cannot be scanned for unsafe ops (a text ``saved_model.pbtxt``)."""


@dataclass(frozen=True)
class UnsafeOp:
    """One risky op: its type, where it is, and what it can do."""

    op: str
    node: str
    where: str  # "graph <tags>" or "function <name>"
    reason: str

    def __str__(self) -> str:
        return f"{self.op} ({self.reason}) at {self.where}: {self.node}"


def _meta_graphs(path: str) -> list[Any]:
    from pathlib import Path

    from tfhub.tf1.spec import read_meta_graphs

    if not os.path.isfile(os.path.join(path, protocol.SAVED_MODEL_PB)):
        if os.path.isfile(os.path.join(path, protocol.SAVED_MODEL_PBTXT)):
            raise UnscannableError(
                f"{path} holds a text saved_model.pbtxt, which tfhub does not scan for unsafe "
                "ops; export a binary saved_model.pb (or set TFHUB_CHECK_OPS=off if you trust "
                "it).",
                handle=path,
            )
        raise NotAModelError(f"{path} has no {protocol.SAVED_MODEL_PB} to scan.", handle=path)
    return read_meta_graphs(Path(path), path)


def scan(path: str | os.PathLike[str]) -> list[UnsafeOp]:
    """Every unsafe op in every graph variant and function of the model at ``path``."""
    path = os.fspath(path)
    found: dict[tuple[str, str, str], UnsafeOp] = {}
    for meta in _meta_graphs(path):
        tags = sorted(meta.meta_info_def.tags)
        saver_ops = set()
        if meta.HasField("saver_def"):
            saver_ops = {
                meta.saver_def.save_tensor_name.split(":")[0],
                meta.saver_def.restore_op_name.split(":")[0],
            }
        for node in meta.graph_def.node:
            if node.op in UNSAFE_OPS and not (
                node.op in _CHECKPOINT_OPS and _is_saver(node, saver_ops)
            ):
                where = f"graph {tags}"
                found[(node.op, node.name, where)] = UnsafeOp(
                    node.op, node.name, where, UNSAFE_OPS[node.op]
                )
        for function in meta.graph_def.library.function:
            name = function.signature.name
            for node in function.node_def:
                if node.op not in UNSAFE_OPS:
                    continue
                if node.op in _CHECKPOINT_OPS and name.startswith(_SAVER_FUNCTIONS):
                    continue
                where = f"function {name}"
                found[(node.op, node.name, where)] = UnsafeOp(
                    node.op, node.name, where, UNSAFE_OPS[node.op]
                )
    return sorted(found.values(), key=lambda u: (u.where, u.op, u.node))


def _is_saver(node: Any, saver_ops: set[str]) -> bool:
    # The saver's ops sit under the "save/" name scope (TF1) or feed saver_def's tensors (TF2).
    return (
        node.name.startswith(("save/", "save_1/", "saver/"))
        or node.name in saver_ops
        or any(node.name.startswith(op.rsplit("/", 1)[0] + "/") for op in saver_ops if "/" in op)
    )


def check_ops(path: str, *, handle: str, allow_ops: Any = None) -> list[UnsafeOp]:
    """Applies the unsafe-op policy to a model before it is loaded.

    ``TFHUB_CHECK_OPS``: ``warn`` (default: log them), ``error`` (refuse), ``off``. Passing
    ``allow_ops`` (op types that are acceptable) turns on ``error`` for all other unsafe ops.

    Raises:
        UsageError: an unsafe op is present and the policy is ``error``.
    """
    mode = os.environ.get("TFHUB_CHECK_OPS", "warn").strip().lower() or "warn"
    if mode not in ("warn", "error", "off"):
        raise ConfigError(f"TFHUB_CHECK_OPS={mode!r} is not valid; use warn, error or off.")
    if allow_ops is not None:
        mode = "error"
    if mode == "off":
        return []
    allowed = set(allow_ops or ())
    try:
        found = scan(path)
    except UnscannableError as exc:
        if mode == "error":
            raise
        logger.warning("%s", exc)
        return []
    unsafe = [u for u in found if u.op not in allowed]
    if not unsafe:
        return []
    listing = "; ".join(str(u) for u in unsafe[:10]) + (" ..." if len(unsafe) > 10 else "")
    if mode == "error":
        raise UsageError(
            f"{handle} contains ops that reach outside the model: {listing}. Load it only if you "
            f"trust it, with allow_ops={sorted({u.op for u in unsafe})!r} or TFHUB_CHECK_OPS=warn.",
            handle=handle,
        )
    logger.warning("%s contains ops that reach outside the model: %s", handle, listing)
    return unsafe
