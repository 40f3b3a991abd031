"""``taskforge new-task``: the generated plugin package, its conformance, and the command's errors."""

from __future__ import annotations

import importlib
import logging
import tomllib
from pathlib import Path

import pytest

from taskforge.errors import ConfigError, OutputExistsError
from taskforge.scaffold import create_plugin
from taskforge.testing import check_task

GENERATED_FILES = {
    "pyproject.toml",
    "README.md",
    "taskforge_topic_labels/__init__.py",
    "taskforge_topic_labels/task.py",
    "taskforge_topic_labels/py.typed",
    "taskforge_topic_labels/data/train.jsonl",
    "taskforge_topic_labels/data/validation.jsonl",
    "tests/test_task.py",
}


def test_new_task_writes_package(tmp_path):
    root = create_plugin("topic-labels", tmp_path)
    written = {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}
    project = tomllib.loads((root / "pyproject.toml").read_text())

    assert root == tmp_path / "taskforge-topic-labels"
    assert written == GENERATED_FILES
    assert project["project"]["name"] == "taskforge-topic-labels"
    assert project["project"]["entry-points"]["taskforge.tasks"] == {
        "topic-labels": "taskforge_topic_labels:TopicLabelsTask"
    }
    assert project["tool"]["setuptools"]["package-data"]["taskforge_topic_labels"] == ["py.typed", "data/*.jsonl"]
    for path in root.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    assert not list(tmp_path.glob(".*partial*"))


def test_generated_task_passes_kit(tmp_path, tiny_bert_dir, monkeypatch):
    root = create_plugin("scaffold-kit", tmp_path / "plugins")
    monkeypatch.syspath_prepend(str(root))
    module = importlib.import_module("taskforge_scaffold_kit")

    report = check_task(module.ScaffoldKitTask, model=tiny_bert_dir, tmp_dir=tmp_path / "kit")

    assert report.task == "scaffold-kit"
    assert report.reference == "taskforge_scaffold_kit.task:ScaffoldKitTask"
    assert report.labels.names == ("sports", "weather")
    assert report.train_steps == 2
    assert set(report.predictions[0]) == {"label", "score"}


@pytest.mark.parametrize("name", ["Demo", "2fast", "my_task", "a--b", "demo-", ""])
def test_invalid_name_rejected(name, tmp_path):
    with pytest.raises(ConfigError) as caught:
        create_plugin(name, tmp_path)

    assert f"task name {name!r} is invalid" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_rejected(tmp_path):
    create_plugin("demo", tmp_path)

    with pytest.raises(OutputExistsError) as caught:
        create_plugin("demo", tmp_path)

    assert "taskforge-demo' already exists" in str(caught.value)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    original = Path.write_text

    def write_text(self, text, *args, **kwargs):
        if self.name == "task.py":
            raise OSError("disk full")
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)

    with pytest.raises(OSError):
        create_plugin("demo", tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_installed_name_warned(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="taskforge.scaffold"):
        create_plugin("sentiment", tmp_path)

    assert "a task named 'sentiment' is already installed by taskforge-sentiment" in caplog.text


def test_cli_new_task(run_cli, tmp_path):
    created = run_cli("new-task", "demo", "--dir", tmp_path)
    again = run_cli("new-task", "demo", "--dir", tmp_path)
    invalid = run_cli("new-task", "Demo", "--dir", tmp_path)

    assert created.exit_code == 0, created.stderr
    assert f"Created {tmp_path / 'taskforge-demo'}" in created.stdout
    assert "pytest" in created.stdout
    assert (tmp_path / "taskforge-demo" / "taskforge_demo" / "task.py").is_file()
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    assert invalid.exit_code == 1
    assert "Error: task name 'Demo' is invalid" in invalid.stderr
