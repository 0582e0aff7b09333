"""Reading and writing ``saved_model.pb``: the meta graphs of SavedModels and TF1 Hub modules.

The lowest layer that understands a model directory: it parses protocol buffers and never runs
anything from them. The safety scan, the TF1 module loader and exporter all read through it.
Paths may be local or any URL ``tf.io.gfile`` understands (``gs://``, ``s3://``, ``ram://``), so
a model read in place from a bucket is parsed the same way as one on disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from tfhub import protocol, protos
from tfhub.errors import NotAModelError

__all__ = [
    "checkpoint_prefix",
    "exists",
    "is_file",
    "join",
    "parse_file",
    "read_bytes",
    "read_meta_graphs",
    "write_saved_model",
]


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def join(path: str | os.PathLike[str], *names: str) -> str:
    """``path/names...`` for local paths and URLs alike."""
    base = os.fspath(path)
    if _is_url(base):
        return "/".join([base.rstrip("/"), *names])
    return os.path.join(base, *names)


def exists(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (local or a ``tf.io.gfile`` URL) exists."""
    path = os.fspath(path)
    if _is_url(path):
        import tensorflow as tf

        return bool(tf.io.gfile.exists(path))
    return os.path.exists(path)


def is_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (local or a ``tf.io.gfile`` URL) is an existing file."""
    path = os.fspath(path)
    if _is_url(path):
        import tensorflow as tf

        return bool(tf.io.gfile.exists(path)) and not tf.io.gfile.isdir(path)
    return os.path.isfile(path)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The content of a local file, or of a ``tf.io.gfile`` URL."""
    path = os.fspath(path)
    if _is_url(path):
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "rb") as f:
            data: bytes = f.read()
        return data
    return Path(path).read_bytes()


def parse_file(message_type: Any, path: str | os.PathLike[str], handle: str) -> Any:
    """``message_type`` parsed from the file ``path``.

    Raises:
        NotAModelError: the bytes are not such a message (names the file and ``handle``).
    """
    try:
        return message_type.FromString(read_bytes(path))
    except DecodeError as exc:
        raise NotAModelError(
            f"{os.fspath(path)} (from {handle}) is corrupt: {exc}. Download or export the model "
            "again.",
            handle=handle,
        ) from exc


def read_meta_graphs(path: str | os.PathLike[str], handle: str) -> list[Any]:
    """Every ``MetaGraphDef`` (graph variant) of the ``saved_model.pb`` in directory ``path``.

    Raises:
        NotAModelError: no binary ``saved_model.pb``, or one that does not parse.
    """
    import tensorflow as tf

    pb = join(path, protocol.SAVED_MODEL_PB)
    if not is_file(pb):
        raise NotAModelError(f"{os.fspath(path)} has no {protocol.SAVED_MODEL_PB}.", handle=handle)
    saved = parse_file(protos.SavedModelFile, pb, handle)
    try:
        return [tf.compat.v1.MetaGraphDef.FromString(raw) for raw in saved.meta_graphs]
    except DecodeError as exc:
        raise NotAModelError(f"{pb} (from {handle}) is corrupt: {exc}.", handle=handle) from exc


def write_saved_model(directory: Path, meta_graphs: Iterable[Any]) -> None:
    """Writes ``directory/saved_model.pb`` holding ``meta_graphs`` (``MetaGraphDef``s)."""
    saved_model = protos.SavedModelFile()
    for meta in meta_graphs:
        saved_model.meta_graphs.append(meta.SerializeToString())
    (directory / protocol.SAVED_MODEL_PB).write_bytes(saved_model.SerializeToString())


def checkpoint_prefix(path: str | os.PathLike[str]) -> str | None:
    """The variables checkpoint of the model directory ``path`` (``.../variables/variables``),
    or None when it has none."""
    prefix = join(path, "variables", "variables")
    return prefix if is_file(f"{prefix}.index") else None
