"""Publishing from the command line: to a running server, or straight into a storage root."""

from __future__ import annotations

import os
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tfhub import config, protocol
from tfhub.errors import DownloadError, NotAModelError, UsageError
from tfhub.handles.http import session

__all__ = ["pack_model", "publish_to_root", "publish_to_server"]

_CHUNK = 1 << 20


def pack_model(src_dir: str | os.PathLike[str], out: Path) -> Path:
    """Writes ``src_dir`` as a tar.gz whose root is the model root (owner reset, no links)."""
    src = Path(src_dir)
    if not protocol.is_model_dir(src):
        raise NotAModelError(
            f"{src} holds no saved_model.pb or tfhub_module.pb; pass the model directory.",
            handle=str(src),
        )

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if not (info.isfile() or info.isdir()):
            raise UsageError(f"{src}: {info.name} is not a plain file or directory.")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(out, "w:gz") as tar:
        tar.add(str(src), arcname=".", filter=clean)
    return out


def _multipart(archive: Path, docs: str | None, boundary: str) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"; '
        'filename="model.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n'
    ).encode()
    with open(archive, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk
    if docs is not None:
        yield (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="docs"\r\n'
            "Content-Type: text/markdown; charset=utf-8\r\n\r\n"
        ).encode()
        yield docs.encode("utf8")
    yield f"\r\n--{boundary}--\r\n".encode()


def publish_to_server(
    src_dir: str | os.PathLike[str],
    name: str,
    *,
    server: str,
    token: str | None,
    docs: str | None = None,
) -> dict[str, Any]:
    """Uploads ``src_dir`` as ``publisher/model/version`` to the hub at ``server``.

    Raises:
        DownloadError: the server refused (status and its message in the error) or is down.
    """
    url = f"{server.rstrip('/')}/api/models/{name.strip('/')}"
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
                    data=_multipart(archive, docs, boundary),
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
        raise DownloadError(
            f"Publishing to {url} failed with {resp.status_code}: {body.get('error', body)}",
            url=url,
            status=resp.status_code,
        )
    return body  # type: ignore[no-any-return]


def publish_to_root(
    src_dir: str | os.PathLike[str], name: str, *, root: str, docs: str | None = None
) -> dict[str, Any]:
    """Publishes into a storage root directly (no server), with the same validation."""
    from tfhub.server.catalog import Catalog, NameError_, parse_model_path
    from tfhub.server.publish import Publisher, PublishError
    from tfhub.server.storage import open_storage

    try:
        model_name = parse_model_path(name)
    except NameError_ as exc:
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
            return publisher.publish(model_name, upload, sha256, docs)
        except PublishError as exc:
            raise UsageError(f"Cannot publish {name}: {exc.message}") from exc
        finally:
            upload.discard()
            publisher.close()
