"""TLS: certificates are verified by default; TFHUB_DISABLE_CERT_VALIDATION turns it off."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import warnings

import pytest

import tfhub as hub
from tfhub.testing import HostingServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture()
def tls_server(models, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = HostingServer({"pub/mul/1": models["mul"]}).start()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server._httpd.socket = context.wrap_socket(server._httpd.socket, server_side=True)
    try:
        yield server, cert
    finally:
        server.stop()


def test_self_signed_certificate_is_refused_without_retries(tls_server):
    server, _ = tls_server
    url = server.url("pub/mul/1").replace("http://", "https://")
    with pytest.raises(hub.DownloadError, match=r"TLS verification failed.*TFHUB_DISABLE_CERT"):
        hub.resolve(url)
    assert server.requests == []  # the handshake failed before any request


def test_trusted_ca_bundle_and_disabled_validation(tls_server, monkeypatch):
    server, cert = tls_server
    url = server.url("pub/mul/1").replace("http://", "https://")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    assert os.path.isfile(os.path.join(hub.resolve(url), "saved_model.pb"))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("TFHUB_DISABLE_CERT_VALIDATION", "true")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert os.path.isdir(hub.resolve(url + "?again=1"))
    assert any("not verified" in str(w.message) for w in caught)
