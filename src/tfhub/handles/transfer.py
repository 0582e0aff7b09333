"""A pipelined download stream: network, decompression and unpacking on separate threads.

``PipelinedStream(raw)`` reads the response body on one thread and, when it is gzip, inflates
it on a second one (with ISA-L's inflate when the ``isal`` package is installed, about 3x
faster than zlib; zlib otherwise), handing the plain tar bytes to the caller's ``read()``.
Socket reads, inflation, hashing and file writes all release the GIL, so the three stages
overlap. Queues are bounded, so memory stays at a few chunks whatever the model size.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable
from typing import Any

__all__ = ["PipelinedStream", "inflate_module"]

_CHUNK = 1 << 20
_DEPTH = 16
_GZIP_MAGIC = b"\x1f\x8b"
_END = object()


def inflate_module() -> Any:
    """``isal.isal_zlib`` if installed, else ``zlib`` (same API)."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib
    return isal_zlib


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _pump(produce: Callable[[], bytes], out: queue.Queue[Any], stop: threading.Event) -> None:
    """Puts ``produce()`` results on ``out`` until it returns b"" (then _END) or fails."""
    try:
        while not stop.is_set():
            chunk = produce()
            if not chunk:
                break
            while not stop.is_set():
                try:
                    out.put(chunk, timeout=0.2)
                    break
                except queue.Full:
                    continue
        out.put(_END)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(_Failure(exc))


class _QueueReader:
    """``read()`` over a queue of chunks filled by another thread."""

    def __init__(self, source: queue.Queue[Any]) -> None:
        self._source = source
        self._buffer = b""
        self._done = False

    def _next(self) -> bytes:
        item = self._source.get()
        if item is _END:
            self._done = True
            return b""
        if isinstance(item, _Failure):
            self._done = True
            raise item.exc
        return item  # type: ignore[no-any-return]

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buffer) < n):
            chunk = self._next()
            if not chunk:
                break
            self._buffer += chunk
        if n < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data


class PipelinedStream:
    """The decompressed (if gzip) bytes of ``raw``, produced by background threads.

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
        head = reader.read(2)
        self.compressed = head == _GZIP_MAGIC
        if not self.compressed:
            reader._buffer = head + reader._buffer
            self._reader = reader
            return
        module = inflate_module()
        state = {"inflater": module.decompressobj(31), "pending": head}

        def inflate() -> bytes:
            while True:
                data = state["pending"] or reader.read(_CHUNK)
                state["pending"] = b""
                if not data:
                    tail: bytes = state["inflater"].flush()
                    if not state["inflater"].eof and not tail:
                        raise EOFError("compressed file ended before the end-of-stream marker")
                    return tail
                out: bytes = state["inflater"].decompress(data)
                if state["inflater"].eof and state["inflater"].unused_data:
                    # Another gzip member follows (concatenated gzip files are valid).
                    state["pending"] = state["inflater"].unused_data
                    state["inflater"] = module.decompressobj(31)
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

    def close(self) -> None:
        """Stops the threads (they exit within a fraction of a second)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
