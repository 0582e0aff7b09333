"""s3:// handles through fsspec against a real S3-compatible server (moto, on 127.0.0.1)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

import tfhub as hub
from tfhub.testing import make_tarball

boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture()
def s3(monkeypatch, models):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="models")
    root = models["mul"]
    for dirpath, _, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            key = "mul/" + os.path.relpath(full, root).replace(os.sep, "/")
            client.upload_file(full, "models", key)
    client.put_object(Bucket="models", Key="archives/mul.tar.gz", Body=make_tarball(root))
    try:
        yield client
    finally:
        server.stop()


def _files(root):
    return sorted(
        os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names
    )


def test_model_directory_in_a_bucket(s3, models, monkeypatch):
    path = hub.resolve("s3://models/mul")
    assert _files(path) == _files(models["mul"])
    np.testing.assert_allclose(hub.load("s3://models/mul")(np.float32(3.0)), 6.0)
    monkeypatch.setenv("TFHUB_OFFLINE", "1")
    assert hub.resolve("s3://models/mul") == path


def test_archive_in_a_bucket(s3):
    path = hub.resolve("s3://models/archives/mul.tar.gz")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))


def test_missing_object(s3, cache_dir):
    with pytest.raises(hub.ModelNotFoundError, match="s3://models/nothing"):
        hub.resolve("s3://models/nothing")
    with pytest.raises(hub.ModelNotFoundError, match=r"s3://models/nothing\.tar\.gz"):
        hub.resolve("s3://models/nothing.tar.gz")
