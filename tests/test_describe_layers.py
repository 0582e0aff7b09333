"""Layers of the description code: describe → signature checks → inspect, no cycle; errors."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from tests.helpers import REPO, imported_modules
from tfhub import errors
from tfhub.signatures import common

SRC = REPO / "src" / "tfhub"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("describe", ("tfhub.signatures", "tfhub.tools")),
        ("signatures", ("tfhub.tools",)),
    ],
)
def test_lower_layers_never_import_higher_ones(package, forbidden):
    paths = sorted((SRC / package).glob("*.py"))
    assert len(paths) >= 3
    for path in paths:
        bad = sorted(m for m in imported_modules(path) if m.startswith(forbidden))
        assert bad == [], f"{path.name} imports {bad}"
        assert len(path.read_text().splitlines()) < 500, path.name
    # Inside signatures: the result types and the check engine sit below the public API.
    for name in ("results.py", "checks.py"):
        assert not any(
            m.startswith("tfhub.signatures.common")
            for m in imported_modules(SRC / "signatures" / name)
        )


def test_describing_imports_no_tensorflow_and_no_checks():
    code = (
        "import sys, tfhub.describe, tfhub.signatures.common\n"
        "print(sorted(m for m in sys.modules if m == 'tensorflow' or m.startswith('tfhub.tools')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


def test_public_names_stay_importable():
    for name in common.__all__:
        assert getattr(common, name) is not None, name
    assert common.CommonSignatureError is errors.CommonSignatureError
    from tfhub.tools.inspect import describe_module_spec, describe_saved_model_object, inspect_model

    assert callable(describe_module_spec) and callable(describe_saved_model_object)
    assert callable(inspect_model)


def test_common_signature_error_survives_pickling():
    error = errors.CommonSignatureError(
        "'/m' does not implement the text-embedding common signature",
        signature="text-embedding",
        problems=["__call__: output 'output_0''s dim is 8, expected 16"],
        handle="/m",
    )
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is errors.CommonSignatureError
    assert isinstance(again, errors.HubError) and isinstance(again, ValueError)
    assert str(again) == str(error)
    assert again.signature == "text-embedding" and again.handle == "/m"
    assert again.problems == ["__call__: output 'output_0''s dim is 8, expected 16"]
