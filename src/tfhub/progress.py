"""Progress bars for long byte transfers (downloads, reading large files): tqdm on stderr,
shown when ``TFHUB_DOWNLOAD_PROGRESS`` says so (see :func:`tfhub.config.download_progress`)."""

from __future__ import annotations

from typing import Any

from tfhub import config

__all__ = ["byte_bar", "count_bar"]


def byte_bar(desc: str, total: int | None, *, enabled: bool | None = None) -> Any:
    """A tqdm bar counting bytes (``bar.update(n)``, ``bar.close()``), or None when progress
    is off (``enabled`` overrides the setting)."""
    if not (config.download_progress() if enabled is None else enabled):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)


def count_bar(desc: str, total: int, *, enabled: bool | None = None) -> Any:
    """A tqdm bar counting items (models mirrored, ...), or None when progress is off."""
    if not (config.download_progress() if enabled is None else enabled):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="model", desc=desc, leave=False)
