"""A download cut on its presigned URL resumes: a hub on S3 (moto's server) redirects archives
and blobs to presigned URLs, and a TCP proxy in front of the storage breaks the first large
response part-way. tfhub's archive path and its fast path both finish the download with a
range request for the rest (through the hub again, which redirects again) and install exactly
the published files."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path

import boto3
import numpy as np
import pytest

import tfhub as hub
from tests.helpers.hub import HubServer, tree
from tfhub.server.client import publish_to_root


class _CuttingProxy:
    """Forwards 127.0.0.1:<port> to ``target``; while armed, the first response that goes past
    ``cut_after`` bytes is broken off there (both sockets closed), once per arming."""

    def __init__(self, target: tuple[str, int], cut_after: int) -> None:
        self.target, self.cut_after = target, cut_after
        self.armed, self.cuts = True, 0
        self.sent = bytearray()  # everything the clients sent (to find the resumes' ranges)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=30)
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(1 << 16):
                with self._lock:
                    self.sent += data
                upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        passed = 0
        with contextlib.suppress(OSError):
            while data := upstream.recv(1 << 16):
                with self._lock:
                    cut = self.armed and passed + len(data) > self.cut_after
                    if cut:
                        self.armed, self.cuts = False, self.cuts + 1
                if cut:
                    client.sendall(data[: self.cut_after - passed])
                    break
                passed += len(data)
                client.sendall(data)
        for sock in (client, upstream):
            sock.close()

    def resumed_ranges(self) -> list[int]:
        """The first bytes of the ranges asked for after a cut (``Range: bytes=N-``, N > 0)."""
        with self._lock:
            text = self.sent.decode("latin-1")
        return [int(n) for n in re.findall(r"(?im)^range: bytes=([1-9][0-9]*)-", text)]

    def close(self) -> None:
        self._listener.close()


WEIGHTS = np.random.default_rng(0).standard_normal(1_500_000).astype(np.float32)  # 6 MB
CUT = 5_000_000  # bytes of a response: inside the archive, inside the second 4 MiB block


@pytest.fixture(scope="module")
def big_model(tmp_path_factory) -> Path:
    """A SavedModel with 6 MB of weights that do not compress (the archive stays > CUT)."""
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(WEIGHTS)

        @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
        def __call__(self, x):
            return tf.reduce_sum(self.w) * x

    path = tmp_path_factory.mktemp("big") / "model"
    tf.saved_model.save(Scale(), str(path))
    return path


def test_downloads_cut_on_the_presigned_url_resume(s3_endpoint, big_model, tmp_path):
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="hub")
    record = publish_to_root(big_model, "acme/big/1", root="s3://hub/models")
    assert record["archive"]["size"] > CUT
    host, port = s3_endpoint.removeprefix("http://").split(":")
    proxy = _CuttingProxy((host, int(port)), cut_after=CUT)
    # The hub reaches the bucket through the proxy, so its presigned URLs point at it too.
    env = {"TFHUB_REDIRECT_DOWNLOADS": "1", "AWS_ENDPOINT_URL": proxy.url}
    try:
        with HubServer("s3://hub/models", env=env) as srv:
            url = f"{srv.url}/acme/big/1"
            # The archive path (fast path off): the tarball through the 307, cut, resumed
            # where it broke (the whole archive is still checked against the stated sha256).
            with pytest.MonkeyPatch.context() as m:
                m.setenv("TFHUB_FAST_PATH", "0")
                m.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tar-cache"))
                assert tree(Path(hub.resolve(url))) == tree(big_model)
            assert proxy.cuts == 1
            [resumed] = proxy.resumed_ranges()
            assert CUT - 4096 < resumed < CUT  # the response's head came before the body
            # The fast path: the variables blob through its 307, cut in its second block,
            # resumed at that block (the first one was verified and kept).
            proxy.armed = True
            assert tree(Path(hub.resolve(url))) == tree(big_model)
            assert proxy.cuts == 2
            assert proxy.resumed_ranges()[1:] == [4 << 20]
            total = float(hub.load(url)(np.float32(1.0)))
            assert total == pytest.approx(float(WEIGHTS.sum()), rel=1e-4)
    finally:
        proxy.close()
