"""Hub tokens: `tfhub token new` prints a token and its hashed line, `tfhub token hash` the
line of an existing one; bad lines name the file and line. (That the hub keeps no token in its
files or log is tested in test_access_server.py, with the models it publishes.)"""

from __future__ import annotations

import hashlib

import pytest

import tfhub as hub
from tfhub.cli import main


def _new_token(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert main(["token", "new", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("token: ") and out[1].startswith("line:  ")
    return out[0].removeprefix("token: "), out[1].removeprefix("line:  ")


def test_token_new_prints_a_token_and_only_its_hash_for_the_file(capsys):
    writer, writer_line = _new_token(capsys, "--publish", "acme")
    reader, reader_line = _new_token(capsys, "--read", "acme/m,team", "--read", "x")
    assert writer != reader and len(writer) > 40
    assert writer not in writer_line and reader not in reader_line
    assert writer_line == f"sha256:{hashlib.sha256(writer.encode()).hexdigest()} publish=acme"
    assert reader_line.endswith(" read=acme/m,team,x")


def test_token_lines_are_checked(tmp_path, monkeypatch, capsys):
    from tfhub.server.access import Tokens, token_line

    with pytest.raises(hub.ConfigError, match="needs a grant"):
        token_line("t")
    with pytest.raises(hub.ConfigError, match="--publish grants namespaces"):
        token_line("t", publish=["acme/model"])
    with pytest.raises(hub.ConfigError, match=r"--read 'a b\|c'"):
        token_line("t", read=["a b|c"])
    assert main(["token", "new"]) == 2
    assert "needs a grant" in capsys.readouterr().err
    digest = "sha256:" + "ab" * 32
    for line, message in (
        (f"{digest}", "grants nothing"),
        (f"{digest} write=acme", "'write=acme' is not read="),
        ("sha256:abc read=acme", "is not sha256: and 64"),
        ("lonely-token", "expected 'sha256:<hex>"),
    ):
        (tmp_path / "tokens").write_text(f"# comment\n{line}\n")
        monkeypatch.setenv("TFHUB_TOKEN_FILE", str(tmp_path / "tokens"))
        with pytest.raises(hub.ConfigError, match=f"TFHUB_TOKEN_FILE .*tokens:2: .*{message}"):
            Tokens.from_env()
    monkeypatch.delenv("TFHUB_TOKEN_FILE")
    monkeypatch.setenv("TFHUB_PRIVATE_NAMESPACES", "acme, bad/name")
    with pytest.raises(hub.ConfigError, match="TFHUB_PRIVATE_NAMESPACES entry 'bad/name'"):
        Tokens.from_env()


def test_token_hash_turns_an_existing_token_into_its_line(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("old-plaintext-token\n"))
    assert main(["token", "hash", "--publish", "bob", "--read", "acme,team/m"]) == 0
    digest = hashlib.sha256(b"old-plaintext-token").hexdigest()
    assert capsys.readouterr().out == f"sha256:{digest} read=acme,team/m publish=bob\n"
