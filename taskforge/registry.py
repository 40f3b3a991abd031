"""Discovery of task plugins through the ``taskforge.tasks`` entry-point group.

Listing tasks imports each plugin's module but neither torch, transformers nor datasets, because the
contract requires plugins to import those inside their methods. A plugin that fails to import or breaks
the contract is reported with its error and never hides the other tasks.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
import logging
import os
from importlib import metadata

from taskforge.errors import PluginError, TaskNotFoundError
from taskforge.task import REQUIRED_MEMBERS, TASK_API_VERSION, Task

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "taskforge.tasks"
DISABLE_ENV = "TASKFORGE_DISABLE_PLUGINS"


@dataclasses.dataclass
class TaskInfo:
    """One registered task: where it comes from, and the loaded task or the error that stopped it."""

    name: str
    entry_point: str
    distribution: str | None
    version: str | None
    task: Task | None = None
    error: str | None = None


def list_tasks() -> list[TaskInfo]:
    """Load every registered task, keeping the error of each plugin that fails."""
    disabled = {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}
    infos: dict[str, TaskInfo] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in disabled:
            logger.info("task plugin %r skipped because %s lists it", entry_point.name, DISABLE_ENV)
            continue
        distribution = entry_point.dist.name if entry_point.dist else None
        version = entry_point.dist.version if entry_point.dist else None
        info = TaskInfo(entry_point.name, entry_point.value, distribution, version)

        previous = infos.get(entry_point.name)
        if previous is not None and previous.distribution != distribution:
            previous.task = None
            previous.error = (
                f"task name {entry_point.name!r} is registered by two distributions, "
                f"{previous.distribution} ({previous.entry_point}) and {distribution} ({entry_point.value}); "
                f"uninstall one of them"
            )
            continue
        if previous is not None:
            # One distribution seen twice, as happens with an editable install on sys.path twice.
            continue

        try:
            info.task = load_entry_point(entry_point.name, entry_point.value)
        except PluginError as error:
            info.error = str(error)
        infos[entry_point.name] = info
    return sorted(infos.values(), key=lambda info: info.name)


def get_task(name: str) -> Task:
    """Return the task called ``name``, or the task object at ``module:attribute``."""
    if ":" in name:
        return load_entry_point(name, name)

    infos = list_tasks()
    for info in infos:
        if info.name == name:
            if info.task is None:
                raise PluginError(f"task {name!r} failed to load: {info.error}")
            return info.task

    installed = [info.name for info in infos]
    close = difflib.get_close_matches(name, installed, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(installed) if installed else "none"
    raise TaskNotFoundError(
        f"unknown task {name!r}; installed tasks: {listing}.{hint} "
        f"Run 'taskforge tasks' to see them, or install a plugin that registers in {ENTRY_POINT_GROUP!r}."
    )


def load_entry_point(name: str, value: str) -> Task:
    """Import ``module:attribute`` and check that it satisfies the task contract."""
    module_name, _, attribute = value.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else []:
            obj = getattr(obj, part)
    except Exception as error:  # a plugin may raise anything while importing
        raise PluginError(
            f"task plugin {name!r} (entry point {value!r}) failed to import: {type(error).__name__}: {error}"
        ) from error

    if inspect.isclass(obj):
        if not issubclass(obj, Task):
            raise PluginError(
                f"task plugin {name!r} (entry point {value!r}) is the class {obj.__name__}, "
                f"which does not derive from taskforge.Task"
            )
        missing = sorted(getattr(obj, "__abstractmethods__", ()))
        if missing:
            signature = REQUIRED_MEMBERS.get(missing[0], missing[0])
            raise PluginError(f"task plugin {name!r} (entry point {value!r}) does not implement {missing[0]!r}; expected {signature}")
        try:
            obj = obj()
        except Exception as error:
            raise PluginError(
                f"task plugin {name!r} (entry point {value!r}) failed to instantiate: {type(error).__name__}: {error}"
            ) from error

    check_task(obj, name, value)
    return obj


def check_task(task: object, name: str, value: str) -> None:
    """Raise :class:`PluginError` when ``task`` does not satisfy the task contract."""
    where = f"task plugin {name!r} (entry point {value!r})"
    api_version = getattr(task, "api_version", None)
    if api_version != TASK_API_VERSION:
        raise PluginError(
            f"{where} implements task API version {api_version}, but this taskforge implements version "
            f"{TASK_API_VERSION}; install a plugin release built for version {TASK_API_VERSION}"
        )
    for member, signature in REQUIRED_MEMBERS.items():
        if not hasattr(task, member):
            raise PluginError(f"{where} is missing the member {member!r}; expected {signature}")
        if "(" in signature and getattr(getattr(task, member), "__isabstractmethod__", False):
            raise PluginError(f"{where} does not implement {member!r}; expected {signature}")
