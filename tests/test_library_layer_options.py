"""hub.KerasLayer's arguments, defined once (LayerOptions), are those of both Keras flavours:
the signature, the docstring, and get_config / from_config."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import REPO
from tfhub.savedmodel import keras_layer, legacy_keras_layer
from tfhub.savedmodel.layer_common import LayerOptions

OPTIONS = [f.name for f in dataclasses.fields(LayerOptions)]
SAVED = [f.name for f in dataclasses.fields(LayerOptions) if f.name != "load_options"]


@pytest.mark.parametrize("cls", [keras_layer.KerasLayer, legacy_keras_layer.KerasLayer])
def test_both_flavours_take_and_document_every_option(cls):
    params = inspect.signature(cls).parameters
    assert list(params)[:4] == ["handle", "trainable", "arguments", "_sentinel"]
    assert set(OPTIONS) <= set(params)
    for name in OPTIONS:
        assert f"        {name}: " in cls.__doc__
    assert cls.__doc__.count("\n        **kwargs: passed to ") == 1


def _full_config_layer(layer_cls, path):
    return layer_cls(
        str(path),
        True,
        {"scale": 3},
        tags=["serve"],
        signature="serving_default",
        output_key="output_0",
        output_shape=[2],
        load_options=tf.saved_model.LoadOptions(),
        name="full",
    )


def test_keras3_config_saves_every_option_but_load_options(models):
    layer = _full_config_layer(hub.KerasLayer, models["mul"])
    config = layer.get_config()
    assert {k: config[k] for k in ("handle", "arguments", "tags", "signature", "output_key")} == {
        "handle": str(models["mul"]),
        "arguments": {"scale": 3},
        "tags": ["serve"],
        "signature": "serving_default",
        "output_key": "output_0",
    }
    assert config["output_shape"] == [2] and "load_options" not in config
    assert set(SAVED) - {"signature_outputs_as_dict"} <= set(config)
    clone = hub.KerasLayer.from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    with pytest.raises(TypeError, match="keyword arguments only"):
        hub.KerasLayer(str(models["mul"]), False, None, "oops")
    with pytest.raises((TypeError, ValueError), match="not_an_option"):
        hub.KerasLayer(str(models["mul"]), not_an_option=1)


def test_tf_keras_config_is_the_same(models):
    code = textwrap.dedent(
        f"""
        import json
        import tensorflow as tf
        import tfhub as hub
        from tests.test_library_layer_options import _full_config_layer
        layer = _full_config_layer(hub.KerasLayer, {str(models["mul"])!r})
        assert type(layer).__module__ == "tfhub.savedmodel.legacy_keras_layer"
        config = layer.get_config()
        clone = hub.KerasLayer.from_config(json.loads(json.dumps(config)))
        assert clone.get_config() == config
        print(json.dumps({{k: config[k] for k in {SAVED!r} if k in config}}, sort_keys=True))
        """
    )
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    legacy = json.loads(proc.stdout.strip().splitlines()[-1])
    config = _full_config_layer(hub.KerasLayer, models["mul"]).get_config()
    assert legacy == {k: config[k] for k in SAVED if k in config}
