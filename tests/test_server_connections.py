"""Idle and slow connections cannot starve `tfhub serve` (real sockets, a real subprocess).

127.0.0.2 and 127.0.0.3 are loopback addresses on Linux: they stand for other client
addresses than 127.0.0.1.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers.hub import TOKEN, HubServer

HEADER_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory):
    srv = HubServer(
        str(tmp_path_factory.mktemp("store")),
        env={"TFHUB_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "TFHUB_MAX_CONNECTIONS_PER_CLIENT": "64"},
    )
    try:
        yield srv
    finally:
        srv.stop()


def _connect(url: str, source: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect((parts.hostname, parts.port))
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds (whatever it sends first)."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def _answered_fast(url: str, count: int = 5) -> list[float]:
    times = []
    for _ in range(count):
        start = time.monotonic()
        resp = requests.get(f"{url}/api/models", timeout=10)
        assert resp.status_code == 200, resp.text
        times.append(time.monotonic() - start)
    return times


def test_a_thousand_idle_connections_from_one_address_leave_others_answered(hub_server):
    idle = []
    try:
        for i in range(1000):  # half of them send part of a request line, then nothing
            sock = _connect(hub_server.url, "127.0.0.2")
            if i % 2:
                sock.sendall(b"GET /api/mod")
            idle.append(sock)
        assert max(_answered_fast(hub_server.url)) < 1.0
        # The address's cap: at most 64 of them are held, the rest were refused and closed.
        held = [s for s in idle if not _closed_by_server(s, 0.01)]
        assert len(held) <= 64
        # The held ones are closed once they miss the request-head deadline.
        time.sleep(HEADER_TIMEOUT)
        assert all(_closed_by_server(s, 3.0) for s in held)
        assert max(_answered_fast(hub_server.url)) < 1.0
    finally:
        for sock in idle:
            sock.close()


def test_the_per_address_cap_answers_503_and_spares_other_addresses(hub_server):
    held = [_connect(hub_server.url, "127.0.0.3") for _ in range(64)]
    try:
        time.sleep(0.2)
        extra = _connect(hub_server.url, "127.0.0.3")
        extra.settimeout(5)
        answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503") and b"Too many connections" in answer
        extra.close()
        assert max(_answered_fast(hub_server.url)) < 1.0  # 127.0.0.1 is not affected
    finally:
        for sock in held:
            sock.close()


def test_a_request_head_sent_byte_by_byte_is_cut_at_the_deadline(hub_server):
    sock = _connect(hub_server.url, "127.0.0.1")
    start = time.monotonic()
    try:
        head = b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        for byte in head:  # a slowloris: always another byte, never the end of the head
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if time.monotonic() - start > HEADER_TIMEOUT + 5:
                break
            time.sleep(0.2)
        assert time.monotonic() - start < HEADER_TIMEOUT + 3
        assert _closed_by_server(sock, 1.0)
    finally:
        sock.close()


def test_keep_alive_connections_get_the_same_deadline_for_their_next_request(hub_server):
    sock = _connect(hub_server.url, "127.0.0.1")
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /heal")  # the next request never completes
        start = time.monotonic()
        assert _closed_by_server(sock, HEADER_TIMEOUT + 3)
        assert time.monotonic() - start >= HEADER_TIMEOUT - 0.5
    finally:
        sock.close()


def test_a_slow_upload_body_is_not_cut_by_the_request_head_deadline(hub_server):
    """A complete request head stops the clock: a long upload keeps going."""
    body = b"not a tarball" * 100
    sock = _connect(hub_server.url, "127.0.0.1")
    try:
        sock.sendall(
            (
                f"PUT /api/models/test/slow/1 HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
        )
        for i in range(0, len(body), len(body) // 5):  # over more than the deadline
            time.sleep((HEADER_TIMEOUT + 1) / 5)
            sock.sendall(body[i : i + len(body) // 5])
        sock.settimeout(60)
        answer = b""
        while b"not a valid model archive" not in answer and (chunk := sock.recv(65536)):
            answer += chunk  # the head and the body may come in separate packets
        assert answer.startswith(b"HTTP/1.1 422") and b"not a valid model archive" in answer
    finally:
        sock.close()
