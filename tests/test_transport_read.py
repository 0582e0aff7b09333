"""transport.read_some: identity bodies come straight from the socket, encoded ones decoded."""

from __future__ import annotations

import gzip
import os

from tfhub import transport
from tfhub.testing import HostingServer, respond

BODY = os.urandom(300_000)
ROUTES = {
    "plain": respond(BODY, headers=(("Content-Type", "application/octet-stream"),)),
    "identity": respond(BODY, headers=(("Content-Encoding", "identity"),)),
    "gzip": respond(gzip.compress(BODY), headers=(("Content-Encoding", "gzip"),)),
}


class _Counting(transport.TransferGuard):
    total = 0

    def received(self, n: int) -> None:
        self.total += n
        super().received(n)


def _read_all(url: str, *, decode: bool) -> tuple[bytes, int, int]:
    """The body of ``url`` read with read_some; what the guard counted; the largest read."""
    guard = _Counting("h", url, min_rate=0, window=60, deadline=None)
    with transport.session() as sess, sess.get(url, stream=True, timeout=10) as resp:
        resp.raw.decode_content = decode
        parts = []
        while chunk := transport.read_some(resp.raw, 64 << 10, guard):
            parts.append(chunk)
    return b"".join(parts), guard.total, max(len(p) for p in parts)


def test_identity_bodies_are_read_exactly_in_bounded_reads():
    with HostingServer(ROUTES) as srv:
        for name in ("plain", "identity"):
            data, counted, largest = _read_all(srv.url(name), decode=True)
            assert data == BODY, name
            assert counted == len(BODY), name
            assert largest <= 64 << 10, name


def test_encoded_bodies_are_still_decoded_and_raw_reads_stay_raw():
    with HostingServer(ROUTES) as srv:
        data, counted, _ = _read_all(srv.url("gzip"), decode=True)
        assert data == BODY and counted == len(BODY)
        raw, counted, _ = _read_all(srv.url("gzip"), decode=False)
        assert gzip.decompress(raw) == BODY and raw != BODY and counted == len(raw)
