"""taskforge: fine-tune small distilled transformers on NLP tasks, with tasks as plugins.

The top-level names import lazily, so ``import taskforge`` stays cheap and pulls in neither torch
nor transformers until a function that needs them is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskforge.errors import (
    ConfigError,
    DataError,
    ModelNotFoundError,
    OutputExistsError,
    PluginError,
    TaskforgeError,
    TaskNotFoundError,
)
from taskforge.task import TASK_API_VERSION, ColumnOptions, DataFile, LabelSet, Task, TaskDefaults

__version__ = "0.1.0"

__all__ = [
    "TASK_API_VERSION",
    "ColumnOptions",
    "ConfigError",
    "DataError",
    "DataFile",
    "DistillConfig",
    "FinetuneConfig",
    "FinetuneResult",
    "LabelSet",
    "ModelNotFoundError",
    "OutputExistsError",
    "PluginError",
    "Predictor",
    "Task",
    "TaskDefaults",
    "TaskNotFoundError",
    "TaskforgeError",
    "distill",
    "evaluate",
    "finetune",
    "get_task",
    "list_tasks",
    "load",
]

_LAZY = {
    "finetune": "taskforge.api",
    "distill": "taskforge.api",
    "evaluate": "taskforge.api",
    "load": "taskforge.api",
    "FinetuneResult": "taskforge.api",
    "FinetuneConfig": "taskforge.config",
    "DistillConfig": "taskforge.config",
    "Predictor": "taskforge.predictor",
    "get_task": "taskforge.registry",
    "list_tasks": "taskforge.registry",
}

if TYPE_CHECKING:
    from taskforge.api import FinetuneResult, distill, evaluate, finetune, load
    from taskforge.config import DistillConfig, FinetuneConfig
    from taskforge.predictor import Predictor
    from taskforge.registry import get_task, list_tasks


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'taskforge' has no attribute {name!r}")
