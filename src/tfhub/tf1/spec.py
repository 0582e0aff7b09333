"""Module specs of the TF1 Hub format: creating them, reading and writing them on disk.

A spec is a set of graph variants (tag set → ``MetaGraphDef``) plus, once exported, a
checkpoint of the variables. On disk (``ModuleSpec.export`` / ``Module.export``)::

    tfhub_module.pb          ModuleDef{format: FORMAT_V3}: the bytes 08 03
    saved_model.pb           SavedModel with one MetaGraphDef per tag set, no saver_def
    variables/variables.*    a V2 checkpoint keyed by the variable names inside the module
    assets/                  asset files; the graph finds them through `saved_model_assets`
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfhub import metagraph, protocol, protos, safety
from tfhub.errors import NotAModelError, UsageError
from tfhub.handles.resolve import resolve
from tfhub.staging import staged_directory
from tfhub.tf1.surgery import ASSETS_KEY, GK, pack_assets, strip_collections, unpack_assets
from tfhub.tf1.tensor_info import ParsedTensorInfo, build_tensor_info, parse_tensor_infos

__all__ = [
    "ModuleSpec",
    "add_signature",
    "attach_message",
    "create_module_spec",
    "create_module_spec_from_saved_model",
    "load_module_spec",
]

v1 = tf.compat.v1
ATTACHMENTS_KEY = "hub_module_attachments"
SUPPORTED_COLLECTIONS = frozenset(
    {
        GK.GLOBAL_VARIABLES,
        GK.TRAINABLE_VARIABLES,
        GK.MODEL_VARIABLES,
        GK.TABLE_INITIALIZERS,
        GK.UPDATE_OPS,
        GK.REGULARIZATION_LOSSES,
        GK.ASSET_FILEPATHS,
        GK.COND_CONTEXT,
        GK.WHILE_CONTEXT,
        ASSETS_KEY,
        ATTACHMENTS_KEY,
    }
)
# Always dropped when wrapping a plain TF1 SavedModel (they only make sense for serving).
_SAVED_MODEL_ONLY_COLLECTIONS = ("global_step", "legacy_init_op", "saved_model_main_op")
_ATTACHMENT_KEY_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")


# --------------------------------------------------------------------------------------------
# Building a spec: module_fn calls add_signature / attach_message while we record them.


class _Recorder:
    def __init__(self) -> None:
        self.signatures: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.attachments: dict[str, bytes] = {}


_local = threading.local()


@contextlib.contextmanager
def _recording() -> Iterator[_Recorder]:
    stack = _local.__dict__.setdefault("stack", [])
    recorder = _Recorder()
    stack.append(recorder)
    try:
        yield recorder
    finally:
        stack.pop()


def _recorder(what: str) -> _Recorder:
    stack = getattr(_local, "stack", None)
    if not stack:
        raise RuntimeError(
            f"hub.{what}() can only be called inside the module_fn passed to "
            "hub.create_module_spec()."
        )
    recorder: _Recorder = stack[-1]
    return recorder


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return {"default": value}


def add_signature(name: str | None = None, inputs: Any = None, outputs: Any = None) -> None:
    """Declares a signature of the module being defined (call it inside ``module_fn``).

    Args:
        name: the signature name (default ``"default"``).
        inputs: a tensor or a dict of tensors (dense, ``tf.SparseTensor``, ``tf.RaggedTensor``);
            usually ``tf.compat.v1.placeholder`` results. A single tensor is named "default".
        outputs: a tensor or a dict of tensors, the same way.

    Raises:
        UsageError: a value that is not a supported tensor type.
        RuntimeError: called outside ``module_fn``.
    """
    recorder = _recorder("add_signature")
    name = name or "default"
    ins, outs = _as_dict(inputs), _as_dict(outputs)
    for kind, values in (("input", ins), ("output", outs)):
        for key, value in values.items():
            build_tensor_info(value, where=f"Signature {name!r} {kind} {key!r}")
    recorder.signatures[name] = (ins, outs)


def attach_message(key: str, message: Any) -> None:
    """Attaches a protocol message to the module being defined (inside ``module_fn``).

    Raises:
        UsageError: ``key`` is not an identifier (letters, digits, underscores).
    """
    if not isinstance(key, str) or not _ATTACHMENT_KEY_RE.match(key):
        raise UsageError(
            f"hub.attach_message() called with malformed key {key!r}; use letters, digits and "
            "underscores, starting with a letter."
        )
    _recorder("attach_message").attachments[key] = message.SerializeToString()


def create_module_spec(
    module_fn: Callable[..., Any],
    tags_and_args: Iterable[tuple[Iterable[str], Mapping[str, Any]]] | None = None,
    drop_collections: Iterable[str] | None = None,
) -> ModuleSpec:
    """Defines a module by running ``module_fn`` once per graph variant, each in a new graph.

    Args:
        module_fn: builds the module's graph with ``tf.compat.v1`` ops, using placeholders for
            the inputs, and calls :func:`add_signature` at least once.
        tags_and_args: ``(tags, kwargs)`` per graph variant; default ``[(set(), {})]``. Use
            ``{"train"}`` for the variant to fine-tune with (dropout, batch norm updates).
        drop_collections: graph collections to remove before the graph is stored.

    Returns:
        A :class:`ModuleSpec` without checkpoint: a Module made from it uses the variable
        initializers.

    Raises:
        UsageError: no signature, unsupported collections, or a tag set used twice.
    """
    variants: dict[frozenset[str], Any] = {}
    for tags, kwargs in list(tags_and_args or [(set(), {})]):
        key = frozenset(tags or ())
        if key in variants:
            raise UsageError(f"Tags {sorted(key)!r} used repeatedly in tags_and_args.")
        graph = tf.Graph()
        with graph.as_default(), _recording() as recorder:
            with v1.variable_scope("", use_resource=True):
                module_fn(**dict(kwargs or {}))
            for name in drop_collections or ():
                graph.clear_collection(name)
            for name in graph.get_all_collection_keys():
                # An empty collection (e.g. made by a get_collection_ref() that added nothing)
                # holds nothing to export or lose.
                if isinstance(name, str) and not graph.get_collection(name):
                    graph.clear_collection(name)
            _check_collections(graph.get_all_collection_keys(), where="graph", graph=graph)
            if not recorder.signatures:
                raise UsageError(
                    "No signatures present. Please call hub.add_signature(...) at least once in "
                    "the module_fn."
                )
            meta = v1.train.export_meta_graph(graph=graph, strip_default_attrs=True)
            for name, (ins, outs) in recorder.signatures.items():
                signature = v1.saved_model.signature_def_utils.build_signature_def(
                    inputs={k: build_tensor_info(v, where=k) for k, v in ins.items()},
                    outputs={k: build_tensor_info(v, where=k) for k, v in outs.items()},
                )
                meta.signature_def[name].CopyFrom(signature)
            if recorder.attachments:
                items = meta.collection_def[ATTACHMENTS_KEY].bytes_list.value
                for akey, value in recorder.attachments.items():
                    items.append(protos.ModuleAttachment(key=akey, value=value).SerializeToString())
        meta.meta_info_def.ClearField("tags")
        meta.meta_info_def.tags.extend(sorted(key))
        variants[key] = meta
    return ModuleSpec(variants, checkpoint_path=None)


def _check_collections(keys: Iterable[Any], *, where: str, graph: Any = None) -> None:
    # Keys that are not strings, or start with "__", are Python-only bookkeeping of tf.compat.v1
    # (variable stores, scopes) that never reach the serialized graph.
    unsupported = sorted(
        k
        for k in keys
        if isinstance(k, str) and not k.startswith("__") and k not in SUPPORTED_COLLECTIONS
    )
    if unsupported:
        held = ""
        if graph is not None:  # name what is in them: it tells where they came from
            names = {
                k: [getattr(item, "name", repr(item)) for item in graph.get_collection(k)][:5]
                for k in unsupported
            }
            held = f" holding {names}"
        raise UsageError(
            f"Unsupported collections in {where}: {unsupported}{held}\n"
            f"Use hub.create_module_spec(..., drop_collections={unsupported!r}) as appropriate."
        )


# --------------------------------------------------------------------------------------------
# The spec itself


class ModuleSpec:
    """A module's definition: its graph variants and (after export) its variable values.

    Get one from :func:`create_module_spec`, :func:`load_module_spec` or
    :func:`create_module_spec_from_saved_model`; instantiate it with ``hub.Module(spec)``.
    """

    def __init__(
        self,
        variants: Mapping[frozenset[str], Any],
        *,
        checkpoint_path: str | None,
        source: str | None = None,
    ) -> None:
        self._variants = dict(variants)
        self._checkpoint_path = checkpoint_path
        self._source = source
        self._info_cache: dict[tuple[frozenset[str], str], Any] = {}

    def __repr__(self) -> str:
        return f"<hub.ModuleSpec {self._source or '(in memory)'} tags={self.get_tags()}>"

    # -- queries -------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> str | None:
        """The checkpoint holding the variable values (None: use the initializers)."""
        return self._checkpoint_path

    def get_tags(self) -> list[frozenset[str]]:
        """The tag sets of the graph variants, sorted."""
        return sorted(self._variants, key=lambda t: (len(t), sorted(t)))

    def meta_graph(self, tags: Iterable[str] | None) -> Any:
        """The ``MetaGraphDef`` of the graph variant ``tags`` (not a copy: do not modify it)."""
        key = frozenset(tags or ())
        if key not in self._variants:
            raise UsageError(
                f"No such graph variant: tags={sorted(key)!r}; this module has "
                f"{[sorted(t) for t in self.get_tags()]}."
            )
        return self._variants[key]

    def get_signature_names(self, tags: Iterable[str] | None = None) -> list[str]:
        return sorted(self.meta_graph(tags).signature_def)

    def signature_def(self, signature: str | None, tags: Iterable[str] | None) -> Any:
        """The ``SignatureDef`` named ``signature`` (default "default") of a graph variant."""
        meta = self.meta_graph(tags)
        name = signature or "default"
        if name not in meta.signature_def:
            raise UsageError(
                f"Signature {name!r} is missing from meta graph; available: "
                f"{sorted(meta.signature_def)}."
            )
        return meta.signature_def[name]

    def _infos(self, signature: str | None, tags: Iterable[str] | None, kind: str) -> Any:
        key = (frozenset(tags or ()), f"{signature or 'default'}/{kind}")
        if key not in self._info_cache:
            sig = self.signature_def(signature, tags)
            infos = sig.inputs if kind == "inputs" else sig.outputs
            graph = tf.Graph()
            with graph.as_default():
                v1.train.import_meta_graph(strip_collections(self.meta_graph(tags), keep=()))
                values = {
                    k: v1.saved_model.utils.get_tensor_from_tensor_info(i, graph)
                    for k, i in infos.items()
                }
            self._info_cache[key] = parse_tensor_infos(infos, values)
        return dict(self._info_cache[key])

    def get_input_info_dict(
        self, signature: str | None = None, tags: Iterable[str] | None = None
    ) -> dict[str, ParsedTensorInfo]:
        """Input name → :class:`ParsedTensorInfo` of a signature (default "default")."""
        return self._infos(signature, tags, "inputs")  # type: ignore[no-any-return]

    def get_output_info_dict(
        self, signature: str | None = None, tags: Iterable[str] | None = None
    ) -> dict[str, ParsedTensorInfo]:
        """Output name → :class:`ParsedTensorInfo` of a signature (default "default")."""
        return self._infos(signature, tags, "outputs")  # type: ignore[no-any-return]

    def _attachments(self, tags: Iterable[str] | None) -> dict[str, bytes]:
        """Key → serialized message attached to a graph variant (the last write per key)."""
        meta = self.meta_graph(tags)
        stored = meta.collection_def.get(ATTACHMENTS_KEY)  # [] on a map would insert the key
        result: dict[str, bytes] = {}
        for raw in stored.bytes_list.value if stored is not None else ():
            attachment = protos.ModuleAttachment.FromString(raw)
            result[attachment.key] = attachment.value
        return result

    def attachment_keys(self, tags: Iterable[str] | None = None) -> list[str]:
        """The keys of the messages attached to a graph variant, sorted."""
        return sorted(self._attachments(tags))

    def get_attached_message(
        self, key: str, message_type: Any, tags: Iterable[str] | None = None, required: bool = False
    ) -> Any:
        """The message attached under ``key`` (parsed as ``message_type``), or None.

        Raises:
            KeyError: ``required`` and nothing is attached under ``key``.
        """
        found = self._attachments(tags).get(key)
        if found is None:
            if required:
                raise KeyError(
                    f"No attached message for key '{key}' in graph version "
                    f"{sorted(frozenset(tags or ()))} of Hub Module"
                )
            return None
        return message_type.FromString(found)

    # -- export --------------------------------------------------------------------------

    def export(
        self,
        path: str | os.PathLike[str],
        _sentinel: None = None,
        checkpoint_path: str | None = None,
        name_transform_fn: Callable[[str], str] | None = None,
    ) -> None:
        """Writes the module to ``path`` with variable values from ``checkpoint_path``.

        Args:
            path: the directory to create.
            checkpoint_path: a checkpoint holding the module's variables (required).
            name_transform_fn: maps a variable name inside the module to its name in the
                checkpoint (e.g. ``lambda n: "encoder/" + n``).

        Raises:
            UsageError: no ``checkpoint_path``.
        """
        if _sentinel is not None:
            raise TypeError("ModuleSpec.export takes checkpoint_path as a keyword argument.")
        if not checkpoint_path:
            raise UsageError("Missing mandatory `checkpoint_path` parameter.")
        transform = name_transform_fn or (lambda name: name)
        # Every graph variant holds the same variables: any of them can carry the values. Only
        # the variables are imported (no hub.Module needed): they are what the export writes.
        meta = strip_collections(self.meta_graph(self.get_tags()[0]), keep=(GK.GLOBAL_VARIABLES,))
        with tf.Graph().as_default() as graph:
            v1.train.import_meta_graph(meta)
            variables = {var.op.name: var for var in graph.get_collection(GK.GLOBAL_VARIABLES)}
            if not variables:
                self.write(path, None)
                return
            v1.train.init_from_checkpoint(
                checkpoint_path, {transform(name): var for name, var in variables.items()}
            )
            saver = v1.train.Saver(variables, sharded=True, write_version=v1.train.SaverDef.V2)
            with v1.Session() as session:
                session.run(v1.global_variables_initializer())
                self.write(
                    path,
                    lambda prefix: saver.save(
                        session, prefix, write_meta_graph=False, write_state=False
                    ),
                )

    def write(
        self, path: str | os.PathLike[str], save_variables: Callable[[str], Any] | None
    ) -> None:
        """Writes the module directory atomically; ``save_variables(prefix)`` writes the values
        (None: the module has no variables). :meth:`export` and ``Module.export`` use it."""
        target = Path(path)
        if (target / protocol.TF1_MODULE_PB).exists():
            raise UsageError(f"{target} already holds a module; export into a new directory.")
        try:
            with staged_directory(target) as tmp:
                metas = []
                for tags in self.get_tags():
                    meta = v1.MetaGraphDef()
                    meta.CopyFrom(self._variants[tags])
                    pack_assets(meta, tmp / "assets")
                    metas.append(meta)
                metagraph.write_saved_model(tmp, metas)
                if save_variables is not None:
                    (tmp / "variables").mkdir()
                    save_variables(str(tmp / "variables" / "variables"))
                (tmp / protocol.TF1_MODULE_PB).write_bytes(
                    protos.ModuleDef(format=protos.FORMAT_V3).SerializeToString()
                )
        except OSError as exc:
            raise UsageError(f"Cannot export the module to {target}: {exc}") from exc


def load_module_spec(
    path: str | os.PathLike[str], *, check_ops: bool | str | None = True, allow_ops: Any = None
) -> ModuleSpec:
    """Reads the spec of a TF1 Hub module from a handle (path or URL).

    Unless ``check_ops`` is False, every graph variant is first checked against the op policy
    of :func:`tfhub.safety.check_ops` (``error`` for a remote handle, ``warn`` for a local path,
    unless ``TFHUB_CHECK_OPS`` says otherwise); ``check_ops`` may also name the mode
    (``"error"``, ``"warn"``, ``"off"``) and ``allow_ops`` lists op types to accept.

    Raises:
        NotAModelError: no ``tfhub_module.pb``, an unknown format or required features.
        Any error of :func:`tfhub.resolve`.
    """
    handle = os.fspath(path)
    module_dir = Path(resolve(handle))
    module_pb = module_dir / protocol.TF1_MODULE_PB
    if not module_pb.is_file():
        raise NotAModelError(
            f"{handle} is not in the TF1 Hub format: {module_pb} does not exist. Use hub.load() "
            "or hub.KerasLayer() for TF2 SavedModels.",
            handle=handle,
        )
    module_def = metagraph.parse_file(protos.ModuleDef, module_pb, handle)
    if module_def.format != protos.FORMAT_V3:
        raise NotAModelError(
            f"Unsupported module def format: {module_def.format!r} in {handle}.", handle=handle
        )
    if module_def.required_features:
        raise NotAModelError(
            f"Unsupported features: {list(module_def.required_features)!r} required by {handle}; "
            "a newer library is needed to use this module.",
            handle=handle,
        )
    if check_ops is not False:
        safety.check_ops(
            str(module_dir),
            handle=handle,
            allow_ops=allow_ops,
            mode=None if check_ops is True else check_ops,
        )
    variants = {}
    for meta in metagraph.read_meta_graphs(module_dir, handle):
        _check_collections(meta.collection_def, where=f"module {handle}")
        unpack_assets(meta, module_dir)
        variants[frozenset(meta.meta_info_def.tags)] = meta
    checkpoint = metagraph.checkpoint_prefix(module_dir)
    return ModuleSpec(variants, checkpoint_path=checkpoint, source=handle)


def create_module_spec_from_saved_model(
    saved_model_path: str | os.PathLike[str], drop_collections: Iterable[str] | None = None
) -> ModuleSpec:
    """Wraps a TF1 SavedModel (signatures on tagged graphs) as a module spec.

    The ``global_step``, ``legacy_init_op`` and ``saved_model_main_op`` collections are always
    dropped, as are those in ``drop_collections``. Export the result to get a TF1 Hub module.
    The SavedModel is checked against the op policy first (``warn`` for a local path unless
    ``TFHUB_CHECK_OPS`` says otherwise; see :mod:`tfhub.safety`).
    """
    path = Path(os.fspath(saved_model_path))
    safety.check_ops(str(path), handle=str(path))
    drop = set(_SAVED_MODEL_ONLY_COLLECTIONS) | set(drop_collections or ())
    variants = {}
    for meta in metagraph.read_meta_graphs(path, str(path)):
        for name in drop & set(meta.collection_def):
            del meta.collection_def[name]
        meta.ClearField("saver_def")
        _check_collections(meta.collection_def, where=f"SavedModel {path}")
        unpack_assets(meta, path)
        variants[frozenset(meta.meta_info_def.tags)] = meta
    return ModuleSpec(variants, checkpoint_path=metagraph.checkpoint_prefix(path), source=str(path))
