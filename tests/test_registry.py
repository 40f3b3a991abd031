"""Task discovery: the task list, broken plugins, unknown names and the task contract checks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import error_lines
from taskforge.errors import PluginError, TaskNotFoundError
from taskforge.registry import check_task, get_task, load_entry_point
from taskforge.task import TASK_API_VERSION

HEAVY_MODULES = ("torch", "transformers", "datasets")


def run_taskforge(*args: str, extra_path: Path | None = None, env: dict[str, str] | None = None,
                  python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``python -m taskforge ARGS`` in a fresh interpreter, optionally with ``extra_path`` first on sys.path."""
    environment = {**os.environ, **(env or {})}
    if extra_path is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), environment.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "taskforge", *args],
        capture_output=True, text=True, env=environment, timeout=120,
    )


@pytest.fixture
def broken_plugin_dir(tmp_path) -> Path:
    """A folder holding an installed-looking distribution whose task module raises on import."""
    dist_info = tmp_path / "broken_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[taskforge.tasks]\nbroken = broken_mod:task\n")
    (tmp_path / "broken_mod.py").write_text('raise RuntimeError("broken_mod cannot start")\n')
    return tmp_path


# -- listing --------------------------------------------------------------------------------------


def test_tasks_lists_installed_plugins(run_cli):
    result = run_cli("tasks")
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}

    assert result.exit_code == 0
    assert "classification" in lines
    assert "sentiment" in lines
    assert "taskforge-classification 0.1.0" in lines["classification"]
    assert "taskforge-sentiment 0.1.0" in lines["sentiment"]


def test_tasks_imports_no_heavy_modules():
    result = run_taskforge("tasks", python_flags=("-X", "importtime"))
    # -X importtime writes one line per imported module: "import time: self | cumulative | name".
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    }
    top_level = {name.split(".")[0] for name in imported}

    assert result.returncode == 0
    assert "taskforge.cli" in imported
    for module in HEAVY_MODULES:
        assert module not in top_level, f"'taskforge tasks' imported {module}"


def test_broken_plugin_keeps_list(broken_plugin_dir):
    result = run_taskforge("tasks", extra_path=broken_plugin_dir)
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}

    assert result.returncode == 0
    assert "classification" in lines
    assert "sentiment" in lines
    assert "broken" in lines
    assert "broken-plugin 0.1" in lines["broken"]
    assert "failed to import" in lines["broken"]
    assert "RuntimeError: broken_mod cannot start" in lines["broken"]
    assert "Traceback" not in result.stderr


def test_disabled_plugin_is_hidden(broken_plugin_dir):
    result = run_taskforge("tasks", extra_path=broken_plugin_dir, env={"TASKFORGE_DISABLE_PLUGINS": "broken"})
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]

    assert result.returncode == 0
    assert "broken" not in names
    assert "classification" in names


def test_broken_task_fails_cleanly(broken_plugin_dir, tmp_path):
    result = run_taskforge(
        "finetune", "--task", "broken", "--train-file", str(tmp_path / "absent.csv"), extra_path=broken_plugin_dir
    )
    errors = error_lines(result.stderr)

    assert result.returncode == 1
    assert len(errors) == 1, result.stderr
    assert "task 'broken' failed to load" in errors[0]
    assert "RuntimeError: broken_mod cannot start" in errors[0]
    assert "Traceback" not in result.stderr


def test_duplicate_task_name_reported(tmp_path):
    dist_info = tmp_path / "copycat_plugin-0.2.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: copycat-plugin\nVersion: 0.2\n")
    (dist_info / "entry_points.txt").write_text("[taskforge.tasks]\nsentiment = taskforge_sentiment:SentimentTask\n")

    result = run_taskforge("tasks", extra_path=tmp_path)
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}

    assert result.returncode == 0
    assert "registered by two distributions" in lines["sentiment"]
    assert "copycat-plugin" in lines["sentiment"]
    assert "taskforge-sentiment" in lines["sentiment"]
    assert "failed to load" not in lines["classification"]


# -- lookup ---------------------------------------------------------------------------------------


def test_unknown_task_suggests_closest():
    with pytest.raises(TaskNotFoundError) as caught:
        get_task("sentimnt")
    message = str(caught.value)

    assert "'sentimnt'" in message
    # Other installed plugins (qa, ...) appear in the list too.
    installed = message.split("installed tasks: ")[1].split(".")[0].split(", ")
    assert {"classification", "sentiment"} <= set(installed)
    assert "Did you mean 'sentiment'?" in message


def test_task_from_module_attribute(tmp_path, monkeypatch):
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent("""
        from taskforge_classification import ClassificationTask

        class TopicTask(ClassificationTask):
            name = "topic"
            description = "Topic classification"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))

    task = get_task("my_tasks:TopicTask")

    assert type(task).__name__ == "TopicTask"
    assert task.name == "topic"


def test_module_attribute_import_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(PluginError) as caught:
        get_task("no_such_module_xyz:Task")

    assert "no_such_module_xyz:Task" in str(caught.value)
    assert "ModuleNotFoundError" in str(caught.value)


# -- contract -------------------------------------------------------------------------------------


def test_missing_preprocess_rejected(tmp_path, monkeypatch):
    (tmp_path / "incomplete_task.py").write_text(textwrap.dedent("""
        from taskforge import Task

        class IncompleteTask(Task):
            name = "incomplete"
            description = "Misses preprocess"
            metric_for_best_model = "accuracy"

            def load_examples(self, file, columns):
                raise NotImplementedError

            def compute_metrics(self, predictions, examples, labels):
                return {}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(PluginError) as caught:
        load_entry_point("incomplete", "incomplete_task:IncompleteTask")
    message = str(caught.value)

    assert "'incomplete'" in message
    assert "incomplete_task:IncompleteTask" in message
    assert "'preprocess'" in message
    assert "preprocess(self, examples, tokenizer, max_length, labels, training)" in message


def test_missing_name_rejected():
    class Nameless:
        api_version = TASK_API_VERSION
        description = "no name"

    with pytest.raises(PluginError) as caught:
        check_task(Nameless(), "nameless", "pkg:Nameless")

    assert "missing the member 'name'" in str(caught.value)
    assert "name: str" in str(caught.value)


def test_api_version_mismatch_names_versions(tmp_path, monkeypatch):
    (tmp_path / "future_task.py").write_text(textwrap.dedent("""
        from taskforge_classification import ClassificationTask

        class FutureTask(ClassificationTask):
            name = "future"
            api_version = 99
    """))
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(PluginError) as caught:
        load_entry_point("future", "future_task:FutureTask")
    message = str(caught.value)

    assert "version 99" in message
    assert f"version {TASK_API_VERSION}" in message
    assert "future_task:FutureTask" in message


def test_non_task_class_rejected(tmp_path, monkeypatch):
    (tmp_path / "plain_class.py").write_text("class NotATask:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(PluginError) as caught:
        load_entry_point("plain", "plain_class:NotATask")

    assert "does not derive from taskforge.Task" in str(caught.value)
