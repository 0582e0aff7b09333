"""The version comes from the package metadata, and everything that shows it shows the same."""

from __future__ import annotations

import http.server
import importlib.metadata
import threading

import pytest

import tfhub
from tests.helpers import REPO
from tfhub import cli
from tfhub.errors import RemoteNotFoundError

VERSION = importlib.metadata.version("tfhub")


def test_tfhub_version_is_the_installed_metadata():
    assert tfhub.__version__ == VERSION
    assert "__version__" in dir(tfhub)


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tfhub {VERSION}"


def test_server_reports_the_version(tmp_path):
    from tfhub.server.app import create_app

    assert create_app(str(tmp_path / "hub")).version == VERSION


def test_requests_carry_the_version_in_the_user_agent():
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("User-Agent", ""))
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with pytest.raises(RemoteNotFoundError):
            tfhub.resolve(f"http://127.0.0.1:{server.server_port}/pub/model/1")
    finally:
        server.shutdown()
        server.server_close()
    assert seen and all(ua.startswith(f"tfhub/{VERSION} ") for ua in seen)


def test_the_version_is_written_only_in_pyproject():
    literal = f'"{VERSION}"'
    holders = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "src").rglob("*.py")
        if literal in path.read_text(encoding="utf-8")
    ]
    assert holders == []
    assert f'version = "{VERSION}"' in (REPO / "pyproject.toml").read_text()
