"""`tfhub publish` to a real `tfhub serve`: upload progress, warnings about junk documentation
metadata (CLI, server log, publish response), and pages that never invent a license."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
import tensorflow as tf

from tests.helpers import REPO, python_env
from tests.helpers.hub import TOKEN, HubServer, publish
from tfhub.server.client import pack_model

JUNK_DOCS = """# Module me/junk/1
A model whose documentation metadata is junk.

<!-- module-type: banana -->
<!-- fine-tunable: maybe -->
<!-- format: saved_model_2 -->
<!-- license: do-what-you-like -->

## Overview
Nothing to see.
"""


def tfhub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfhub.cli", *args],
        capture_output=True,
        text=True,
        env=python_env({"TF_CPP_MIN_LOG_LEVEL": "3", **env}),
        cwd=REPO,
        timeout=600,
    )


def big_model(path) -> None:
    """A real SavedModel of about 6 MB (random weights do not compress)."""
    m = tf.Module()
    m.w = tf.Variable(tf.random.stateless_uniform([1_500_000], seed=[1, 2]))
    m.f = tf.function(lambda x: x * m.w[0], input_signature=[tf.TensorSpec([None])])
    tf.saved_model.save(m, str(path))


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One `tfhub serve` for the file (the tests publish under different names)."""
    with HubServer(str(tmp_path_factory.mktemp("hub") / "root")) as server:
        yield server


def test_publish_shows_upload_progress_and_warns_about_junk_metadata(tmp_path, hub):
    big_model(tmp_path / "model")
    (tmp_path / "README.md").write_text(JUNK_DOCS)
    env = {"TFHUB_TOKEN": TOKEN, "TFHUB_DOWNLOAD_PROGRESS": "1"}
    args = ["publish", str(tmp_path / "model"), "me/junk/1", "--server", hub.url]
    proc = tfhub(*args, "--docs", str(tmp_path / "README.md"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "published me/junk/1" in proc.stdout
    # the progress bar: the archive's name, a percentage and its total size (MB)
    assert "uploading model.tar.gz" in proc.stderr and "%|" in proc.stderr
    assert "M" in proc.stderr.split("uploading model.tar.gz", 1)[1].split("\n")[0]
    warnings = [x for x in proc.stderr.splitlines() if x.startswith("tfhub: warning:")]
    assert any("module-type" in w and "'banana'" in w for w in warnings), proc.stderr
    assert any("fine-tunable" in w and "'maybe'" in w for w in warnings), proc.stderr
    assert any("license" in w and "'do-what-you-like'" in w for w in warnings)
    assert not any("format" in w.split(":")[2] for w in warnings)  # saved_model_2 is fine
    logs = hub.wait_for_log("'maybe'")
    assert "me/junk/1: documentation metadata fine-tunable: 'maybe'" in logs
    assert "'banana'" in logs

    # without progress asked for (stderr is a pipe, not a terminal): no bar; -q: no warnings
    quiet = tfhub(*args[:-3], "me/junk/2", *args[-2:], "--docs", str(tmp_path / "README.md"),
                  "-q", env={"TFHUB_TOKEN": TOKEN})  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr

    # the publish response carries them too
    archive = pack_model(tmp_path / "model", tmp_path / "m.tar.gz").read_bytes()
    resp = publish(hub.url, "me/junk/3", archive, docs=JUNK_DOCS)
    assert resp.status_code == 201, resp.text
    assert len(resp.json()["warnings"]) == 4 and "'banana'" in str(resp.json()["warnings"])
    clean = JUNK_DOCS.replace("banana", "text-embedding").replace("module-type", "task")
    clean = clean.replace("maybe", "true").replace("do-what-you-like", "mit")
    resp = publish(hub.url, "me/junk/4", archive, docs=clean)
    assert resp.status_code == 201 and resp.json()["warnings"] == []

    # an unknown key is refused (as tfhub.dev did), and the CLI says which
    (tmp_path / "bad.md").write_text(JUNK_DOCS.replace("format:", "colour:"))
    bad = tfhub(*args[:-3], "me/junk/5", *args[-2:], "--docs", str(tmp_path / "bad.md"),
                env={"TFHUB_TOKEN": TOKEN})  # fmt: skip
    assert bad.returncode == 4 and "unknown metadata key 'colour'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_pages_never_invent_a_license(tmp_path, models, hub):
    archive = pack_model(models["mul"], tmp_path / "m.tar.gz").read_bytes()
    no_license = (
        "# Module me/doc/1\nDocumented, but no license line.\n\n<!-- format: saved_model_2 -->\n"
    )
    with_license = no_license + "<!-- license: mit -->\n"
    assert publish(hub.url, "me/nodocs/1", archive).status_code == 201
    assert publish(hub.url, "me/doc/1", archive, docs=no_license).status_code == 201
    assert publish(hub.url, "me/mit/1", archive, docs=with_license).status_code == 201
    for name in ("me/nodocs/1", "me/doc/1"):
        page = requests.get(f"{hub.url}/{name}", timeout=30)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "not stated" in page.text, name
        assert "apache" not in page.text.lower() and "assumed" not in page.text
    page = requests.get(f"{hub.url}/me/mit/1", timeout=30).text
    assert "mit" in page and "not stated" not in page
