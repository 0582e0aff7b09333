"""The feature columns of ``tensorflow_hub`` 0.15, for ``tf.compat.v1`` graph code.

They apply a model that implements a common signature (text embedding, image feature vector)
to the features of an input pipeline, hence their place beside the signature checks and the
image helpers (they need both ``tf1`` and ``savedmodel`` below them).

``hub.text_embedding_column``, ``hub.sparse_text_embedding_column`` and
``hub.image_embedding_column`` apply a TF1 Hub module (a :class:`~tfhub.tf1.spec.ModuleSpec`
or a handle); ``hub.text_embedding_column_v2`` applies a TF2 SavedModel. Each returns a dense
column for ``tf.compat.v1.feature_column.input_layer`` (and ``make_parse_example_spec``)::

    column = hub.text_embedding_column("comment", "/tmp/text-module")
    with tf.Graph().as_default():
        features = {"comment": tf.constant(["so easy", "wow"])}
        net = tf.compat.v1.feature_column.input_layer(features, [column])

TensorFlow does not export the feature-column base classes (``DenseColumn`` and the TF1
``_DenseColumn`` that ``input_layer`` checks for): ``tf.feature_column`` only has functions.
The one public way to reach them is through a column those functions return: the classes are
taken from the type of ``tf.feature_column.numeric_column(...)`` (no ``tensorflow.python``
import). The columns implement both the TF1 interface (``_get_dense_tensor``, used by
``input_layer``) and the TF2 one (``get_dense_tensor`` with a state manager).
"""

from __future__ import annotations

import collections
import logging
import os
from typing import Any

import tensorflow as tf

from tfhub.errors import UsageError
from tfhub.signatures.image import get_expected_image_size
from tfhub.tf1.spec import ModuleSpec, load_module_spec

__all__ = [
    "image_embedding_column",
    "sparse_text_embedding_column",
    "text_embedding_column",
    "text_embedding_column_v2",
]

_RESOURCE = "hub_module"


def _base_classes() -> tuple[type, type]:
    """``DenseColumn`` (TF2) and ``_DenseColumn`` (TF1), from a public column's type."""
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # numeric_column's deprecation notice is not for us
    try:
        sample = tf.feature_column.numeric_column("tfhub_probe")
    finally:
        tf_logger.setLevel(level)
    found = {cls.__name__: cls for cls in type(sample).__mro__}
    return found["DenseColumn"], found["_DenseColumn"]


_DenseColumnV2, _DenseColumnV1 = _base_classes()


def _as_spec(module_spec: Any) -> ModuleSpec:
    if isinstance(module_spec, ModuleSpec):
        return module_spec
    if isinstance(module_spec, (str, os.PathLike)):
        return load_module_spec(module_spec)
    raise UsageError(
        f"module_spec must be a hub.ModuleSpec or the handle of a TF1 Hub module, "
        f"got {type(module_spec).__name__}: {module_spec!r}."
    )


class _HubColumn(_DenseColumnV1, _DenseColumnV2):  # type: ignore[misc,valid-type]
    """What the four columns share: a ``key``, names, parsing and both column interfaces."""

    key: Any

    @property
    def _is_v2_column(self) -> bool:
        return True

    @property
    def parents(self) -> list[Any]:
        return [self.key]

    @property
    def name(self) -> str:
        key_name = self.key if isinstance(self.key, str) else self.key.name
        return f"{key_name}_hub_module_embedding"

    def _identity(self) -> tuple[Any, ...]:
        # A column made from a handle equals any other made from that handle (from_config).
        fields = dict(zip(self._fields, self, strict=True))
        if isinstance(fields.get("module_spec_path"), str):
            fields.pop("module_spec")
        elif "module_spec" in fields:
            fields["module_spec"] = id(fields["module_spec"])
        return (type(self), *fields.items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _HubColumn) and self._identity() == other._identity()

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self._identity())

    def _transform_feature(self, inputs: Any) -> Any:
        return inputs.get(self.key)

    def transform_feature(self, transformation_cache: Any, state_manager: Any) -> Any:
        return transformation_cache.get(self.key, state_manager)

    @property
    def _parse_example_spec(self) -> dict[str, Any]:
        return self.parse_example_spec  # type: ignore[no-any-return]

    @property
    def _variable_shape(self) -> Any:
        return self.variable_shape

    # TF1 interface (input_layer): the module is instantiated where the column is applied.
    def _get_dense_tensor(
        self, inputs: Any, weight_collections: Any = None, trainable: Any = None
    ) -> Any:
        del weight_collections
        return self._embed(inputs.get(self), self._instantiate(trainable is not False))

    # TF2 interface: the module is the column's state.
    def create_state(self, state_manager: Any) -> None:
        state_manager.add_resource(self, _RESOURCE, self._instantiate(True))

    def get_dense_tensor(self, transformation_cache: Any, state_manager: Any) -> Any:
        return self._embed(
            transformation_cache.get(self, state_manager),
            state_manager.get_resource(self, _RESOURCE),
        )

    def _instantiate(self, trainable: bool) -> Any:
        raise NotImplementedError

    def _embed(self, inputs: Any, module: Any) -> Any:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The arguments that made the column (the module must be given by its handle)."""
        config = dict(zip(self._fields, self, strict=True))
        if "module_spec_path" in config:
            config["module_spec"] = config.pop("module_spec_path")
        handle = config.get("module_spec", config.get("module_path"))
        if not isinstance(handle, str):
            raise NotImplementedError(
                f"{type(self).__name__}.get_config needs the module as a string handle, got "
                f"{type(handle).__name__}: create the column with the module's handle."
            )
        return config

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: Any = None, columns_by_name: Any = None
    ) -> Any:
        return _FACTORIES[cls](**config)


class _ModuleColumn(_HubColumn):
    """A column that applies the default signature of a TF1 Hub module (``module_spec``)."""

    module_spec: ModuleSpec

    @property
    def variable_shape(self) -> Any:
        return self.module_spec.get_output_info_dict()["default"].get_shape()[1:]

    def _instantiate(self, trainable: bool) -> Any:
        from tfhub.tf1.module import Module

        # linear_model applies a column under a name scope that differs from its variable
        # scope (linear_model_1/linear_model/... vs linear_model/...): the module goes
        # under the variable scope's own name scope, as it does in input_layer.
        scope = tf.compat.v1.get_variable_scope().name
        with tf.compat.v1.name_scope(f"{scope}/" if scope else ""):
            # Image columns have no `trainable`: their modules are never fine-tuned.
            return Module(
                self.module_spec, trainable=getattr(self, "trainable", False) and trainable
            )


def _text_embedding_issues(spec: ModuleSpec) -> list[str]:
    issues = []
    inputs = spec.get_input_info_dict()
    if len(inputs) != 1:
        issues.append("Module default signature must require only one input")
    else:
        (info,) = inputs.values()
        if not (info.dtype == tf.string and info.get_shape().as_list() == [None]):
            issues.append(
                "Module default signature must have only one input "
                "tf.Tensor(shape=(?,), dtype=string)"
            )
    outputs = spec.get_output_info_dict()
    if "default" not in outputs:
        issues.append("Module default signature must have a 'default' output.")
    else:
        shape = outputs["default"].get_shape()
        if not (
            outputs["default"].dtype == tf.float32
            and shape.rank == 2
            and shape[0] is None
            and shape[1]
        ):
            issues.append(
                "Module default signature must have a 'default' output of "
                "tf.Tensor(shape=(?,K), dtype=float32)."
            )
    return issues


def _check_text_embedding(spec: ModuleSpec) -> None:
    issues = _text_embedding_issues(spec)
    if issues:
        raise UsageError(f"Module is not a text-embedding: {issues!r}")


class _TextEmbeddingColumn(
    _ModuleColumn,
    collections.namedtuple(
        "_TextEmbeddingColumn", ("key", "module_spec_path", "module_spec", "trainable")
    ),
):
    """Returned by :func:`text_embedding_column`."""

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return {self.key: tf.io.FixedLenFeature([1], tf.string)}

    def _embed(self, inputs: Any, module: Any) -> Any:
        return module(tf.reshape(inputs, [-1]))


def text_embedding_column(key: Any, module_spec: Any, trainable: bool = False) -> Any:
    """A dense column of a text feature embedded by a TF1 Hub text module.

    The module's default signature must take one string input of shape ``[None]`` and have a
    ``default`` float32 output ``[None, K]`` with ``K`` known. The feature (parsed as
    ``FixedLenFeature([1], tf.string)``) is reshaped to ``[batch]`` and passed through the
    module; the column's value is its ``default`` output.

    Args:
        key: the feature's name (or a feature column).
        module_spec: a :class:`ModuleSpec` or the handle of a module.
        trainable: fine-tune the module's weights (only when ``input_layer`` is trainable).

    Raises:
        UsageError: ``module_spec`` is not a text-embedding module (a ``ValueError``).
    """
    spec = _as_spec(module_spec)
    _check_text_embedding(spec)
    return _TextEmbeddingColumn(key, module_spec, spec, trainable)


class _SparseTextEmbeddingColumn(
    _ModuleColumn,
    collections.namedtuple(
        "_SparseTextEmbeddingColumn",
        ("key", "combiner", "module_spec", "default_value", "trainable"),
    ),
):
    """Returned by :func:`sparse_text_embedding_column`."""

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return {self.key: tf.io.VarLenFeature(tf.string)}

    def _embed(self, inputs: Any, module: Any) -> Any:
        tokens = inputs
        if self.default_value is not None:
            tokens, _ = tf.sparse.fill_empty_rows(tokens, self.default_value)
        vectors = module(tokens.values)
        # Token i of the batch is row i of `vectors`: the combiner pools each example's rows.
        rows = tf.SparseTensor(
            tokens.indices,
            tf.range(tf.shape(tokens.indices, out_type=tf.int64)[0]),
            tokens.dense_shape,
        )
        return tf.nn.embedding_lookup_sparse(vectors, rows, None, combiner=self.combiner)


def sparse_text_embedding_column(
    key: Any, module_spec: Any, combiner: str, default_value: Any, trainable: bool = False
) -> Any:
    """A dense column of sparse text (tokens) embedded token by token, then combined.

    The feature is a ``SparseTensor`` of strings (``VarLenFeature(tf.string)``); every token
    goes through the text module, and each example's token vectors are combined as a bag of
    words with ``combiner`` (``"mean"``, ``"sqrtn"`` or ``"sum"``). Examples without tokens
    get ``default_value`` as their one token (``None``: every example must have one).

    Raises:
        UsageError: ``module_spec`` is not a text-embedding module, or an unknown combiner.
    """
    spec = _as_spec(module_spec)
    _check_text_embedding(spec)
    if combiner not in ("mean", "sqrtn", "sum"):
        raise UsageError(f"combiner must be 'mean', 'sqrtn' or 'sum': {combiner!r}")
    return _SparseTextEmbeddingColumn(key, combiner, spec, default_value, trainable)


def _check_image_embedding(spec: ModuleSpec, check_size: bool) -> None:
    issues = []
    inputs = spec.get_input_info_dict()
    if list(inputs) != ["images"] or inputs["images"].dtype != tf.float32:
        issues.append(
            "Module 'default' signature must require a single input, which must have type "
            "float32 and name 'images'."
        )
    elif check_size:
        try:
            get_expected_image_size(spec)
        except ValueError as exc:
            issues.append(
                f"Module does not support hub.get_expected_image_size(); original error was:\n{exc}"
            )
    outputs = spec.get_output_info_dict()
    if "default" not in outputs:
        issues.append("Module 'default' signature must have a 'default' output.")
    else:
        shape = outputs["default"].get_shape()
        if not (outputs["default"].dtype == tf.float32 and shape.rank == 2 and shape[1]):
            issues.append(
                "Module 'default' signature must have a 'default' output of "
                "tf.Tensor(shape=(_,K), dtype=float32)."
            )
    if issues:
        raise UsageError(f"Module is not usable as image embedding: {issues!r}")


class _ImageEmbeddingColumn(
    _ModuleColumn,
    collections.namedtuple(
        "_ImageEmbeddingColumn", ("key", "module_spec_path", "module_spec", "image_size")
    ),
):
    """Returned by :func:`image_embedding_column`."""

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        height, width = self.image_size or get_expected_image_size(self.module_spec)
        return {self.key: tf.io.FixedLenFeature([height, width, 3], tf.float32)}

    def _embed(self, inputs: Any, module: Any) -> Any:
        return module({"images": inputs})


def image_embedding_column(key: Any, module_spec: Any, image_size: Any = None) -> Any:
    """A dense column of images (float32 RGB in [0, 1]) embedded by a TF1 Hub image module.

    The module's default signature must take one float32 input named ``images`` and have a
    ``default`` float32 output ``[batch, K]``. The feature is parsed as
    ``FixedLenFeature([height, width, 3], tf.float32)``, the size from ``image_size`` or
    :func:`hub.get_expected_image_size`. The module is not fine-tuned.

    Raises:
        UsageError: ``module_spec`` is not usable as an image embedding.
    """
    if isinstance(image_size, list):
        image_size = tuple(image_size)  # columns are hashed: no lists
    spec = _as_spec(module_spec)
    _check_image_embedding(spec, check_size=image_size is None)
    return _ImageEmbeddingColumn(key, module_spec, spec, image_size)


class _SavedModelText:
    """A TF2 SavedModel applied to text: its single output, or ``output_key`` of its dict."""

    def __init__(self, module_path: str, output_key: str | None, trainable: bool) -> None:
        from tfhub.savedmodel.load import load

        self.module_path = module_path
        self.output_key = output_key
        self.obj = load(module_path)
        if trainable and not tf.executing_eagerly():
            trainable_vars = tf.compat.v1.get_collection_ref(
                tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES
            )
            for variable in getattr(self.obj, "trainable_variables", []):
                if variable not in trainable_vars:
                    trainable_vars.append(variable)

    def __call__(self, text: Any) -> Any:
        out = self.obj(text)
        if self.output_key is not None:
            if not isinstance(out, dict) or self.output_key not in out:
                keys = sorted(out) if isinstance(out, dict) else "a single tensor"
                raise UsageError(
                    f"{self.module_path}: output_key {self.output_key!r} is not among the "
                    f"model's outputs ({keys})."
                )
            out = out[self.output_key]
        if not isinstance(out, tf.Tensor):
            raise UsageError(
                f"The SavedModel doesn't return a single result on __call__, instead it "
                f"returns {out!r}. Did you specify the right `output_key`? ({self.module_path})"
            )
        return out


class _TextEmbeddingColumnV2(
    _HubColumn,
    collections.namedtuple(
        "_TextEmbeddingColumnV2", ("key", "module_path", "output_key", "trainable")
    ),
):
    """Returned by :func:`text_embedding_column_v2`."""

    @property
    def parse_example_spec(self) -> dict[str, Any]:
        return {self.key: tf.io.FixedLenFeature([1], tf.string)}

    @property
    def variable_shape(self) -> Any:
        shape = self.__dict__.get("_shape")
        if shape is None:  # asked before the column was applied: trace it in a scratch graph
            with tf.Graph().as_default():
                self._embed(tf.compat.v1.placeholder(tf.string, [None]), self._instantiate(False))
            shape = self.__dict__["_shape"]
        return shape

    def _instantiate(self, trainable: bool) -> Any:
        return _SavedModelText(self.module_path, self.output_key, self.trainable and trainable)

    def create_state(self, state_manager: Any) -> None:
        # DenseFeatures exists only in tf_keras: the column's state is the tf_keras
        # hub.KerasLayer, whose weights become the DenseFeatures layer's (trainable when the
        # column is).
        from tfhub.savedmodel.legacy_keras_layer import KerasLayer

        layer = KerasLayer(self.module_path, output_key=self.output_key, trainable=self.trainable)
        state_manager.add_resource(self, _RESOURCE, layer)

    def _embed(self, inputs: Any, module: Any) -> Any:
        out = module(tf.reshape(inputs, [-1]))
        if out.shape.rank != 2 or out.shape[1] is None:
            raise UsageError(
                f"{self.module_path}: a text embedding returns float32 [batch, K] with K known, "
                f"this one returns shape {out.shape}."
            )
        self.__dict__["_shape"] = out.shape[1:]
        return out


def text_embedding_column_v2(
    key: Any, module_path: str, output_key: str | None = None, trainable: bool = False
) -> Any:
    """A dense column of a text feature embedded by a TF2 SavedModel (string [batch] → [batch, K]).

    As in ``tensorflow_hub`` 0.15, the model's ``__call__`` must return one tensor, or a dict
    from which ``output_key`` picks it. It works in ``tf_keras.layers.DenseFeatures``
    (``TF_USE_LEGACY_KERAS=1``; Keras 3 has no ``DenseFeatures``) through a ``hub.KerasLayer``,
    as in 0.15, and also, unlike 0.15, in ``tf.compat.v1.feature_column.input_layer``: the
    model is loaded into the graph there, and with ``trainable=True`` its trainable variables
    join ``TRAINABLE_VARIABLES``.
    """
    return _TextEmbeddingColumnV2(key, os.fspath(module_path), output_key, trainable)


_FACTORIES: dict[type, Any] = {
    _TextEmbeddingColumn: text_embedding_column,
    _ImageEmbeddingColumn: image_embedding_column,
    _TextEmbeddingColumnV2: text_embedding_column_v2,
}
