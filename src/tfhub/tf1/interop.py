"""TF1 Hub modules in TF2, without the old limits.

:class:`TF1ModuleObject` instantiates a module once, in a ``tf.compat.v1.wrap_function``
graph whose variables are lifted into eager variables, and prunes that graph into eager
functions: one per signature, plus the default signature's ``default`` output for the
inference variant and, when the module has one, the ``{"train"}`` variant — both reading the
same variables. The object follows the Reusable SavedModel interface (``obj(x, training=...)``,
``variables``, ``trainable_variables``, ``regularization_losses``), so ``hub.KerasLayer`` can
fine-tune it, and :func:`convert` saves it as a TF2 SavedModel.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from tfhub.errors import UsageError
from tfhub.tf1.module import Module, match_inputs, signature_placeholder
from tfhub.tf1.spec import ModuleSpec, load_module_spec
from tfhub.tf1.surgery import GK

__all__ = ["TF1ModuleObject", "convert"]

v1 = tf.compat.v1
TRAIN_TAGS = frozenset({"train"})


class _SignatureFunction:
    """A pruned signature: call with keyword tensors (or one positional value); returns a dict."""

    def __init__(self, name: str, keys: list[str], fn: Any, placeholders: list[Any]) -> None:
        self.name = name
        self._keys = keys
        self._fn = fn
        self._placeholders = placeholders
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
                flat.append(tf.convert_to_tensor(value, dtype=placeholder.dtype))
        return self._fn(*flat)


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
            signatures = {}
            for name in module.get_signature_names():
                infos = module.get_input_info_dict(name)
                placeholders = {k: signature_placeholder(i) for k, i in infos.items()}
                signatures[name] = (
                    placeholders,
                    module(placeholders, signature=name, as_dict=True),
                )
            train = None
            if train_tags is not None and "default" in spec.get_signature_names(train_tags):
                train_infos = spec.get_input_info_dict("default", train_tags)
                train_ph = {k: signature_placeholder(i) for k, i in train_infos.items()}
                n_updates = len(v1.get_collection(GK.UPDATE_OPS))
                outputs = module.apply_variant(train_ph, "default", train_tags)
                # Running the train variant runs its UPDATE_OPS (e.g. batch-norm moving
                # averages), as a TF1 training loop would.
                updates = v1.get_collection(GK.UPDATE_OPS)[n_updates:]
                if updates and "default" in outputs:
                    with tf.control_dependencies(updates):
                        outputs = {**outputs, "default": tf.identity(outputs["default"])}
                train = (train_ph, outputs)
            built.update(
                signatures=signatures,
                train=train,
                init=tf.group(v1.global_variables_initializer(), v1.tables_initializer()),
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

    def _default_call(self, applied: Any, what: str) -> Any:
        if applied is None:
            return None
        placeholders, outputs = applied
        if "default" not in outputs:
            return None
        return self._prune(f"default ({what})", placeholders, outputs["default"])

    def _prune(self, name: str, placeholders: dict[str, Any], fetches: Any) -> _SignatureFunction:
        """An eager function from ``placeholders`` (fed in key order) to ``fetches``."""
        keys = sorted(placeholders)
        feeds = [t for k in keys for t in tf.nest.flatten(placeholders[k], expand_composites=True)]
        return _SignatureFunction(
            name, keys, self._wrapped.prune(feeds, fetches), [placeholders[k] for k in keys]
        )

    # -- the Reusable SavedModel interface -------------------------------------------------

    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs: Any, training: bool = False) -> Any:
        """Applies the default signature; ``training=True`` uses the ``{"train"}`` variant."""
        fn = self._train if training and self._train is not None else self._infer
        if fn is None:
            raise UsageError(
                "This TF1 Hub module has no 'default' signature with a 'default' output; call "
                "obj.signatures[name](...) instead."
            )
        return fn(inputs)

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


def convert(src_handle: str | os.PathLike[str], dst_dir: str | os.PathLike[str]) -> str:
    """Converts a TF1 Hub module into a TF2 Reusable SavedModel with identical outputs.

    The result has ``__call__(inputs, training=False)`` (``training=True`` runs the module's
    ``{"train"}`` variant when it has one), ``variables``, ``trainable_variables``,
    ``regularization_losses``, and a ``serving_default`` signature for the default output.

    Returns:
        ``dst_dir``.
    """
    obj = TF1ModuleObject(src_handle)
    infer = obj._infer
    if infer is None:
        raise UsageError(
            f"{os.fspath(src_handle)} has no 'default' signature with a 'default' output to "
            "convert."
        )
    placeholders = infer._placeholders
    if len(placeholders) != 1 or not isinstance(placeholders[0], tf.Tensor):
        raise UsageError("convert() supports modules whose default signature has one dense input.")
    spec = tf.TensorSpec(placeholders[0].shape, placeholders[0].dtype)
    root = _Converted(obj, spec)
    tf.saved_model.save(
        root,
        os.fspath(dst_dir),
        signatures={"serving_default": root.serve.get_concrete_function()},
    )
    return os.fspath(dst_dir)


class _Converted(tf.train.Checkpoint):
    """What :func:`convert` saves: a Reusable SavedModel around a :class:`TF1ModuleObject`."""

    def __init__(self, obj: TF1ModuleObject, spec: tf.TensorSpec) -> None:
        super().__init__()
        # Lists of variables and functions: the attributes a Reusable SavedModel must have.
        self.variables = obj.variables
        self.trainable_variables = obj.trainable_variables
        self.regularization_losses = [
            tf.function(input_signature=[])(loss) for loss in obj.regularization_losses
        ]

        def call(inputs: Any, training: bool = False) -> Any:
            return obj(inputs, training=training)

        self.__call__ = tf.function(call)
        for training in (False, True):
            self.__call__.get_concrete_function(spec, training=training)
        self.serve = tf.function(
            lambda x: {"default": call(x, training=False)}, input_signature=[spec]
        )
