"""The client's read tokens: each goes to the origin it is configured for, and nowhere else
(not across a redirect to another host or port, not to a hub it was not set up for)."""

from __future__ import annotations

import http.server
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tfhub as hub
from tests.helpers.models import save_mul
from tfhub.testing import HostingServer, make_tarball, send

Handler = http.server.BaseHTTPRequestHandler


class Recorder:
    """A route that records the Authorization header of each request, then answers."""

    def __init__(self, then: Callable[[Handler], None]) -> None:
        self.seen: list[str | None] = []
        self.then = then

    def __call__(self, h: Handler) -> None:
        self.seen.append(h.headers.get("Authorization"))
        self.then(h)


def _redirect(location: Callable[[], str]) -> Callable[[Handler], None]:
    return lambda h: send(h, b"", 302, (("Location", location()),))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_tarball(save_mul(tmp_path_factory.mktemp("model") / "mul"))


@pytest.fixture()
def servers(tarball: bytes) -> Iterator[tuple[HostingServer, HostingServer, dict[str, Recorder]]]:
    """Two hosting servers on 127.0.0.1 (two origins): ``a`` redirects, ``b`` serves."""

    def serve(h: Handler) -> None:
        send(h, tarball, 200, (("Content-Type", "application/gzip"),))

    routes: dict[str, Recorder] = {}
    a, b = HostingServer(), HostingServer()
    routes["a/served/1"] = Recorder(serve)
    routes["a/to-b/1"] = Recorder(_redirect(lambda: b.url("b/model/1?tf-hub-format=compressed")))
    routes["a/to-a/1"] = Recorder(_redirect(lambda: a.url("a/served/1?tf-hub-format=compressed")))
    localhost = "http://localhost:{}/a/served/1?tf-hub-format=compressed"
    routes["a/to-localhost/1"] = Recorder(_redirect(lambda: localhost.format(a.port)))
    routes["b/model/1"] = Recorder(serve)
    a.routes.update({k: v for k, v in routes.items() if k.startswith("a/")})
    b.routes.update({k: v for k, v in routes.items() if k.startswith("b/")})
    with a, b:
        yield a, b, routes


def test_the_token_goes_to_its_origin_and_not_across_redirects(servers, monkeypatch):
    a, _, routes = servers
    monkeypatch.setenv("TFHUB_TOKEN", "token-for-a")
    monkeypatch.setenv("TFHUB_TOKEN_ORIGINS", f"http://127.0.0.1:{a.port}")
    assert (Path(hub.resolve(a.url("a/served/1"))) / "saved_model.pb").is_file()
    assert routes["a/served/1"].seen == ["Bearer token-for-a"]
    hub.resolve(a.url("a/to-b/1"))  # another port on the same host: another origin
    assert routes["a/to-b/1"].seen == ["Bearer token-for-a"]
    assert routes["b/model/1"].seen == [None]
    hub.resolve(a.url("a/to-localhost/1"))  # the same server under another host name
    assert routes["a/to-localhost/1"].seen == ["Bearer token-for-a"]
    assert routes["a/served/1"].seen == ["Bearer token-for-a", None]
    hub.resolve(a.url("a/to-a/1"))  # a redirect within the origin keeps it
    assert routes["a/served/1"].seen[-1] == "Bearer token-for-a"


def test_a_token_without_its_origins_is_sent_nowhere(servers, monkeypatch):
    a, b, routes = servers
    monkeypatch.setenv("TFHUB_TOKEN", "a-publishing-token")
    hub.resolve(a.url("a/served/1"))
    monkeypatch.setenv("TFHUB_TOKEN_ORIGINS", f"http://127.0.0.1:{a.port}")
    hub.resolve(b.url("b/model/1"))  # a hub the token was not set up for
    assert routes["a/served/1"].seen == [None] and routes["b/model/1"].seen == [None]


def test_the_client_token_file_holds_one_token_per_origin(servers, monkeypatch, tmp_path):
    a, b, routes = servers
    tokens = tmp_path / "tokens"
    tokens.write_text(
        f"# origin token\nhttp://127.0.0.1:{a.port} file-token-a\n\n"
        f"http://127.0.0.1:{b.port}/ file-token-b  # a trailing slash is fine\n"
    )
    tokens.chmod(0o600)
    monkeypatch.setenv("TFHUB_CLIENT_TOKEN_FILE", str(tokens))
    monkeypatch.setenv("TFHUB_TOKEN", "env-token")
    monkeypatch.setenv("TFHUB_TOKEN_ORIGINS", f"http://127.0.0.1:{a.port}")
    hub.resolve(a.url("a/to-b/1"))
    assert routes["a/to-b/1"].seen == ["Bearer file-token-a"]  # the file wins over TFHUB_TOKEN
    assert routes["b/model/1"].seen == ["Bearer file-token-b"]  # b's own, never a's


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TFHUB_TOKEN_ORIGINS", "https://hub.example.com/models", "not an origin"),
        ("TFHUB_TOKEN_ORIGINS", "hub.example.com", "not an origin"),
        ("TFHUB_TOKEN_ORIGINS", "ftp://hub.example.com", "not an origin"),
        ("TFHUB_CLIENT_TOKEN_FILE", "https://hub.example.com", r"tokens:2: expected"),
        ("TFHUB_CLIENT_TOKEN_FILE", "https://hub.example.com/x tok", r"tokens:2: .*not an origin"),
    ],
)
def test_bad_client_token_settings_name_the_setting(
    monkeypatch, tmp_path, variable, value, message
):
    from tfhub.handles import credentials

    monkeypatch.setenv("TFHUB_TOKEN", "t")
    if variable == "TFHUB_CLIENT_TOKEN_FILE":
        (tmp_path / "tokens").write_text(f"# first\n{value}\n")
        value = str(tmp_path / "tokens")
    monkeypatch.setenv(variable, value)
    with pytest.raises(hub.ConfigError, match=f"{variable}.*{message}"):
        credentials.tokens()
