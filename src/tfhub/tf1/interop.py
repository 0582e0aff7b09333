"""TF1 Hub modules in TF2, without the old limits.

:class:`TF1ModuleObject` instantiates a module once, in a ``tf.compat.v1.wrap_function``
graph whose variables are lifted into eager variables, and prunes that graph into eager
functions: one per signature, plus the default signature's ``default`` output for the
inference variant and, when the module has one, the ``{"train"}`` variant — both reading the
same variables. The object follows the Reusable SavedModel interface (``obj(x, training=...)``,
``variables``, ``trainable_variables``, ``regularization_losses``), so ``hub.KerasLayer`` can
fine-tune it, and :func:`tfhub.tf1.convert.convert` saves it as a TF2 SavedModel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import tensorflow as tf

from tfhub.errors import UsageError
from tfhub.tf1.module import Module, match_inputs, signature_placeholder
from tfhub.tf1.spec import ModuleSpec, load_module_spec
from tfhub.tf1.surgery import GK

__all__ = ["TF1ModuleObject"]

v1 = tf.compat.v1
TRAIN_TAGS = frozenset({"train"})


class _SignatureFunction:
    """A pruned signature: call with keyword tensors (or one positional value); returns a dict."""

    def __init__(
        self,
        name: str,
        keys: list[str],
        fn: Any,
        placeholders: list[Any],
        tables: Callable[[], list[Any]] | None = None,
    ) -> None:
        self.name = name
        self._keys = keys
        self._fn = fn
        self._placeholders = placeholders
        self._tables = tables  # the table handles fed before the inputs, if any
        self.structured_input_keys = list(keys)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) > 1 or (args and kwargs):
            raise TypeError(f"Signature {self.name!r} takes keyword arguments {self._keys}.")
        values = match_inputs(args[0] if args else kwargs, dict.fromkeys(self._keys))
        flat = []
        for key, placeholder in zip(self._keys, self._placeholders, strict=True):
            value = values[key]
            if isinstance(placeholder, tf.SparseTensor | tf.RaggedTensor):
                flat.extend(tf.nest.flatten(value, expand_composites=True))
            else:
                tensor = tf.convert_to_tensor(value, dtype=placeholder.dtype)
                if not placeholder.shape.is_compatible_with(tensor.shape):
                    raise UsageError(
                        f"Input {key!r} of signature {self.name!r} must have shape "
                        f"{placeholder.shape} (None: any size), got {tensor.shape}."
                    )
                flat.append(tensor)
        return self._fn(*(self._tables() if self._tables else []), *flat)


def _keep_shapes(outputs: dict[str, Any]) -> dict[str, Any]:
    """The outputs, with the static shapes they have now also in the pruned functions.

    Pruning copies the ops and infers their shapes again, which loses the shapes the
    signature declares (:func:`tfhub.tf1.module.Module.__call__` sets them); an EnsureShape
    carries them (and checks them at run time).
    """
    return {
        key: tf.ensure_shape(value, value.shape)
        if isinstance(value, tf.Tensor) and value.shape.rank is not None
        else value
        for key, value in outputs.items()
    }


def _apply_default(infer: Any, train: Any, inputs: Any, training: bool) -> Any:
    fn = train if training and train is not None else infer
    if fn is None:
        raise UsageError(
            "This TF1 Hub module has no 'default' signature with a 'default' output; call "
            "obj.signatures[name](...) instead."
        )
    return fn(inputs)


class TableFedCalls:
    """What :meth:`TF1ModuleObject.with_tables` returns: ``signatures`` and ``__call__``."""

    def __init__(
        self,
        signatures: dict[str, _SignatureFunction],
        infer: _SignatureFunction | None,
        train: _SignatureFunction | None,
    ) -> None:
        self.signatures = signatures
        self.has_default = infer is not None
        self._infer = infer
        self._train = train

    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs: Any, training: bool = False) -> Any:
        return _apply_default(self._infer, self._train, inputs, training)


def _resource_op(op: Any) -> tuple[str, dict[str, Any]]:
    return op.type, {k: op.get_attr(k) for k in op.node_def.attr if not k.startswith("_")}


class _TableState:
    """What re-creates the module's tables elsewhere (see :mod:`tfhub.tf1.convert`).

    Attributes:
        tables: ``(op type, attributes)`` of the op creating each table: run again, it
            finds the table by its shared name, as the module's functions do.
        asset_paths: the module's asset files, in the order ``initialize`` takes them.
        initialize: runs the module's table initializers, given the table handles and then
            the asset paths.
    """

    def __init__(
        self, tables: list[tuple[str, dict[str, Any]]], asset_paths: list[str], initialize: Any
    ) -> None:
        self.tables = tables
        self.asset_paths = asset_paths
        self.initialize = initialize


class TF1ModuleObject(tf.Module):
    """A TF1 Hub module as a TF2 object (see the module docstring).

    Args:
        spec: a :class:`ModuleSpec` or a handle of a TF1 Hub module.
        tags: the inference variant (default: the empty tag set).
    """

    _is_hub_module_v1 = True

    def __init__(
        self, spec: ModuleSpec | str | os.PathLike[str], tags: Iterable[str] | None = None
    ):
        super().__init__(name="tf1_hub_module")
        if not isinstance(spec, ModuleSpec):
            spec = load_module_spec(spec)
        self._spec = spec
        tags = frozenset(tags or ())
        train_tags = TRAIN_TAGS if TRAIN_TAGS in spec.get_tags() and tags != TRAIN_TAGS else None
        built: dict[str, Any] = {}

        def build() -> None:
            module = Module(spec, trainable=True, tags=tags)
            # The module's asset constants (absolute paths), before any call adds copies.
            # (A tensor can be in the collection twice: a TextFileInitializer adds it too.)
            assets = list({t.name: t for t in v1.get_collection(GK.ASSET_FILEPATHS)}.values())
            signatures = {}
            for name in module.get_signature_names():
                infos = module.get_input_info_dict(name)
                placeholders = {k: signature_placeholder(i) for k, i in infos.items()}
                signatures[name] = (
                    placeholders,
                    _keep_shapes(module(placeholders, signature=name, as_dict=True)),
                )
            train = None
            if train_tags is not None and "default" in spec.get_signature_names(train_tags):
                train_infos = spec.get_input_info_dict("default", train_tags)
                train_ph = {k: signature_placeholder(i) for k, i in train_infos.items()}
                n_updates = len(v1.get_collection(GK.UPDATE_OPS))
                outputs = _keep_shapes(module.apply_variant(train_ph, "default", train_tags))
                # Running the train variant runs its UPDATE_OPS (e.g. batch-norm moving
                # averages), as a TF1 training loop would.
                updates = v1.get_collection(GK.UPDATE_OPS)[n_updates:]
                if updates and "default" in outputs:
                    with tf.control_dependencies(updates):
                        outputs = {**outputs, "default": tf.identity(outputs["default"])}
                train = (train_ph, outputs)
            tables_init = v1.tables_initializer()
            built.update(
                signatures=signatures,
                train=train,
                init=tf.group(v1.global_variables_initializer(), tables_init),
                tables=(module.table_handles, assets, tables_init),
                losses=v1.get_collection(GK.REGULARIZATION_LOSSES),
                trainable=v1.get_collection(GK.TRAINABLE_VARIABLES),
            )

        wrapped = v1.wrap_function(build, [])
        wrapped.prune([], built["init"])()
        self._wrapped = wrapped
        self._all_variables = list(wrapped.variables)
        graph_trainable = {v.name for v in built["trainable"]}
        self._trainable = [v for v in self._all_variables if v.name in graph_trainable]
        self.signatures = {}
        for name, (placeholders, outputs) in built["signatures"].items():
            self.signatures[name] = self._prune(name, placeholders, outputs)
        self._infer = self._default_call(built["signatures"].get("default"), "inference")
        self._train = None
        if built["train"] is not None:
            self._train = self._default_call(built["train"], "train")
        self._losses = [wrapped.prune([], loss) for loss in built["losses"]]
        self._built = SimpleNamespace(**built)  # the graph's tensors, for with_tables()
        handles, assets, tables_init = built["tables"]
        self.table_state = _TableState(
            [_resource_op(handle.op) for handle in handles],
            [tf.make_ndarray(t.op.get_attr("value")).item().decode() for t in assets],
            wrapped.prune(list(handles) + assets, tables_init),
        )

    def _default_call(
        self, applied: Any, what: str, tables: Callable[[], list[Any]] | None = None
    ) -> Any:
        if applied is None:
            return None
        placeholders, outputs = applied
        if "default" not in outputs:
            return None
        return self._prune(f"default ({what})", placeholders, outputs["default"], tables)

    def _prune(
        self,
        name: str,
        placeholders: dict[str, Any],
        fetches: Any,
        tables: Callable[[], list[Any]] | None = None,
    ) -> _SignatureFunction:
        """An eager function from ``placeholders`` (fed in key order) to ``fetches``; with
        ``tables``, it takes the module's table handles first (from ``tables()``)."""
        keys = sorted(placeholders)
        feeds = [t for k in keys for t in tf.nest.flatten(placeholders[k], expand_composites=True)]
        if tables is not None:
            feeds = list(self._built.tables[0]) + feeds
        fn = self._wrapped.prune(feeds, fetches)
        return _SignatureFunction(name, keys, fn, [placeholders[k] for k in keys], tables)

    def with_tables(self, tables: Callable[[], list[Any]]) -> TableFedCalls:
        """The signatures and ``__call__`` again, using the tables whose handles ``tables()``
        returns (in the order of ``table_state.tables``) instead of the module's own.

        A TF2 SavedModel cannot share tables between functions by name: this is how
        :func:`tfhub.tf1.convert.convert` makes its functions use tables it saves.
        """
        built = self._built
        signatures = {
            name: self._prune(name, placeholders, outputs, tables)
            for name, (placeholders, outputs) in built.signatures.items()
        }
        infer = self._default_call(built.signatures.get("default"), "inference", tables)
        train = self._default_call(built.train, "train", tables) if built.train else None
        return TableFedCalls(signatures, infer, train)

    # -- the Reusable SavedModel interface -------------------------------------------------

    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs: Any, training: bool = False) -> Any:
        """Applies the default signature; ``training=True`` uses the ``{"train"}`` variant."""
        return _apply_default(self._infer, self._train, inputs, training)

    @property
    def variables(self) -> list[tf.Variable]:
        return list(self._all_variables)

    @property
    def trainable_variables(self) -> list[tf.Variable]:
        return list(self._trainable)

    @property
    def regularization_losses(self) -> list[Any]:
        return list(self._losses)

    @property
    def has_train_variant(self) -> bool:
        return self._train is not None
