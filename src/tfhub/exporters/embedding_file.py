"""Reading word-vector files (word2vec / GloVe) in one streaming pass.

Formats (see :func:`read_embedding_file`):

* **text**: one ``token v1 v2 ... vN`` per line, fields separated by ASCII whitespace (GloVe,
  fastText ``.vec``, word2vec ``-binary 0``). An optional first line ``<count> <dim>`` (two
  integers, the word2vec header) is recognised automatically; when present, the file must hold
  exactly ``count`` vectors of ``dim`` values. Blank lines are skipped.
* **binary** (word2vec ``-binary 1``): an ASCII header line ``<count> <dim>``, then per word the
  token's bytes, one space, ``dim`` little-endian float32 values and an optional ``"\\n"``.

Tokens are kept as the bytes the file holds (no decoding, so the odd invalid UTF-8 token of
real-world files is no problem). A token seen again is skipped with a warning that names its
line: the first vector wins. Values must be finite numbers.

Nothing is held per row in Python: vectors go through a fixed-size float32 buffer into a raw
file, tokens into a vocabulary file (one per line); only the set of tokens seen so far stays
in memory, to find duplicates.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from tfhub.errors import UsageError
from tfhub.progress import byte_bar

__all__ = ["EmbeddingTable", "iter_vector_chunks", "read_embedding_file"]

logger = logging.getLogger(__name__)

VOCAB_FILENAME = "tokens.txt"
_VECTORS_FILENAME = "vectors.f32"
_BUFFER_BYTES = 8 << 20  # per flush of parsed vectors
_READ_BLOCK = 1 << 20  # binary format: bytes read at a time
_MAX_TOKEN_BYTES = 1 << 16  # binary format: a longer "token" means the file is not word2vec
_MAX_DUPLICATE_WARNINGS = 5
_FLOAT32 = np.dtype("<f4")


@dataclass(frozen=True)
class EmbeddingTable:
    """The parsed content of an embedding file, as two files in a scratch directory.

    Attributes:
        vocab_path: the tokens in row order, one per line (``"\\n"``-terminated bytes).
        vectors_path: ``vocab_size * dim`` little-endian float32 values, row-major.
        vocab_size: the number of (distinct) tokens.
        dim: the number of values per vector.
        duplicates: how many later occurrences of a token were skipped.
    """

    vocab_path: Path
    vectors_path: Path
    vocab_size: int
    dim: int
    duplicates: int = 0


def _show(token: bytes) -> str:
    return repr(token.decode("utf8", "replace"))


class _Sink:
    """Deduplicates rows and writes them to the vocabulary and vectors files in chunks."""

    def __init__(self, source: str, scratch: Path, dim: int, progress: Any) -> None:
        self.source = source
        self.dim = dim
        self.vocab_path = scratch / VOCAB_FILENAME
        self.vectors_path = scratch / _VECTORS_FILENAME
        self._vocab = open(self.vocab_path, "wb")  # noqa: SIM115 (closed in close())
        self._vectors = open(self.vectors_path, "wb")  # noqa: SIM115
        rows = max(1, _BUFFER_BYTES // (4 * dim))
        self.buffer = np.empty((rows, dim), dtype=_FLOAT32)
        self._where: list[str] = []  # "line 12" per buffered row, for error messages
        self._tokens: list[bytes] = []
        self._seen: set[bytes] = set()
        self.size = 0
        self.duplicates = 0
        self._progress = progress

    def reserve(self, token: bytes, where: str) -> int | None:
        """The buffer row to write ``token``'s vector into, or None for a duplicate."""
        if not token:
            raise UsageError(f"{self.source}: {where}: empty token.")
        if b"\n" in token or b"\r" in token:
            raise UsageError(f"{self.source}: {where}: token {_show(token)} holds a line break.")
        if token in self._seen:
            self.duplicates += 1
            if self.duplicates <= _MAX_DUPLICATE_WARNINGS:
                logger.warning(
                    "%s: %s: duplicate token %s skipped (its first vector is kept).",
                    self.source,
                    where,
                    _show(token),
                )
            return None
        self._seen.add(token)
        if len(self._tokens) == len(self.buffer):
            self.flush()
        self._tokens.append(token)
        self._where.append(where)
        return len(self._tokens) - 1

    def flush(self, done_bytes: int | None = None) -> None:
        n = len(self._tokens)
        if n:
            rows = self.buffer[:n]
            finite = np.isfinite(rows).all(axis=1)
            if not finite.all():
                bad = int(np.argmin(finite))
                raise UsageError(
                    f"{self.source}: {self._where[bad]}: token {_show(self._tokens[bad])} has a "
                    "value that is not a finite number (nan or inf)."
                )
            self._vectors.write(rows.tobytes())
            self._vocab.write(b"".join(t + b"\n" for t in self._tokens))
            self.size += n
            self._tokens.clear()
            self._where.clear()
        if self._progress is not None and done_bytes is not None:
            self._progress.update(done_bytes - self._progress.n)

    def close(self) -> None:
        self._vocab.close()
        self._vectors.close()


def _parse_header(fields: list[bytes]) -> tuple[int, int] | None:
    if len(fields) != 2:
        return None
    try:
        count, dim = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return count, dim


def _check_header(source: str, count: int, dim: int) -> None:
    if count < 0 or dim <= 0:
        raise UsageError(
            f"{source}: line 1: header '{count} {dim}' needs a count >= 0 and a dimension >= 1."
        )


def _bad_value(fields: list[bytes]) -> bytes:
    for field in fields:
        try:
            float(field)
        except ValueError:
            return field
    return b""


def _read_text(path: Path, source: str, scratch: Path, progress: Any) -> EmbeddingTable:
    sink: _Sink | None = None
    header: tuple[int, int] | None = None
    first_line = 0  # the line that set the dimension
    rows = 0  # data lines read, duplicates included
    done = 0
    with open(path, "rb") as f:
        try:
            for lineno, line in enumerate(f, start=1):
                done += len(line)
                fields = line.split()
                if not fields:
                    continue
                if sink is None:  # the first line that is not blank
                    first_line = lineno
                    header = _parse_header(fields)
                    if header is not None:
                        _check_header(source, *header)
                        sink = _Sink(source, scratch, header[1], progress)
                        continue
                    if len(fields) < 2:
                        raise UsageError(
                            f"{source}: line {lineno}: token {_show(fields[0])} has no values."
                        )
                    sink = _Sink(source, scratch, len(fields) - 1, progress)
                rows += 1
                if header is not None and rows > header[0]:
                    raise UsageError(
                        f"{source}: line {lineno}: more vectors than the {header[0]} that the "
                        f"header (line {first_line}) announces."
                    )
                if len(fields) - 1 != sink.dim:
                    origin = "the header" if header else "line"
                    raise UsageError(
                        f"{source}: line {lineno}: inconsistent dimension: token "
                        f"{_show(fields[0])} has {len(fields) - 1} values, expected {sink.dim} "
                        f"as set by {origin} {first_line}."
                    )
                row = sink.reserve(fields[0], f"line {lineno}")
                if row is None:
                    continue
                try:
                    sink.buffer[row] = fields[1:]
                except ValueError:
                    raise UsageError(
                        f"{source}: line {lineno}: token {_show(fields[0])} has a non-numeric "
                        f"value {_show(_bad_value(fields[1:]))}."
                    ) from None
                if row == len(sink.buffer) - 1:
                    sink.flush(done)
            if sink is None:
                raise UsageError(f"{source}: no vectors found (the file is empty).")
            sink.flush(done)
        finally:
            if sink is not None:
                sink.close()
    if header is not None and rows != header[0]:
        raise UsageError(
            f"{source}: the header (line {first_line}) announces {header[0]} vectors but the "
            f"file holds {rows}; the file is truncated or its header is wrong."
        )
    return _finish(source, sink)


class _Blocks:
    """Reads a binary stream in blocks; hands out byte ranges without per-byte Python calls."""

    def __init__(self, f: IO[bytes], offset: int) -> None:
        self._f = f
        self.buf = b""
        self.pos = 0
        self._base = offset  # file offset of buf[0]

    @property
    def offset(self) -> int:
        return self._base + self.pos

    def more(self) -> bool:
        data = self._f.read(_READ_BLOCK)
        if not data:
            return False
        self._base += self.pos
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def token(self) -> bytes | None:
        """The next space-terminated token, after skipping newlines; None at end of file.

        Raises:
            ValueError: no space in the next ``_MAX_TOKEN_BYTES`` bytes.
        """
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] == 0x0A:
                self.pos += 1
            end = self.buf.find(b" ", self.pos)
            if end >= 0:
                token = self.buf[self.pos : end]
                self.pos = end + 1
                return token
            if len(self.buf) - self.pos > _MAX_TOKEN_BYTES:
                raise ValueError(f"no space within {_MAX_TOKEN_BYTES} bytes")
            if not self.more():
                return None

    def take(self, n: int) -> bytes | None:
        while len(self.buf) - self.pos < n:
            if not self.more():
                return None
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        return data

    def rest_is_blank(self) -> bool:
        while True:
            if self.buf[self.pos :].strip():
                return False
            self.pos = len(self.buf)
            if not self.more():
                return True


def _read_binary(path: Path, source: str, scratch: Path, progress: Any) -> EmbeddingTable:
    with open(path, "rb") as f:
        first = f.readline(256)
        if not first.strip():
            raise UsageError(f"{source}: no vectors found (the file is empty).")
        header = _parse_header(first.split())
        if header is None or not first.endswith(b"\n"):
            raise UsageError(
                f"{source}: line 1: expected the word2vec binary header '<count> <dim>', got "
                f"{_show(first[:60])}. Is this a text file? Then do not pass binary=True (or "
                "rename it from .bin)."
            )
        count, dim = header
        _check_header(source, count, dim)
        blocks = _Blocks(f, len(first))
        sink = _Sink(source, scratch, dim, progress)
        nbytes = 4 * dim
        try:
            for entry in range(1, count + 1):
                where = f"entry {entry} (byte {blocks.offset})"
                try:
                    token = blocks.token()
                except ValueError as exc:
                    raise UsageError(
                        f"{source}: {where}: {exc}: not a word2vec binary file, or the header's "
                        "dimension is wrong."
                    ) from None
                if token is None:
                    raise UsageError(
                        f"{source}: {where}: the file ends after {entry - 1} of the {count} "
                        "vectors its header announces (truncated file?)."
                    )
                data = blocks.take(nbytes)
                if data is None:
                    raise UsageError(
                        f"{source}: {where}: the file ends inside the vector of token "
                        f"{_show(token)} ({entry - 1} of {count} vectors complete; truncated "
                        "file?)."
                    )
                row = sink.reserve(token, where)
                if row is None:
                    continue
                sink.buffer[row] = np.frombuffer(data, dtype=_FLOAT32)
                if row == len(sink.buffer) - 1:
                    sink.flush(blocks.offset)
            sink.flush(blocks.offset)
            if not blocks.rest_is_blank():
                raise UsageError(
                    f"{source}: byte {blocks.offset}: data after the {count} vectors the header "
                    "announces; the header is wrong or this is not a word2vec binary file."
                )
        finally:
            sink.close()
    return _finish(source, sink)


def _finish(source: str, sink: _Sink) -> EmbeddingTable:
    if sink.size == 0:
        raise UsageError(f"{source}: no vectors found (the header says 0).")
    if sink.duplicates > _MAX_DUPLICATE_WARNINGS:
        logger.warning(
            "%s: %d duplicate tokens skipped in all (the first vector of each is kept).",
            source,
            sink.duplicates,
        )
    return EmbeddingTable(
        vocab_path=sink.vocab_path,
        vectors_path=sink.vectors_path,
        vocab_size=sink.size,
        dim=sink.dim,
        duplicates=sink.duplicates,
    )


def read_embedding_file(
    path: str | os.PathLike[str],
    scratch_dir: str | os.PathLike[str],
    *,
    binary: bool | None = None,
    progress: bool = False,
) -> EmbeddingTable:
    """Parses a word2vec / GloVe file into a vocabulary file and a raw float32 file.

    Args:
        path: the embedding file.
        scratch_dir: an existing directory to write ``tokens.txt`` and the vectors into.
        binary: the file is in the word2vec binary format; None: only if its name ends
            in ``.bin``.
        progress: show a progress bar (bytes read) on stderr.

    Returns:
        An :class:`EmbeddingTable` describing the written files.

    Raises:
        UsageError: the file is missing, empty or malformed; the message names the file and
            the line (text) or entry and byte offset (binary).

    Example:
        >>> table = read_embedding_file("glove.6B.50d.txt", "/tmp/scratch")
        >>> table.vocab_size, table.dim
        (400000, 50)
    """
    source = os.fspath(path)
    file = Path(source)
    if not file.is_file():
        raise UsageError(f"{source}: no such embedding file.")
    if binary is None:
        binary = file.suffix.lower() == ".bin"
    bar = byte_bar(f"Reading {file.name}", file.stat().st_size, enabled=progress)
    try:
        read = _read_binary if binary else _read_text
        return read(file, source, Path(scratch_dir), bar)
    except OSError as exc:
        raise UsageError(f"{source}: cannot read the embedding file: {exc}") from exc
    finally:
        if bar is not None:
            bar.close()


def iter_vector_chunks(table: EmbeddingTable, max_bytes: int = 8 << 20) -> Iterator[np.ndarray]:
    """Yields the vectors of ``table`` in row order, as float32 arrays of at most ``max_bytes``."""
    rows = max(1, max_bytes // (4 * table.dim))
    with open(table.vectors_path, "rb") as f:
        for _ in range(0, table.vocab_size, rows):
            chunk = np.fromfile(f, dtype=_FLOAT32, count=rows * table.dim)
            yield chunk.reshape(-1, table.dim)
