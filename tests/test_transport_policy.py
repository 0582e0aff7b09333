"""The transport's one retry policy and its one map from foreign exceptions to tfhub errors."""

from __future__ import annotations

import dataclasses
import re
import socket
import ssl
import time

import botocore.exceptions
import pytest
import requests
import urllib3

import tfhub as hub
from tfhub import errors, transport
from tfhub.transport import Retry, TransferGuard


def test_the_retry_policy_is_immutable_and_counts_down():
    policy = Retry(total=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.total = 5  # type: ignore[misc]
    once = policy.increment()
    assert (policy.total, policy.attempt) == (2, 0)
    assert (once.total, once.attempt) == (1, 1)
    assert once.increment().exhausted
    with pytest.raises(ValueError, match="no retries left"):
        once.increment().increment()


def test_backoff_is_capped_and_retry_after_is_honoured_up_to_a_cap():
    late = Retry(total=50, attempt=40)
    assert all(late.backoff() <= late.backoff_max for _ in range(100))
    early = [Retry(total=5).backoff() for _ in range(100)]
    assert all(0.25 <= d <= 0.5 for d in early)  # factor * 2**0, with jitter
    assert Retry(total=1).backoff("3") == 3
    assert Retry(total=1).backoff("100000") == 60  # a hostile Retry-After cannot park us
    assert Retry(total=1).backoff("-4") == 0
    assert Retry(total=1).backoff("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.5
    assert Retry(total=1).is_retryable_status(503) and not Retry(1).is_retryable_status(404)


def _name_error() -> requests.ConnectionError:
    inner = urllib3.exceptions.NameResolutionError(
        "tfhub-test.invalid", None, socket.gaierror(-2, "Name or service not known")
    )
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", inner))


@pytest.mark.parametrize(
    ("exc", "error", "message"),
    [
        (_name_error(), hub.DownloadError, r"resolve the host name.*TFHUB_OFFLINE=1"),
        (requests.exceptions.SSLError(ssl.SSLError(1, "bad cert")), hub.DownloadError, "TLS"),
        (requests.ConnectionError("reset"), hub.DownloadError, "Check the network"),
        (FileNotFoundError("k"), hub.ModelNotFoundError, "does not exist"),
        (botocore.exceptions.NoCredentialsError(), hub.DownloadError, "credentials"),
        (
            botocore.exceptions.ClientError({"Error": {"Code": "500"}}, "GetObject"),
            hub.DownloadError,
            "bucket",
        ),
        (PermissionError("denied"), hub.DownloadError, "refused"),
    ],
)
def test_foreign_exceptions_map_to_tfhub_errors(exc, error, message):
    mapped = transport.translate(exc, handle="s3://b/m", url="s3://b/m")
    assert isinstance(mapped, error) and mapped.handle == "s3://b/m"
    assert re.search(message, str(mapped))
    ours = hub.ProtocolError("x")
    assert transport.translate(ours, handle="h") is ours


def test_what_counts_as_transient():
    assert transport.is_transient(requests.ConnectionError("reset"))
    assert transport.is_transient(hub.DownloadError("x", status=503))
    assert transport.is_transient(errors.SlowTransferError("slow"))
    assert transport.is_transient(KeyboardInterrupt())
    assert not transport.is_transient(hub.RemoteNotFoundError("x", status=404))
    assert not transport.is_transient(hub.DownloadError("x", status=403))
    assert not transport.is_transient(hub.ProtocolError("bad block"))
    assert not transport.is_transient(hub.ArchiveError("x"))
    assert not transport.is_transient(_name_error())


def test_the_guard_measures_rate_per_window():
    guard = TransferGuard("h", "u", min_rate=1000, window=0.05, deadline=None)
    guard.received(10)  # inside the first window: fine
    time.sleep(0.06)
    with pytest.raises(errors.SlowTransferError, match="too slow"):
        guard.received(1)
    fast = TransferGuard("h", "u", min_rate=10, window=0.05, deadline=None)
    time.sleep(0.06)
    fast.received(100_000)  # enough bytes for the window
    late = TransferGuard("h", "u", min_rate=0, window=1, deadline=0.01)
    time.sleep(0.02)
    with pytest.raises(errors.SlowTransferError, match="TFHUB_DOWNLOAD_DEADLINE"):
        late.received(1)
