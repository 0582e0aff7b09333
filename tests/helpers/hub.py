"""The real hub server on 127.0.0.1, port 0: `tfhub serve` as a subprocess (:class:`HubServer`)
or the same app served in a thread of the test process (:class:`InProcessHub`); publishing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.helpers import python_env

TOKEN = "s3cret-token"

DOCS = """# Module test/mul/1
Multiplies its input by a trained scalar.

<!-- module-type: text-embedding -->
<!-- fine-tunable: true -->
<!-- format: saved_model_2 -->
<!-- license: mit -->
<!-- network-architecture: scalar -->
<!-- language: en -->

## Overview
It is *tiny*. <script>alert(1)</script>
"""


class HubServer:
    """``tfhub serve ROOT`` in its own process (token :data:`TOKEN`), ready once built."""

    def __init__(self, root: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        full_env = python_env(
            {"TFHUB_PUBLISH_TOKEN": TOKEN, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tfhub.cli", "serve", root, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if " at http://" not in line:
            self.stop()
            raise RuntimeError(f"tfhub serve did not start: {line}{self.logs()}")
        self.url = line.strip().rsplit(" at ", 1)[1]
        self._stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("tfhub serve did not answer /healthz")

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def logs(self) -> str:
        return "".join(getattr(self, "_stderr", []))

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """The logs once they contain ``text`` (they arrive through a pipe, a little after the
        response), or as they are after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.logs()

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class InProcessHub:
    """The hub's app (``create_app``) served by uvicorn on 127.0.0.1 (port 0) in a daemon
    thread of this process; publishing with :data:`TOKEN` unless ``tokens`` say otherwise.
    Stopping it closes its catalog (the app's lifespan).

    For tests where the process boundary is not what is tested: no server process to start,
    and the publish validator's warm parent (one per process, it imports TensorFlow) is shared
    by every in-process hub of the xdist worker. Server settings come from this process's
    environment, so tests that configure the server through ``env`` use :class:`HubServer`.
    """

    def __init__(self, root: str | os.PathLike[str], tokens: Any = None, **app: Any) -> None:
        """``app``: more arguments of ``create_app`` (e.g. ``max_upload_bytes``)."""
        import uvicorn

        from tfhub.server.app import create_app

        self.root = os.fspath(root)
        tokens = tokens if tokens is not None else _publish_token()
        self.app = create_app(self.root, tokens=tokens, **app)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on")
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the in-process hub over {self.root} did not start")
            time.sleep(0.02)

    def __enter__(self) -> InProcessHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _publish_token() -> Any:
    """The server's tokens when only ``TFHUB_PUBLISH_TOKEN`` is :data:`TOKEN` (as HubServer)."""
    import pytest

    from tfhub.server.access import Tokens

    with pytest.MonkeyPatch.context() as env:
        env.delenv("TFHUB_TOKEN_FILE", raising=False)
        env.delenv("TFHUB_PRIVATE_NAMESPACES", raising=False)
        env.setenv("TFHUB_PUBLISH_TOKEN", TOKEN)
        return Tokens.from_env()


def publish(url: str, name: str, archive: bytes, *, token: str | None = TOKEN, docs=None):
    """POSTs (multipart) or PUTs (raw) an archive; returns the response."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if docs is None:
        return requests.put(f"{url}/api/models/{name}", data=archive, headers=headers, timeout=300)
    files = {"model": ("model.tar.gz", archive, "application/gzip"), "docs": (None, docs)}
    return requests.post(f"{url}/api/models/{name}", files=files, headers=headers, timeout=300)


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
