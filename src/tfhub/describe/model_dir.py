"""Describing a model directory from its protobufs and checkpoint index, without running it.

``saved_model.pb`` (or ``.pbtxt``) is parsed into ``tf.compat.v1.MetaGraphDef`` messages,
``tfhub_module.pb`` into the Hub ``ModuleDef``, and the variables come from the SavedModel's
object graph (TF2) or the checkpoint index (``tf.train.load_checkpoint`` reads only
``variables.index``). Nothing is loaded, imported into a graph or executed: no
``tf.saved_model.load``, no ``hub.Module``, no session, so a model whose initializers or
functions have side effects has none here. Anything malformed is a ``NotAModelError`` that
names the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tfhub import metagraph, protocol
from tfhub.describe.protos import (
    MalformedError,
    decode_structured,
    dtype_name,
    dtype_size,
    shape_of,
    tensor_info_spec,
)
from tfhub.describe.specs import (
    FORMAT_SAVED_MODEL,
    FORMAT_SAVED_MODEL_2,
    FORMAT_TF1_HUB,
    group_call_traces,
)
from tfhub.errors import NotAModelError

__all__ = ["MAX_PROTO_BYTES", "describe_model_dir"]

MAX_PROTO_BYTES = 2**31 - 1  # the protobuf limit on one message
_INIT_OP_SIGNATURE = "__saved_model_init_op"
_ATTACHMENTS_KEY = "hub_module_attachments"
_TF1_COLLECTIONS = frozenset(
    {
        "variables",
        "trainable_variables",
        "model_variables",
        "table_initializer",
        "update_ops",
        "regularization_losses",
        "asset_filepaths",
        "cond_context",
        "while_context",
        "saved_model_assets",
        _ATTACHMENTS_KEY,
    }
)
_CHECKPOINT_BOOKKEEPING = ("_CHECKPOINTABLE", "global_step")


def _bad(path: str, problem: str) -> NotAModelError:
    return NotAModelError(
        f"{path} is not a valid model file: {problem}. Export the model again with a current "
        "TensorFlow (or download it again).",
        handle=os.path.dirname(path),
    )


def _check_size(path: str) -> None:
    size = os.stat(path).st_size
    if size > MAX_PROTO_BYTES:
        raise _bad(path, f"it has {size} bytes, more than a protobuf message can hold")


def _read_meta_graphs(model_dir: str) -> tuple[str, list[Any]]:
    pb = os.path.join(model_dir, protocol.SAVED_MODEL_PB)
    if os.path.isfile(pb):
        _check_size(pb)
        metas = metagraph.read_meta_graphs(Path(model_dir), model_dir)
    elif os.path.isfile(os.path.join(model_dir, protocol.SAVED_MODEL_PBTXT)):
        pb = os.path.join(model_dir, protocol.SAVED_MODEL_PBTXT)
        _check_size(pb)
        metas = _read_text_meta_graphs(pb)
    else:
        raise _bad(pb, "it does not exist (a model needs its graphs)")
    if not metas:
        raise _bad(pb, "it holds no meta graph")
    return pb, metas


def _tf_message(name: str) -> Any:
    """A message class of TensorFlow's protos (registered when TensorFlow is imported)."""
    import tensorflow as tf  # noqa: F401
    from google.protobuf import descriptor_pool, message_factory

    return message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(name))


def _read_text_meta_graphs(pbtxt: str) -> list[Any]:
    from google.protobuf import text_format

    saved = _tf_message("tensorflow.SavedModel")()
    try:
        with open(pbtxt, encoding="utf-8") as f:
            text_format.Parse(f.read(), saved)
    except (text_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
        raise _bad(pbtxt, str(exc)) from None
    return list(saved.meta_graphs)


def describe_model_dir(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Format, graph variants, signatures, ``__call__`` traces, variables, assets and size.

    The structure is that of :func:`tfhub.tools.inspect.inspect_model` without its
    ``unsafe_ops`` and ``common_signatures`` keys. ``variables`` holds ``count``, ``bytes``
    and ``list`` (``name``, ``dtype``, ``shape``, ``trainable`` of each).

    Raises:
        NotAModelError: the directory holds no model, or a file of it is malformed (the
            message names the file).
    """
    path = os.fspath(path)
    module_pb = os.path.join(path, protocol.TF1_MODULE_PB)
    try:
        if os.path.isfile(module_pb):
            result = _describe_tf1_module(path, module_pb)
        elif os.path.isfile(os.path.join(path, protocol.SAVED_MODEL_PB)) or os.path.isfile(
            os.path.join(path, protocol.SAVED_MODEL_PBTXT)
        ):
            result = _describe_saved_model(path)
        else:
            raise NotAModelError(
                f"{path} holds neither saved_model.pb, saved_model.pbtxt nor tfhub_module.pb.",
                handle=path,
            )
    except RecursionError:  # the parsers limit nesting; this is a last line of defence
        raise _bad(os.path.join(path, protocol.SAVED_MODEL_PB), "nested too deeply") from None
    result["assets"] = _assets(path)
    result["size_bytes"] = _files_size(path)
    return result


# -- TF2 and TF1 SavedModels ---------------------------------------------------------------------


def _describe_saved_model(path: str) -> dict[str, Any]:
    pb, metas = _read_meta_graphs(path)
    try:
        tf2 = next((m for m in metas if len(m.object_graph_def.nodes)), None)
        if tf2 is None:
            return _describe_tf1_saved_model(path, metas)
        return _describe_tf2(path, tf2)
    except MalformedError as exc:
        raise _bad(pb, str(exc)) from None


def _signatures(meta: Any, names: Iterable[str] | None = None) -> dict[str, Any]:
    wanted = set(meta.signature_def) - {_INIT_OP_SIGNATURE} if names is None else set(names)
    result = {}
    for name in sorted(wanted & set(meta.signature_def)):
        sig = meta.signature_def[name]
        result[name] = {
            direction: {
                key: tensor_info_spec(info).to_json()
                for key, info in sorted(getattr(sig, direction).items())
            }
            for direction in ("inputs", "outputs")
        }
    return result


def _children(graph: Any, node_id: int) -> dict[str, int]:
    nodes = graph.nodes
    result = {}
    for child in nodes[node_id].children:
        if not 0 <= child.node_id < len(nodes):
            raise MalformedError(f"object {node_id} has a child {child.node_id} that is not there")
        result[child.local_name] = child.node_id
    return result


def _list_items(graph: Any, node_id: int | None) -> list[int]:
    """The node ids of a tracked list (``trackable_list_wrapper``), in order."""
    if node_id is None:
        return []
    items = _children(graph, node_id)
    return [items[k] for k in sorted((k for k in items if k.isdigit()), key=int)]


def _variable_json(variable: Any) -> dict[str, Any]:
    shape = shape_of(variable.shape)
    size = dtype_size(variable.dtype)
    count = 0 if shape is None or None in shape else math.prod(d or 0 for d in shape)
    return {
        "name": variable.name,
        "dtype": dtype_name(variable.dtype),
        "shape": None if shape is None else list(shape),
        "trainable": bool(variable.trainable),
        "_bytes": count * size,
    }


def _variables_json(variables: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "count": len(variables),
        "bytes": sum(v["_bytes"] for v in variables),
        "list": [{k: v for k, v in var.items() if k != "_bytes"} for var in variables],
    }


def _call_traces(graph: Any, node_id: int | None) -> list[tuple[Any, Any, Any]]:
    if node_id is None:
        return []
    node = graph.nodes[node_id]
    kind = node.WhichOneof("kind")
    if kind == "function":
        names = list(node.function.concrete_functions)
    elif kind == "bare_concrete_function":
        names = [node.bare_concrete_function.concrete_function_name]
    else:
        return []
    traces = []
    for name in names:
        if name not in graph.concrete_functions:
            raise MalformedError(f"__call__ names a function {name!r} that is not there")
        function = graph.concrete_functions[name]
        signature = decode_structured(function.canonicalized_input_signature)
        if (
            not isinstance(signature, tuple)
            or len(signature) != 2
            or not isinstance(signature[0], tuple | list)
            or not isinstance(signature[1], dict)
        ):
            raise MalformedError(f"the input signature of {name!r} is not (args, kwargs)")
        traces.append((signature[0], signature[1], decode_structured(function.output_signature)))
    return traces


def _describe_tf2(path: str, meta: Any) -> dict[str, Any]:
    graph = meta.object_graph_def
    root = _children(graph, 0)
    call = root.get("__call__")
    is_callable = call is not None and graph.nodes[call].WhichOneof("kind") in (
        "function",
        "bare_concrete_function",
    )
    signature_names = None
    if "signatures" in root:
        signature_names = list(_children(graph, root["signatures"]))
    listed = _list_items(graph, root.get("variables"))
    if "variables" not in root:  # no `variables` attribute: every variable of the object graph
        listed = [i for i, n in enumerate(graph.nodes) if n.WhichOneof("kind") == "variable"]
    variables = [
        _variable_json(graph.nodes[i].variable)
        for i in listed
        if graph.nodes[i].WhichOneof("kind") == "variable"
    ]
    unique = {
        i: _variable_json(n.variable)
        for i, n in enumerate(graph.nodes)
        if n.WhichOneof("kind") == "variable"
    }
    _check_checkpoint_data(path, sum(v["_bytes"] for v in unique.values()))
    trainable = _list_items(graph, root.get("trainable_variables"))
    return {
        "format": FORMAT_SAVED_MODEL_2
        if is_callable and "trainable_variables" in root
        else FORMAT_SAVED_MODEL,
        "variants": [
            {
                "tags": sorted(meta.meta_info_def.tags),
                "signatures": _signatures(meta, signature_names),
                "attachments": [],
            }
        ],
        "call": group_call_traces(_call_traces(graph, call)) if is_callable else [],
        "variables": _variables_json(variables),
        "callable": is_callable,
        "trainable_variables": len(trainable),
        "regularization_losses": len(_list_items(graph, root.get("regularization_losses"))),
        "fine_tunable": bool(trainable),
    }


def _describe_tf1_saved_model(path: str, metas: list[Any]) -> dict[str, Any]:
    variants = [
        {"tags": sorted(m.meta_info_def.tags), "signatures": _signatures(m), "attachments": []}
        for m in metas
    ]
    try:
        variables = _checkpoint_variables(path, _trainable_names(metas))
    except MalformedError as exc:
        raise _bad(os.path.join(path, protocol.SAVED_MODEL_PB), str(exc)) from None
    return {
        "format": FORMAT_SAVED_MODEL,
        "variants": variants,
        "call": [],
        "variables": variables,
        "callable": False,
        "trainable_variables": 0,
        "regularization_losses": 0,
        "fine_tunable": False,
    }


# -- TF1 Hub modules -----------------------------------------------------------------------------


def _describe_tf1_module(path: str, module_pb: str) -> dict[str, Any]:
    from google.protobuf.message import DecodeError

    from tfhub import protos

    _check_size(module_pb)
    try:
        with open(module_pb, "rb") as f:
            module_def = protos.ModuleDef.FromString(f.read())
    except DecodeError as exc:
        raise _bad(module_pb, str(exc)) from None
    if module_def.format != protos.FORMAT_V3:
        raise _bad(module_pb, f"unsupported module format {module_def.format!r}")
    if module_def.required_features:
        raise NotAModelError(
            f"{module_pb} requires features {list(module_def.required_features)!r}; a newer "
            "library is needed to use this module.",
            handle=path,
        )
    pb, metas = _read_meta_graphs(path)
    variants = {}
    try:
        for meta in metas:
            variants[frozenset(meta.meta_info_def.tags)] = _tf1_variant(pb, meta)
        trainable = _trainable_names(metas)
    except MalformedError as exc:
        raise _bad(pb, str(exc)) from None
    variables = _checkpoint_variables(path, trainable)
    return {
        "format": FORMAT_TF1_HUB,
        "variants": [variants[t] for t in sorted(variants, key=lambda t: (len(t), sorted(t)))],
        "variables": variables,
        "fine_tunable": bool(variables),
    }


def _tf1_variant(pb: str, meta: Any) -> dict[str, Any]:
    from google.protobuf.message import DecodeError

    from tfhub import protos

    unsupported = sorted(
        k for k in meta.collection_def if not k.startswith("__") and k not in _TF1_COLLECTIONS
    )
    if unsupported:
        raise NotAModelError(
            f"{pb} has collections hub.Module does not support: {unsupported}. Export the module "
            f"again with hub.create_module_spec(..., drop_collections={unsupported!r}).",
            handle=os.path.dirname(pb),
        )
    attachments = set()
    stored = meta.collection_def.get(_ATTACHMENTS_KEY)
    for raw in stored.bytes_list.value if stored is not None else ():
        try:
            attachments.add(protos.ModuleAttachment.FromString(raw).key)
        except DecodeError as exc:
            raise MalformedError(f"an attached message that does not parse: {exc}") from None
    trainable = meta.collection_def.get("trainable_variables")
    return {
        "tags": sorted(meta.meta_info_def.tags),
        "signatures": _signatures(meta),
        "attachments": sorted(attachments),
        "trainable_variables": _collection_size(trainable),
    }


def _collection_size(collection: Any) -> int:
    if collection is None:
        return 0
    kind = collection.WhichOneof("kind")
    return len(getattr(collection, kind).value) if kind else 0


# -- variables, assets, size ---------------------------------------------------------------------


def _prefix(path: str) -> str:
    return os.path.join(path, "variables", "variables")


def _trainable_names(metas: list[Any]) -> set[str]:
    """Names of the variables in the ``trainable_variables`` collection of any graph variant."""
    from google.protobuf.message import DecodeError

    variable_def = _tf_message("tensorflow.VariableDef")
    names = set()
    for meta in metas:
        stored = meta.collection_def.get("trainable_variables")
        for raw in stored.bytes_list.value if stored is not None else ():
            try:
                names.add(variable_def.FromString(raw).variable_name.split(":")[0])
            except DecodeError as exc:
                raise MalformedError(f"a trainable variable that does not parse: {exc}") from None
    return names


def _checkpoint_variables(path: str, trainable: set[str]) -> dict[str, Any]:
    """The variables of the checkpoint index (none when there is no checkpoint)."""
    prefix = _prefix(path)
    if not os.path.isfile(prefix + ".index"):
        return {}
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
        dtypes = reader.get_variable_to_dtype_map()
    except (tf.errors.OpError, ValueError) as exc:
        raise _bad(prefix + ".index", str(exc).strip().splitlines()[0]) from None
    variables = []
    for name in sorted(shapes):
        if name.startswith(_CHECKPOINT_BOOKKEEPING):
            continue
        shape = [int(d) for d in shapes[name]]
        size = math.prod(shape) * dtypes[name].size
        variables.append(
            {
                "name": name,
                "dtype": dtypes[name].name,
                "shape": shape,
                "trainable": name in trainable,
                "_bytes": size,
            }
        )
    result = _variables_json(variables)
    _check_checkpoint_data(path, result["bytes"])
    return result


def _check_checkpoint_data(path: str, declared: int) -> None:
    """A checkpoint stores each value in full: the data files hold at least ``declared``."""
    directory = os.path.join(path, "variables")
    held = 0
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            if name.startswith("variables.data-"):
                held += os.lstat(os.path.join(directory, name)).st_size
    if declared > held:
        raise _bad(
            _prefix(path) + ".index",
            f"the variables declare {declared} bytes but variables.data-* hold {held}",
        )


def _assets(path: str) -> list[str]:
    root = os.path.join(path, "assets")
    found = []
    for directory, _, files in os.walk(root):
        found += [os.path.relpath(os.path.join(directory, f), root) for f in files]
    return sorted(found)


def _files_size(path: str) -> int:
    """Bytes of the regular files under ``path`` (links are not followed)."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total
