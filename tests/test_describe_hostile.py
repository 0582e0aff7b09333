"""Hostile protobufs: inspect never crashes or hangs, it says which file is bad.

Each case starts from a real model and breaks one thing in its files: truncated or garbage
bytes, values of the wrong type, a structure nested 10,000 deep, a dtype or a node that does
not exist, variables declaring 10^18 elements. `inspect_model` answers each one within
seconds with a `NotAModelError` naming the file (and allocates nothing of the declared size).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tensorflow as tf

from tests.helpers import models as test_models
from tfhub import protos
from tfhub.errors import NotAModelError
from tfhub.tools.inspect import inspect_model


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    root = tmp_path_factory.mktemp("originals")
    return {
        "mul": test_models.save_mul(root / "mul"),
        "tf1": test_models.save_tf1_module(root / "tf1"),
    }


def _copy(originals: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(originals[name], tmp_path / name))


def _edit_meta_graph(model: Path, edit: Callable[[Any], None]) -> None:
    pb = model / "saved_model.pb"
    saved = protos.SavedModelFile.FromString(pb.read_bytes())
    metas = [tf.compat.v1.MetaGraphDef.FromString(raw) for raw in saved.meta_graphs]
    edit(metas[0])
    del saved.meta_graphs[:]
    saved.meta_graphs.extend(m.SerializeToString() for m in metas)
    pb.write_bytes(saved.SerializeToString())


def _refused(model: Path, file: str, match: str) -> NotAModelError:
    started = time.monotonic()
    with pytest.raises(NotAModelError, match=match) as err:
        inspect_model(model)
    assert time.monotonic() - started < 30
    assert str(model / file) in str(err.value)
    return err.value


def _call_function(meta: Any) -> Any:
    graph = meta.object_graph_def
    call = next(c.node_id for c in graph.nodes[0].children if c.local_name == "__call__")
    [name] = graph.nodes[call].function.concrete_functions
    return graph.concrete_functions[name]


def test_truncated_and_garbage_files(originals, tmp_path):
    model = _copy(originals, "mul", tmp_path)
    pb = model / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])
    _refused(model, "saved_model.pb", "corrupt")
    pb.write_bytes(bytes(range(256)) * 64)
    _refused(model, "saved_model.pb", "corrupt")
    module = _copy(originals, "tf1", tmp_path)
    (module / "tfhub_module.pb").write_bytes(b"\xff\xff\xff")
    _refused(module, "tfhub_module.pb", "not a valid model file")
    (module / "tfhub_module.pb").write_bytes(b"\x08\x07")  # a format that does not exist
    _refused(module, "tfhub_module.pb", "unsupported module format 7")
    (module / "tfhub_module.pb").write_bytes(b"\x08\x03")
    (module / "saved_model.pb").unlink()
    _refused(module, "saved_model.pb", "it does not exist")


def test_a_structure_nested_10000_deep(originals, tmp_path):
    model = _copy(originals, "mul", tmp_path)

    def nest(meta):
        value = _call_function(meta).canonicalized_input_signature
        for _ in range(10_000):
            value = value.list_value.values.add()

    _edit_meta_graph(model, nest)
    _refused(model, "saved_model.pb", "corrupt")


def test_values_of_the_wrong_type(originals, tmp_path):
    model = _copy(originals, "mul", tmp_path)

    def one_tensor_as_signature(meta):
        signature = _call_function(meta).canonicalized_input_signature
        signature.Clear()
        signature.tensor_spec_value.dtype = 1

    _edit_meta_graph(model, one_tensor_as_signature)
    _refused(model, "saved_model.pb", r"input signature of .* is not \(args, kwargs\)")

    model = _copy(originals, "mul", tmp_path / "dtype")

    def unknown_dtype(meta):
        meta.signature_def["serving_default"].inputs["inputs"].dtype = 999

    _edit_meta_graph(model, unknown_dtype)
    _refused(model, "saved_model.pb", "unknown dtype 999")

    model = _copy(originals, "mul", tmp_path / "child")

    def dangling_child(meta):
        meta.object_graph_def.nodes[0].children.add(node_id=10**6, local_name="ghost")

    _edit_meta_graph(model, dangling_child)
    _refused(model, "saved_model.pb", "child 1000000 that is not there")

    model = _copy(originals, "mul", tmp_path / "ragged")

    def ragged_state_of_strings(meta):
        spec = _call_function(meta).output_signature
        spec.Clear()
        spec.type_spec_value.type_spec_class = 3  # RAGGED_TENSOR_SPEC
        spec.type_spec_value.type_state.tuple_value.values.add().string_value = "shape"
        spec.type_spec_value.type_state.tuple_value.values.add().string_value = "dtype"

    _edit_meta_graph(model, ragged_state_of_strings)
    _refused(model, "saved_model.pb", r"RAGGED_TENSOR_SPEC whose state is not \(shape, dtype")


def test_huge_and_negative_declared_shapes(originals, tmp_path):
    model = _copy(originals, "mul", tmp_path)

    def huge_variable(meta):
        for node in meta.object_graph_def.nodes:
            if node.WhichOneof("kind") == "variable":
                node.variable.shape.Clear()
                node.variable.shape.dim.add(size=10**9)
                node.variable.shape.dim.add(size=10**9)

    _edit_meta_graph(model, huge_variable)
    _refused(
        model,
        "variables/variables.index",
        r"the variables declare \d{19,} bytes but variables.data-\* hold \d+",
    )

    model = _copy(originals, "mul", tmp_path / "negative")

    def negative_dim(meta):
        shape = meta.signature_def["serving_default"].inputs["inputs"].tensor_shape
        shape.Clear()
        shape.dim.add(size=-7)

    _edit_meta_graph(model, negative_dim)
    _refused(model, "saved_model.pb", "a dimension of size -7")

    # A huge shape in a signature is only a number: described, not allocated.
    model = _copy(originals, "mul", tmp_path / "wide")

    def wide_input(meta):
        shape = meta.signature_def["serving_default"].inputs["inputs"].tensor_shape
        shape.Clear()
        shape.dim.add(size=10**9)
        shape.dim.add(size=10**9)

    _edit_meta_graph(model, wide_input)
    info = inspect_model(model)
    inputs = info["variants"][0]["signatures"]["serving_default"]["inputs"]
    assert inputs["inputs"]["shape"] == [10**9, 10**9]


def test_a_broken_checkpoint_index(originals, tmp_path):
    module = _copy(originals, "tf1", tmp_path)
    index = module / "variables" / "variables.index"
    index.write_bytes(index.read_bytes()[:7])
    _refused(module, "variables/variables.index", "not a valid model file")
