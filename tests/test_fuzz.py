"""Property-based tests (hypothesis) of the parsers that see untrusted input.

How many examples: the hypothesis profile chosen in conftest (``ci``: 300 per test).
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import tfhub as hub
from tfhub.handles.archive import extract_tar_stream
from tfhub.handles.registry import check_handle, scheme_of
from tfhub.server.catalog import ModelNameError, parse_docs, parse_model_path


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none()))
def test_handle_checks_accept_strings_and_refuse_the_rest_with_our_error(value):
    try:
        handle = check_handle(value)
    except hub.InvalidHandleError:
        assert not isinstance(value, str) or not value.strip()
        return
    assert isinstance(handle, str) and handle.strip()
    scheme = scheme_of(handle)
    assert scheme is None or handle.lower().startswith(scheme + "://")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_model_paths_are_valid_or_refused_with_a_message(path):
    try:
        name = parse_model_path(path)
    except ModelNameError as exc:
        assert str(exc)
        return
    assert ".." not in name.model.split("/") and "\x00" not in name.path
    assert name.version is None or name.version > 0


@given(st.text(max_size=400))
def test_docs_parser_returns_a_title_or_a_value_error(text):
    try:
        docs = parse_docs(text)
    except ValueError as exc:
        assert str(exc)
        return
    assert text.strip().startswith("# ") and isinstance(docs["metadata"], dict)


_members = st.lists(
    st.tuples(
        st.text(alphabet="ab./\\-_", min_size=1, max_size=12),
        st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE]),
        st.binary(max_size=64),
        st.integers(min_value=0, max_value=0o7777),
    ),
    max_size=6,
)


def _archive(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, kind, data, mode in members:
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, mode
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = "../../etc/passwd"
                tar.addfile(info)
    return buf.getvalue()


@given(st.one_of(_members.map(_archive), st.binary(max_size=300)))
def test_tar_reader_writes_inside_or_raises_archive_error(body):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dest = root / "dest"
        dest.mkdir()
        try:
            manifest = extract_tar_stream(io.BytesIO(body), dest, source="fuzz")
        except hub.ArchiveError:
            manifest = {}
        everything = {p.relative_to(root) for p in root.rglob("*")}
        assert all(p.parts[0] == "dest" for p in everything)  # nothing written outside
        for rel, record in manifest.items():
            path = dest / rel
            assert path.is_file() and not path.is_symlink()
            assert os.path.getsize(path) == record.size
