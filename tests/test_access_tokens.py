"""Hub tokens: `tfhub token new` prints a token and a hashed line; the server (a real
`tfhub serve` process) keeps only hashes, never writes a token to its files or log, and keeps
the old plaintext lines working (with a warning)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests

import tfhub as hub
from tests.helpers.hub import HubServer
from tests.helpers.models import save_mul
from tfhub.cli import main


def _new_token(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert main(["token", "new", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("token: ") and out[1].startswith("line:  ")
    return out[0].removeprefix("token: "), out[1].removeprefix("line:  ")


def _files_text(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_hashed_tokens_publish_and_read_and_leave_no_plaintext(tmp_path, capsys, monkeypatch):
    writer, writer_line = _new_token(capsys, "--publish", "acme")
    reader, reader_line = _new_token(capsys, "--read", "acme/m")
    assert writer not in writer_line and reader not in reader_line
    assert writer_line == f"sha256:{hashlib.sha256(writer.encode()).hexdigest()} publish=acme"
    assert reader_line.endswith(" read=acme/m")
    token_file = tmp_path / "tokens"
    token_file.write_text(f"{writer_line}\n{reader_line}\nold-plaintext-token bob\n")
    root = tmp_path / "store"
    model = save_mul(tmp_path / "mul")
    with HubServer(
        str(root), env={"TFHUB_PUBLISH_TOKEN": "", "TFHUB_TOKEN_FILE": str(token_file)}
    ) as server:
        monkeypatch.setenv("TFHUB_TOKEN", writer)
        assert main(["publish", str(model), "acme/m/1", "--server", server.url, "--private"]) == 0
        url = f"{server.url}/acme/m/1?tf-hub-format=compressed"
        for token, status in (
            (None, 404),
            (writer, 200),
            (reader, 200),
            ("old-plaintext-token", 404),
        ):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            assert requests.get(url, headers=headers, timeout=30).status_code == status, token
        # The old plaintext line still grants publishing to bob (a 403 for acme, not a 401).
        refused = requests.put(
            f"{server.url}/api/models/acme/x/1",
            data=b"x",
            headers={"Authorization": "Bearer old-plaintext-token"},
            timeout=30,
        )
        assert refused.status_code == 403
        monkeypatch.setenv("TFHUB_TOKEN_ORIGINS", server.url)
        monkeypatch.setenv("TFHUB_TOKEN", reader)
        assert float(hub.load(f"{server.url}/acme/m/1")(2.0)) == 4.0
        # Publishing takes the server's token from the client token file too.
        monkeypatch.delenv("TFHUB_TOKEN")
        assert main(["publish", str(model), "acme/n/1", "--server", server.url]) == 4
        assert "(401)" in capsys.readouterr().err
        (tmp_path / "mine").write_text(f"{server.url} {reader}\n")
        monkeypatch.setenv("TFHUB_CLIENT_TOKEN_FILE", str(tmp_path / "mine"))
        assert main(["publish", str(model), "acme/n/1", "--server", server.url]) == 4
        assert "may not publish for publisher 'acme'" in capsys.readouterr().err  # 403: known
        log = server.wait_for_log("plaintext token")
    assert "tokens:3 holds a plaintext token" in log
    stored = _files_text(root)
    for token in (writer, reader, "old-plaintext-token"):
        assert token.encode() not in stored and token not in log
    assert b'"private": true' in stored
    assert writer not in token_file.read_text() and reader not in token_file.read_text()


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
