"""The Python API, which the CLI calls too: ``finetune``, ``distill``, ``evaluate`` and ``load``."""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskforge import config as config_module
from taskforge.config import DistillConfig, FinetuneConfig
from taskforge.errors import ConfigError, DataError
from taskforge.registry import get_task
from taskforge.task import ColumnOptions, DataFile, Task

if TYPE_CHECKING:
    import datasets

    from taskforge.predictor import Predictor

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class FinetuneResult:
    """Result of :func:`finetune`."""

    output_dir: Path
    """Directory holding the trained model, tokenizer, metrics and run configuration."""
    metrics: dict[str, dict[str, Any]]
    """Final metrics by split: ``train``, ``validation`` and, with a test file, ``test``."""
    config: FinetuneConfig
    """The resolved configuration the run used."""


def finetune(config: FinetuneConfig | None = None, *, config_file: str | os.PathLike[str] | None = None,
             **options: Any) -> FinetuneResult:
    """Fine-tune a model on a task and save it; see :class:`FinetuneConfig` for the options.

    Options are keyword arguments named like the CLI flags (``train_file``, ``learning_rate``, ...),
    or a ready :class:`FinetuneConfig`. Keyword arguments win over ``config_file``, which wins over
    the task's defaults::

        result = taskforge.finetune(task="sentiment", train_file="train.csv", epochs=1)
        print(result.metrics["validation"]["accuracy"], result.output_dir)
    """
    if isinstance(config, DistillConfig):
        raise ConfigError("taskforge.finetune got a DistillConfig; pass it to taskforge.distill")
    if config is not None and not isinstance(config, FinetuneConfig):
        raise ConfigError(f"config must be a FinetuneConfig, got {type(config).__name__}; pass options as keyword "
                          f"arguments or config_file=PATH")
    known = {field.name for field in dataclasses.fields(FinetuneConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if not close and unknown[0] in {field.name for field in dataclasses.fields(DistillConfig)}:
            hint = "; it is an option of taskforge.distill"
        raise ConfigError(f"unknown option {unknown[0]!r} passed to taskforge.finetune{hint}")
    explicit = dict(options)
    if config is not None:
        # Only fields set away from their defaults count as explicit, so a config file still applies to the rest.
        defaults = dataclasses.asdict(FinetuneConfig())
        given = {k: v for k, v in dataclasses.asdict(config).items() if v is not None and v != defaults[k]}
        explicit = {**given, **explicit}
    file_values = config_module.read_config_file(config_file, FinetuneConfig) if config_file is not None else {}
    return _run_finetune(explicit, file_values, source="argument", config_file=config_file)


def distill(config: DistillConfig | None = None, *, config_file: str | os.PathLike[str] | None = None,
            student: str | None = None, student_layers: int | str | list[int] | None = None,
            **options: Any) -> FinetuneResult:
    """Train a student on a task from a teacher's outputs and the labels, and save it.

    The teacher is usually a model written by :func:`finetune`. The student is a model of its own
    (``student``), or cut from the teacher's embeddings, head and some of its layers
    (``student_layers``: a count such as 3, or indices such as ``[0, 2, 4]``). Other options are
    those of :func:`finetune` and :class:`~taskforge.config.DistillConfig`::

        teacher = taskforge.finetune(task="sentiment", train_file="train.csv").output_dir
        result = taskforge.distill(task="sentiment", teacher=teacher, student_layers=3, train_file="train.csv")
    """
    if config is not None and not isinstance(config, DistillConfig):
        raise ConfigError(f"config must be a DistillConfig, got {type(config).__name__}; pass options as keyword "
                          f"arguments or config_file=PATH")
    known = {field.name for field in dataclasses.fields(DistillConfig)} - {"model"}
    unknown = sorted(set(options) - known)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known | {"student", "student_layers"}), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        if unknown[0] == "model":
            hint = "; the model to train is called student here"
        raise ConfigError(f"unknown option {unknown[0]!r} passed to taskforge.distill{hint}")
    explicit = dict(options)
    if student is not None:
        explicit["model"] = str(student)
    if isinstance(student_layers, (list, tuple)):
        explicit["student_layers"] = "[" + ",".join(str(layer) for layer in student_layers) + "]"
    elif student_layers is not None:
        explicit["student_layers"] = str(student_layers)
    if config is not None:
        defaults = dataclasses.asdict(DistillConfig())
        given = {k: v for k, v in dataclasses.asdict(config).items() if v is not None and v != defaults[k]}
        explicit = {**given, **explicit}
    file_values = config_module.read_config_file(config_file, DistillConfig) if config_file is not None else {}
    return _run_finetune(explicit, file_values, source="argument", cls=DistillConfig, config_file=config_file)


def _run_finetune(explicit: Mapping[str, Any], file_values: Mapping[str, Any], source: str,
                  cls: type[FinetuneConfig] = FinetuneConfig,
                  config_file: str | os.PathLike[str] | None = None) -> FinetuneResult:
    from taskforge import training

    task_name = explicit.get("task") or file_values.get("task")
    if not task_name:
        raise ConfigError("no task given; pass --task NAME (run 'taskforge tasks' to list them)")
    task = get_task(str(task_name))
    problems: list[str] = []
    file_source = f"config file {str(config_file)!r}" if config_file is not None else "config file"
    config = config_module.resolve(explicit, file_values, task.defaults, source=source, problems=problems, cls=cls,
                                   file_source=file_source)
    if config.output_dir is None:
        config.output_dir = str(Path("outputs") / task.name)
    task = task.configure(config.task_options)
    config_module.validate(config, task, problems)
    return training.run(task, config)


def evaluate(model_dir: str | os.PathLike[str], data_file: str | os.PathLike[str], *,
             batch_size: int = 64, precision: str = "auto", **columns: Any) -> dict[str, Any]:
    """Evaluate a model saved by taskforge on a labelled data file and return the task's metrics."""
    from taskforge.predictor import load as load_predictor

    predictor = load_predictor(model_dir, precision=precision)
    return predictor.evaluate(data_file, batch_size=batch_size, **columns)


def load(model_dir: str | os.PathLike[str], *, precision: str = "auto", device: str | None = None,
         task_options: dict[str, Any] | None = None) -> Predictor:
    """Load a model saved by taskforge into a :class:`~taskforge.predictor.Predictor`.

    ``task_options`` overrides options the task was trained with, such as a QA task's n-best size.
    """
    from taskforge.predictor import load as load_predictor

    return load_predictor(model_dir, precision=precision, device=device, task_options=task_options)


def data_file(path: str | os.PathLike[str], split: str, header: bool = True, flag: str = "--train-file",
              task: Task | None = None) -> DataFile:
    """Describe a local data file, raising :class:`DataError` when it is missing or of unknown format.

    Extensions listed in the task's ``file_formats`` count as known formats.
    """
    path = str(path)
    extra_formats = dict(task.file_formats) if task is not None else {}
    if not Path(path).is_file():
        raise DataError(f"{flag} {path!r} not found; check the path")
    data_format = config_module.data_format(path, extra_formats)
    if data_format is None:
        formats = ", ".join(sorted({**config_module.DATA_FORMATS, **extra_formats}))
        raise DataError(f"{flag} {path!r} has an unknown format; use one of {formats}")
    return DataFile(path=path, format=data_format, split=split, header=header)


def column_options(config: FinetuneConfig | Mapping[str, Any]) -> ColumnOptions:
    """Build the task's column options from a configuration or a mapping of the same names."""
    values = dataclasses.asdict(config) if isinstance(config, FinetuneConfig) else dict(config)
    label_names = values.get("label_names")
    return ColumnOptions(
        text_column=values.get("text_column"),
        text_pair_column=values.get("text_pair_column"),
        label_column=values.get("label_column"),
        label_names=tuple(label_names) if label_names else None,
        drop_invalid=bool(values.get("drop_invalid", False)),
    )


def load_split(task: Task, file: DataFile, columns: ColumnOptions, max_samples: int | None) -> datasets.Dataset:
    """Load one data file through the task, keeping the first ``max_samples`` examples."""
    started = time.perf_counter()
    examples = task.load_examples(file, columns)
    if max_samples is not None and len(examples) > max_samples:
        examples = examples.select(range(max_samples))
    logger.info("%s: %d examples from %s (%.1f s)", file.split, len(examples), file.display_name,
                time.perf_counter() - started)
    return examples
