"""A pipelined download stream: network, decompression and unpacking on separate threads.

``PipelinedStream(raw)`` reads the response body on one thread and, when it is compressed,
decompresses it on a second one (gzip with ISA-L's inflate when the ``isal`` package is
installed, about 3x faster than zlib; zlib otherwise; bzip2 and xz with the standard library),
handing the plain tar bytes to the caller's ``read()``/``read_chunk()``.
Socket reads, inflation, hashing and file writes all release the GIL, so the three stages
overlap. Queues are bounded, so memory stays at a few chunks whatever the model size.
"""

from __future__ import annotations

import bz2
import collections
import lzma
import queue
import threading
import zlib
from collections.abc import Callable
from typing import Any

__all__ = ["CorruptStreamError", "PipelinedStream", "inflate_module"]

_CHUNK = 1 << 20
_DEPTH = 16
_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_END = object()


def inflate_module() -> Any:
    """``isal.isal_zlib`` if installed, else ``zlib`` (same API)."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib
    return isal_zlib


class CorruptStreamError(Exception):
    """The data is not what it claims to be (a corrupt compressed stream or tar header)."""


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(out: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Puts ``item`` unless the consumer has stopped (never blocks forever)."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _pump(produce: Callable[[], bytes], out: queue.Queue[Any], stop: threading.Event) -> None:
    """Puts ``produce()`` results on ``out`` until it returns b"" (then _END) or fails."""
    try:
        while not stop.is_set():
            chunk = produce()
            if not chunk or not _put(out, chunk, stop):
                break
        _put(out, _END, stop)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        _put(out, _Failure(exc), stop)


class _QueueReader:
    """``read()`` over a queue of chunks filled by another thread, copying as little as
    possible: a read that a queued chunk satisfies whole returns that very chunk."""

    def __init__(self, source: queue.Queue[Any]) -> None:
        self._source = source
        self._chunks: collections.deque[bytes] = collections.deque()
        self._offset = 0  # into self._chunks[0]
        self._available = 0
        self._done = False

    def _pull(self) -> bool:
        if self._done:
            return False
        item = self._source.get()
        if item is _END:
            self._done = True
            return False
        if isinstance(item, _Failure):
            self._done = True
            raise item.exc
        self._chunks.append(item)
        self._available += len(item)
        return True

    def unread(self, data: bytes) -> None:
        """Puts ``data`` back in front of the stream."""
        if self._offset:
            self._chunks[0] = self._chunks[0][self._offset :]
            self._offset = 0
        self._chunks.appendleft(data)
        self._available += len(data)

    def read_chunk(self) -> bytes:
        """Whatever is next, in the size it arrived (b"" at the end)."""
        if not self._chunks and not self._pull():
            return b""
        chunk = self._chunks.popleft()
        if self._offset:
            chunk, self._offset = chunk[self._offset :], 0
        self._available -= len(chunk)
        return chunk

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or self._available < n) and self._pull():
            pass
        if n < 0 or n > self._available:
            n = self._available
        if n == 0:
            return b""
        first = self._chunks[0]
        if self._offset == 0 and len(first) == n:
            self._chunks.popleft()
            self._available -= n
            return first
        parts = []
        need = n
        while need:
            chunk = self._chunks[0]
            take = min(need, len(chunk) - self._offset)
            parts.append(memoryview(chunk)[self._offset : self._offset + take])
            need -= take
            if self._offset + take == len(chunk):
                self._chunks.popleft()
                self._offset = 0
            else:
                self._offset += take
        self._available -= n
        return parts[0].tobytes() if len(parts) == 1 else b"".join(parts)


def _decompressor(head: bytes) -> Callable[[], Any] | None:
    """A factory of streaming decompressors for the format ``head`` starts with, or None."""
    if head.startswith(_GZIP_MAGIC):
        module = inflate_module()
        return lambda: module.decompressobj(31)
    if head.startswith(_BZ2_MAGIC):
        return bz2.BZ2Decompressor
    if head.startswith(_XZ_MAGIC):
        return lzma.LZMADecompressor
    return None


def _needs_input(dec: Any) -> bool:
    """Whether a decompressor has produced all it can from the input given so far."""
    needs = getattr(dec, "needs_input", None)  # bz2 / lzma
    return True if needs is None else bool(needs)


class PipelinedStream:
    """The decompressed bytes of ``raw`` (gzip, bzip2, xz or plain), produced by background
    threads.

    Args:
        raw: the response body (``read(n)``).
        on_bytes: called with the size of each chunk read from the network (progress).
    """

    def __init__(self, raw: Any, on_bytes: Callable[[int], None] | None = None) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        network: queue.Queue[Any] = queue.Queue(_DEPTH)

        def fetch() -> bytes:
            chunk: bytes = raw.read(_CHUNK)
            if chunk and on_bytes is not None:
                on_bytes(len(chunk))
            return chunk

        self._start(fetch, network)
        reader = _QueueReader(network)
        head = reader.read(len(_XZ_MAGIC))
        reader.unread(head)
        factory = _decompressor(head)
        self.compressed = factory is not None
        if factory is None:
            self._reader = reader
            return
        state: dict[str, Any] = {"dec": factory(), "input": b""}
        zlib_error = inflate_module().error

        def inflate() -> bytes:
            # Output is produced _CHUNK bytes at a time (max_length), so a stream that
            # inflates enormously (zeros, or a bomb) never makes one huge chunk.
            while True:
                dec = state["dec"]
                if dec.eof:
                    # One stream ended; another may follow (concatenated members are valid).
                    rest = dec.unused_data or state["input"] or reader.read_chunk()
                    if not rest:
                        return b""
                    dec = state["dec"] = factory()
                    state["input"] = rest
                data = state["input"]
                if not data and _needs_input(dec):
                    data = reader.read_chunk()
                    if not data:
                        tail: bytes = dec.flush() if hasattr(dec, "flush") else b""
                        if tail:
                            return tail
                        raise EOFError("compressed file ended before the end-of-stream marker")
                try:
                    out: bytes = dec.decompress(data, _CHUNK)
                except (zlib_error, OSError, EOFError, ValueError) as exc:
                    raise CorruptStreamError(f"corrupt compressed data ({exc})") from exc
                # zlib keeps input it has not used yet in unconsumed_tail; bz2/lzma buffer it.
                state["input"] = getattr(dec, "unconsumed_tail", b"")
                if out:
                    return out

        plain: queue.Queue[Any] = queue.Queue(_DEPTH)
        self._start(inflate, plain)
        self._reader = _QueueReader(plain)

    def _start(self, produce: Callable[[], bytes], out: queue.Queue[Any]) -> None:
        thread = threading.Thread(target=_pump, args=(produce, out, self._stop), daemon=True)
        thread.start()
        self._threads.append(thread)

    def read(self, n: int = -1) -> bytes:
        return self._reader.read(n)

    def read_chunk(self) -> bytes:
        """The next piece of the plain stream, in whatever size it was produced (b"" at the
        end): no copy is made."""
        return self._reader.read_chunk()

    def close(self) -> None:
        """Stops the threads (they exit within a fraction of a second)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
