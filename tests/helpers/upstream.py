"""An emulation, on 127.0.0.1, of the chain a legacy handle goes through on the internet.

One threaded HTTP server acts as a forward proxy for three hosts, so that handles keep their
real host names (``http://tfhub.dev/...``) and both tfhub and ``tensorflow_hub`` resolve them
with their ordinary code, only with ``http_proxy`` pointing here (:meth:`Upstream.env`):

* ``tfhub.dev`` answers ``GET /<publisher>/<model>/<version>?tf-hub-format=compressed`` with
  ``302`` to the Kaggle long form of the model, the query kept
  (``https://www.kaggle.com/models/<owner>/<model>/frameworks/<Framework>/variations/<var>
  /versions/<v>?tf-hub-format=compressed``; Kaggle spells frameworks with capitals, e.g.
  ``TensorFlow2``).
* ``www.kaggle.com`` answers either Kaggle form of a model (any case) with
  ``?tf-hub-format=compressed`` by ``302`` to a freshly signed storage URL; without the query
  it answers an HTML page (200), as the website does.
* ``storage.googleapis.com`` serves the tarball only for a URL it signed, compared byte for
  byte with the query it issued (so a client that decodes and re-encodes the query - ``%7E``
  to ``~``, reordering - fails with ``403 SignatureDoesNotMatch``), refuses any request that
  carries an ``Authorization`` header (``400``, as GCS does when a signed URL comes with
  credentials) and answers ``403 ExpiredToken`` for an expired signature, with GCS's XML body.

What the clients do, taken from their source:

* ``tensorflow_hub`` 0.16.1 (installed in the venv): ``compressed_module_resolver.py`` -
  ``HttpCompressedFileResolver`` appends ``tf-hub-format=compressed`` with
  ``HttpResolverBase._append_format_query`` (``resolver.py``: ``parse_qsl`` + ``urlencode``)
  and opens it with ``urllib.request.urlopen``, which follows redirects across hosts itself;
  the cache directory is ``sha1(handle)`` under ``TFHUB_CACHE_DIR`` or
  ``<tempdir>/tfhub_modules`` (``resolver.tfhub_cache_dir(use_temp=True)``), with
  ``<sha1>.descriptor.txt`` beside it (``resolver._write_module_descriptor_file``). Handles
  of ``https://hub.tensorflow.google.cn/`` are fetched directly from
  ``https://gcs.tensorflow.google.cn/tfhub-modules/<path>.tar.gz``.
* ``kagglehub`` (Kaggle/kagglehub on GitHub): ``src/kagglehub/config.py`` - the cache is
  ``KAGGLEHUB_CACHE`` or ``~/.cache/kagglehub``; ``src/kagglehub/cache.py`` - a model version
  lives in ``models/<owner>/<model>/<framework>/<variation>/<version>/`` with the marker file
  ``models/<owner>/<model>/<framework>/<variation>/<version>.complete`` once complete;
  ``src/kagglehub/handle.py`` - handles ``owner/model/framework/variation[/version]``.

API (small on purpose; the mirror tests reuse it)::

    with Upstream() as up:
        up.add("google/mul/1", "google/mul/tensorFlow2/mul/1", tarball_bytes)
        up.tfhub_handle("google/mul/1")      # "http://tfhub.dev/google/mul/1"
        up.kaggle_handle("google/mul/tensorFlow2/mul/1", long=True)
        env = up.env()                       # http_proxy & co for a child or monkeypatch
        up.expire_next(1)                    # the next signed URL is already expired
        up.count("storage.googleapis.com")   # requests that reached a host
        up.log                               # every request: Request(host, target, headers)
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field

TFHUB = "tfhub.dev"
KAGGLE = "www.kaggle.com"
STORAGE = "storage.googleapis.com"
_BUCKET = "/kaggle-tfhub-models-compressed"

_XML = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{}</Code><Message>{}</Message></Error>"


@dataclass(frozen=True)
class Request:
    """One request the emulation received: the host it was for, the request target as sent
    (absolute form through a proxy) and its headers (names lower-cased)."""

    host: str
    target: str
    headers: dict[str, str]


@dataclass
class _Model:
    tfhub: str  # publisher/model/version
    kaggle: tuple[str, str, str, str, str]  # owner, model, Framework, variation, version
    archive: bytes


@dataclass
class _State:
    models: list[_Model] = field(default_factory=list)
    issued: dict[str, tuple[str, bool]] = field(default_factory=dict)  # path -> (query, expired)
    expire: int = 0
    log: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        host = (parts.netloc or self.headers.get("Host", "")).lower().split(":")[0]
        target = self.path
        state = self.server.state
        with state.lock:
            state.log.append(Request(host, target, {k.lower(): v for k, v in self.headers.items()}))
        query = parts.query
        if host == TFHUB:
            self._tfhub(parts.path, query)
        elif host == KAGGLE:
            self._kaggle(parts.path, query)
        elif host == STORAGE:
            self._storage(parts.path, target.split("?", 1)[1] if "?" in target else "")
        else:
            self._send(502, b"the emulation serves only tfhub.dev, kaggle and storage")

    def _send(self, status: int, body: bytes, kind: str = "text/plain", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _find(self, pred) -> _Model | None:  # type: ignore[no-untyped-def]
        return next((m for m in self.server.state.models if pred(m)), None)

    def _tfhub(self, path: str, query: str) -> None:
        model = self._find(lambda m: m.tfhub == path.strip("/"))
        if model is None:
            self._send(404, b"Not found")
            return
        owner, name, fw, var, ver = model.kaggle
        location = (
            f"http://{KAGGLE}/models/{owner}/{name}/frameworks/{fw}/variations/{var}/versions/{ver}"
        )
        self._send(302, b"", Location=location + (f"?{query}" if query else ""))

    def _kaggle(self, path: str, query: str) -> None:
        seg = [s.lower() for s in path.strip("/").split("/")]
        if len(seg) == 9 and seg[0] == "models":
            key = (seg[1], seg[2], seg[4], seg[6], seg[8])
        elif len(seg) == 6 and seg[0] == "models":
            key = (seg[1], seg[2], seg[3], seg[4], seg[5])
        else:
            key = ("",) * 5
        model = self._find(lambda m: tuple(s.lower() for s in m.kaggle) == key)
        if model is None:
            self._send(404, b"<html>Not found</html>", "text/html")
        elif ("tf-hub-format", "compressed") not in urllib.parse.parse_qsl(query):
            self._send(200, b"<html>a model page</html>", "text/html")
        else:
            self._send(302, b"", Location=self.server.sign(model))

    def _storage(self, path: str, raw_query: str) -> None:
        state = self.server.state
        if "authorization" in {k.lower() for k in self.headers}:
            body = _XML.format("InvalidArgument", "Multiple authentication mechanisms")
            self._send(400, body.encode(), "application/xml")
            return
        with state.lock:
            issued = state.issued.get(path)
        if issued is None or not hmac.compare_digest(issued[0], raw_query):
            body = _XML.format(
                "SignatureDoesNotMatch",
                "Access denied. The request signature we calculated does not match the "
                "signature you provided.",
            )
            self._send(403, body.encode(), "application/xml")
            return
        if issued[1]:
            body = _XML.format("ExpiredToken", "The provided token has expired.")
            self._send(403, body.encode(), "application/xml")
            return
        name = path.removeprefix(_BUCKET + "/").removesuffix(".tar.gz").split("/", 1)[1]
        model = self._find(lambda m: "/".join(m.kaggle).lower() == name)
        assert model is not None
        self._send(200, model.archive, "application/x-tar")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = _State()

    def sign(self, model: _Model) -> str:
        """A fresh signed URL of ``model``'s archive, as GCS V4 signing shapes it."""
        state = self.state
        path = f"{_BUCKET}/{secrets.token_hex(4)}/{'/'.join(model.kaggle).lower()}.tar.gz"
        params = (
            "X-Goog-Algorithm=GOOG4-RSA-SHA256"
            "&X-Goog-Credential=kaggle-models%40kaggle.iam.gserviceaccount.com%2F20261127"
            "%2Fauto%2Fstorage%2Fgoog4_request"
            "&X-Goog-Date=20261127T120000Z&X-Goog-Expires=600&X-Goog-SignedHeaders=host"
            "&response-content-disposition=attachment%3B%20filename%3Dmodel%7E1.tar.gz"
        )
        signature = hmac.new(state.secret, (path + params).encode(), hashlib.sha256).hexdigest()
        query = f"{params}&X-Goog-Signature={signature}"
        with state.lock:
            expired = state.expire != 0
            if state.expire > 0:
                state.expire -= 1
            state.issued[path] = (query, expired)
        return f"http://{STORAGE}{path}?{query}"


class Upstream:
    """The emulated tfhub.dev → Kaggle → signed storage chain (see the module docstring)."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Upstream:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def _state(self) -> _State:
        assert self._server is not None, "start() the emulation first"
        return self._server.state

    @property
    def proxy(self) -> str:
        """``http://127.0.0.1:<port>``: the proxy every emulated host is reached through."""
        assert self._server is not None, "start() the emulation first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Environment variables that send http:// requests for the emulated hosts here (and
        nothing for 127.0.0.1/localhost, so local hubs are still reached directly)."""
        return {
            "http_proxy": self.proxy,
            "HTTP_PROXY": self.proxy,
            "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def add(self, tfhub_path: str, kaggle_path: str, archive: bytes) -> None:
        """Serves ``archive`` (a model tarball) as ``http://tfhub.dev/<tfhub_path>`` (e.g.
        ``google/mul/1``) redirecting to the Kaggle model ``kaggle_path``
        (``owner/model/Framework/variation/version``, case as Kaggle spells it)."""
        parts = tuple(kaggle_path.strip("/").split("/"))
        if len(parts) != 5:
            raise ValueError(f"kaggle_path needs 5 parts, got {kaggle_path!r}")
        with self._state.lock:
            self._state.models.append(_Model(tfhub_path.strip("/"), parts, archive))  # type: ignore[arg-type]

    @staticmethod
    def tfhub_handle(tfhub_path: str) -> str:
        return f"http://{TFHUB}/{tfhub_path.strip('/')}"

    @staticmethod
    def kaggle_handle(kaggle_path: str, *, long: bool = False) -> str:
        """The short form ``http://www.kaggle.com/models/o/m/f/v/n``, or the long form."""
        o, m, f, v, n = kaggle_path.strip("/").split("/")
        if long:
            return f"http://{KAGGLE}/models/{o}/{m}/frameworks/{f}/variations/{v}/versions/{n}"
        return f"http://{KAGGLE}/models/{o}/{m}/{f}/{v}/{n}"

    def expire_next(self, n: int = 1) -> None:
        """The next ``n`` signed URLs are issued already expired (``n < 0``: all of them from
        now on; ``0``: none)."""
        with self._state.lock:
            self._state.expire = n

    @property
    def log(self) -> list[Request]:
        """Every request received so far, in order."""
        with self._state.lock:
            return list(self._state.log)

    def count(self, host: str) -> int:
        """How many requests reached ``host`` (``tfhub.dev``, ``www.kaggle.com``,
        ``storage.googleapis.com``)."""
        return sum(1 for r in self.log if r.host == host)

    def clear_log(self) -> None:
        with self._state.lock:
            self._state.log.clear()
