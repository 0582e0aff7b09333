"""The hub at scale, end to end: two `tfhub serve` replicas sharing one PostgreSQL catalog and
one S3 bucket (moto's server), behind a real nginx load balancer (the shipped snippet).

Publish through one replica; search and download through the other and through nginx; a
private model is invisible without a token and loadable with one by the tfhub client; the
download counts add up after 20 downloads that nginx spread over both replicas, with the
archives answered by presigned-URL redirects to the bucket (``TFHUB_REDIRECT_DOWNLOADS``).
"""

from __future__ import annotations

import time

import boto3
import numpy as np
import pytest
import requests

import tfhub as hub
from tests.helpers.hub import DOCS, TOKEN, HubServer, publish
from tests.helpers.nginx import nginx, tfhub_snippet
from tests.helpers.postgres import postgres
from tfhub.server.access import new_token, token_line
from tfhub.testing import make_tarball


def _wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def _host_port(url: str) -> str:
    return url.removeprefix("http://")


@pytest.mark.timeout(600)
def test_two_replicas_one_postgres_one_bucket_behind_nginx(
    s3_endpoint, models, tmp_path, monkeypatch
):
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="hub")
    reader = new_token()
    tokens = tmp_path / "tokens"
    tokens.write_text(token_line(reader, read=["team"]) + "\n")
    with postgres() as database:
        env = {
            "TFHUB_DATABASE_URL": database,
            "TFHUB_TOKEN_FILE": str(tokens),
            "TFHUB_REDIRECT_DOWNLOADS": "1",
            "TFHUB_CATALOG_RECONCILE_SECONDS": "0",  # only the database links the replicas
        }
        a = HubServer("s3://hub/models", env)
        b = HubServer("s3://hub/models", env)
        try:
            snippet = tfhub_snippet(tmp_path, [_host_port(a.url), _host_port(b.url)])
            with nginx(snippet) as lb:
                # Publish through one replica; the other lists and finds it within 2 s.
                assert publish(a.url, "test/mul/1", make_tarball(models["mul"]), docs=DOCS).ok
                published = time.monotonic()
                found = _wait_for(
                    lambda: requests.get(
                        f"{b.url}/api/models", params={"q": "multiplies"}, timeout=30
                    ).json()["items"],
                    2.0,
                    "the version published on replica a found by a search on replica b",
                )
                assert time.monotonic() - published < 2.5
                assert [(m["publisher"], m["model"]) for m in found] == [("test", "mul")]

                # A private model: published through b, invisible without a token anywhere.
                secret = requests.put(
                    f"{b.url}/api/models/team/secret/1",
                    params={"private": "true"},
                    data=make_tarball(models["flag"]),
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=300,
                )
                assert secret.status_code == 201, secret.text
                for base in (a.url, lb):
                    listing = requests.get(f"{base}/api/models", timeout=30).json()
                    assert {m["publisher"] for m in listing["items"]} == {"test"}
                    for path in (
                        "/api/models/team/secret",
                        "/team/secret/1?tf-hub-format=compressed",
                        "/team/secret/1",
                    ):
                        assert requests.get(base + path, timeout=30).status_code == 404, path
                read = {"Authorization": f"Bearer {reader}"}
                assert requests.get(f"{lb}/api/models/team/secret", headers=read, timeout=30).ok

                # Loadable with the token by the tfhub client (the token goes to nginx's
                # origin only; the presigned redirect to the bucket goes without it).
                monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
                monkeypatch.setenv("TFHUB_TOKEN", reader)
                monkeypatch.setenv("TFHUB_TOKEN_ORIGINS", lb)
                secret_model = hub.load(f"{lb}/team/secret/1")
                np.testing.assert_allclose(secret_model(np.float32([[1.0, 1.0]])), [[6.0]])
                monkeypatch.delenv("TFHUB_TOKEN")
                with pytest.raises(hub.ModelNotFoundError):
                    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache-anonymous"))
                    hub.load(f"{lb}/team/secret/1")

                # 20 downloads through nginx, spread over both replicas, then counted.
                for _ in range(20):
                    got = requests.get(f"{lb}/test/mul/1?tf-hub-format=compressed", timeout=60)
                    assert got.ok and got.content[:2] == b"\x1f\x8b"
                for replica in (a, b):
                    assert (
                        replica.wait_for_log("/test/mul/1?tf-hub-format=compressed").count(
                            "/test/mul/1?tf-hub-format=compressed"
                        )
                        >= 5
                    ), "nginx did not spread the downloads over both replicas"
                totals = [
                    _wait_for(
                        lambda base=base: (
                            requests.get(f"{base}/api/models/test/mul", timeout=30).json()[
                                "downloads"
                            ]["total"]
                            == 20
                        ),
                        5.0,
                        f"20 downloads counted as seen from {base}",
                    )
                    for base in (a.url, b.url, lb)
                ]
                assert all(totals)
                np.testing.assert_allclose(
                    hub.load(f"{lb}/test/mul/1")(np.float32(3.0)), 6.0
                )  # the public model loads anonymously through nginx and the redirects
        finally:
            a.stop()
            b.stop()
