"""Issue 13's air-gapped scenario, end to end with real processes.

Three models reach our hub (``tfhub serve``, a real subprocess) through ``tfhub mirror pull``
(a real subprocess): one from the emulated tfhub.dev → Kaggle → signed-storage chain
(:mod:`tests.helpers.upstream`), one from a cache that the real ``tensorflow_hub`` 0.16 filled
from that chain, one from a kagglehub-layout cache. A second run skips all three. Then the
upstream is stopped and the legacy handles run unchanged through ``TFHUB_HANDLE_MAP`` with
tfhub, and through ``tensorflow_hub`` 0.16 pointed at the mirrored URLs: equal outputs.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers import python_env, run_python
from tests.helpers.hub import TOKEN, HubServer
from tests.helpers.upstream import Upstream
from tfhub.server.packing import pack_model_dir

KAGGLE_LONG = (
    "https://www.kaggle.com/models/google/times5/frameworks/TensorFlow2/variations/v/versions/1"
)
X = [1.0, -2.5, 4.0]


def _save(path: Path, value: float) -> Path:
    import tensorflow as tf

    from tests.helpers.models import MyMulModel

    tf.saved_model.save(MyMulModel(value), str(path))
    return path


def _tarball(model: Path) -> bytes:
    buf = io.BytesIO()
    pack_model_dir(model, buf)
    return buf.getvalue()


def _pull(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "tfhub.cli", "mirror", "pull", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=python_env(env))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Models, the upstream, the two caches and the hub, built once."""
    base = tmp_path_factory.mktemp("airgap")
    times2, times3, times5 = (_save(base / f"m{v}", float(v)) for v in (2, 3, 5))
    upstream = Upstream().start()
    archive = _tarball(times2)
    upstream.add("google/times2/1", "google/times2/tensorFlow2/v/1", archive)
    upstream.add("google/times3/1", "google/times3/tensorFlow2/v/1", _tarball(times3))
    # the real tensorflow_hub 0.16 fills its cache from the chain
    tf_cache = base / "tfhub_modules"
    run_python(
        f"""
        import tensorflow_hub as hub
        print(hub.resolve({upstream.tfhub_handle("google/times3/1")!r}))
        """,
        env={**upstream.env(), "TFHUB_CACHE_DIR": str(tf_cache)},
    )
    kaggle = base / "kagglehub"
    version_dir = kaggle / "models" / "google" / "times5" / "TensorFlow2" / "v" / "1"
    shutil.copytree(times5, version_dir)
    (version_dir.parent / "1.complete").touch()
    hub = HubServer(str(base / "hub"))
    try:
        yield {
            "upstream": upstream,
            "archive": archive,
            "tf_cache": tf_cache,
            "kaggle": kaggle,
            "hub": hub,
        }
    finally:
        hub.stop()
        upstream.stop()


def test_mirror_then_run_legacy_handles_offline(site, tmp_path, monkeypatch):
    upstream, hub = site["upstream"], site["hub"]
    legacy_tfhub = upstream.tfhub_handle("google/times2/1")
    legacy_cached = upstream.tfhub_handle("google/times3/1")
    sources = [legacy_tfhub, str(site["tf_cache"]), str(site["kaggle"])]
    env = {**upstream.env(), "TFHUB_TOKEN": TOKEN, "TFHUB_CACHE_DIR": str(tmp_path / "own")}
    first = _pull([*sources, "--server", hub.url], env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.splitlines()[-1] == "3 mirrored, 0 skipped, 0 failed"
    assert not (tmp_path / "own").exists()  # a private temporary cache, not the user's

    # provenance in the API
    api = f"{hub.url}/api/models"
    prov = requests.get(f"{api}/google/times2/1", timeout=10).json()["provenance"]
    assert prov["source"] == legacy_tfhub and prov["fetched"].endswith("+00:00")
    assert prov["sha256"] == hashlib.sha256(site["archive"]).hexdigest()
    assert prov["size"] == len(site["archive"])
    prov = requests.get(f"{api}/google/times3/1", timeout=10).json()["provenance"]
    assert prov["source"] == legacy_cached and prov["sha256"] is None
    prov = requests.get(f"{api}/google/times5/tensorflow2/v/1", timeout=10).json()["provenance"]
    assert prov["source"] == "https://www.kaggle.com/models/google/times5/TensorFlow2/v/1"

    # a second run skips what is there (same files)
    again = _pull([*sources, "--server", hub.url], env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "0 mirrored, 3 skipped, 0 failed"

    upstream.stop()  # from here on, no internet
    gone = _pull([legacy_tfhub, "--server", hub.url], env)
    assert gone.returncode == 1
    assert gone.stdout.splitlines()[-1] == "0 mirrored, 0 skipped, 1 failed"
    assert f"tfhub: error: {legacy_tfhub}:" in gone.stderr

    legacy = [legacy_tfhub, legacy_cached, KAGGLE_LONG]
    mirrored = [f"{hub.url}/{p}" for p in ("google/times2/1", "google/times3/1")]
    mirrored.append(f"{hub.url}/google/times5/tensorflow2/v/1")
    handle_map = f"http://tfhub.dev/={hub.url}/ https://www.kaggle.com/models/={hub.url}/"
    ours = json.loads(
        run_python(
            f"""
            import json, tfhub as hub
            print(json.dumps([hub.load(h)({X!r}).numpy().tolist() for h in {legacy!r}]))
            """,
            env={"TFHUB_HANDLE_MAP": handle_map, "TFHUB_CACHE_DIR": str(tmp_path / "c1")},
        ).splitlines()[-1]
    )
    theirs = json.loads(
        run_python(
            f"""
            import json, tensorflow as tf, tensorflow_hub as hub
            x = tf.constant({X!r})
            print(json.dumps([hub.load(h)(x).numpy().tolist() for h in {mirrored!r}]))
            """,
            env={"TFHUB_CACHE_DIR": str(tmp_path / "c2")},
        ).splitlines()[-1]
    )
    assert ours == theirs == [[v * x for x in X] for v in (2.0, 3.0, 5.0)]
