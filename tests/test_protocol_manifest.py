"""The hosting protocol module shared by client and server: the files manifest and blocks."""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tfhub as hub
from tfhub import protocol
from tfhub.handles import cache
from tfhub.protocol import FileEntry, FilesManifest

BLOCK = protocol.MIN_BLOCK_SIZE


def _entry(path="saved_model.pb", data=b"abc", url="/b", block=BLOCK):
    blocks = tuple(
        hashlib.sha256(data[o : o + block]).hexdigest() for o in range(0, len(data), block)
    )
    return FileEntry(path, len(data), hashlib.sha256(data).hexdigest(), url, blocks)


def test_round_trip_through_json():
    data = os.urandom(2 * BLOCK + 17)
    manifest = FilesManifest(
        BLOCK,
        (_entry(), _entry("variables/variables.data-00000-of-00001", data, "/x"), _entry("e", b"")),
    )
    text = json.dumps(manifest.to_json())
    again = FilesManifest.from_json(json.loads(text))
    assert again == manifest
    assert again.total_size == 3 + len(data)
    assert again.files[1].blocks == manifest.files[1].blocks and len(again.files[1].blocks) == 3
    assert again.files[2].blocks == ()  # an empty file has no block


def test_block_hashes_are_one_definition(tmp_path):
    """The server's publish, the client's stream check and the cache's verify agree."""
    data = os.urandom(3 * BLOCK + 5)
    hashes = list(protocol.iter_block_hashes(io.BytesIO(data), BLOCK))
    expected = [hashlib.sha256(data[o : o + BLOCK]).hexdigest() for o in range(0, len(data), BLOCK)]
    assert hashes == expected
    assert list(protocol.iter_block_hashes(io.BytesIO(b""), BLOCK)) == []
    assert list(protocol.iter_block_hashes(io.BytesIO(data[:BLOCK]), BLOCK)) == expected[:1]
    path = tmp_path / "f"
    path.write_bytes(data)
    assert cache.bad_blocks(path, BLOCK, tuple(hashes)) == []
    digest = protocol.block_digest()
    digest.update(data[BLOCK : 2 * BLOCK])
    assert digest.hexdigest() == hashes[1]
    assert protocol.BLOCK_SIZE == 4 << 20


def _doc(**changes):
    doc = FilesManifest(BLOCK, (_entry(),)).to_json()
    for key, value in changes.items():
        if key.startswith("f_"):
            doc["files"][0][key[2:]] = value
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "error", "field"),
    [
        (_doc(version=2), hub.ProtocolError, "version"),
        (_doc(version="1"), hub.ProtocolError, "version"),
        (_doc(block_size=1), hub.ProtocolError, "block_size"),
        (_doc(block_size=True), hub.ProtocolError, "block_size"),
        (_doc(files=[]), hub.ProtocolError, "files"),
        (_doc(files={}), hub.ProtocolError, "files"),
        (_doc(files=[3]), hub.ProtocolError, r"files\[0\]"),
        (_doc(f_size=-1), hub.ProtocolError, r"files\[0\]\.size"),
        (_doc(f_size=2.5), hub.ProtocolError, r"files\[0\]\.size"),
        (_doc(f_size=BLOCK + 1), hub.ProtocolError, r"files\[0\]\.blocks"),  # 2 blocks needed
        (_doc(f_sha256="A" * 64), hub.ProtocolError, r"files\[0\]\.sha256"),
        (_doc(f_blocks=["z" * 64]), hub.ProtocolError, r"files\[0\]\.blocks\[0\]"),
        (_doc(f_blocks="abc"), hub.ProtocolError, r"files\[0\]\.blocks"),
        (_doc(f_url=None), hub.ProtocolError, r"files\[0\]\.url"),
        (_doc(f_path=7), hub.ProtocolError, r"files\[0\]\.path"),
        (_doc(f_path="a/./b"), hub.ProtocolError, r"files\[0\]\.path"),
        (_doc(f_path="../x"), hub.ArchiveError, "outside the model directory"),
        (_doc(f_path="/etc/passwd"), hub.ArchiveError, "absolute path"),
        ([], hub.ProtocolError, "document"),
    ],
)
def test_strict_validation_names_the_field(doc, error, field):
    with pytest.raises(error, match=field):
        FilesManifest.from_json(doc)


def test_duplicates_and_file_directory_clashes():
    with pytest.raises(hub.ArchiveError, match="twice"):
        FilesManifest(BLOCK, (_entry("a"), _entry("a")))
    with pytest.raises(hub.ArchiveError, match="both as a file and as a directory"):
        FilesManifest(BLOCK, (_entry("a"), _entry("a/b")))


def test_the_server_builds_its_manifest_with_the_protocol_module():
    """server/publish.py hashes with the protocol's block size and function."""
    from tfhub.server import publish

    assert publish.BLOCK_SIZE == protocol.BLOCK_SIZE
    assert protocol.SHA256_HEADER == "X-Tfhub-Sha256"
    assert protocol.ACCEPT_FILES.startswith(protocol.FILES_MEDIA_TYPE)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(deadline=None)  # examples from the profile (conftest: ci or dev)
@given(
    st.sampled_from(["version", "block_size", "files", "path", "size", "sha256", "url", "blocks"]),
    _JSON,
)
def test_any_malformed_field_is_our_error_never_a_crash(key, value):
    doc = FilesManifest(BLOCK, (_entry(), _entry("variables/x", b"y" * 70000))).to_json()
    target = doc if key in ("version", "block_size", "files") else doc["files"][1]
    target[key] = value
    try:
        manifest = FilesManifest.from_json(json.loads(json.dumps(doc)))
    except (hub.ProtocolError, hub.ArchiveError):
        return
    assert FilesManifest.from_json(manifest.to_json()) == manifest  # what passes round-trips
