"""``hub.convert`` / ``tfhub convert``: a TF1 Hub module → a checked TF2 Reusable SavedModel.

The module is loaded as a :class:`~tfhub.tf1.interop.TF1ModuleObject` and saved with

* ``__call__(inputs, training=False)`` (``training=True`` runs the ``{"train"}`` variant when
  the module has one), ``variables``, ``trainable_variables``, ``regularization_losses``;
* one signature per signature of the module whose inputs and outputs are dense tensors, under
  the same name and with the same input and output names (``default`` becomes
  ``serving_default``); the others are left out with a warning;
* the module's asset files (``assets/``) and its table initializers, run when the model is
  loaded, so it works in any process, wherever it is moved.

Before the directory is moved into place, every saved signature (and ``__call__``) is run in a
new Python process on sample inputs derived from the signature (batch of 3; strings made of the
first words of the module's first asset file, small random numbers otherwise) and compared with
the TF1 module run in a ``tf.compat.v1.Session`` on the same inputs. Any difference raises
:class:`~tfhub.errors.ConversionError` and nothing is written. The destination must not exist
or be an empty directory; it is written through :mod:`tfhub.staging`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfhub.errors import ConversionError, UsageError
from tfhub.staging import check_new_directory, staged_directory
from tfhub.tf1.interop import TF1ModuleObject
from tfhub.tf1.module import Module, signature_placeholder
from tfhub.tf1.spec import ModuleSpec, load_module_spec

__all__ = ["convert"]

logger = logging.getLogger(__name__)
v1 = tf.compat.v1

BATCH = 3
RTOL, ATOL = 1e-5, 1e-6
_CHECK_TIMEOUT = 900  # seconds for the fresh process that loads the result

# Runs in a new interpreter: loads the SavedModel and runs each signature on the samples.
_CHECK_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
model_dir, inputs_file, outputs_file = sys.argv[1:4]
samples = np.load(inputs_file)
loaded = tf.saved_model.load(model_dir)
groups = {str(name): {} for name in samples["__signatures__"]}
for key in samples.files:
    if key != "__signatures__":
        signature, name = key.split("/", 1)
        groups[signature][name] = tf.constant(samples[key])
results = {}
for signature, inputs in groups.items():
    outputs = loaded.signatures[signature](**inputs)
    for k, v in outputs.items():
        value = v.numpy()  # strings come as objects: store them as bytes (no pickles)
        results[f"{signature}/{k}"] = value.astype(bytes) if value.dtype == object else value
default = groups.get("serving_default", {})
if len(default) == 1 and "serving_default/default" in results:
    results["__call__/default"] = loaded(next(iter(default.values()))).numpy()
np.savez(outputs_file, **results)
"""


def convert(src_handle: str | os.PathLike[str], dst_dir: str | os.PathLike[str]) -> str:
    """Converts a TF1 Hub module into a TF2 Reusable SavedModel with identical outputs.

    See the module docstring for what is saved and how it is checked.

    Returns:
        ``dst_dir``.

    Raises:
        UsageError: ``dst_dir`` exists and is not an empty directory (nothing is written), or
            the module's default signature has no dense ``default`` output.
        ConversionError: the saved model does not load in a new process, or gives other
            outputs than the TF1 module; the message names the signature and output.
    """
    target = check_new_directory(dst_dir)
    spec = load_module_spec(src_handle)
    obj = TF1ModuleObject(spec)
    if obj._infer is None:
        raise UsageError(
            f"{os.fspath(src_handle)} has no 'default' signature with a 'default' output to "
            "convert.",
            handle=os.fspath(src_handle),
        )
    root = _Converted(obj)
    if "serving_default" not in root.signature_functions:
        raise UsageError(
            f"{os.fspath(src_handle)}: convert() supports modules whose default signature has "
            "dense inputs and outputs.",
            handle=os.fspath(src_handle),
        )
    samples = _sample_inputs(root.signature_specs, obj.table_state.asset_paths)
    with staged_directory(target) as out:
        tf.saved_model.save(
            root,
            str(out),
            signatures={k: f.get_concrete_function() for k, f in root.signature_functions.items()},
        )
        expected = _run_tf1(spec, samples)
        _compare(expected, _run_saved_model(out, samples), target)
    logger.info("Converted %s to %s (%d signatures checked).", src_handle, target, len(samples))
    return os.fspath(dst_dir)


# -- what is saved -------------------------------------------------------------------------


class _Table(tf.saved_model.experimental.TrackableResource):
    """One of the module's tables, re-created when the SavedModel is loaded.

    The first one also runs the module's table initializers (for every table, on the assets
    saved with the model) when the model is loaded.
    """

    def __init__(self, op: tuple[str, dict[str, Any]]) -> None:
        self._op = op
        self._initialize_fn: Any = None
        super().__init__()

    def _create_resource(self) -> Any:
        op_type, attrs = self._op
        return getattr(tf.raw_ops, op_type)(**attrs)

    def _initialize(self) -> Any:
        if self._initialize_fn is None:
            return tf.constant(0)
        return self._initialize_fn()


class _Converted(tf.train.Checkpoint):
    """The Reusable SavedModel around a :class:`TF1ModuleObject` (see the module docstring)."""

    def __init__(self, obj: TF1ModuleObject) -> None:
        super().__init__()
        # Lists of variables and functions: the attributes a Reusable SavedModel must have.
        self.variables = obj.variables
        self.trainable_variables = obj.trainable_variables
        self.regularization_losses = [
            tf.function(input_signature=[])(loss) for loss in obj.regularization_losses
        ]
        state = obj.table_state
        self.assets = [tf.saved_model.Asset(path) for path in state.asset_paths]
        self.tables = [_Table(op) for op in state.tables]
        tables = self.tables

        def handles() -> list[Any]:
            return [table.resource_handle for table in tables]

        def initialize() -> Any:
            return state.initialize(*handles(), *[asset.asset_path for asset in self.assets])

        if tables:
            tables[0]._initialize_fn = initialize
        calls = obj.with_tables(handles)
        self.signature_specs: dict[str, dict[str, tf.TensorSpec]] = {}
        self.signature_functions: dict[str, Any] = {}
        for name, fn in calls.signatures.items():
            saved_name = "serving_default" if name == "default" else name
            specs = _dense_specs(fn)
            if specs is None:
                logger.warning("Signature %r has sparse or ragged tensors: not converted.", name)
                continue
            self.signature_specs[saved_name] = specs
            self.signature_functions[saved_name] = tf.function(fn, input_signature=[specs])

        def call(inputs: Any, training: bool = False) -> Any:
            return calls(inputs, training=training)

        self.__call__ = tf.function(call)
        default_specs = self.signature_specs.get("serving_default", {})
        if len(default_specs) == 1:
            (default_spec,) = default_specs.values()
            for training in (False, True):
                self.__call__.get_concrete_function(default_spec, training=training)


def _dense_specs(fn: Any) -> dict[str, tf.TensorSpec] | None:
    """Named input specs of a pruned signature, or None if it is not all dense."""
    specs = {}
    for key, placeholder in zip(fn.structured_input_keys, fn._placeholders, strict=True):
        if not isinstance(placeholder, tf.Tensor):
            return None
        specs[key] = tf.TensorSpec(placeholder.shape, placeholder.dtype, name=key)
    if not all(isinstance(t, tf.Tensor) for t in fn._fn.structured_outputs.values()):
        return None
    return specs


# -- the check -----------------------------------------------------------------------------


def _sample_words(asset_paths: list[str]) -> list[str]:
    """Words the module knows (first field of the first lines of its first asset), and one
    it does not."""
    words: list[str] = []
    if asset_paths:
        try:
            with open(asset_paths[0], encoding="utf-8") as lines:
                for line in lines:
                    if line.split():
                        words.append(line.split()[0])
                    if len(words) == 4:
                        break
        except (OSError, UnicodeDecodeError):
            words = []
    words = words or ["hello", "world"]
    return [words[0], f"{words[-1]} {words[0]}", "zzzunknownzzz", *words[1:]]


def _sample(spec: tf.TensorSpec, words: list[str], rng: np.random.Generator) -> np.ndarray:
    if spec.shape.rank is None:
        raise UsageError(f"Input {spec.name!r} has an unknown rank; cannot derive sample inputs.")
    shape = [BATCH if i == 0 else 2 for i in range(spec.shape.rank)]
    shape = [d if d is not None else s for d, s in zip(spec.shape.as_list(), shape, strict=True)]
    size = int(np.prod(shape))
    dtype = spec.dtype
    if dtype == tf.string:
        return np.array([words[i % len(words)] for i in range(size)], dtype=str).reshape(shape)
    if dtype == tf.bool:
        return rng.random(shape) < 0.5
    if dtype.is_floating:
        return rng.normal(scale=0.5, size=shape).astype(dtype.as_numpy_dtype)
    if dtype.is_integer:
        return rng.integers(0, 3, size=shape).astype(dtype.as_numpy_dtype)
    raise UsageError(f"Input {spec.name!r} has dtype {dtype.name}; cannot derive sample inputs.")


def _sample_inputs(
    signatures: dict[str, dict[str, tf.TensorSpec]], asset_paths: list[str]
) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    words = _sample_words(asset_paths)
    return {
        name: {key: _sample(spec, words, rng) for key, spec in sorted(specs.items())}
        for name, specs in signatures.items()
    }


def _run_tf1(spec: ModuleSpec, samples: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """The TF1 module's outputs in a ``tf.compat.v1.Session``, keyed ``signature/output``."""
    with tf.Graph().as_default():
        module = Module(spec)
        fetches: dict[str, Any] = {}
        feed: dict[Any, Any] = {}
        for saved_name, inputs in samples.items():
            name = "default" if saved_name == "serving_default" else saved_name
            infos = module.get_input_info_dict(name)
            placeholders = {k: signature_placeholder(infos[k]) for k in inputs}
            feed.update({placeholders[k]: v for k, v in inputs.items()})
            outputs = module(placeholders, signature=name, as_dict=True)
            fetches.update({f"{saved_name}/{k}": v for k, v in outputs.items()})
            if saved_name == "serving_default" and len(inputs) == 1 and "default" in outputs:
                fetches["__call__/default"] = outputs["default"]
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            return dict(session.run(fetches, feed_dict=feed))


def _run_saved_model(
    model_dir: Path, samples: dict[str, dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Runs the saved signatures in a new Python process (nothing of this one is reused)."""
    flat: dict[str, np.ndarray] = {"__signatures__": np.array(sorted(samples), dtype=str)}
    for sig, inputs in samples.items():
        flat.update({f"{sig}/{key}": value for key, value in inputs.items()})
    with tempfile.TemporaryDirectory(prefix="tfhub-convert-") as scratch:
        inputs_file, outputs_file = Path(scratch, "in.npz"), Path(scratch, "out.npz")
        np.savez(inputs_file, **flat)  # type: ignore[arg-type]
        try:
            run = subprocess.run(
                # -P: the current directory cannot shadow tensorflow or numpy.
                [
                    sys.executable,
                    "-P",
                    "-c",
                    _CHECK_SCRIPT,
                    str(model_dir),
                    inputs_file,
                    outputs_file,
                ],
                capture_output=True,
                text=True,
                timeout=_CHECK_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ConversionError(
                f"Loading the converted model in a new process took over {_CHECK_TIMEOUT} s."
            ) from exc
        if run.returncode != 0:
            errors = [line for line in run.stderr.splitlines() if "Error" in line]
            raise ConversionError(
                "The converted model fails when loaded and run in a new process: "
                f"{(errors or run.stderr.strip().splitlines() or ['(no output)'])[-1]}"
            )
        with np.load(outputs_file) as results:
            return {key: results[key] for key in results.files}


def _compare(expected: dict[str, Any], actual: dict[str, np.ndarray], target: Path) -> None:
    # The signatures first, then __call__ (which runs the default signature again).
    for key, want in sorted(expected.items(), key=lambda item: (item[0][:2] == "__", item[0])):
        signature, output = key.split("/", 1)
        what = f"output {output!r} of signature {signature!r}"
        if signature == "__call__":
            what = "__call__ output"
        if key not in actual:
            raise ConversionError(f"The converted model lacks {what}; nothing written to {target}.")
        got, want = np.asarray(actual[key]), np.asarray(want)
        if got.shape != want.shape:
            raise ConversionError(
                f"The converted model's {what} has shape {got.shape}, the TF1 module's "
                f"{want.shape}; nothing written to {target}."
            )
        if want.dtype.kind in "fc":
            same = np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True)
            detail = f"max abs difference {np.max(np.abs(got - want), initial=0.0):.3g}"
        else:
            same = np.array_equal(got, want)
            detail = f"{int(np.sum(got != want))} of {want.size} values differ"
        if not same:
            raise ConversionError(
                f"The converted model's {what} differs from the TF1 module's on the same "
                f"sample inputs ({detail}); nothing written to {target}. A module with "
                "random or otherwise non-deterministic outputs cannot be converted."
            )
