"""The README's end-to-end demo runs and reaches its end."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def test_demo_runs_end_to_end(tmp_path):
    env = {**os.environ, "TFHUB_CACHE_DIR": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert "warm resolve" in proc.stdout
    assert "outputs match the fine-tuned weights" in proc.stdout
    assert "predictions match" in proc.stdout
    assert "published: http://127.0.0.1:" in proc.stdout  # the real MiniLM, on our server
    assert "held-out accuracy" in proc.stdout and "fine-tuned all" in proc.stdout
    assert "Demo finished" in proc.stdout
