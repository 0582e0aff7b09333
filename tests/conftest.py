"""Shared fixtures: an isolated cache per test, real SavedModels, a real local HTTP server.

Helpers (functions, classes, constants) live in :mod:`tests.helpers`; nothing imports this file.
Hypothesis runs the ``ci`` profile (thorough) when ``CI`` is set, else ``dev`` (quick);
``HYPOTHESIS_PROFILE=ci`` picks one explicitly.
"""

from __future__ import annotations

import os

# Before any test module imports TensorFlow, whose own SQLite (no FTS5) would otherwise serve
# the in-process hubs' catalogs (tfhub imports sqlite3 for the same reason; see README).
import sqlite3  # noqa: F401
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_HYPOTHESIS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=300, **_HYPOTHESIS)
settings.register_profile("dev", max_examples=40, **_HYPOTHESIS)
_ON_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _ON_CI else "dev"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """User data (a hub's default SQLite catalog for a bucket) in this run's temp directory,
    not in the home directory (set before any module's fixtures start hubs)."""
    data = tmp_path_factory.mktemp("xdg-data")
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(data)
    yield data
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache and no TFHUB_* settings from the outside."""
    for name in list(os.environ):
        if name.startswith("TFHUB_") or name.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        ):
            monkeypatch.delenv(name, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    monkeypatch.setenv("TFHUB_HTTP_TIMEOUT", "10")
    return cache


@pytest.fixture()
def cache_dir(_isolated_env: Path) -> Path:
    return _isolated_env


class _LazyModels(Mapping[str, Path]):
    """Name -> model directory; each model is built on first use (a worker whose files need
    only ``mul`` never pays for the others), then kept for the session."""

    def __init__(self, root: Path, builders: dict[str, Callable[[Path], Path]]) -> None:
        self._root, self._builders = root, builders
        self._built: dict[str, Path] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Path:
        with self._lock:
            if name not in self._built:
                self._built[name] = self._builders[name](self._root / name)
            return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Path]:
    """Real models, each built once per session when first used: mul, flag, text, dict (TF2)
    and tf1 (TF1 Hub)."""
    from tests.helpers import models as m

    builders = {
        "mul": m.save_mul,
        "flag": m.save_training_flag,
        "text": m.save_text_embedding,
        "dict": m.save_dict_model,
        "tf1": m.save_tf1_module,
    }
    return _LazyModels(tmp_path_factory.mktemp("models"), builders)


@pytest.fixture(scope="session")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The real all-MiniLM-L6-v2 conversion, once per run for every file and xdist worker
    (``tests.helpers.shared``): ``{"dir", "code", "stdout", "stderr"}``. Read-only: copy it
    to change it."""
    from tests.helpers.shared import minilm_export

    return minilm_export(tmp_path_factory)


@pytest.fixture()
def server(models: Mapping[str, Path]) -> Iterator[object]:
    """A hosting-protocol server (``tfhub.testing.HostingServer``, not the hub) on 127.0.0.1
    serving every model as test/<name>/1. Hub servers are named ``hub`` in the tests."""
    from tfhub.testing import HostingServer

    with HostingServer({f"test/{k}/1": v for k, v in models.items()}) as srv:
        yield srv


@pytest.fixture()
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3-compatible server (moto's) on 127.0.0.1, with the AWS_* settings pointing at it."""
    import socket

    from moto import server as moto_server

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its buckets in this process, across servers: each test starts empty.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield endpoint
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        server.stop()


# The files that take longest run first, so that `make test`'s xdist workers (whole files
# each, in collection order) finish together instead of one waiting on a long last file.
# test_demo.py comes first also because it builds the shared MiniLM conversion (``minilm``)
# while another worker runs test_sentence_transformer_atomic.py (which converts a broken
# checkpoint of its own); the files that reuse it come after (test_server.py first, so that a
# third worker does not sit waiting for the conversion).
_LONGEST_FIRST = (
    "test_demo.py",
    "test_sentence_transformer_atomic.py",
    "test_server.py",
    "test_sentence_transformer.py",
    "test_mirror_pull_airgap.py",
    "test_access_server.py",
    "test_server_s3.py",
    "test_compat.py",
    "test_pages_browser.py",
    "test_delivery_nginx.py",
    "test_delivery_redirect_resume.py",
    "test_finetune.py",
    "test_unsafe_ops.py",
    "test_fastpath.py",
    "test_text_embedding.py",
    "test_tf1_compat.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole
