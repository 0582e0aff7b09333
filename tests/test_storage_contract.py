"""The storage contract: the same tests against LocalStorage and S3Storage (moto's server)."""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import time
import uuid

import boto3
import pytest
import requests

from tfhub import errors
from tfhub.server import storage as st


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return st.open_storage(str(tmp_path / "root"))
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"contract-{uuid.uuid4().hex[:12]}"  # moto keeps buckets for the whole process
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return st.open_storage(f"s3://{bucket}/hub")


def _file(tmp_path, data: bytes):
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path


def test_put_read_size_and_replace(storage, tmp_path):
    storage.put_file("pub/model/1/a.tar.gz", _file(tmp_path, b"hello world"))
    assert storage.read_bytes("pub/model/1/a.tar.gz") == b"hello world"
    assert storage.size("pub/model/1/a.tar.gz") == 11
    storage.put_file("pub/model/1/a.tar.gz", _file(tmp_path, b"bye"))
    assert storage.read_bytes("pub/model/1/a.tar.gz") == b"bye"
    storage.put_file(".blobs/empty", _file(tmp_path, b""))
    assert storage.size(".blobs/empty") == 0 and storage.read_bytes(".blobs/empty") == b""


def test_missing_keys(storage):
    assert storage.read_bytes("pub/none/1/meta.json") is None
    assert storage.size("pub/none/1/meta.json") is None
    storage.delete("pub/none/1/meta.json")  # nothing to delete: no error
    with pytest.raises(errors.StorageError, match="pub/none"):
        b"".join(storage.iter_range("pub/none/1/x", 0, 10))


def test_ranges(storage, tmp_path):
    data = os.urandom(3 << 20)  # several read chunks
    storage.put_file(".blobs/x", _file(tmp_path, data))
    assert b"".join(storage.iter_range(".blobs/x", 0, len(data) - 1)) == data
    assert b"".join(storage.iter_range(".blobs/x", 5, 5)) == data[5:6]
    assert (
        b"".join(storage.iter_range(".blobs/x", 1 << 20, (2 << 20) + 6))
        == data[1 << 20 : (2 << 20) + 7]
    )
    assert b"".join(storage.iter_range(".blobs/x", len(data) - 3, len(data) + 100)) == data[-3:]


def test_create_is_atomic_and_only_if_absent(storage):
    def create(i: int) -> bool:
        return storage.create("pub/m/1/meta.json", f"writer {i}".encode())

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert storage.read_bytes("pub/m/1/meta.json") == f"writer {winner}".encode()
    assert storage.create("pub/m/1/meta.json", b"again") is False
    assert storage.read_bytes("pub/m/1/meta.json") == f"writer {winner}".encode()


def test_list_keys_by_suffix_without_hidden_parts(storage, tmp_path):
    for key in ("b/m/1/meta.json", "a/m/2/meta.json", "a/m/2/x.tar.gz", ".blobs/meta.json"):
        storage.put_file(key, _file(tmp_path, b"{}"))
    assert storage.list_keys("/meta.json") == ["a/m/2/meta.json", "b/m/1/meta.json"]
    storage.delete("a/m/2/meta.json")
    assert storage.list_keys("/meta.json") == ["b/m/1/meta.json"]


@pytest.mark.parametrize(
    "key",
    ["../escape", "a/../../escape", "/etc/passwd", "a//b", "a/./b", "", "a\\..\\b", "a/b\x00",
     "caf\u00e9/m/1", "a/" + "x" * 256, "a/b/"],
)  # fmt: skip
def test_invalid_and_traversal_keys_are_refused(storage, tmp_path, key):
    source = _file(tmp_path, b"payload")
    for operation in (
        lambda: storage.put_file(key, source),
        lambda: storage.create(key, b"payload"),
        lambda: storage.read_bytes(key),
        lambda: storage.size(key),
        lambda: storage.delete(key),
        lambda: b"".join(storage.iter_range(key, 0, 1)),
    ):
        with pytest.raises(errors.StorageError, match="Invalid storage key"):
            operation()
    assert not (tmp_path / "escape").exists()


def test_backend_failures_are_storage_errors(storage, tmp_path):
    """A missing bucket (S3) or a file where a directory must go (local): StorageError, never
    botocore's ClientError or a bare OSError."""
    if isinstance(storage, st.S3Storage):
        broken = st.open_storage("s3://no-such-bucket/hub")
    else:
        broken = st.open_storage(str(tmp_path / "other"))
        (tmp_path / "other" / "pub").write_bytes(b"a file, not a directory")
    with pytest.raises(errors.StorageError) as caught:
        broken.put_file("pub/m/1/a.tar.gz", _file(tmp_path, b"x"))
    assert str(tmp_path) not in str(caught.value)  # names the key, not the local path
    assert "pub/m/1/a.tar.gz" in str(caught.value)
    if isinstance(storage, st.S3Storage):
        with pytest.raises(errors.StorageError, match="NoSuchBucket"):
            broken.list_keys("/meta.json")


def test_local_links_out_of_the_root_are_refused(tmp_path):
    storage = st.open_storage(str(tmp_path / "root"))
    (tmp_path / "outside").mkdir()
    (tmp_path / "root" / "pub").symlink_to(tmp_path / "outside")
    with pytest.raises(errors.StorageError, match="escapes the storage root"):
        storage.put_file("pub/m/1/a.tar.gz", _file(tmp_path, b"x"))
    assert list((tmp_path / "outside").iterdir()) == []


def test_open_storage_uses_a_registrable_scheme_table(tmp_path):
    made = []

    def factory(url: str) -> st.Storage:
        made.append(url)
        return st.LocalStorage(tmp_path / "mem")

    with pytest.raises(errors.ConfigError, match=r"memtest://.*s3://"):
        st.open_storage("memtest://x")
    st.register_storage("memtest", factory)
    assert isinstance(st.open_storage("memtest://x"), st.LocalStorage) and made == ["memtest://x"]
    assert isinstance(st.open_storage(f"file://{tmp_path}/f"), st.LocalStorage)
    assert (tmp_path / "f").is_dir()


def test_hub_errors_pickle_with_their_attributes():
    for err in (
        errors.PublishError("refused: 409", status=409, handle="a/b/1"),
        errors.ModelNameError("bad name"),
        errors.StorageError("S3 read of 'k' failed", key="k"),
    ):
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err) and str(copy) == str(err)
        assert copy.__dict__ == err.__dict__
        assert isinstance(copy, errors.HubError)
    assert issubclass(errors.StorageError, OSError) and issubclass(errors.PublishError, ValueError)


def test_list_objects_with_sizes_and_times(storage, tmp_path):
    before = time.time() - 5
    for key, data in (("a/m/1/x.tar.gz", b"123"), (".blobs/" + "a" * 64, b"12345")):
        storage.put_file(key, _file(tmp_path, data))
    listed = storage.list_objects("")
    assert [(o.key, o.size) for o in listed] == [(".blobs/" + "a" * 64, 5), ("a/m/1/x.tar.gz", 3)]
    assert all(before < o.mtime < time.time() + 5 for o in listed)
    assert [o.key for o in storage.list_objects(".blobs/")] == [".blobs/" + "a" * 64]
    assert storage.list_objects("none/") == []
    with pytest.raises(errors.StorageError, match="Invalid storage key"):
        storage.list_objects("../")


def test_touch_and_delete_if_older(storage, tmp_path):
    storage.put_file(".blobs/b", _file(tmp_path, b"blob"))
    stamp = storage.list_objects(".blobs/")[0].mtime
    assert storage.delete_if_older(".blobs/b", stamp - 60) is False  # younger: kept
    assert storage.read_bytes(".blobs/b") == b"blob"
    time.sleep(1.1)  # S3 times have a resolution of one second
    assert storage.touch(".blobs/b") is True
    touched = storage.list_objects(".blobs/")[0].mtime
    assert touched > stamp and storage.read_bytes(".blobs/b") == b"blob"
    assert storage.delete_if_older(".blobs/b", touched) is False  # touched since the cutoff
    assert storage.read_bytes(".blobs/b") == b"blob"
    assert [o.key for o in storage.list_objects("")] == [".blobs/b"]  # nothing left aside
    assert storage.delete_if_older(".blobs/b", touched + 1) is True
    assert storage.size(".blobs/b") is None
    assert storage.touch(".blobs/b") is False and storage.size(".blobs/b") is None
    assert storage.delete_if_older(".blobs/b", time.time() + 60) is False
    assert storage.list_objects("") == []


def test_download_url(storage, tmp_path):
    storage.put_file("pub/m/1/a.tar.gz", _file(tmp_path, b"archive bytes"))
    url = storage.download_url("pub/m/1/a.tar.gz", 60)
    if isinstance(storage, st.LocalStorage):
        assert url is None  # a directory has no URLs: nginx (X-Accel-Redirect) serves it
        return
    assert url is not None
    resp = requests.get(url, headers={"Range": "bytes=8-12"}, timeout=30)
    assert resp.status_code == 206 and resp.content == b"bytes"
    assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url
