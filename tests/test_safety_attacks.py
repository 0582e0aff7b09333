"""Issue 11, items 2 and 3: real models whose payload runs when they are loaded are refused.

Each model is built here with public TensorFlow APIs; its payload (a file write, a file read,
a connection) runs while the model loads, which is what a hostile author wants. The tests load
them the way a user does (``hub.load``, ``hub.KerasLayer``, ``hub.Module``) and check on disk
(or on a listening socket) that nothing happened.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import tensorflow as tf

import tfhub as hub
from tfhub.errors import UsageError
from tfhub.testing import HostingServer

v1 = tf.compat.v1


class _Payload(tf.saved_model.experimental.TrackableResource):
    """A resource (an int64 variable) whose initializer runs ``fn(handle)`` when the
    SavedModel is loaded."""

    def __init__(self, fn):
        self._fn = fn
        super().__init__()

    def _create_resource(self):
        return tf.raw_ops.VarHandleOp(dtype=tf.int64, shape=[], shared_name="")

    def _initialize(self):
        self._fn(self.resource_handle)


class _Model(tf.Module):
    def __init__(self, fn, **attrs):
        super().__init__()
        self.payload = _Payload(fn)
        for key, value in attrs.items():
            setattr(self, key, value)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, x):
        return 2.0 * x


def _save(fn, path: Path, *leftovers: Path, **attrs) -> Path:
    tf.saved_model.save(_Model(fn, **attrs), str(path))
    for leftover in leftovers:  # saving runs the initializer once: start from a clean disk
        if leftover.is_dir():
            for child in leftover.iterdir():
                child.unlink()
            leftover.rmdir()
        leftover.unlink(missing_ok=True)
    return path


def _refused(handle: str, op: str, **kwargs) -> UsageError:
    with pytest.raises(UsageError, match=op) as info:
        hub.load(handle, **kwargs)
    return info.value


# -- item 2: the scan misses whole classes and trusts names ------------------------------------


def test_dataset_from_graph_kept_in_a_variable(tmp_path, monkeypatch):
    target = tmp_path / "pwned_by_dataset"

    def write(s):
        with tf.control_dependencies([tf.io.write_file(str(target), s)]):
            return tf.identity(s)

    ds = tf.data.Dataset.from_tensors(tf.constant("pwned")).map(write)
    graph = tf.raw_ops.DatasetToGraphV2(input_dataset=tf.data.experimental.to_variant(ds))
    holder = tf.Variable(graph)  # the payload lives in variables.data, not in saved_model.pb

    def run(_):
        variant = tf.raw_ops.DatasetFromGraph(graph_def=holder.read_value())
        restored = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string))
        restored.get_single_element()

    path = _save(run, tmp_path / "m", target, holder=holder)
    monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
    error = _refused(str(path), "DatasetFromGraph")
    assert "refuses outright" in str(error)
    # Not even an explicit allow_ops accepts it; only turning the check off would.
    _refused(
        str(path), "DatasetFromGraph", allow_ops=["DatasetFromGraph", "DatasetToSingleElement"]
    )
    monkeypatch.delenv("TFHUB_CHECK_OPS")
    _refused(str(path), "DatasetFromGraph")  # local default (warn) refuses it too
    assert not target.exists()
    hub.load(str(path), check_ops="off")  # the user's explicit choice: the payload runs
    assert target.read_text() == "pwned"


def test_save_in_a_function_named_like_the_saver(tmp_path, monkeypatch):
    target = tmp_path / "pwned_by_save"

    @tf.function
    def _traced_save_payload():  # traced as __inference__traced_save_payload_N
        tf.raw_ops.Save(filename=str(target), tensor_names=["x"], data=[tf.constant(1.0)])

    path = _save(lambda _: _traced_save_payload(), tmp_path / "m", target)
    monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
    error = _refused(str(path), "Save ")
    assert "_traced_save_payload" in str(error)
    with pytest.raises(UsageError, match="Save "):
        hub.KerasLayer(str(path))
    assert not target.exists()
    hub.load(str(path), allow_ops=["Save"])
    assert target.exists()


def _export_tf1(path: Path, module_fn) -> Path:
    with tf.Graph().as_default():
        module = hub.Module(hub.create_module_spec(module_fn))
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            module.export(str(path), session)
    return path


def test_tf1_node_named_save_slash_anything(tmp_path, monkeypatch):
    target = tmp_path / "pwned_by_tf1"

    def module_fn():
        x = v1.placeholder(tf.float32, [None])
        with tf.name_scope("save"):
            write = tf.raw_ops.SaveV2(
                prefix=str(target),
                tensor_names=["x"],
                shape_and_slices=[""],
                tensors=[tf.constant(1.0)],
                name="anything",
            )
        assert write.name == "save/anything"
        v1.add_to_collection(v1.GraphKeys.TABLE_INITIALIZERS, write)  # runs when loaded
        hub.add_signature(inputs=x, outputs=2.0 * x)

    path = _export_tf1(tmp_path / "m", module_fn)
    for leftover in tmp_path.glob("pwned_by_tf1*"):
        leftover.unlink()
    with HostingServer({"evil/tf1/1": path}) as server:  # remote: refused by default
        with tf.Graph().as_default(), pytest.raises(UsageError, match="save/anything"):
            hub.Module(server.url("evil/tf1/1"))
    monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
    error = _refused(str(path), "SaveV2")
    assert "save/anything" in str(error)
    with tf.Graph().as_default(), pytest.raises(UsageError, match="save/anything"):
        hub.Module(str(path))
    assert list(tmp_path.glob("pwned_by_tf1*")) == []
    hub.load(str(path), check_ops="warn")
    assert list(tmp_path.glob("pwned_by_tf1*"))


def _edit_meta_graph(path: Path, edit) -> None:
    """Rewrites the model's saved_model.pb with ``edit(meta_graph)`` applied, as an author can."""
    from tfhub import protos

    pb = path / "saved_model.pb"
    saved = protos.SavedModelFile.FromString(pb.read_bytes())
    meta = v1.MetaGraphDef.FromString(saved.meta_graphs[0])
    edit(meta)
    saved.meta_graphs[0] = meta.SerializeToString()
    pb.write_bytes(saved.SerializeToString())


def test_table_from_a_file_outside_the_model(tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("line one\nline two\n")

    class Stealer(tf.Module):
        def __init__(self):
            super().__init__()
            init = tf.lookup.TextFileInitializer(str(secret), tf.string, -2, tf.int64, -1)
            self.table = tf.lookup.StaticHashTable(init, -1)

        @tf.function(input_signature=[])
        def __call__(self):
            return self.table.export()[0]

    path = tmp_path / "m"
    tf.saved_model.save(Stealer(), str(path))
    (path / "assets" / "secret.txt").unlink()

    def point_outside(meta):  # the "asset" is the absolute path of a file of the victim
        meta.asset_file_def[0].filename = str(secret)

    _edit_meta_graph(path, point_outside)
    monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
    error = _refused(str(path), "InitializeTableFromTextFileV2")
    assert "function __inference__initializer" in str(error)
    # What the author gets back when the check is off: the file's lines.
    stolen = hub.load(str(path), check_ops="off")()
    assert sorted(stolen.numpy()) == [b"line one", b"line two"]


@pytest.mark.parametrize("kind", ["matching_files", "cache", "debug_identity"])
def test_dataset_and_debug_ops_that_touch_files(kind, tmp_path, monkeypatch):
    cache = tmp_path / "cache_prefix"
    dumps = tmp_path / "dumps"

    def payload(handle):
        if kind == "matching_files":
            variant = tf.raw_ops.MatchingFilesDataset(patterns=[str(tmp_path / "m" / "*")])
            ds = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string))
            listing = ds.reduce(tf.constant(""), lambda text, name: text + name + "\n")
            tf.io.write_file(str(tmp_path / "listed"), listing)
        elif kind == "cache":
            tf.data.Dataset.from_tensors(1).cache(str(cache)).get_single_element()
        else:
            dumped = tf.raw_ops.DebugIdentity(
                input=tf.constant(1), debug_urls=[f"file://{dumps}"], tensor_name="x:0"
            )
            tf.raw_ops.AssignVariableOp(resource=handle, value=tf.cast(dumped, tf.int64))

    op = {"matching_files": "MatchingFilesDataset", "cache": "CacheDatasetV2"}.get(
        kind, "DebugIdentity"
    )
    path = _save(payload, tmp_path / "m")
    for leftover in [*tmp_path.glob("cache_prefix*"), tmp_path / "listed"]:
        leftover.unlink(missing_ok=True)
    if dumps.exists():
        shutil.rmtree(dumps)
    monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
    _refused(str(path), op)
    assert not (tmp_path / "listed").exists()
    assert list(tmp_path.glob("cache_prefix*")) == []
    assert not dumps.exists()
    hub.load(str(path), check_ops="off")  # what the payload does when it is let through
    if kind == "matching_files":
        assert "saved_model.pb" in (tmp_path / "listed").read_text()
    elif kind == "cache":
        assert list(tmp_path.glob("cache_prefix*"))
    else:
        assert dumps.exists()


def _rpc_model(path: Path, port: int) -> Path:
    """A model whose initializer holds an ``RpcClient`` node that connects to 127.0.0.1:port.

    The RPC client cannot be traced in a tf.function (TensorFlow creates it eagerly only), so
    the node is written into the initializer function as a real ``RpcClient`` NodeDef, which
    is what a hostile author would do.
    """

    def payload(_):
        tf.raw_ops.IdentityN(
            input=[tf.constant(f"127.0.0.1:{port}"), tf.constant(2000, tf.int64)],
            name="rpc_client",
        )

    _save(payload, path)

    def make_rpc_client(meta):
        for function in meta.graph_def.library.function:
            for node in function.node_def:
                if node.name == "rpc_client":
                    node.op = "RpcClient"
                    node.attr.clear()
                    node.attr["shared_name"].s = b"rpc"
                    node.attr["list_registered_methods"].b = True
                    function.control_ret["rpc_client"] = "rpc_client"
                    function.signature.control_output.append("rpc_client")

    _edit_meta_graph(path, make_rpc_client)
    return path


def test_rpc_client_is_refused_before_it_connects(tmp_path, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(1.0)
    try:
        path = _rpc_model(tmp_path / "m", listener.getsockname()[1])
        monkeypatch.setenv("TFHUB_CHECK_OPS", "off")
        from tfhub.safety import scan

        assert [u.op for u in scan(path)] == ["RpcClient"]
        monkeypatch.setenv("TFHUB_CHECK_OPS", "error")
        error = _refused(str(path), "RpcClient")
        assert "refuses outright" in str(error)
        _refused(str(path), "RpcClient", allow_ops=["RpcClient"])
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


# -- item 3: the defaults ran flagged code -----------------------------------------------------


@pytest.fixture()
def write_file_model(tmp_path):
    target = tmp_path / "pwned_by_remote"
    path = _save(lambda _: tf.io.write_file(str(target), "pwned"), tmp_path / "m", target)
    return path, target


def test_remote_handle_is_checked_under_error_by_default(write_file_model):
    path, target = write_file_model
    with HostingServer({"evil/model/1": path}) as server:
        url = server.url("evil/model/1")
        error = _refused(url, "WriteFile")
        message = str(error)
        assert "function __inference__initialize" in message  # where
        assert "allow_ops=['WriteFile']" in message and "TFHUB_CHECK_OPS" in message  # opt out
        with pytest.raises(UsageError, match="WriteFile"):
            hub.KerasLayer(url)
        assert not target.exists()
        # The user's explicit choice, per call, loads it (and the payload runs).
        hub.load(url, allow_ops=["WriteFile"])
        assert target.read_text() == "pwned"


def test_a_resolver_that_reads_in_place_is_scanned_through_gfile(write_file_model):
    """Like the UNCOMPRESSED mode's gs:// location: the model is read where it is, not copied
    into the cache, and the path has a scheme. The scan reads it through tf.io.gfile."""
    path, target = write_file_model
    remote = "ram://tfhub-safety-test/m"
    for file in path.rglob("*"):
        if file.is_file():
            dest = f"{remote}/{file.relative_to(path).as_posix()}"
            tf.io.gfile.makedirs(dest.rsplit("/", 1)[0])
            tf.io.gfile.copy(str(file), dest, overwrite=True)

    class InPlace:
        def is_supported(self, handle):
            return handle.startswith("inplace-test://")

        def __call__(self, handle):
            return remote

    hub.register_resolver(InPlace())
    _refused("inplace-test://evil", "WriteFile")
    assert not target.exists()
