"""``hub.Module``: a TF1 Hub module instantiated in a ``tf.compat.v1`` graph.

Instantiating imports the module's *state* (variables, tables) once, under a fresh variable
scope; each call imports the computation again under its own name scope, with the module's
state ops replaced by the state already imported, so every application shares the variables.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from tfhub.errors import UsageError
from tfhub.tf1.spec import ModuleSpec, load_module_spec
from tfhub.tf1.surgery import GK, strip_collections
from tfhub.tf1.tensor_info import ParsedTensorInfo

__all__ = ["Module", "eval_function_for_module"]

v1 = tf.compat.v1

_STATE_COLLECTIONS = (
    GK.GLOBAL_VARIABLES,
    GK.MODEL_VARIABLES,
    GK.TABLE_INITIALIZERS,
    GK.ASSET_FILEPATHS,
    GK.COND_CONTEXT,
    GK.WHILE_CONTEXT,
)
_APPLY_COLLECTIONS = (GK.ASSET_FILEPATHS, GK.COND_CONTEXT, GK.WHILE_CONTEXT)


_VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})


def _is_state_op(op: tf.Operation) -> bool:
    """Stateful ops with no inputs that create a resource: variables, tables, ..."""
    return (
        not op.inputs
        and op.op_def.is_stateful
        and len(op.outputs) == 1
        and op.outputs[0].dtype == tf.resource
    )


class Module:
    """A TF1 Hub module in the current graph; call it to apply a signature.

    Args:
        spec: a :class:`ModuleSpec` or a handle (path or URL) of a module.
        trainable: put the module's variables in TRAINABLE_VARIABLES and import its
            REGULARIZATION_LOSSES (and UPDATE_OPS at each call) for fine-tuning.
        name: the variable scope to use (made unique: ``module``, ``module_1``, ...).
        tags: the graph variant, e.g. ``{"train"}`` for fine-tuning (default: the empty set).

    Raises:
        RuntimeError: eager execution is enabled (build a ``tf.Graph`` first).
        UsageError: an unknown spec type or graph variant.

    Example:
        >>> with tf.Graph().as_default():
        ...     m = hub.Module("https://hub.example.com/google/nnlm-en-dim50/1")
        ...     embeddings = m(["a sentence"])
    """

    def __init__(
        self,
        spec: ModuleSpec | str | os.PathLike[str],
        trainable: bool = False,
        name: str = "module",
        tags: Iterable[str] | None = None,
    ) -> None:
        if tf.executing_eagerly():
            raise RuntimeError(
                "hub.Module needs a TF1 graph and eager execution is enabled: build it inside "
                "`with tf.Graph().as_default():`, or use hub.load() / hub.KerasLayer() in TF2."
            )
        if isinstance(spec, str | os.PathLike):
            spec = load_module_spec(spec)
        elif not isinstance(spec, ModuleSpec):
            raise UsageError(f"Unknown module spec type: {type(spec)!r}")
        self._spec = spec
        self._tags = frozenset(tags or ())
        self._meta = spec.meta_graph(self._tags)
        self._trainable = trainable
        self._graph = v1.get_default_graph()
        with v1.variable_scope(None, default_name=name) as scope:
            pass
        if scope.original_name_scope != scope.name + "/":
            raise RuntimeError(
                f"variable_scope {scope.name} was unused but the corresponding name_scope was "
                "already taken; pass another name= to hub.Module."
            )
        self._scope = scope.name
        self._name = name
        keep = _STATE_COLLECTIONS + (
            (GK.TRAINABLE_VARIABLES, GK.REGULARIZATION_LOSSES) if trainable else ()
        )
        state_meta = strip_collections(self._meta, keep=keep)
        # Tables and other shared resources get a name of their own per instance: in TF2 every
        # module is instantiated under the same scope name (in its own function graph) but
        # resources live in one process-wide manager, so equal names would share one table.
        # (Variables are created per instance whatever their shared_name.)
        instance = uuid.uuid4().hex[:12]
        for node in state_meta.graph_def.node:
            if "shared_name" not in node.attr:
                continue
            shared = node.attr["shared_name"].s
            if not shared and node.attr["use_node_name_sharing"].b:
                shared = node.name.encode()  # the resource would be named after the node
                node.attr["use_node_name_sharing"].b = False
            if shared:
                unique = "" if node.op in _VARIABLE_OPS else f"_{instance}"
                node.attr["shared_name"].s = f"{self._scope}{unique}/".encode() + shared
        graph = self._graph
        n_ops = len(graph.get_operations())
        n_vars = len(graph.get_collection(GK.GLOBAL_VARIABLES))
        with v1.control_dependencies(None), graph.name_scope(self._scope + "/"):
            v1.train.import_meta_graph(state_meta)
        prefix = self._scope + "/"
        self._state = {
            op.name[len(prefix) :]: op.outputs[0]
            for op in graph.get_operations()[n_ops:]
            if _is_state_op(op)
        }
        self._variable_map = {
            var.op.name[len(prefix) :]: var
            for var in graph.get_collection(GK.GLOBAL_VARIABLES)[n_vars:]
        }
        if spec.checkpoint_path:
            v1.train.init_from_checkpoint(spec.checkpoint_path, dict(self._variable_map))
        self._apply_meta = self._make_apply_meta()

    def _make_apply_meta(self) -> Any:
        keep = _APPLY_COLLECTIONS + ((GK.UPDATE_OPS,) if self._trainable else ())
        meta = strip_collections(self._meta, keep=keep)
        state = set(self._state)
        for node in meta.graph_def.node:
            if node.name in state:
                # Fed from the state imported once in __init__ (through input_map).
                node.op = "Placeholder"
                del node.input[:]
                node.attr.clear()
                node.attr["dtype"].type = tf.resource.as_datatype_enum
            elif "_class" in node.attr:
                locs = [
                    s for s in node.attr["_class"].list.s if s.decode()[len("loc:@") :] not in state
                ]
                del node.attr["_class"].list.s[:]
                node.attr["_class"].list.s.extend(locs)
                if not locs:
                    del node.attr["_class"]
        return meta

    # -- applying ------------------------------------------------------------------------

    def __call__(
        self,
        inputs: Any = None,
        _sentinel: None = None,
        signature: str | None = None,
        as_dict: bool | None = None,
    ) -> Any:
        """Applies a signature (default "default") to ``inputs``.

        Args:
            inputs: a value for a single-input signature, or a dict input name → value.
            signature: the signature to apply.
            as_dict: return every output in a dict (else the "default" output).

        Raises:
            RuntimeError: called in another graph than the one the module was created in.
            TypeError: inputs that do not match the signature.
        """
        if _sentinel is not None:
            raise TypeError("hub.Module takes signature= and as_dict= as keyword arguments.")
        if v1.get_default_graph() is not self._graph:
            raise RuntimeError("Module must be applied in the graph it was instantiated for.")
        name = signature or "default"
        sig = self._spec.signature_def(name, self._tags)
        values = match_inputs(inputs, sig.inputs)
        input_map = {f"{k}:0": v for k, v in self._state.items()}
        for key, info in sig.inputs.items():
            input_map.update(_input_map_entries(info, values[key], key))
        with v1.name_scope(f"{self._name}_apply_{name.replace(':', '_')}") as scope:
            v1.train.import_meta_graph(self._apply_meta, input_map=input_map)
        outputs = {
            key: v1.saved_model.utils.get_tensor_from_tensor_info(
                info, self._graph, import_scope=scope.rstrip("/")
            )
            for key, info in sig.outputs.items()
        }
        for key, info in sig.outputs.items():
            _declare_shape(outputs[key], info)
        if as_dict:
            return outputs
        if "default" not in outputs:
            raise TypeError(
                f"There is no output named 'default' in signature {name!r} (outputs: "
                f"{sorted(outputs)}). Use as_dict=True."
            )
        return outputs["default"]

    def apply_variant(self, inputs: Any, signature: str, tags: frozenset[str]) -> Any:
        """Applies ``signature`` of another graph variant (e.g. {"train"}) to this module's state.

        The variants of one module define the same variables, so the other variant's graph is
        imported with its state ops fed from the state this module already holds.
        """
        other = Module.__new__(Module)
        other.__dict__.update(self.__dict__)
        other._tags = frozenset(tags)
        other._meta = self._spec.meta_graph(tags)
        missing = sorted(
            node.name
            for node in other._meta.graph_def.node
            if node.op in ("VarHandleOp", "HashTableV2", "MutableHashTableV2")
            and node.name not in self._state
        )
        if missing:
            raise UsageError(
                f"Graph variant {sorted(tags)} has state that variant {sorted(self._tags)} lacks: "
                f"{missing}."
            )
        other._apply_meta = other._make_apply_meta()
        return other(inputs, signature=signature, as_dict=True)

    # -- introspection -------------------------------------------------------------------

    def get_signature_names(self) -> list[str]:
        return self._spec.get_signature_names(self._tags)

    def get_input_info_dict(self, signature: str | None = None) -> dict[str, ParsedTensorInfo]:
        return self._spec.get_input_info_dict(signature, self._tags)

    def get_output_info_dict(self, signature: str | None = None) -> dict[str, ParsedTensorInfo]:
        return self._spec.get_output_info_dict(signature, self._tags)

    def get_attached_message(self, key: str, message_type: Any, required: bool = False) -> Any:
        return self._spec.get_attached_message(key, message_type, self._tags, required)

    @property
    def variable_map(self) -> dict[str, Any]:
        """Variable name inside the module → variable."""
        return dict(self._variable_map)

    @property
    def table_handles(self) -> list[Any]:
        """The resource handles of the module's state that is not a variable (its tables)."""
        return [
            self._state[k]
            for k in sorted(self._state)
            if self._state[k].op.type not in _VARIABLE_OPS
        ]

    @property
    def variables(self) -> list[Any]:
        return [self._variable_map[k] for k in sorted(self._variable_map)]

    def export(self, path: str | os.PathLike[str], session: Any) -> None:
        """Writes the module with the variable values of ``session`` (e.g. after fine-tuning).

        Raises:
            RuntimeError: the default graph or the session's graph is not the module's graph.
        """
        if v1.get_default_graph() is not self._graph:
            raise RuntimeError("default graph differs from the graph where the module was made.")
        if session.graph is not self._graph:
            raise RuntimeError("session graph differs from the graph where the module was made.")
        if not self._variable_map:  # nothing to checkpoint
            self._spec.write(path, None)
            return
        saver = v1.train.Saver(self._variable_map, sharded=True, write_version=v1.train.SaverDef.V2)
        self._spec.write(
            path,
            lambda prefix: saver.save(session, prefix, write_meta_graph=False, write_state=False),
        )


def match_inputs(inputs: Any, expected: Mapping[str, Any]) -> dict[str, Any]:
    if inputs is None:
        given: dict[str, Any] = {}
    elif isinstance(inputs, Mapping):
        given = dict(inputs)
    elif len(expected) == 1:
        given = {next(iter(expected)): inputs}
    elif not expected:
        raise TypeError("Signature expects no inputs.")
    else:
        raise TypeError(f"Signature expects multiple inputs ({sorted(expected)}). Use a dict.")
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        raise TypeError(f"Cannot convert dict_inputs: missing {missing!r}, extra given {extra!r}")
    return given


def _input_map_entries(info: Any, value: Any, key: str) -> dict[str, Any]:
    kind = info.WhichOneof("encoding")
    dtype = tf.as_dtype(info.dtype) if kind != "composite_tensor" else None
    if kind == "name":
        if isinstance(value, tf.SparseTensor | tf.RaggedTensor):
            raise TypeError(
                f"Can't convert {key!r}: got {type(value).__name__}, expected a Tensor."
            )
        return {info.name: tf.convert_to_tensor(value, dtype=dtype)}
    if kind == "coo_sparse":
        if not isinstance(value, tf.SparseTensor):
            raise TypeError(
                f"Can't convert {key!r}: got {type(value).__name__}, expected a SparseTensor."
            )
        coo = info.coo_sparse
        return {
            coo.indices_tensor_name: value.indices,
            coo.values_tensor_name: tf.cast(value.values, dtype)
            if value.dtype != dtype
            else value.values,
            coo.dense_shape_tensor_name: value.dense_shape,
        }
    components = info.composite_tensor.components
    if not isinstance(value, tf.RaggedTensor):
        raise TypeError(
            f"Can't convert {key!r}: got {type(value).__name__}, expected a RaggedTensor."
        )
    flat = tf.nest.flatten(value, expand_composites=True)
    if len(flat) != len(components):
        raise TypeError(
            f"Can't convert {key!r}: a RaggedTensor with {len(flat)} components, the signature "
            f"expects {len(components)}."
        )
    return {c.name: t for c, t in zip(components, flat, strict=True)}


def _declare_shape(tensor: Any, info: Any) -> None:
    """Gives a dense output the static shape its signature declares.

    Imported graphs lose shapes that TensorFlow's shape inference cannot recover (after
    table lookups, sparse and ragged ops), and Keras needs them to build the next layer.
    """
    if info.WhichOneof("encoding") != "name" or info.tensor_shape.unknown_rank:
        return
    declared = tf.TensorShape(info.tensor_shape)
    if declared.is_compatible_with(tensor.shape):
        tensor.set_shape(declared)


def signature_placeholder(info: ParsedTensorInfo) -> Any:
    """A placeholder (sparse, ragged of ragged_rank 1, or dense) for a signature input."""
    if info.is_sparse:
        return v1.sparse_placeholder(info.dtype, info.get_shape())
    if info.is_composite:
        spec = info.type_spec
        if not isinstance(spec, tf.RaggedTensorSpec) or spec.ragged_rank != 1:
            raise UsageError(f"Only ragged inputs of ragged_rank 1 are supported, got {spec}.")
        return tf.RaggedTensor.from_row_splits(
            v1.placeholder(info.dtype, [None]),
            v1.placeholder(spec.row_splits_dtype, [None]),
            validate=False,
        )
    return v1.placeholder(info.dtype, info.get_shape())


@contextlib.contextmanager
def eval_function_for_module(
    spec: ModuleSpec | str | os.PathLike[str], tags: Iterable[str] | None = None
) -> Iterator[Any]:
    """Yields ``f(inputs=None, signature=None, as_dict=None)`` that runs the module on NumPy data.

    Builds a new graph with the module and placeholders for its signatures, starts a session
    with variables and tables initialized, and closes it on exit.

    Example:
        >>> with hub.eval_function_for_module(path) as f:
        ...     f([[1.0, 2.0]])
    """
    with tf.Graph().as_default():
        module = Module(spec, tags=tags)
        applied: dict[str, tuple[dict[str, Any], Any]] = {}
        for name in module.get_signature_names():
            placeholders = {
                key: signature_placeholder(info)
                for key, info in module.get_input_info_dict(name).items()
            }
            outputs = module(placeholders, signature=name, as_dict=True)
            applied[name] = (placeholders, outputs)
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])

            def run(
                inputs: Any = None,
                _sentinel: None = None,
                signature: str | None = None,
                as_dict: bool | None = None,
            ) -> Any:
                name = signature or "default"
                if name not in applied:
                    raise UsageError(
                        f"Signature {name!r} is missing; available: {sorted(applied)}."
                    )
                placeholders, outputs = applied[name]
                values = match_inputs(inputs, placeholders)
                feed: dict[Any, Any] = {}
                for key, placeholder in placeholders.items():
                    value = values[key]
                    if isinstance(placeholder, tf.RaggedTensor):
                        # A list of rows: feed its flat values and row splits.
                        rows = [np.asarray(row).reshape(-1) for row in value]
                        feed[placeholder.flat_values] = (
                            np.concatenate(rows) if rows else np.zeros([0])
                        )
                        feed[placeholder.row_splits] = np.cumsum([0] + [len(r) for r in rows])
                    else:
                        feed[placeholder] = value
                result = session.run(outputs, feed_dict=feed)
                if as_dict:
                    return result
                if "default" not in result:
                    raise TypeError("There is no output named 'default'. Use as_dict=True.")
                return result["default"]

            yield run
