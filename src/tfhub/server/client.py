"""Publishing from the command line: to a running server, or straight into a storage root."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tfhub import config
from tfhub.errors import DownloadError, ModelNameError, PublishError, UsageError
from tfhub.handles import credentials
from tfhub.handles.http import session
from tfhub.progress import byte_bar
from tfhub.server.packing import pack_model_dir

__all__ = ["fetch_record", "pack_model", "publish_to_root", "publish_to_server"]

_CHUNK = 1 << 20


def pack_model(src_dir: str | os.PathLike[str], out: Path) -> Path:
    """Writes ``src_dir`` as a tar.gz whose root is the model root (owner reset, no links)."""
    with open(out, "wb") as f:
        pack_model_dir(src_dir, f)
    return out


def _multipart(
    archive: Path,
    docs: str | None,
    boundary: str,
    provenance: dict[str, Any] | None = None,
    private: bool = False,
) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"; '
        'filename="model.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n'
    ).encode()
    bar = byte_bar(f"uploading {archive.name}", archive.stat().st_size)
    try:
        with open(archive, "rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    if docs is not None:
        yield (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="docs"\r\n'
            "Content-Type: text/markdown; charset=utf-8\r\n\r\n"
        ).encode()
        yield docs.encode("utf8")
    if provenance is not None:
        yield (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="provenance"\r\n'
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        yield json.dumps(provenance).encode("utf8")
    if private:
        yield (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="private"\r\n\r\ntrue'
        ).encode()
    yield f"\r\n--{boundary}--\r\n".encode()


def _file_token(url: str) -> str | None:
    origin = credentials.origin_of(url)
    return credentials.tokens().get(origin) if origin else None


def _refusal(url: str, name: str, status: int, body: Any) -> PublishError:
    """The server's refusal as a PublishError that keeps the server's message."""
    said = body.get("error", body) if isinstance(body, dict) else body
    message = f"The hub at {url} refused to publish {name} ({status}): {said}"
    if status == 401:
        message += " Set TFHUB_TOKEN to a publishing token of this hub."
    elif status == 403:
        message += " Ask the hub's operator for a token of this publisher (TFHUB_TOKEN)."
    return PublishError(message, status=status, handle=name)


def publish_to_server(
    src_dir: str | os.PathLike[str],
    name: str,
    *,
    server: str,
    token: str | None = None,
    docs: str | None = None,
    provenance: dict[str, Any] | None = None,
    private: bool = False,
) -> dict[str, Any]:
    """Uploads ``src_dir`` as ``publisher/model/version`` to the hub at ``server``.

    Args:
        token: the bearer token (default ``TFHUB_TOKEN``, else the server's line of
            ``TFHUB_CLIENT_TOKEN_FILE``).
        provenance: where the model came from (:mod:`tfhub.server.provenance`), stored in
            the record by the hub.
        private: publish a private version (read only with a read grant).

    Raises:
        PublishError: the server refused (``.status``; its message is in the error).
        DownloadError: the server could not be reached.
    """
    url = f"{server.rstrip('/')}/api/models/{name.strip('/')}"
    token = token or config.client_token() or _file_token(url)
    with tempfile.TemporaryDirectory() as tmp:
        archive = pack_model(src_dir, Path(tmp) / "model.tar.gz")
        boundary = uuid.uuid4().hex
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        with session() as s:
            try:
                resp = s.post(
                    url,
                    data=_multipart(archive, docs, boundary, provenance, private),
                    headers=headers,
                    timeout=(config.http_timeout(), 3600),
                )
            except Exception as exc:
                raise DownloadError(f"Could not reach {url}: {exc}", url=url) from exc
    try:
        body = resp.json()
    except ValueError:
        body = {"error": resp.text[:500]}
    if resp.status_code != 201:
        raise _refusal(url, name, resp.status_code, body)
    return body  # type: ignore[no-any-return]


def publish_to_root(
    src_dir: str | os.PathLike[str],
    name: str,
    *,
    root: str,
    docs: str | None = None,
    provenance: dict[str, Any] | None = None,
    private: bool = False,
) -> dict[str, Any]:
    """Publishes into a storage root directly (no server), with the same validation.

    Raises:
        PublishError: the model or name is refused (same checks as the server).
        UsageError: ``name`` is not ``publisher/model/version``.
    """
    from tfhub.server.catalog import Catalog, parse_model_path
    from tfhub.server.publish import Publisher
    from tfhub.server.storage import open_storage

    try:
        model_name = parse_model_path(name)
    except ModelNameError as exc:
        raise UsageError(str(exc)) from exc
    if model_name.version is None:
        raise UsageError(f"{name}: give a version, as in publisher/model/1.")
    catalog = Catalog(open_storage(root))
    publisher = Publisher(catalog, max_upload_bytes=config.max_model_bytes(), inspect_timeout=600)
    with tempfile.TemporaryDirectory() as tmp:
        archive = pack_model(src_dir, Path(tmp) / "model.tar.gz")
        upload = publisher.new_upload()
        try:
            with open(archive, "rb") as f:
                while chunk := f.read(_CHUNK):
                    upload.write(chunk)
            sha256 = upload.finish()
            return publisher.publish(
                model_name, upload, sha256, docs, provenance=provenance, private=private
            )
        except PublishError as exc:
            raise PublishError(f"Cannot publish {name}: {exc}", status=exc.status) from exc
        finally:
            upload.discard()
            publisher.close()


def fetch_record(server: str, name: str, *, token: str | None = None) -> dict[str, Any] | None:
    """The record of version ``name`` on the hub at ``server``, or None when it has none.

    Raises:
        DownloadError: the hub could not be reached or answered with an error.
    """
    url = f"{server.rstrip('/')}/api/models/{name.strip('/')}"
    token = token or config.client_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with session() as s:
        try:
            resp = s.get(url, headers=headers, timeout=config.http_timeout())
        except Exception as exc:
            raise DownloadError(f"Could not reach {url}: {exc}", url=url) from exc
    if resp.status_code == 404:
        return None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if resp.status_code != 200 or not isinstance(body, dict):
        raise DownloadError(
            f"{url} answered {resp.status_code} {resp.text[:200]!r}; is {server} a tfhub hub?",
            url=url,
            status=resp.status_code,
        )
    return body
