"""s3:// handles through fsspec against a real S3-compatible server (moto, on 127.0.0.1)."""

from __future__ import annotations

import os

import boto3
import numpy as np
import pytest
import s3fs  # noqa: F401

import tfhub as hub
from tfhub.testing import make_tarball


@pytest.fixture()
def s3(s3_endpoint, models):
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="models")
    root = models["mul"]
    for dirpath, _, files in os.walk(root):
        for name in files:
            full = os.path.join(dirpath, name)
            key = "mul/" + os.path.relpath(full, root).replace(os.sep, "/")
            client.upload_file(full, "models", key)
    client.put_object(Bucket="models", Key="archives/mul.tar.gz", Body=make_tarball(root))
    return client


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
