"""`tfhub inspect` never runs anything from the model (issue 11, item 3).

The model's resource initializer writes a file when the model is loaded, and its ``__call__``
writes another when called. Inspecting it (the library function, the `tfhub inspect` CLI, the
server's validator command) must leave both files absent: everything comes from the protobufs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.helpers import REPO
from tfhub.errors import NotAModelError
from tfhub.tools import inspect as inspect_tool


class _Payload(tf.saved_model.experimental.TrackableResource):
    """A hash table whose initializer (run by every load) first writes ``target``."""

    def __init__(self, target: str) -> None:
        self._target = target
        super().__init__()

    def _create_resource(self):
        return tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.string)

    def _initialize(self):
        written = tf.io.write_file(self._target, "the model ran")
        with tf.control_dependencies([written]):
            return tf.raw_ops.LookupTableImportV2(
                table_handle=self.resource_handle, keys=["k"], values=["v"]
            )


class _Trap(tf.Module):
    def __init__(self, load_target: str, call_target: str) -> None:
        super().__init__()
        self.table = _Payload(load_target)
        self.call_target = call_target
        self.scale = tf.Variable(2.0)
        self.variables_list = [self.scale]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, x):
        written = tf.io.write_file(self.call_target, "__call__ ran")
        with tf.control_dependencies([written]):
            lookup = tf.raw_ops.LookupTableFindV2(
                table_handle=self.table.resource_handle, keys=["k"], default_value="?"
            )
            return x * self.scale + tf.cast(tf.strings.length(lookup), tf.float32)


@pytest.fixture(scope="module")
def trap(tmp_path_factory):
    root = tmp_path_factory.mktemp("trap")
    load_target, call_target = root / "ran_at_load", root / "ran_at_call"
    model = _Trap(str(load_target), str(call_target))
    tf.saved_model.save(model, str(root / "model"))
    for target in (load_target, call_target):
        if target.exists():
            target.unlink()
    return root / "model", load_target, call_target


def test_the_payload_runs_when_the_model_is_loaded(trap):
    """The control: loading really runs the initializer (so the other tests can fail)."""
    model, load_target, call_target = trap
    code = "import sys, tensorflow as tf; tf.saved_model.load(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(model)], check=True, capture_output=True)
    try:
        assert load_target.read_text() == "the model ran"
        assert not call_target.exists()
    finally:
        load_target.unlink()


def test_inspect_model_runs_nothing(trap):
    model, load_target, call_target = trap
    info = inspect_tool.inspect_model(model)
    assert not load_target.exists() and not call_target.exists()
    # ... and still describes the model, from its protobufs.
    assert info["format"] == "saved_model"  # no trainable_variables attribute
    assert info["callable"] is True
    [trace] = info["call"]
    assert trace["inputs"] == {"inputs": {"dtype": "float32", "shape": [None], "kind": "dense"}}
    assert trace["outputs"]["output_0"]["dtype"] == "float32"
    assert info["variables"]["count"] == 1 and info["variables"]["bytes"] == 4
    assert any(u.startswith("WriteFile") for u in info["unsafe_ops"])
    # The server's check: refused for its ops, described when they are allowed; never run.
    with pytest.raises(NotAModelError, match="WriteFile") as err:
        inspect_tool.validate_upload(model)
    assert err.value.handle == str(model)
    assert inspect_tool.validate_upload(model, refuse_unsafe=False)["call"] == info["call"]
    assert not load_target.exists() and not call_target.exists()


def test_tfhub_inspect_cli_runs_nothing(trap, monkeypatch, capsys):
    """`tfhub inspect` (in this process: loading would run the payload here as well) with the
    op check on and off, and the validator's command in a process of its own."""
    from tfhub import cli

    model, load_target, call_target = trap
    monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
    assert cli.main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "unsafe ops: " in out and "WriteFile (writes a file)" in out
    assert "variables: 1 (4 bytes)\n  variable Variable: float32 [], trainable" in out
    monkeypatch.setenv("TFHUB_CHECK_OPS", "off")
    assert cli.main(["inspect", str(model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["call"][0]["inputs"]["inputs"]["shape"] == [None]
    assert not load_target.exists() and not call_target.exists()

    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))}
    done = subprocess.run(
        [sys.executable, "-m", "tfhub.tools.inspect", str(model)],
        capture_output=True,
        text=True,
        env={**env, "TFHUB_CHECK_OPS": "warn"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not load_target.exists() and not call_target.exists()
    assert json.loads(done.stdout)["call"][0]["inputs"]["inputs"]["shape"] == [None]
