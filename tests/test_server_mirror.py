"""`tfhub mirror export` writes through staging and never copies bytes altered in storage."""

from __future__ import annotations

import json

import pytest

from tfhub import errors
from tfhub.server.client import publish_to_root
from tfhub.server.mirror import export_mirror


def test_an_altered_archive_stops_the_export_and_leaves_nothing(models, tmp_path):
    store = tmp_path / "store"
    publish_to_root(models["mul"], "test/mul/1", root=str(store))
    out = tmp_path / "www"
    assert export_mirror(str(store), out) == 1
    assert (out / "test" / "mul" / "1").read_bytes() == (
        out / "test" / "mul" / "index.html"
    ).read_bytes()
    with pytest.raises(errors.UsageError, match="not an empty directory"):
        export_mirror(str(store), out)  # never written over
    record = json.loads((store / "test/mul/1/meta.json").read_text())
    archive = store / record["archive"]["key"]
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(errors.StorageError, match="does not match"):
        export_mirror(str(store), tmp_path / "www2")
    assert not (tmp_path / "www2").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".www2")] == []
