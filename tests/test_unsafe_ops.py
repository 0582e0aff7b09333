"""Untrusted models: ops that reach outside the model are found, reported and refused."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers.hub import InProcessHub, publish
from tfhub.safety import scan
from tfhub.testing import make_tarball

v1 = tf.compat.v1


class Evil(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def __call__(self, path):
        tf.io.write_file(path, "pwned")
        return tf.io.read_file(path)


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    path = tmp_path_factory.mktemp("evil") / "m"
    tf.saved_model.save(Evil(), str(path))
    return path


@pytest.fixture(scope="module")
def evil_tf1(tmp_path_factory):
    def module_fn():
        pattern = v1.placeholder(tf.string, [])
        hub.add_signature(inputs=pattern, outputs=tf.io.matching_files(pattern))

    path = tmp_path_factory.mktemp("evil1") / "m"
    with tf.Graph().as_default():
        module = hub.Module(hub.create_module_spec(module_fn))
        with v1.Session() as session:
            module.export(str(path), session)
    return path


def test_scan_finds_them_in_functions_and_tf1_graphs(evil, evil_tf1):
    found = {(u.op, u.where.split(" ")[0]) for u in scan(evil)}
    assert found == {("ReadFile", "function"), ("WriteFile", "function")}
    assert [(u.op, u.where) for u in scan(evil_tf1)] == [("MatchingFiles", "graph []")]


def test_ordinary_models_have_none(models, tmp_path):
    for name in ("mul", "flag", "text", "dict", "tf1"):
        assert scan(models[name]) == [], name
    inp = keras.Input(shape=(3,))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Dropout(0.5)(inp)))
    model.export(str(tmp_path / "keras_export"))
    assert scan(tmp_path / "keras_export") == []


def test_load_policy(evil, monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    assert callable(hub.load(str(evil)))  # default: warn, and load
    assert "WriteFile (writes a file)" in caplog.text
    monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
    with pytest.raises(hub.UsageError, match=r"reach outside the model.*allow_ops="):
        hub.load(str(evil))
    monkeypatch.setenv("TFHUB_CHECK_OPS", "warn")
    with pytest.raises(hub.UsageError, match="WriteFile"):
        hub.load(str(evil), allow_ops=["ReadFile"])
    assert hub.load(str(evil), allow_ops=["ReadFile", "WriteFile"]) is not None
    monkeypatch.setenv("TFHUB_CHECK_OPS", "sometimes")
    with pytest.raises(hub.ConfigError, match="TFHUB_CHECK_OPS"):
        hub.load(str(evil))


def test_tf1_module_policy(evil_tf1, monkeypatch):
    monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
    with tf.Graph().as_default(), pytest.raises(hub.UsageError, match="MatchingFiles"):
        hub.Module(str(evil_tf1))
    monkeypatch.setenv("TFHUB_CHECK_OPS", "off")
    with tf.Graph().as_default():
        assert hub.Module(str(evil_tf1)).get_signature_names() == ["default"]


def test_inspect_reports_them(evil, capsys):
    from tfhub import cli

    assert cli.main(["inspect", str(evil)]) == 0
    out = capsys.readouterr().out
    assert "unsafe ops: 2" in out and "ReadFile (reads a file)" in out


def test_server_refuses_them_unless_allowed(evil, tmp_path, models, monkeypatch):
    """Two hubs in this process (the server reads the setting at each publish);
    test_server_trust.py sets it on a `tfhub serve` process."""
    body = make_tarball(evil)
    strict = InProcessHub(tmp_path / "a")
    try:
        resp = publish(strict.url, "test/evil/1", body)
        assert resp.status_code == 422 and "WriteFile" in resp.json()["error"]
        assert publish(strict.url, "test/ok/1", make_tarball(models["mul"])).status_code == 201
    finally:
        strict.stop()
    monkeypatch.setenv("TFHUB_ALLOW_UNSAFE_OPS", "1")
    lenient = InProcessHub(tmp_path / "b")
    try:
        resp = publish(lenient.url, "test/evil/1", body)
        assert resp.status_code == 201
        assert len(resp.json()["info"]["unsafe_ops"]) == 2
    finally:
        lenient.stop()
    np.testing.assert_equal(len(scan(evil)), 2)
