"""The exporters live in one package, keep their public names, and write through staging."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import tf1_modules as mods

v1 = tf.compat.v1

PUBLIC_EXPORTERS = {
    "export_keras": "tfhub.exporters.keras_model",
    "export_text_embedding": "tfhub.exporters.text_embedding",
    "LatestModuleExporter": "tfhub.exporters.tf1_checkpoint",
    "register_module_for_export": "tfhub.exporters.tf1_checkpoint",
}


@pytest.mark.parametrize("name", sorted(PUBLIC_EXPORTERS))
def test_public_names_come_from_the_exporters_package(name):
    assert getattr(hub, name).__module__ == PUBLIC_EXPORTERS[name]


class _FailingExport:
    """Registered after a real module: its export fails once the first module is written."""

    def export(self, path: object, session: object) -> None:
        assert os.path.isfile(os.path.join(os.path.dirname(str(path)), "fruit", "tfhub_module.pb"))
        raise OSError("disk full (simulated)")


def _train(tmp_path):
    with tf.Graph().as_default():
        spec = hub.create_module_spec(mods.fruit_module_fn)
        hub.register_module_for_export(hub.Module(spec), "fruit")
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            v1.train.Saver().save(session, str(tmp_path / "train" / "model"))


def test_a_failed_checkpoint_export_leaves_nothing_and_keeps_older_exports(tmp_path):
    _train(tmp_path)
    spec = hub.create_module_spec(mods.fruit_module_fn)

    def good():
        hub.register_module_for_export(hub.Module(spec), "fruit")

    def failing():
        good()
        hub.register_module_for_export(_FailingExport(), "broken")

    exports = tmp_path / "exports"
    first = hub.LatestModuleExporter("ok", good).export(exports, checkpoint_dir=tmp_path / "train")
    assert first is not None
    with pytest.raises(OSError, match="disk full"):
        hub.LatestModuleExporter("bad", failing).export(exports, checkpoint_dir=tmp_path / "train")
    assert os.listdir(exports) == [os.path.basename(first)]  # no partial export, no temp dir
    assert os.path.isfile(os.path.join(first, "fruit", "tfhub_module.pb"))
    second = hub.LatestModuleExporter("ok", good).export(exports, checkpoint_dir=tmp_path / "train")
    assert second is not None and int(os.path.basename(second)) > int(os.path.basename(first))
    assert sorted(os.listdir(exports)) == sorted(os.path.basename(p) for p in (first, second))
