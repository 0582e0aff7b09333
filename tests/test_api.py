"""The public surface, settings and the error tree."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

import tfhub as hub
from tests.helpers import REPO
from tfhub import config, errors

EXPECTED_API = {
    "ArchiveError",
    "ImageModuleInfo",
    "LatestModuleExporter",
    "Module",
    "ModuleSpec",
    "add_signature",
    "attach_image_module_info",
    "attach_message",
    "convert",
    "create_module_spec",
    "create_module_spec_from_saved_model",
    "eval_function_for_module",
    "export_keras",
    "export_text_embedding",
    "get_expected_image_size",
    "get_num_image_channels",
    "load_module_spec",
    "register_module_for_export",
    "text_embedding_column",
    "text_embedding_column_v2",
    "sparse_text_embedding_column",
    "image_embedding_column",
    "ArchiveTooLargeError",
    "CacheError",
    "ConfigError",
    "DownloadError",
    "HubError",
    "InvalidHandleError",
    "KerasLayer",
    "ModelNotFoundError",
    "NotAModelError",
    "OfflineError",
    "ProtocolError",
    "RemoteNotFoundError",
    "UsageError",
    "CommonSignatureError",
    "ConversionError",
    "ModelNameError",
    "PublishError",
    "SlowTransferError",
    "StorageError",
    "UnsafeOpsError",
    "UnscannableError",
    "UpstreamHandleError",
    "CatalogError",
    "__version__",
    "load",
    "register_resolver",
    "resolve",
}


def test_all_is_exactly_the_public_api():
    assert set(hub.__all__) == EXPECTED_API
    assert set(errors.__all__) <= set(hub.__all__)  # every error is catchable as hub.<Name>
    for name in hub.__all__:
        assert getattr(hub, name) is not None, name


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        hub.Nope  # noqa: B018


def test_import_does_not_import_tensorflow_or_requests():
    code = (
        "import sys, tfhub; "
        "print('tensorflow' in sys.modules, 'requests' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.split() == ["False", "False", "False"]


def test_error_tree_mixes_in_the_builtins_tensorflow_hub_raised():
    assert issubclass(errors.InvalidHandleError, ValueError)
    assert issubclass(errors.NotAModelError, ValueError)
    assert issubclass(errors.UsageError, ValueError)
    assert issubclass(errors.ModelNotFoundError, FileNotFoundError)
    assert issubclass(errors.OfflineError, FileNotFoundError)
    assert issubclass(errors.DownloadError, ConnectionError)
    assert issubclass(errors.RemoteNotFoundError, FileNotFoundError)
    assert issubclass(errors.RemoteNotFoundError, ConnectionError)
    assert issubclass(errors.ArchiveError, OSError)
    assert issubclass(errors.ProtocolError, ValueError)
    assert issubclass(errors.ProtocolError, ConnectionError)
    for name in hub.__all__:
        obj = getattr(hub, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, hub.HubError)
    err = errors.DownloadError("boom", handle="h", url="u", status=503)
    assert (str(err), err.handle, err.url, err.status) == ("boom", "h", "u", 503)


def test_settings_are_read_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "a"))
    assert config.cache_dir() == tmp_path / "a"
    monkeypatch.setenv("TFHUB_CACHE_DIR", f"file://{tmp_path}/b")
    assert config.cache_dir() == tmp_path / "b"


def test_default_cache_dir_is_persistent_and_per_user(monkeypatch, tmp_path):
    monkeypatch.delenv("TFHUB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.cache_dir() == tmp_path / "xdg" / "tfhub" / "modules"
    monkeypatch.delenv("XDG_CACHE_HOME")
    default = config.cache_dir()
    assert str(default).startswith(os.path.expanduser("~"))
    assert not str(default).startswith(tempfile.gettempdir())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("COMPRESSED", config.LoadFormat.COMPRESSED),
        ("uncompressed", config.LoadFormat.UNCOMPRESSED),
        ("Auto", config.LoadFormat.AUTO),
        ("", config.LoadFormat.AUTO),
    ],
)
def test_model_load_format(monkeypatch, raw, expected):
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", raw)
    assert config.model_load_format() is expected


def test_invalid_model_load_format_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TFHUB_MODEL_LOAD_FORMAT", "zip")
    with pytest.raises(hub.ConfigError, match=r"TFHUB_MODEL_LOAD_FORMAT='zip'.*COMPRESSED"):
        hub.resolve("https://example.invalid/a/b/1")


def test_boolean_and_number_settings(monkeypatch):
    monkeypatch.setenv("TFHUB_OFFLINE", "yes")
    assert config.offline() is True
    monkeypatch.setenv("TFHUB_OFFLINE", "0")
    assert config.offline() is False
    monkeypatch.setenv("TFHUB_OFFLINE", "maybe")
    with pytest.raises(hub.ConfigError, match="TFHUB_OFFLINE='maybe' is not a boolean"):
        config.offline()
    monkeypatch.setenv("TFHUB_HTTP_TIMEOUT", "-1")
    with pytest.raises(hub.ConfigError, match="TFHUB_HTTP_TIMEOUT"):
        config.http_timeout()
    monkeypatch.setenv("TFHUB_HTTP_RETRIES", "two")
    with pytest.raises(hub.ConfigError, match="not a number"):
        config.http_retries()


def test_server_settings_are_validated(monkeypatch, tmp_path):
    monkeypatch.setenv("TFHUB_PUBLIC_URL", "hub.example.com")
    with pytest.raises(hub.ConfigError, match=r"TFHUB_PUBLIC_URL='hub.example.com'.*https://"):
        config.public_url()
    monkeypatch.setenv("TFHUB_PUBLIC_URL", "https://hub.example.com/")
    assert config.public_url() == "https://hub.example.com"
    for name, bad in (
        ("TFHUB_HEADER_TIMEOUT", "0"),
        ("TFHUB_MAX_CONNECTIONS_PER_CLIENT", "many"),
        ("TFHUB_MAX_UNPACKED_BYTES", "-5"),
        ("TFHUB_MAX_UPLOAD_BYTES", "8G"),
        ("TFHUB_ALLOW_UNSAFE_OPS", "maybe"),
    ):
        monkeypatch.setenv(name, bad)
    for read in (
        config.header_timeout,
        config.max_connections_per_client,
        config.max_unpacked_bytes,
        config.max_upload_bytes,
        config.allow_unsafe_ops,
    ):
        with pytest.raises(hub.ConfigError, match="TFHUB_"):
            read()
    token_file = tmp_path / "tokens"
    token_file.write_text("lonely-token\n")
    monkeypatch.setenv("TFHUB_TOKEN_FILE", str(token_file))
    from tfhub.server.publish import Tokens

    with pytest.raises(hub.ConfigError, match=r"TFHUB_TOKEN_FILE .*tokens:1"):
        Tokens.from_env()
