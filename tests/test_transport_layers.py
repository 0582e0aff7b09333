"""Layers of the network code: protocol and transport at the bottom, no http <-> fastpath cycle,
every request through the transport."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import REPO, imported_modules

SRC = REPO / "src" / "tfhub"


def _imports(path: Path) -> set[str]:
    """Every tfhub module a file imports, at module level or inside functions."""
    return {m for m in imported_modules(path) if m.startswith("tfhub")}


def test_protocol_and_transport_sit_below_the_handles():
    assert _imports(SRC / "protocol.py") <= {"tfhub.errors"} | {
        f"tfhub.errors.{n}" for n in ("ArchiveError", "ProtocolError")
    }
    assert all(
        m.startswith(("tfhub.errors", "tfhub.config", "tfhub.version"))
        or m in ("tfhub", "tfhub.config")
        for m in _imports(SRC / "transport.py")
    ), _imports(SRC / "transport.py")


def test_no_cycle_between_http_and_the_fast_path():
    assert not any(
        m.startswith("tfhub.handles.http") for m in _imports(SRC / "handles" / "fastpath.py")
    )
    for name in ("archive.py", "transfer.py", "objectstore.py", "fastpath.py"):
        assert "tfhub.handles.http" not in _imports(SRC / "handles" / name), name


def test_every_request_goes_through_the_transport():
    """No module but the transport opens its own session or calls requests directly."""
    pattern = re.compile(r"requests\.(Session|get|post|put|head|request)\(|urllib3\.PoolManager\(")
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "transport.py" and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_the_server_builds_the_manifest_and_hashes_blocks_with_the_protocol():
    routes = "".join(p.read_text() for p in (SRC / "server").glob("*.py") if p.name != "publish.py")
    publish = (SRC / "server" / "publish.py").read_text()
    assert "protocol.FilesManifest(" in routes and "X-Tfhub-Sha256" not in routes
    assert "protocol.iter_block_hashes(" in publish and "4 << 20" not in publish
