"""The op policy (tfhub.safety): the allowlist, its modes, and no finding on ordinary models.

Issue 11's "Done when": models that use only the ordinary ops of Keras 3 ``model.export``,
``tf.saved_model.save``, ``hub.export_keras``, the text-embedding exporter, the MiniLM import
and the TF1 modules of the tests (tables, assets, ``{"train"}`` variants) load under ``error``
with no finding.
"""

from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfhub as hub
from tests.helpers import tf1_modules as mods
from tfhub import safety
from tfhub.errors import ConfigError, UnsafeOpsError, UsageError
from tfhub.safety import allowlist
from tfhub.testing import HostingServer

v1 = tf.compat.v1


def test_every_allowlist_entry_is_a_real_op():
    raw = set(dir(tf.raw_ops))
    named = allowlist.ALLOWED | allowlist.SAVE_OPS | allowlist.RESTORE_OPS
    named |= allowlist.ASSET_READERS | allowlist.CONDITIONAL
    assert sorted(named - raw) == []
    # Nothing that touches files, Python or the network slipped in.
    for op in ("ReadFile", "WriteFile", "PyFunc", "ImmutableConst", "DatasetFromGraph", "Abort"):
        assert op not in allowlist.ALLOWED
    assert not [op for op in allowlist.ALLOWED if "Dataset" in op or "Summary" in op]
    # The ops issue 11 found registered and unlisted stay off the list.
    for op in (
        "DataServiceDatasetV4",
        "DistributedSave",
        "LoadAndRemapMatrix",
        "GenerateVocabRemapping",
        "DecodeProtoV2",
        "CreateSummaryFileWriter",
        "WriteScalarSummary",
        "FileSystemSetConfiguration",
        "MatchingFilesDataset",
        "CacheDatasetV2",
        "DebugIdentity",
        "InitializeTableFromTextFileV2",
        "SaveV2",
    ):
        assert op not in allowlist.ALLOWED, op
    assert allowlist.describe("SomeFutureOp") == (
        "not on the allowlist of ops that compute only on their inputs"
    )


# -- no false positives --------------------------------------------------------------------------


class _Tables(tf.Module):
    def __init__(self, vocab: Path):
        super().__init__()
        self.scale = tf.Variable(2.0)
        init = tf.lookup.TextFileInitializer(
            str(vocab), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, -1
        )
        self.table = tf.lookup.StaticVocabularyTable(init, num_oov_buckets=1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, words):
        return tf.cast(self.table.lookup(words), tf.float32) * self.scale


def _keras_model():
    inp = keras.Input(shape=(3,))
    hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Dropout(0.5)(inp))
    out = keras.layers.Dense(2)(keras.layers.BatchNormalization()(hidden))
    return keras.Model(inp, out)


def _tf1_module(path: Path, module_fn, tags_and_args=None) -> Path:
    with tf.Graph().as_default():
        module = hub.Module(hub.create_module_spec(module_fn, tags_and_args))
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            module.export(str(path), session)
    return path


@pytest.fixture(scope="module")
def ordinary(tmp_path_factory):
    from tfhub.exporters.text_embedding import export_text_embedding

    root = tmp_path_factory.mktemp("ordinary")
    vocab = root / "vocab.txt"
    vocab.write_text("a\nb\nc\n")
    made = {}
    _keras_model().export(str(root / "keras_export"))
    made["keras_export"] = root / "keras_export"
    tf.saved_model.save(_keras_model(), str(root / "keras_saved"))
    made["keras_saved"] = root / "keras_saved"
    tf.saved_model.save(_Tables(vocab), str(root / "tables"))
    made["tables"] = root / "tables"
    made["export_keras"] = Path(hub.export_keras(_keras_model(), root / "export_keras"))
    vectors = root / "vectors.txt"
    vectors.write_text("cat 1.0 2.0 3.0\ndog 0.5 0.1 0.6\n")
    made["text_tf2"] = Path(export_text_embedding(vectors, root / "text_tf2"))
    made["text_tf1"] = Path(export_text_embedding(vectors, root / "text_tf1", format="tf1"))
    made["tf1_seed"] = _tf1_module(root / "tf1_seed", mods.seed_module_fn)
    made["tf1_fruit"] = _tf1_module(root / "tf1_fruit", mods.fruit_module_fn)
    made["tf1_train"] = _tf1_module(
        root / "tf1_train", mods.train_variant_module_fn, mods.TRAIN_TAGS_AND_ARGS
    )
    made["tf1_vocab"] = _tf1_module(root / "tf1_vocab", mods.make_vocab_module_fn(vocab))
    made["tf1_sparse"] = _tf1_module(root / "tf1_sparse", mods.sparse_and_ragged_module_fn)
    return made


NAMES = [
    "keras_export",
    "keras_saved",
    "tables",
    "export_keras",
    "text_tf2",
    "text_tf1",
    "tf1_seed",
    "tf1_fruit",
    "tf1_train",
    "tf1_vocab",
    "tf1_sparse",
]


@pytest.mark.parametrize("name", NAMES)
def test_ordinary_models_have_no_finding_and_load_under_error(name, ordinary):
    path = ordinary[name]
    assert safety.scan(path) == []
    assert safety.check_ops(str(path), handle=str(path), mode="error") == []
    if name == "tf1_sparse":  # TF1ModuleObject takes dense inputs; hub.Module reads it
        assert hub.load_module_spec(str(path), check_ops="error").get_tags() == [frozenset()]
    else:
        assert hub.load(str(path), check_ops="error") is not None


def test_the_test_suites_models_have_no_finding(models):
    for name, path in models.items():
        assert safety.scan(path) == [], name


def test_ordinary_models_load_from_a_remote_handle_by_default(ordinary):
    with HostingServer({f"ok/{n}/1": ordinary[n] for n in ("tables", "tf1_vocab")}) as server:
        obj = hub.load(server.url("ok/tables/1"))
        np.testing.assert_allclose(obj(tf.constant(["b", "zzz"])).numpy(), [2.0, 6.0])
        with tf.Graph().as_default():
            module = hub.Module(server.url("ok/tf1_vocab/1"))
            ids = module(["c", "a"], as_dict=True)["ids"]
            with v1.Session() as session:
                session.run([v1.global_variables_initializer(), v1.tables_initializer()])
                assert list(session.run(ids)) == [2, 0]
        layer = hub.KerasLayer(server.url("ok/tables/1"))
        np.testing.assert_allclose(layer(tf.constant(["a"])).numpy(), [0.0])


def test_minilm_import_has_no_finding(minilm):
    assert minilm["code"] == 0, minilm["stderr"]
    out = minilm["dir"]
    for part in ("preprocessor", "encoder", "sentence_embedding"):
        assert safety.scan(out / part) == [], part
        assert hub.load(str(out / part), check_ops="error") is not None


# -- modes ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reads_files(tmp_path_factory):
    class Reader(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def __call__(self, path):
            return tf.io.read_file(path)

    path = tmp_path_factory.mktemp("reader") / "m"
    tf.saved_model.save(Reader(), str(path))
    return path


def test_modes_and_where_they_come_from(reads_files, monkeypatch, caplog):
    path = str(reads_files)
    assert safety.policy_mode(path) == "warn"  # local default
    assert safety.policy_mode("https://hub.example/a/b/1") == "error"
    assert safety.policy_mode("gs://bucket/model") == "error"
    assert safety.policy_mode("s3://bucket/model") == "error"
    assert safety.policy_mode("file:///models/x") == "warn"
    assert safety.policy_mode(path, allow_ops=["ReadFile"]) == "error"
    monkeypatch.setenv("TFHUB_CHECK_OPS", "Off")
    assert safety.policy_mode("https://hub.example/a/b/1") == "off"
    assert safety.policy_mode(path, mode="error") == "error"  # the call wins
    monkeypatch.setenv("TFHUB_CHECK_OPS", "sometimes")
    with pytest.raises(ConfigError, match=r"TFHUB_CHECK_OPS='sometimes'.*error, warn, off"):
        hub.load(path)
    monkeypatch.delenv("TFHUB_CHECK_OPS")
    with pytest.raises(UsageError, match="check_ops='never'"):
        hub.load(path, check_ops="never")
    with pytest.raises(UsageError, match="allow_ops must be a list"):
        hub.load(path, allow_ops=[3])

    caplog.set_level(logging.WARNING)
    assert hub.load(path) is not None  # local: warn
    assert "ReadFile (reads a file) at function __inference___call__" in caplog.text
    with pytest.raises(UnsafeOpsError, match=r"ReadFile.*allow_ops=\['ReadFile'\]") as info:
        hub.load(path, check_ops="error")
    assert [f.op for f in info.value.findings] == ["ReadFile"]
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value) and copy.findings == info.value.findings
    assert hub.load(path, allow_ops=["ReadFile"]) is not None
    assert hub.load(path, allow_ops="ReadFile") is not None


def test_a_text_saved_model_is_unscannable_under_error(tmp_path):
    (tmp_path / "saved_model.pbtxt").write_text("meta_graphs {}\n")
    with pytest.raises(safety.UnscannableError, match="pbtxt"):
        hub.load(str(tmp_path), check_ops="error")


# -- structure, not names ------------------------------------------------------------------------


def _edited(src: Path, dst: Path, edit) -> Path:
    """A copy of the SavedModel at ``src`` whose first meta graph went through ``edit``."""
    import shutil

    from tfhub import protos

    shutil.copytree(src, dst)
    saved = protos.SavedModelFile.FromString((dst / "saved_model.pb").read_bytes())
    meta = v1.MetaGraphDef.FromString(saved.meta_graphs[0])
    edit(meta)
    saved.meta_graphs[0] = meta.SerializeToString()
    (dst / "saved_model.pb").write_bytes(saved.SerializeToString())
    return dst


def _function(meta, prefix):
    return next(f for f in meta.graph_def.library.function if f.signature.name.startswith(prefix))


def test_the_saver_functions_are_exempt_only_while_nothing_else_calls_them(ordinary, tmp_path):
    def call_save_from_serving(meta):
        save = _function(meta, "__inference__traced_save").signature.name
        serving = _function(meta, "__inference___call__")
        node = serving.node_def.add(name="sneaky", op="StatefulPartitionedCall")
        node.attr["f"].func.name = save

    path = _edited(ordinary["tables"], tmp_path / "m", call_save_from_serving)
    found = {
        u.op for u in safety.scan(path) if u.where.startswith("function __inference__traced_save")
    }
    assert {"SaveV2", "MergeV2Checkpoints"} <= found


def test_an_attribute_that_names_an_op_is_checked_as_that_op(ordinary, tmp_path):
    def call_write_file_directly(meta):
        node = _function(meta, "__inference___call__").node_def.add(
            name="direct", op="StatefulPartitionedCall"
        )
        node.attr["f"].func.name = "WriteFile"  # no such function: TF runs the op itself

    found = safety.scan(_edited(ordinary["tables"], tmp_path / "m", call_write_file_directly))
    assert [(u.op, u.node, u.reason) for u in found] == [
        ("WriteFile", "direct", "writes a file, called through StatefulPartitionedCall")
    ]


@pytest.mark.parametrize(("stream", "findings"), [("stderr", []), ("file:///tmp/x", ["PrintV2"])])
def test_print_is_accepted_unless_it_writes_a_file(stream, findings, tmp_path):
    class Printer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
        def __call__(self, x):
            tf.print(x, output_stream=sys.stderr if stream == "stderr" else stream)
            return x

    tf.saved_model.save(Printer(), str(tmp_path / "m"))
    assert [u.op for u in safety.scan(tmp_path / "m")] == findings


def test_an_asset_must_stay_inside_the_model(ordinary, tmp_path):
    def absolute(meta):
        meta.asset_file_def[0].filename = "/etc/hostname"

    def climbing(meta):
        meta.asset_file_def[0].filename = "../../etc/hostname"

    for name, edit in (("abs", absolute), ("up", climbing)):
        found = safety.scan(_edited(ordinary["tables"], tmp_path / name, edit))
        assert [u.op for u in found] == ["InitializeTableFromTextFileV2"], name


def test_tf1_hub_assets_count_only_for_tf1_hub_modules(ordinary):
    from tfhub.metagraph import read_meta_graphs

    path = ordinary["tf1_vocab"]
    (meta,) = read_meta_graphs(path, str(path))
    assert safety.scan_meta_graph(meta, hub_module=True) == []
    # Loaded by TensorFlow as a plain SavedModel, the constant would keep its value.
    found = safety.scan_meta_graph(meta, hub_module=False)
    assert [u.op for u in found] == ["InitializeTableFromTextFileV2"]


def test_a_repeated_node_name_hides_nothing(ordinary, tmp_path):
    def shadow(meta):
        serving = _function(meta, "__inference___call__")
        serving.node_def.add(name="dup", op="WriteFile")
        serving.node_def.add(name="dup", op="Identity")

    found = safety.scan(_edited(ordinary["tables"], tmp_path / "m", shadow))
    assert [(u.op, u.node, u.reason) for u in found] == [("WriteFile", "dup", "writes a file")]
