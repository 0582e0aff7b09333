"""Finding the ops of a model that the op policy does not accept, by parsing its protobufs.

Nothing of the model runs: ``saved_model.pb`` is parsed (through :mod:`tfhub.metagraph`) and
every graph variant, every function of the library and every function named by an attribute
(``f``, ``then_branch``, ``body``, ``branches``, ...) is checked, whatever its name.

An op is accepted when its type is on :data:`~tfhub.safety.allowlist.ALLOWED`. Two exemptions
come from the model's structure, never from names:

* checkpoint ops (``SaveV2``, ``RestoreV2``, ``MergeV2Checkpoints``, ``ShardedFilename``, ...)
  inside the save / restore function that the ``saver_def``'s nodes call (TF2), or inside the
  subgraph that ``saver_def``'s save / restore op depends on (TF1), when that function or
  subgraph is used by nothing else and the op's file prefix is derived from the saver's
  filename argument (plus constant suffixes without ``..``);
* ``InitializeTableFromTextFile(V2)`` when its file name is one of the model's own assets:
  an ``asset_file_def`` tensor (or a TF1 Hub module's ``saved_model_assets`` entry), or a
  function argument that every caller binds to an asset of the object graph.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tfhub import metagraph, protocol
from tfhub.errors import NotAModelError, UnscannableError
from tfhub.safety.allowlist import (
    ALLOWED,
    ASSET_READERS,
    CONDITIONAL,
    REFUSED,
    RESTORE_OPS,
    SAVE_OPS,
    describe,
)

__all__ = ["UnsafeOp", "is_refused", "scan", "scan_meta_graph"]

_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
_PASS_THROUGH = frozenset({"Identity", "Snapshot"})
_ASSETS_COLLECTION = "saved_model_assets"  # the TF1 Hub format's packed AssetFileDefs
_MAX_DEPTH = 64


@dataclass(frozen=True)
class UnsafeOp:
    """One finding: the op type, the node, where it is, and why it is not accepted.

    ``refused`` findings (``DatasetFromGraph``, RPC) cannot be accepted through ``allow_ops``.
    """

    op: str
    node: str
    where: str  # "graph [tags]" or "function <name>"
    reason: str
    refused: bool = False

    def __str__(self) -> str:
        return f"{self.op} ({self.reason}) at {self.where}: {self.node}"


def is_refused(op: str) -> bool:
    """Whether the op type is refused outright (see :data:`allowlist.REFUSED`)."""
    return op in REFUSED or op.startswith("Rpc")


def _source(ref: str) -> str:
    """The node (or function argument) an input reference names."""
    return ref.lstrip("^").split(":")[0]


def _data_inputs(node: Any) -> list[str]:
    return [ref for ref in node.input if not ref.startswith("^")]


def _func_names(node: Any) -> list[str]:
    """Every function an attribute of ``node`` names (``f``, branches, bodies, ...), also
    inside the attributes of those function values."""
    names: list[str] = []
    todo = list(node.attr.values())
    while todo:
        value = todo.pop()
        funcs = ([value.func] if value.HasField("func") else []) + list(value.list.func)
        for func in funcs:
            names.append(func.name)
            todo.extend(func.attr.values())
    return names


def _safe_asset_name(filename: str) -> bool:
    parts = filename.replace("\\", "/").split("/")
    return (
        bool(filename)
        and not filename.startswith("/")
        and ".." not in parts
        and ":" not in filename
    )


class _Scope:
    """The main graph of a meta graph, or one function of its library."""

    def __init__(self, where: str, nodes: Any, args: list[str], function: str | None) -> None:
        self.where = where
        self.node_list = list(nodes)  # every node is checked, also one whose name repeats
        self.nodes = {n.name: n for n in self.node_list}
        self.args = args
        self.function = function
        self.consumers: dict[str, list[Any]] = {}
        for node in self.node_list:
            for ref in node.input:
                self.consumers.setdefault(_source(ref), []).append(node)

    def ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            if current in seen or current not in self.nodes:
                continue
            seen.add(current)
            todo.extend(_source(ref) for ref in self.nodes[current].input)
        return seen

    def descendants(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for node in self.consumers.get(todo.pop(), []):
                if node.name not in seen:
                    seen.add(node.name)
                    todo.append(node.name)
        return seen


class _MetaGraphScan:
    def __init__(self, meta: Any, saver_defs: list[Any], hub_module: bool) -> None:
        self.meta = meta
        self.hub_module = hub_module
        tags = sorted(meta.meta_info_def.tags)
        self.graph = _Scope(f"graph {tags}", meta.graph_def.node, [], None)
        self.functions = {
            f.signature.name: _Scope(
                f"function {f.signature.name}",
                f.node_def,
                [a.name for a in f.signature.input_arg],
                f.signature.name,
            )
            for f in meta.graph_def.library.function
        }
        self.callers: dict[str, list[tuple[_Scope, Any]]] = {}
        for scope in (self.graph, *self.functions.values()):
            for node in scope.node_list:
                names = _func_names(node) + ([node.op] if node.op in self.functions else [])
                for name in names:
                    self.callers.setdefault(name, []).append((scope, node))
        self.bindings = {
            name: list(fn.bound_inputs)
            for name, fn in meta.object_graph_def.concrete_functions.items()
        }
        self.asset_tensors, self.asset_nodes = self._assets()
        self.save_scope: _Scope | None = None
        self.restore_scope: _Scope | None = None
        # TF1: (filename node, nodes the save op needs, nodes the restore op needs) per saver.
        # A TF1 SavedModel's variants share one graph that holds the saver of each variant.
        self.tf1_savers: list[tuple[str, set[str], set[str]]] = []
        for saver in [meta.saver_def] if meta.HasField("saver_def") else []:
            self._add_saver(saver, tf2=True)
        for saver in saver_defs:
            self._add_saver(saver, tf2=False)

    # -- assets ------------------------------------------------------------------------------

    def _assets(self) -> tuple[set[str], set[int]]:
        defs = list(self.meta.asset_file_def)
        # Only tfhub's TF1 loader points those constants at the module's assets/ directory.
        stored = self.meta.collection_def.get(_ASSETS_COLLECTION) if self.hub_module else None
        if stored is not None:
            asset_type = type(type(self.meta)().asset_file_def.add())
            for packed in stored.any_list.value:
                asset = asset_type()
                if packed.Unpack(asset):
                    defs.append(asset)
        tensors = {_tensor(a.tensor_info.name) for a in defs if _safe_asset_name(a.filename)}
        nodes = set()
        files = self.meta.asset_file_def
        for index, obj in enumerate(self.meta.object_graph_def.nodes):
            if obj.WhichOneof("kind") == "asset":
                i = obj.asset.asset_file_def_index
                if 0 <= i < len(files) and _safe_asset_name(files[i].filename):
                    nodes.add(index)
        return tensors, nodes

    def is_asset(self, scope: _Scope, ref: str, depth: int = 0) -> bool:
        """Whether the tensor ``ref`` of ``scope`` can only be one of the model's asset paths."""
        if depth > _MAX_DEPTH:
            return False
        name = _source(ref)
        if scope.function is not None and ":" not in ref and name in scope.args:
            return self._arg_is_asset(scope, scope.args.index(name), depth)
        node = scope.nodes.get(name)
        if node is None:
            return False
        if scope.function is None and _tensor(ref) in self.asset_tensors:
            return True
        data = _data_inputs(node)
        if node.op in _PASS_THROUGH and data:
            return self.is_asset(scope, data[0], depth + 1)
        if node.op == "ReadVariableOp" and scope.function is None and data:
            return self._variable_holds_asset(scope, _source(data[0]), depth)
        return False

    def _variable_holds_asset(self, scope: _Scope, var: str, depth: int) -> bool:
        handle = scope.nodes.get(var)
        if handle is None or handle.op != "VarHandleOp":
            return False
        writes = 0
        for user in scope.consumers.get(var, []):
            if user.op in ("ReadVariableOp", "VarIsInitializedOp"):
                continue
            data = _data_inputs(user)
            if user.op != "AssignVariableOp" or len(data) < 2 or _source(data[0]) != var:
                return False
            if not self.is_asset(scope, data[1], depth + 1):
                return False
            writes += 1
        return writes > 0

    def _arg_is_asset(self, scope: _Scope, index: int, depth: int) -> bool:
        name = scope.function or ""
        uses = 0
        bound = self.bindings.get(name)
        if bound is not None:
            offset = len(scope.args) - len(bound)
            if index < offset or bound[index - offset] not in self.asset_nodes:
                return False  # the caller passes this argument: it can be any string
            uses += 1
        for caller_scope, node in self.callers.get(name, []):
            data = _data_inputs(node)
            if node.op not in _CALL_OPS and node.op != name:
                return False
            if index >= len(data) or not self.is_asset(caller_scope, data[index], depth + 1):
                return False
            uses += 1
        return uses > 0

    # -- the saver ---------------------------------------------------------------------------

    def _add_saver(self, saver: Any, *, tf2: bool) -> None:
        filename = _source(saver.filename_tensor_name)
        save = self.graph.nodes.get(_source(saver.save_tensor_name))
        restore = self.graph.nodes.get(_source(saver.restore_op_name))
        if filename not in self.graph.nodes or save is None or restore is None:
            return
        if save.op in _CALL_OPS and restore.op in _CALL_OPS:
            if tf2:  # only this variant's own saver_def designates its functions
                self.save_scope = self._designated(save, filename)
                self.restore_scope = self._designated(restore, filename)
            return
        save_set = self.graph.ancestors(save.name)
        restore_set = self.graph.ancestors(restore.name)
        self.tf1_savers.append((filename, save_set, restore_set))

    def _designated(self, call: Any, filename: str) -> _Scope | None:
        """The function a saver_def node calls, with the argument that receives the file name,
        when nothing but that node can run it."""
        name = call.attr["f"].func.name if "f" in call.attr else ""
        scope = self.functions.get(name)
        if scope is None or self.graph.descendants(call.name):
            return None
        callers = [(s is self.graph, node.name) for s, node in self.callers.get(name, [])]
        if callers != [(True, call.name)]:
            return None
        if name in self.bindings:
            return None
        args = [i for i, ref in enumerate(_data_inputs(call)) if _source(ref) == filename]
        if len(args) != 1 or args[0] >= len(scope.args):
            return None
        designated = _Scope(scope.where, scope.node_list, scope.args, scope.function)
        designated.args = [scope.args[args[0]]]  # the one root a file prefix may come from
        return designated

    def checkpoint_ok(self, scope: _Scope, node: Any) -> bool:
        if scope.function is not None:
            for target, ops in ((self.save_scope, SAVE_OPS), (self.restore_scope, RESTORE_OPS)):
                if target is not None and target.function == scope.function and node.op in ops:
                    return self._prefixes_ok(target, node, target.args[0])
            return False
        for filename, save_set, restore_set in self.tf1_savers:
            inside = (node.op in SAVE_OPS and node.name in save_set) or (
                node.op in RESTORE_OPS and node.name in restore_set
            )
            if (
                inside
                and self.graph.descendants(node.name) <= save_set | restore_set
                and self._prefixes_ok(self.graph, node, filename)
            ):
                return True
        return False

    def _prefixes_ok(self, scope: _Scope, node: Any, root: str) -> bool:
        if node.op in ("ShardedFilename", "ShardedFilespec"):
            return True  # string formatting only; where it is was checked above
        data = _data_inputs(node)
        count = 2 if node.op == "MergeV2Checkpoints" else 1
        return len(data) >= count and all(_prefix_ok(scope, r, root, 0) for r in data[:count])

    # -- the walk ----------------------------------------------------------------------------

    def findings(self) -> list[UnsafeOp]:
        found = []
        for scope in (self.graph, *self.functions.values()):
            for node in scope.node_list:
                found.extend(self._check(scope, node))
                if scope.nodes[node.name] is not node:  # structure must be unambiguous
                    found.append(UnsafeOp(node.op, node.name, scope.where, "node name repeated"))
        return found

    def _check(self, scope: _Scope, node: Any) -> list[UnsafeOp]:
        found = []
        for name in _func_names(node):
            if name not in self.functions and name not in ALLOWED:
                # A call of a name that is no library function instantiates that op directly.
                found.append(_finding(name, node, scope, f"called through {node.op}"))
        op = node.op
        if op in self.functions and not is_refused(op) and not _registered(op):
            return found  # a call of a library function, which is checked on its own
        if op in ALLOWED or (op in CONDITIONAL and _stays_in_process(node)):
            return found
        if (op in SAVE_OPS or op in RESTORE_OPS) and self.checkpoint_ok(scope, node):
            return found
        data = _data_inputs(node)
        if op in ASSET_READERS and len(data) > 1 and self.is_asset(scope, data[1]):
            return found
        found.append(_finding(op, node, scope, ""))
        return found


def _finding(op: str, node: Any, scope: _Scope, via: str) -> UnsafeOp:
    reason = describe(op) + (f", {via}" if via else "")
    return UnsafeOp(op, node.name, scope.where, reason, refused=is_refused(op))


def _tensor(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def _stays_in_process(node: Any) -> bool:
    stream = node.attr["output_stream"].s if "output_stream" in node.attr else b""
    return not stream.lower().startswith(b"file:")


def _const_strings(node: Any) -> list[bytes] | None:
    if node.op != "Const" or "value" not in node.attr:
        return None
    return list(node.attr["value"].tensor.string_val)


def _safe_suffix(scope: _Scope, ref: str, depth: int) -> bool:
    node = scope.nodes.get(_source(ref))
    if node is None or depth > _MAX_DEPTH:
        return False
    data = _data_inputs(node)
    if node.op in _PASS_THROUGH and data:
        return _safe_suffix(scope, data[0], depth + 1)
    if node.op in ("Select", "SelectV2") and len(data) == 3:
        return all(_safe_suffix(scope, r, depth + 1) for r in data[1:])
    values = _const_strings(node)
    return values is not None and all(b".." not in v and b":" not in v for v in values)


def _prefix_ok(scope: _Scope, ref: str, root: str, depth: int) -> bool:
    """Whether the file prefix ``ref`` is the saver's file name plus safe constant suffixes."""
    name = _source(ref)
    if name == root:
        return True
    node = scope.nodes.get(name)
    if node is None or depth > _MAX_DEPTH:
        return False
    data = _data_inputs(node)
    if node.op in _PASS_THROUGH | {"ShardedFilename"} and data:
        return _prefix_ok(scope, data[0], root, depth + 1)
    if node.op == "Pack" and data:
        return all(_prefix_ok(scope, r, root, depth + 1) for r in data)
    if node.op == "StringJoin" and data:
        separator = node.attr["separator"].s if "separator" in node.attr else b""
        return (
            b".." not in separator
            and _prefix_ok(scope, data[0], root, depth + 1)
            and all(_safe_suffix(scope, r, depth + 1) for r in data[1:])
        )
    return False


def scan_meta_graph(
    meta: Any, *, saver_defs: list[Any] | None = None, hub_module: bool = False
) -> list[UnsafeOp]:
    """The findings of one graph variant (a ``MetaGraphDef``).

    Args:
        saver_defs: those of every variant of the model (the variants of a TF1 SavedModel
            share a graph that holds each variant's saver).
        hub_module: the model is in the TF1 Hub format (its ``saved_model_assets`` count as
            assets: tfhub's loader points them at the module's ``assets/``).
    """
    return _MetaGraphScan(meta, list(saver_defs or ()), hub_module).findings()


def _registered(op: str) -> bool:
    """Whether ``op`` is an op type of this TensorFlow (a name a node may run as an op even
    when a library function has the same name)."""
    import tensorflow as tf

    return hasattr(tf.raw_ops, op) or op in ALLOWED


def scan(path: str | os.PathLike[str]) -> list[UnsafeOp]:
    """Every op the policy does not accept, in every graph variant and function of the model
    at ``path`` (a directory, local or any ``tf.io.gfile`` URL), sorted by place.

    Raises:
        UnscannableError: the model has a text ``saved_model.pbtxt`` only.
        NotAModelError: no model there, or a ``saved_model.pb`` that does not parse.
    """
    path = os.fspath(path)
    if not metagraph.is_file(metagraph.join(path, protocol.SAVED_MODEL_PB)):
        if metagraph.is_file(metagraph.join(path, protocol.SAVED_MODEL_PBTXT)):
            raise UnscannableError(
                f"{path} holds a text saved_model.pbtxt, which tfhub does not scan for unsafe "
                "ops; export a binary saved_model.pb (or pass check_ops='off' if you trust it).",
                handle=path,
            )
        raise NotAModelError(f"{path} has no {protocol.SAVED_MODEL_PB} to scan.", handle=path)
    found: dict[tuple[str, str, str], UnsafeOp] = {}
    metas = metagraph.read_meta_graphs(path, path)
    savers = [m.saver_def for m in metas if m.HasField("saver_def")]
    hub_module = metagraph.is_file(metagraph.join(path, protocol.TF1_MODULE_PB))
    for meta in metas:
        for item in scan_meta_graph(meta, saver_defs=savers, hub_module=hub_module):
            found.setdefault((item.op, item.node, item.where), item)
    return sorted(found.values(), key=lambda u: (u.where, u.op, u.node))
