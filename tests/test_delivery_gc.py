"""Blob garbage collection (tfhub gc / tfhub.server.gc), on a directory and on S3 (moto),
including its race with publishes that reuse the blobs it is about to delete."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest

from tfhub import errors
from tfhub.cli import main
from tfhub.handles.cache import FileRecord
from tfhub.server import storage as st
from tfhub.server.catalog import Catalog, parse_model_path
from tfhub.server.client import publish_to_root
from tfhub.server.gc import collect, referenced_keys
from tfhub.server.publish import Publisher

DAY = 24 * 3600


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """A real SavedModel, and a copy of it with one more asset file (a blob of its own)."""
    from tests.helpers import models

    root = tmp_path_factory.mktemp("gc-models")
    base = models.save_mul(root / "base")
    more = root / "more"
    shutil.copytree(base, more)
    (more / "assets").mkdir(exist_ok=True)
    (more / "assets" / "extra.txt").write_text("only in the second version")
    return base, more


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "root")
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"gc-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/hub"


def _commit(root: str, src: Path, name: str) -> dict:
    """The storage steps of a publish, in its order and through its code (blobs stored, or
    touched when reused; then the archive; then the record), without the validation child
    (tested elsewhere; slow). One real publish_to_root runs in the race test."""
    storage = st.open_storage(root)
    publisher = Publisher(Catalog(storage), max_upload_bytes=1 << 30, inspect_timeout=60)
    try:
        manifest = {}
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            data = path.read_bytes()
            rel = path.relative_to(src).as_posix()
            manifest[rel] = FileRecord(len(data), hashlib.sha256(data).hexdigest())
        blobs = publisher._store_blobs(src, manifest)
    finally:
        publisher.close()
    model = parse_model_path(name)
    archive = {"key": f"{name}/{'0' * 64}-{uuid.uuid4().hex[:8]}.tar.gz", "size": 4}
    record = {"publisher": model.publisher, "model": model.model, "version": model.version,
              "archive": {**archive, "sha256": hashlib.sha256(b"tar!").hexdigest()},
              "blobs": blobs}  # fmt: skip
    (tmp := src.parent / f"a-{uuid.uuid4().hex}").write_bytes(b"tar!")
    storage.put_file(archive["key"], tmp)
    tmp.unlink()
    assert storage.create(f"{name}/meta.json", json.dumps(record).encode())
    return record


def _commit_named(src: Path, name: str, *, root: str) -> dict:
    return _commit(root, src, name)


def _put(storage, tmp_path: Path, key: str, data: bytes) -> None:
    path = tmp_path / f"src-{uuid.uuid4().hex}"
    path.write_bytes(data)
    storage.put_file(key, path)


def _keys(storage) -> set[str]:
    return {o.key for o in storage.list_objects("")}


def test_gc_deletes_only_unreferenced_files(root, model_dirs, tmp_path, capsys):
    base, more = model_dirs
    _commit(root, base, "acme/m/1")
    v2 = _commit(root, more, "acme/m/2")
    storage = st.open_storage(root)
    extra = next(f for f in v2["blobs"]["files"] if f["path"] == "assets/extra.txt")
    # A version removed by the operator, a lost race's archive, a stray blob, a crashed
    # write's temp file; and files the GC must leave alone.
    storage.delete("acme/m/2/meta.json")
    orphan_blob = ".blobs/" + hashlib.sha256(b"orphan").hexdigest()
    _put(storage, tmp_path, orphan_blob, b"orphan")
    _put(storage, tmp_path, "acme/m/3/" + "a" * 64 + "-deadbeef.tar.gz", b"lost race")
    _put(storage, tmp_path, f"acme/m/1/.meta.json.{uuid.uuid4().hex}.tmp", b"half")
    _put(storage, tmp_path, "README.txt", b"the operator's")
    _put(storage, tmp_path, ".blobs/not-a-sha", b"unknown")
    garbage = {
        orphan_blob,
        "acme/m/3/" + "a" * 64 + "-deadbeef.tar.gz",
        v2["archive"]["key"],
        f".blobs/{extra['sha256']}",
    }
    temp = {k for k in _keys(storage) if k.endswith(".tmp")}
    before = _keys(storage)

    fresh = collect(storage)  # all of it is younger than the default 24 h: nothing goes
    assert fresh.deleted == [] and {o.key for o in fresh.young} == garbage | temp
    assert _keys(storage) == before

    later = time.time() + 2 * DAY
    dry = collect(storage, dry_run=True, now=later)
    assert {o.key for o in dry.deleted} == garbage | temp and _keys(storage) == before
    report = collect(storage, now=later)
    assert {o.key for o in report.deleted} == garbage | temp and report.records == 1
    assert _keys(storage) == before - garbage - temp
    _, referenced = referenced_keys(storage)
    assert referenced <= _keys(storage)  # version 1 is whole
    assert {"README.txt", ".blobs/not-a-sha", "acme/m/1/meta.json"} <= _keys(storage)

    # The command: same thing, printed.
    _put(storage, tmp_path, orphan_blob, b"orphan")
    assert main(["gc", "--root", root, "--dry-run", "--grace", "0"]) == 0
    out = capsys.readouterr().out
    assert f"would delete {orphan_blob} (6 bytes)" in out and "1 records" in out
    assert orphan_blob in _keys(storage)
    assert main(["gc", "--root", root, "--grace", "0"]) == 0
    assert f"deleted {orphan_blob}" in capsys.readouterr().out
    assert orphan_blob not in _keys(storage)
    assert main(["gc", "--root", root, "--grace", "-1"]) != 0


def test_gc_keeps_a_blob_that_a_publish_reuses_meanwhile(root, model_dirs):
    """The race: the GC has found a blob unreferenced and old; before it deletes it, a publish
    reuses that blob (size check, touch) and commits its record. The blob must survive."""
    base, _more = model_dirs
    _commit(root, base, "acme/m/1")
    storage = st.open_storage(root)
    storage.delete("acme/m/1/meta.json")  # its blobs are now unreferenced
    time.sleep(2.1)  # older than the grace below (S3 times are whole seconds)

    class PublishDuringGc:
        """The real storage; the first delete the GC asks for first lets a publish run."""

        def __init__(self, inner):
            self.inner = inner
            self.published = None

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def delete_if_older(self, key, cutoff):
            if self.published is None:  # the GC asks for the old archive first (sorted)
                self.first_key = key
                publish = publish_to_root if root.startswith("/") else _commit_named
                self.published = publish(base, "acme/m/2", root=root)
            return self.inner.delete_if_older(key, cutoff)

    racing = PublishDuringGc(storage)
    report = collect(racing, grace_hours=1 / 3600)
    assert racing.published is not None
    blobs = {f".blobs/{f['sha256']}" for f in racing.published["blobs"]["files"]}
    assert blobs <= _keys(storage)  # every file of the new version is still there
    assert not blobs & {o.key for o in report.deleted}
    # What the GC did delete: the removed version's archive, nothing the new one needs.
    assert [o.key for o in report.deleted] == [
        k for k in [o.key for o in report.deleted] if k.startswith("acme/m/1/")
    ]
    assert report.deleted and all(
        k.startswith("acme/m/1/") for k in (o.key for o in report.deleted)
    )


def test_gc_looping_while_publishes_run(tmp_path, model_dirs):
    """Real concurrency: a GC in a loop (grace 1 s) while versions reusing the same blobs are
    published; every record's files exist at the end."""
    base, more = model_dirs
    root = str(tmp_path / "root")
    _commit(root, base, "acme/m/1")
    storage = st.open_storage(root)
    storage.delete("acme/m/1/meta.json")
    stop = threading.Event()
    runs = []

    def gc_loop():
        while not stop.is_set():
            runs.append(collect(storage, grace_hours=1 / 3600))

    thread = threading.Thread(target=gc_loop)
    thread.start()
    try:
        time.sleep(1.5)
        for version in range(2, 12):
            _commit(root, (base, more)[version % 2], f"acme/m/{version}")
            time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(runs) > 3
    records, referenced = referenced_keys(storage)
    assert records == 10 and referenced <= _keys(storage)
    for key in referenced:
        if key.startswith(".blobs/"):
            data = b"".join(storage.iter_range(key, 0, (storage.size(key) or 1) - 1))
            assert hashlib.sha256(data).hexdigest() == key.removeprefix(".blobs/")


def test_an_unreadable_record_stops_the_gc(tmp_path, model_dirs):
    root = str(tmp_path / "root")
    _commit(root, model_dirs[0], "acme/m/1")
    storage = st.open_storage(root)
    storage.create("acme/bad/1/meta.json", b"{not json")
    orphan = ".blobs/" + hashlib.sha256(b"o").hexdigest()
    _put(storage, tmp_path, orphan, b"o")
    os.utime(Path(root) / orphan, (time.time() - 2 * DAY,) * 2)
    with pytest.raises(errors.StorageError, match=r"acme/bad/1/meta\.json"):
        collect(storage)
    assert orphan in _keys(storage)
