"""The hub server on S3-compatible storage (moto's server on 127.0.0.1), two replicas."""

from __future__ import annotations

import concurrent.futures

import boto3
import numpy as np
import pytest
import requests

import tfhub as hub
from tests.helpers.hub import HubServer, publish
from tfhub.testing import make_tarball


@pytest.fixture()
def bucket(s3_endpoint):
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="hub")
    return client


def _keys(client):
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="hub").get("Contents", []))


def test_two_replicas_share_one_bucket(bucket, models):
    a = HubServer("s3://hub/models")
    b = HubServer("s3://hub/models")
    try:
        assert publish(a.url, "test/mul/1", make_tarball(models["mul"])).status_code == 201
        # The other replica sees it at once: the bucket is the only state.
        np.testing.assert_allclose(hub.load(f"{b.url}/test/mul/1")(np.float32(2.0)), 4.0)
        ranged = requests.get(
            f"{b.url}/test/mul/1?tf-hub-format=compressed",
            headers={"Range": "bytes=0-9"},
            timeout=30,
        )
        assert ranged.status_code == 206 and len(ranged.content) == 10
        assert requests.get(f"{b.url}/api/models/test/mul", timeout=30).json()["versions"] == [1]
        # Both replicas race for one version: exactly one wins, nothing else is left behind.
        bodies = [(a, make_tarball(models["flag"])), (b, make_tarball(models["text"]))] * 2
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = sorted(
                pool.map(lambda sb: publish(sb[0].url, "test/race/1", sb[1]).status_code, bodies)
            )
        assert statuses == [201, 409, 409, 409]
        race = [k for k in _keys(bucket) if k.startswith("models/test/race/1/")]
        assert len(race) == 2 and race[-1] == "models/test/race/1/meta.json"
    finally:
        a.stop()
        b.stop()
