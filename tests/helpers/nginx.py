"""A real nginx (/usr/sbin/nginx) for tests: in the foreground, everything in a temp dir.

``with nginx(body) as url:`` runs nginx with ``body`` as the content of its ``http { }``
block (put ``listen {port};`` in it: the helper picks a free port); ``with
nginx(tfhub_snippet(root, upstreams)) as url:`` runs the shipped deploy/nginx/tfhub.conf
with its marked lines pointed at the storage ``root`` and the hub ``upstreams``
(``["127.0.0.1:8123", ...]``, e.g. several replicas for a load-balancer test). nginx is
always stopped on exit; its error log is in the exception if it does not start.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

NGINX = "/usr/sbin/nginx"
SNIPPET = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "tfhub.conf"


def tfhub_snippet(root: str | os.PathLike[str], upstreams: Sequence[str]) -> str:
    """The shipped snippet with its TFHUB-UPSTREAM, TFHUB-LISTEN and TFHUB-ROOT lines
    replaced (the listen line becomes ``listen 127.0.0.1:{port};``)."""
    text = SNIPPET.read_text()
    servers = "".join(f"    server {u};\n" for u in upstreams)
    replaced = {
        "TFHUB-UPSTREAM": servers.rstrip("\n"),
        "TFHUB-LISTEN": "    listen 127.0.0.1:{port};",
        "TFHUB-ROOT": f"        alias {Path(root).resolve()}/;",
    }
    for marker, line in replaced.items():
        text, count = re.subn(rf"^.*# {marker}\b.*$", lambda _m, s=line: s, text, flags=re.M)
        assert count == 1, f"{SNIPPET} lost its {marker} line"
    return text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def nginx(http_body: str, *, timeout: float = 10.0) -> Iterator[str]:
    """Runs nginx with ``http_body`` (``{port}`` is replaced by a free port); yields
    ``http://127.0.0.1:<port>``."""
    if not os.path.exists(NGINX):
        raise RuntimeError(f"{NGINX} is missing: apt-get install nginx")
    tmp = Path(tempfile.mkdtemp(prefix="tfhub-nginx-"))
    port = _free_port()
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    conf = (
        f"{user}daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log off;\n{temp_paths}"
        "    default_type application/octet-stream;\n"
        f"{http_body.replace('{port}', str(port))}\n"
        "}\n"
    )
    (tmp / "nginx.conf").write_text(conf)
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
                raise RuntimeError(
                    f"nginx did not start: {proc.stderr.read() if proc.stderr else ''}{log}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not listen in time") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful: finish the requests in flight
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(tmp, ignore_errors=True)
