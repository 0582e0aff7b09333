"""Legacy handles through the emulated tfhub.dev → Kaggle → signed-storage chain.

The chain (``tests/helpers/upstream.py``, whose docstring cites the clients' source it copies
the behaviour of) runs on 127.0.0.1 as an http proxy for the real host names, so tfhub and
the real ``tensorflow_hub`` 0.16 resolve ``http://tfhub.dev/...`` with their ordinary code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import tfhub as hub
from tests.helpers import run_python
from tests.helpers.hub import tree
from tests.helpers.upstream import KAGGLE, STORAGE, TFHUB, Upstream
from tfhub import cli
from tfhub.handles import cache
from tfhub.testing import HostingServer, make_tarball

MUL = ("test/mul/1", "Test/Mul/TensorFlow2/mul/1")
TEXT = ("test/text/1", "test/text/tensorFlow2/text/1")
DICT = ("test/dict/1", "test/dict/TensorFlow2/dict/1")


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


@pytest.fixture(autouse=True)
def _foreign_caches(tmp_path, monkeypatch):
    """Other clients' caches, isolated: kagglehub's and tensorflow_hub's default one."""
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    tmp = tmp_path / "systmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "1")


@pytest.fixture(scope="module")
def tarballs(models):
    return {name: make_tarball(models[name]) for name in ("mul", "text", "dict")}


@pytest.fixture()
def up(tarballs, monkeypatch):
    with Upstream() as emulation:
        emulation.add(*MUL, tarballs["mul"])
        emulation.add(*TEXT, tarballs["text"])
        emulation.add(*DICT, tarballs["dict"])
        for name, value in emulation.env().items():
            monkeypatch.setenv(name, value)
        yield emulation


def test_tfhub_and_tensorflow_hub_resolve_the_chain_into_the_same_directory(up, tmp_path, models):
    handles = [up.tfhub_handle(MUL[0]), up.kaggle_handle(TEXT[1], long=True)]
    theirs = tmp_path / "theirs"
    out = run_python(
        f"""
        import json, tensorflow_hub
        print(json.dumps([tensorflow_hub.resolve(h) for h in {handles!r}]))
        """,
        env={**up.env(), "TFHUB_CACHE_DIR": str(theirs), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    their_paths = json.loads(out.strip().splitlines()[-1])
    their_log = up.log
    up.clear_log()
    ours = [hub.resolve(h) for h in handles]
    our_log = up.log
    for handle, mine, their in zip(handles, ours, their_paths, strict=True):
        assert os.path.basename(mine) == os.path.basename(their) == sha1(handle)
        assert tree(Path(mine)) == tree(Path(their))
    # The same requests on the wire: the handle with the format query, then each Location.
    assert [(r.host, r.target) for r in our_log if r.host != STORAGE] == [
        (r.host, r.target) for r in their_log if r.host != STORAGE
    ]
    assert [r.host for r in our_log] == [TFHUB, KAGGLE, STORAGE, KAGGLE, STORAGE]
    assert our_log[0].target == handles[0] + "?tf-hub-format=compressed"
    assert hub.resolve(handles[0]) == ours[0]  # and the second time from the cache
    assert len(up.log) == len(our_log)
    assert tree(Path(ours[0])) == tree(models["mul"])


def test_an_expired_signature_restarts_the_chain_from_the_handle(up, cache_dir):
    handle = up.tfhub_handle(MUL[0])
    up.expire_next(1)
    path = hub.resolve(handle)
    assert Path(path, "saved_model.pb").is_file()
    assert [r.host for r in up.log] == [TFHUB, KAGGLE, STORAGE] * 2


def test_signatures_that_keep_expiring_fail_after_bounded_restarts(up, cache_dir):
    handle = up.tfhub_handle(DICT[0])
    up.expire_next(-1)
    with pytest.raises(hub.DownloadError, match=r"403.*signed URL that expired") as info:
        hub.resolve(handle)
    assert info.value.status == 403 and info.value.handle == handle
    from tfhub.handles.chain import MAX_RESTARTS

    assert up.count(TFHUB) == up.count(STORAGE) == MAX_RESTARTS + 1
    assert not cache.entry_path(handle).exists()
    assert [p.name for p in cache_dir.iterdir() if ".tmp" in p.name] == []


def test_no_credentials_reach_the_blob_server(up, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    path = hub.resolve(up.tfhub_handle(TEXT[0]))
    assert Path(path, "saved_model.pb").is_file()
    first = up.log[0]
    assert first.host == TFHUB and first.headers["authorization"].startswith("Basic ")
    blobs = [r for r in up.log if r.host == STORAGE]
    assert blobs and all("authorization" not in r.headers for r in blobs)
    assert all("authorization" not in r.headers for r in up.log if r.host == KAGGLE)


def test_both_kaggle_spellings_share_one_entry(up):
    long_handle = up.kaggle_handle(MUL[1], long=True)  # Kaggle's capitals: TensorFlow2
    short_handle = up.kaggle_handle(MUL[1].lower())
    path = hub.resolve(long_handle)
    assert os.path.basename(path) == sha1(long_handle)
    requests = len(up.log)
    assert hub.resolve(short_handle) == path
    assert hub.resolve(up.kaggle_handle(MUL[1])) == path  # short form, Kaggle's capitals
    assert len(up.log) == requests
    # and the other way round: filled under the short form, found under the long one
    path = hub.resolve(up.kaggle_handle(TEXT[1]))
    assert hub.resolve(up.kaggle_handle(TEXT[1], long=True)) == path
    assert up.count(KAGGLE) == 2


def test_the_handle_map_sends_legacy_handles_to_our_hub(models, monkeypatch, caplog, capsys):
    legacy = "http://tfhub.dev/test/mul/1"
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing reaches the internet
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with HostingServer({"test/mul/1": models["mul"]}) as ours:
        rule = f"http://tfhub.dev/={ours.url()}"
        monkeypatch.setenv("TFHUB_HANDLE_MAP", f"https://elsewhere/=/nowhere/ {rule}")
        mapped = ours.url("test/mul/1")
        with caplog.at_level(logging.INFO, logger="tfhub"):
            assert cli.main(["resolve", "-v", legacy]) == 0
        path = capsys.readouterr().out.strip()
        assert path == str(cache.entry_path(mapped))
        assert f"Handle map: {legacy} -> {mapped}" in caplog.text
        assert f"(rule {rule} (TFHUB_HANDLE_MAP))" in caplog.text
        served = len(ours.requests)
        assert hub.resolve(mapped) == path
        assert len(ours.requests) == served
    # the hub is gone: the entry of the rewritten handle serves the original one
    assert hub.resolve(legacy) == path
    model = hub.load(legacy)
    assert float(model(3.0)) == float(hub.load(str(models["mul"]))(3.0))


def test_a_cache_filled_under_the_original_handle_is_reused_after_mapping(up, monkeypatch):
    legacy = up.tfhub_handle(MUL[0])
    path = hub.resolve(legacy)  # as before the map: through the chain
    for name in up.env():
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("TFHUB_HANDLE_MAP", "http://tfhub.dev/=http://127.0.0.1:9/")
    assert hub.resolve(legacy) == path


def _kagglehub_entry(root: Path, model_dir: Path) -> Path:
    variation = root / "models" / "Test" / "Mul" / "TensorFlow2" / "mul"
    shutil.copytree(model_dir, variation / "1")
    (variation / "1.complete").touch()
    return variation / "1"


def test_offline_reuses_a_kagglehub_cache(models, tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_OFFLINE", "1")
    entry = _kagglehub_entry(tmp_path / "kagglehub", models["mul"])
    for spelling in (
        "https://www.kaggle.com/models/test/mul/tensorflow2/mul/1",
        "https://www.kaggle.com/models/Test/Mul/frameworks/TensorFlow2/variations/mul/versions/1",
    ):
        assert hub.resolve(spelling) == str(entry)
    with pytest.raises(hub.OfflineError, match="kagglehub"):
        hub.resolve("https://www.kaggle.com/models/test/mul/tensorflow2/mul/2")
    (entry.parent / "1.complete").unlink()  # kagglehub's mark of a complete download
    with pytest.raises(hub.OfflineError):
        hub.resolve("https://www.kaggle.com/models/test/mul/tensorflow2/mul/1")


def test_offline_reuses_tensorflow_hubs_default_cache(models, monkeypatch):
    monkeypatch.setenv("TFHUB_OFFLINE", "1")
    handle = "https://tfhub.dev/test/mul/1"
    entry = Path(tempfile.gettempdir(), "tfhub_modules", sha1(handle))
    shutil.copytree(models["mul"], entry)
    assert hub.resolve(handle) == str(entry)


@pytest.mark.parametrize(
    "attack", ["symlink", "world-writable", "writable-root", "swappable-root", "linked-root"]
)
def test_offline_refuses_foreign_entries_another_user_could_have_planted(
    models, tmp_path, monkeypatch, attack
):
    monkeypatch.setenv("TFHUB_OFFLINE", "1")
    handle = "https://tfhub.dev/test/mul/1"
    root = Path(tempfile.gettempdir(), "tfhub_modules")
    entry = root / sha1(handle)
    shutil.copytree(models["mul"], entry)
    secret = tmp_path / "secret"
    secret.write_text("not yours")
    if attack == "symlink":
        (entry / "assets").mkdir(exist_ok=True)
        (entry / "assets" / "vocab.txt").symlink_to(secret)
    elif attack == "world-writable":
        (entry / "saved_model.pb").chmod(0o666)
    elif attack == "writable-root":
        root.chmod(0o777)
    elif attack == "swappable-root":
        root.parent.chmod(0o777)  # a temp dir anyone may rename things in (no sticky bit)
    else:
        elsewhere = tmp_path / "elsewhere"
        root.rename(elsewhere)
        root.symlink_to(elsewhere)
    with pytest.raises(hub.OfflineError):
        hub.resolve(handle)
    assert secret.read_text() == "not yours"
    assert entry.is_dir()  # read only: nothing of another client's cache is touched
    assert not cache.entry_path(handle).exists()


def test_foreign_entries_still_pass_the_op_policy(tmp_path, monkeypatch):
    import tensorflow as tf

    class Evil(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def __call__(self, path):
            tf.io.write_file(path, "pwned")
            return tf.io.read_file(path)

    monkeypatch.setenv("TFHUB_OFFLINE", "1")
    src = tmp_path / "evil"
    tf.saved_model.save(Evil(), str(src))
    entry = _kagglehub_entry(tmp_path / "kagglehub", src)
    handle = "https://www.kaggle.com/models/test/mul/tensorflow2/mul/1"
    assert hub.resolve(handle) == str(entry)
    with pytest.raises(hub.UnsafeOpsError, match="WriteFile"):
        hub.load(handle)


def test_open_archive_gives_the_upstream_tarball_for_mirroring(up, tarballs):
    from tfhub.handles.chain import open_archive

    up.expire_next(1)
    with open_archive(up.kaggle_handle(DICT[1], long=True)) as resp:
        assert resp.raw.read() == tarballs["dict"]
    assert [r.host for r in up.log] == [KAGGLE, STORAGE] * 2
