"""Metrics shipped with taskforge as ``evaluate`` modules, loaded from local files.

``evaluate.load("accuracy")`` fetches the module from the Hugging Face hub, which fails offline;
:func:`load_metric` loads the copy in this folder instead. Plugins ship their own modules the same
way and load them with :func:`load_metric_from`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from taskforge.errors import PluginError

if TYPE_CHECKING:
    import evaluate

METRICS_DIR = Path(__file__).resolve().parent


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load the taskforge metric ``name`` (a folder beside this file) without network access."""
    return load_metric_from(METRICS_DIR / name)


@functools.lru_cache(maxsize=None)
def load_metric_from(path: str | os.PathLike[str]) -> evaluate.EvaluationModule:
    """Load an ``evaluate`` module from a local folder holding ``<folder name>.py``."""
    import evaluate

    path = Path(path)
    script = path / f"{path.name}.py"
    if not script.is_file():
        raise PluginError(f"metric module {str(script)!r} not found; a metric folder must contain <folder name>.py")
    return evaluate.load(str(path), keep_in_memory=True)
