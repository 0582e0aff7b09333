"""hub.resolve: local paths, the registry, and the hosting protocol over a real local server."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import socket
import threading
import time
import warnings

import pytest

import tfhub as hub
from tfhub.handles.http import append_format_query
from tfhub.testing import HostingServer, make_tarball, respond

# -- local handles ---------------------------------------------------------------------------


def test_local_path_and_file_url(models):
    path = str(models["mul"])
    assert hub.resolve(path) == path
    assert hub.resolve(models["mul"]) == path  # os.PathLike
    assert hub.resolve(f"file://{path}") == path


def test_missing_path_names_the_handle(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(hub.ModelNotFoundError, match=re.escape(f"{missing} does not exist")) as e:
        hub.resolve(missing)
    assert isinstance(e.value, OSError) and e.value.handle == missing


@pytest.mark.parametrize("handle", [None, 42, b"/tmp", ["a"]])
def test_non_string_handle(handle):
    with pytest.raises(ValueError, match="Expected a string, got"):
        hub.resolve(handle)


def test_empty_handle():
    with pytest.raises(hub.InvalidHandleError, match="empty string"):
        hub.resolve("  ")


def test_unknown_scheme_names_the_handle_and_the_fix():
    with pytest.raises(hub.InvalidHandleError, match=r"ftp://x/y.*scheme 'ftp://'.*register"):
        hub.resolve("ftp://x/y")


def test_user_resolver_takes_precedence(models):
    calls = []

    class Mine:
        def is_supported(self, handle):
            return handle.startswith("mine://")

        def __call__(self, handle):
            calls.append(handle)
            return str(models["mul"])

    impl = Mine()
    hub.register_resolver(impl)
    try:
        assert hub.resolve("mine://anything") == str(models["mul"])
        assert calls == ["mine://anything"]
    finally:
        from tfhub.handles.registry import resolver

        resolver.remove_implementation(impl)
    with pytest.raises(hub.InvalidHandleError):
        hub.resolve("mine://anything")


def test_register_rejects_non_resolvers():
    with pytest.raises(TypeError, match="is_supported"):
        hub.register_resolver(object())


def test_object_store_without_extra_is_a_clear_error():
    import fsspec

    try:
        fsspec.get_filesystem_class("gs")
        pytest.skip("gcsfs is installed")
    except ImportError:
        pass
    with pytest.raises(hub.InvalidHandleError, match=r"gs://bucket/model.*tfhub\[gcs\]"):
        hub.resolve("gs://bucket/model")


# -- hosting protocol ------------------------------------------------------------------------


def test_query_parameter_is_appended_keeping_existing_ones():
    assert (
        append_format_query("https://example.com/module?extra=abc&tf-hub-format=test", "compressed")
        == "https://example.com/module?extra=abc&tf-hub-format=test&tf-hub-format=compressed"
    )
    assert append_format_query("http://h/p/m/1", "compressed") == (
        "http://h/p/m/1?tf-hub-format=compressed"
    )


def test_download_installs_in_the_tensorflow_hub_layout(server, cache_dir):
    handle = server.url("test/mul/1")
    path = hub.resolve(handle)
    sha = hashlib.sha1(handle.encode("utf8")).hexdigest()
    assert path == str(cache_dir / sha)
    assert sorted(os.listdir(path)) == sorted(os.listdir(server.routes["test/mul/1"]))
    listing = sorted(os.listdir(cache_dir))
    assert listing == [sha, f"{sha}.descriptor.txt", f"{sha}.manifest.json"]
    descriptor = (cache_dir / f"{sha}.descriptor.txt").read_text()
    assert re.fullmatch(
        rf"Module: {re.escape(handle)}\nDownload Time: .*\n"
        rf"Downloader Hostname: {re.escape(socket.gethostname())} \(PID:{os.getpid()}\)",
        descriptor,
    )
    assert server.requests == [("GET", "/test/mul/1?tf-hub-format=compressed")]
    # Second resolve: a cache hit, no request at all.
    assert hub.resolve(handle) == path
    assert len(server.requests) == 1


def test_existing_query_parameters_reach_the_server(server):
    hub.resolve(server.url("test/mul/1?token=abc"))
    assert server.requests == [("GET", "/test/mul/1?token=abc&tf-hub-format=compressed")]


def test_redirects_are_followed(models):
    body = make_tarball(models["mul"])

    def redirect(h):
        h.send_response(301)
        h.send_header("Location", "/files/mul.tar.gz")
        h.send_header("Content-Length", "0")
        h.end_headers()

    tarball = respond(body)

    with HostingServer({"pub/mul/1": redirect, "files/mul.tar.gz": tarball}) as srv:
        path = hub.resolve(srv.url("pub/mul/1"))
        assert os.path.isfile(os.path.join(path, "saved_model.pb"))
        assert [p for _, p in srv.requests] == [
            "/pub/mul/1?tf-hub-format=compressed",
            "/files/mul.tar.gz",
        ]


def test_plain_uncompressed_tar_is_accepted(models):
    body = make_tarball(models["mul"], compress=False)

    plain = respond(body)

    with HostingServer({"m": plain}) as srv:
        assert os.path.isfile(os.path.join(hub.resolve(srv.url("m")), "saved_model.pb"))


def test_404_is_model_not_found_with_the_url(server, cache_dir):
    url = server.url("test/missing/1")
    with pytest.raises(hub.RemoteNotFoundError, match=r"404.*check the publisher") as e:
        hub.resolve(url)
    assert e.value.status == 404 and e.value.handle == url
    assert isinstance(e.value, FileNotFoundError)
    assert (
        not os.path.exists(cache_dir)
        or [n for n in os.listdir(cache_dir) if not n.endswith(".lock")] == []
    )


def test_transient_errors_are_retried_with_backoff(models, monkeypatch):
    body = make_tarball(models["mul"])
    answers = iter([503, 502])

    def flaky(h):
        status = next(answers, 200)
        h.send_response(status)
        if status == 200:
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        else:
            h.send_header("Retry-After", "0")
            h.send_header("Content-Length", "0")
            h.end_headers()

    with HostingServer({"m": flaky}) as srv:
        assert os.path.isdir(hub.resolve(srv.url("m")))
        assert srv.count("m") == 3


def test_retries_are_bounded(monkeypatch):
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "2")

    def down(h):
        h.send_response(503)
        h.send_header("Retry-After", "0")
        h.send_header("Content-Length", "0")
        h.end_headers()

    with HostingServer({"m": down}) as srv:
        with pytest.raises(hub.DownloadError, match="503") as e:
            hub.resolve(srv.url("m"))
        assert e.value.status == 503
        assert srv.count("m") == 3


def test_every_request_has_a_timeout(monkeypatch):
    monkeypatch.setenv("TFHUB_HTTP_TIMEOUT", "0.5")
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "1")
    release = threading.Event()

    def hang(h):
        release.wait(20)

    with HostingServer({"m": hang}) as srv:
        start = time.monotonic()
        with pytest.raises(hub.DownloadError, match=r"after 2 attempts"):
            hub.resolve(srv.url("m"))
        assert time.monotonic() - start < 10
        release.set()


def test_connection_refused_is_a_download_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    os.environ["TFHUB_HTTP_RETRIES"] = "0"
    try:
        with pytest.raises(ConnectionError, match=rf"127.0.0.1:{port}.*Check the network"):
            hub.resolve(f"http://127.0.0.1:{port}/a/b/1")
    finally:
        del os.environ["TFHUB_HTTP_RETRIES"]


def test_html_page_with_status_200_is_not_a_model(cache_dir):
    def html(h):
        page = b"<html><body>Sign in</body></html>"
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(page)))
        h.end_headers()
        h.wfile.write(page)

    with HostingServer({"m": html}) as srv:
        with pytest.raises(OSError, match="does not appear to be a valid module"):
            hub.resolve(srv.url("m"))
    assert [n for n in os.listdir(cache_dir) if not n.endswith(".lock")] == []


def test_body_cut_mid_transfer_is_retried(models):
    body = make_tarball(models["text"])
    first = [True]

    def cut(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if first[0]:
            first[0] = False
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(body)

    with HostingServer({"m": cut}) as srv:
        path = hub.resolve(srv.url("m"))
        assert srv.count("m") == 2
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))


def test_offline_mode_uses_the_cache_only(server, monkeypatch):
    handle = server.url("test/mul/1")
    monkeypatch.setenv("TFHUB_OFFLINE", "1")
    with pytest.raises(hub.OfflineError, match=r"not in the cache.*TFHUB_OFFLINE"):
        hub.resolve(handle)
    assert server.requests == []
    monkeypatch.setenv("TFHUB_OFFLINE", "0")
    path = hub.resolve(handle)
    monkeypatch.setenv("TFHUB_OFFLINE", "1")
    assert hub.resolve(handle) == path
    assert len(server.requests) == 1


def test_progress_bar_when_asked(server, monkeypatch, capsys):
    monkeypatch.setenv("TFHUB_DOWNLOAD_PROGRESS", "1")
    hub.resolve(server.url("test/text/1"))
    err = capsys.readouterr().err
    assert "Downloading" in err and "test/text/1" in err


def test_disabling_cert_validation_warns(server, monkeypatch):
    monkeypatch.setenv("TFHUB_DISABLE_CERT_VALIDATION", "true")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hub.resolve(server.url("test/mul/1"))
    assert any("not verified" in str(w.message) for w in caught)


def test_proxies_come_from_the_environment(models, monkeypatch):
    """An http_proxy in the environment receives the request (absolute-form URL)."""
    body = make_tarball(models["mul"])
    seen = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.setenv("no_proxy", "")
        hub.resolve("http://models.example.test/pub/m/1")
        assert seen == ["http://models.example.test/pub/m/1?tf-hub-format=compressed"]
    finally:
        proxy.shutdown()
        proxy.server_close()


# -- uncompressed mode -----------------------------------------------------------------------


def test_uncompressed_mode_returns_the_gcs_location(monkeypatch):
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
    with HostingServer(
        {"p/m/1": respond(status=303, body=b"gs://bucket/p/m/1/uncompressed")}
    ) as srv:
        assert hub.resolve(srv.url("p/m/1")) == "gs://bucket/p/m/1/uncompressed"
        assert srv.requests == [("GET", "/p/m/1?tf-hub-format=uncompressed")]


def test_uncompressed_mode_errors(monkeypatch):
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "UNCOMPRESSED")
    with HostingServer(
        {
            "ok": respond(status=200, body=b"tarball"),
            "bad": respond(status=303, body=b"https://elsewhere/x"),
        }
    ) as srv:
        with pytest.raises(ValueError, match=r"Expected 303 See Other.*received code 200") as e:
            hub.resolve(srv.url("ok"))
        assert isinstance(e.value, hub.DownloadError)
        with pytest.raises(hub.DownloadError, match="gs:// location but received 'https"):
            hub.resolve(srv.url("bad"))
