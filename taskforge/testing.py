"""Conformance kit for task plugins: one call drives a task through the whole task contract.

Use it from a plugin's tests::

    from taskforge.testing import check_task

    def test_task_conformance(tmp_path):
        check_task("ner", tmp_dir=tmp_path)

:func:`check_task` runs these stages, in order, on the task's sample data or on ``data``:

1. the class attributes: ``api_version``, ``name``, ``description``, ``model_class``,
   ``metric_for_best_model``, ``greater_is_better``, ``output_names``, ``defaults``,
   ``file_formats`` and ``options_class``;
2. each method called directly on a few examples, its result checked: ``load_examples``,
   ``label_set``, ``check_labels``, ``preprocess``, ``build_model``, ``collator``, ``loss_units``,
   a forward pass for ``output_names``, then ``postprocess``, ``compute_metrics`` and
   ``format_prediction``;
3. a fine-tuning run of one epoch on ``2 * batch_size`` training examples (two optimizer steps when
   the data has a validation split) through :func:`taskforge.finetune`, in fp32;
4. a new :class:`~taskforge.predictor.Predictor` loaded from the saved directory. Its labels must
   equal the training labels, and its score on the validation examples must equal the score that
   fine-tuning reported. It then predicts with ``examples_from_inputs`` and ``predict_file``.

The model is a random 2-layer BERT of width 32 with the MiniLM tokenizer of ``taskforge[minilm-l6]``,
unless ``model`` names a base-model directory. The first problem raises :class:`ConformanceError`,
whose ``member`` is the contract member at fault.

Metric values whose name contains ``accuracy``, ``precision``, ``recall`` or ``f1`` as a word
(``f1``, ``f1_macro``, ``per_class.PER.f1``) must be floats in ``score_range``, [0, 1] by default.
A task that reports percentages passes ``score_range=(0, 100)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import logging
import math
import os
import re
import sys
import tempfile
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskforge.errors import PluginError, TaskforgeError
from taskforge.task import REQUIRED_MEMBERS, TASK_API_VERSION, ColumnOptions, DataFile, LabelSet, Task, TaskDefaults

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

#: Methods of the contract, in the order the engine calls them. A ConformanceError names one of them.
CONTRACT_METHODS = (
    "configure", "validate_config", "sample_data", "load_examples", "examples_from_inputs", "label_set",
    "check_labels", "build_model", "preprocess", "collator", "loss_units", "postprocess", "compute_metrics",
    "format_prediction",
)
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
SCORE_WORDS = {"accuracy", "precision", "recall", "f1"}


class ConformanceError(TaskforgeError, AssertionError):
    """A task that breaks the task contract; ``member`` names the attribute or method at fault."""

    def __init__(self, member: str, message: str) -> None:
        super().__init__(f"{member}: {message}")
        self.member = member


@dataclasses.dataclass
class ConformanceReport:
    """Measurements of a passing :func:`check_task`."""

    task: str
    """Name of the task."""
    reference: str
    """The ``--task`` value the fine-tuning run and the reload used."""
    labels: LabelSet | None
    train_steps: int
    validation_metrics: dict[str, Any]
    """Metrics of the fine-tuning run on the validation examples."""
    reloaded_metrics: dict[str, Any]
    """Metrics of the reloaded model on the same examples."""
    predictions: list[dict[str, Any]]
    """Formatted predictions of the reloaded model, or an empty list when the task takes no direct inputs."""
    output_dir: Path | None
    """Directory of the saved model, or None when ``tmp_dir`` was not given, because it is then deleted."""


def check_task(
    task_or_name: str | Task | type[Task],
    model: str | os.PathLike[str] | None = None,
    tmp_dir: str | os.PathLike[str] | None = None,
    *,
    data: Mapping[str, str | os.PathLike[str] | DataFile] | None = None,
    inputs: Sequence[Any] | None = None,
    batch_size: int = 4,
    max_length: int = 64,
    score_range: tuple[float, float] = (0.0, 1.0),
) -> ConformanceReport:
    """Check that a task satisfies the task contract end to end; raise :class:`ConformanceError` if not.

    ``task_or_name`` is an installed task name, a ``module:attribute`` reference, a :class:`Task`
    subclass or an instance. ``data`` maps splits (``train`` required, ``validation`` and ``test``
    optional) to files, in place of the task's sample data. ``inputs`` are passed to
    ``Predictor.predict``; by default the first two values of the examples' ``text`` column are.
    """
    if tmp_dir is None:
        with tempfile.TemporaryDirectory(prefix="taskforge-conformance-") as scratch:
            report = _check(task_or_name, model, Path(scratch), data, inputs, batch_size, max_length, score_range)
            report.output_dir = None
            return report
    path = Path(tmp_dir)
    path.mkdir(parents=True, exist_ok=True)
    return _check(task_or_name, model, path, data, inputs, batch_size, max_length, score_range)


def build_tiny_model(directory: str | os.PathLike[str], max_positions: int = 128) -> Path:
    """Save a random 2-layer BERT base model of width 32, with the MiniLM tokenizer, to ``directory``.

    The model has no task head, so ``Task.build_model`` adds the head as it does for a real model.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from taskforge.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max_positions,
    )
    torch.manual_seed(0)
    path = Path(directory)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# -- stages ---------------------------------------------------------------------------------------


def _check(task_or_name: Any, model: Any, tmp_dir: Path, data: Any, inputs: Any, batch_size: int,
           max_length: int, score_range: tuple[float, float]) -> ConformanceReport:
    task, reference = _resolve_task(task_or_name)
    _check_attributes(task)
    model_dir = Path(model) if model is not None else build_tiny_model(tmp_dir / "tiny-bert", max(128, max_length))
    files = _data_files(task, data)

    direct = _check_methods(task, files, model_dir, batch_size, max_length, score_range)
    run = _check_finetune(task, reference, files, model_dir, tmp_dir / "run", batch_size, max_length, score_range)
    reloaded, predictions = _check_reload(task, files, direct, run, batch_size, inputs, score_range)
    return ConformanceReport(
        task=task.name, reference=reference, labels=direct.labels, train_steps=run.metrics["train"]["steps"],
        validation_metrics=run.metrics["validation"], reloaded_metrics=reloaded, predictions=predictions,
        output_dir=run.output_dir,
    )


@dataclasses.dataclass
class _DirectResult:
    examples: dict[str, datasets.Dataset]
    labels: LabelSet | None
    model_class: type


def _resolve_task(task_or_name: Any) -> tuple[Task, str]:
    """Load the task and return it with the ``--task`` reference that loads it again."""
    from taskforge.registry import get_task

    if isinstance(task_or_name, str):
        try:
            return get_task(task_or_name), task_or_name
        except PluginError as error:
            raise ConformanceError(_member_named_in(str(error)), str(error)) from error
        except TaskforgeError as error:
            raise ConformanceError("name", str(error)) from error

    if inspect.isclass(task_or_name):
        if not issubclass(task_or_name, Task):
            raise ConformanceError("class", f"{task_or_name.__name__} does not derive from taskforge.Task")
        missing = sorted(getattr(task_or_name, "__abstractmethods__", ()))
        if missing:
            raise ConformanceError(missing[0], f"{task_or_name.__name__} does not implement {missing[0]!r}; "
                                               f"expected {REQUIRED_MEMBERS.get(missing[0], missing[0])}")
        with _calling("__init__"):
            task = task_or_name()
    elif isinstance(task_or_name, Task):
        task = task_or_name
    else:
        raise ConformanceError("class", f"{task_or_name!r} is neither a task name, a Task subclass nor a Task instance")
    return task, _reference_of(task, task_or_name)


def _reference_of(task: Task, task_or_class: Any) -> str:
    """Return ``module:qualname`` of the given class or instance, or register it in a new module.

    A class defined inside a function cannot be imported by name. The kit then places the task in a
    new module in ``sys.modules``, which only this process can import.
    """
    cls = task_or_class if inspect.isclass(task_or_class) else type(task_or_class)
    module = sys.modules.get(cls.__module__)
    found: Any = module
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
    if found is cls and inspect.isclass(task_or_class):
        return f"{cls.__module__}:{cls.__qualname__}"

    module_name = f"_taskforge_conformance_{id(task):x}"
    holder = types.ModuleType(module_name)
    holder.task = task  # type: ignore[attr-defined]
    sys.modules[module_name] = holder
    return f"{module_name}:task"


def _check_attributes(task: Task) -> None:
    import transformers

    from taskforge.registry import check_task as check_required

    if getattr(task, "api_version", None) != TASK_API_VERSION:
        raise ConformanceError("api_version", f"is {getattr(task, 'api_version', None)!r}, but this taskforge "
                                              f"implements task API version {TASK_API_VERSION}")
    try:
        check_required(task, getattr(task, "name", "?"), type(task).__qualname__)
    except PluginError as error:
        raise ConformanceError(_member_named_in(str(error)), str(error)) from error

    _expect(isinstance(task.name, str) and NAME_PATTERN.match(task.name) is not None, "name",
            f"is {task.name!r}; use lower-case letters, digits and hyphens, starting with a letter")
    _expect(isinstance(task.description, str) and task.description.strip() != "" and "\n" not in task.description,
            "description", f"is {task.description!r}; give one non-empty line")
    _expect(isinstance(task.model_class, str) and hasattr(transformers, task.model_class), "model_class",
            f"is {task.model_class!r}, which is not a class of transformers; use a name such as "
            f"'AutoModelForTokenClassification'")
    _expect(isinstance(task.metric_for_best_model, str) and task.metric_for_best_model != "", "metric_for_best_model",
            f"is {task.metric_for_best_model!r}; name a key of compute_metrics' result")
    _expect(isinstance(task.greater_is_better, bool), "greater_is_better", f"is {task.greater_is_better!r}, not a bool")
    _expect(isinstance(task.output_names, (tuple, list)) and len(task.output_names) > 0
            and all(isinstance(name, str) for name in task.output_names), "output_names",
            f"is {task.output_names!r}; give a tuple of model output names such as ('logits',)")
    _expect(isinstance(task.defaults, TaskDefaults), "defaults", f"is {task.defaults!r}, not a TaskDefaults")
    formats = getattr(task, "file_formats", {}) or {}
    _expect(isinstance(formats, Mapping) and all(isinstance(k, str) and k.startswith(".") and isinstance(v, str)
                                                 for k, v in formats.items()),
            "file_formats", f"is {formats!r}; map extensions with a leading dot to format names, such as "
                            f"{{'.txt': 'conll'}}")

    if task.options_class is not None:
        _expect(dataclasses.is_dataclass(task.options_class), "options_class",
                f"{task.options_class!r} is not a dataclass")
        no_default = [field.name for field in dataclasses.fields(task.options_class)
                      if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
        _expect(not no_default, "options_class", f"fields {', '.join(no_default)} have no default; every option "
                                                 f"needs one, because users may leave the flag out")
        _expect(isinstance(task.options, task.options_class), "options",
                f"is {task.options!r}, not an instance of {task.options_class.__name__}; call Task.__init__ "
                f"from the task's __init__")


def _data_files(task: Task, data: Mapping[str, Any] | None) -> dict[str, DataFile]:
    from taskforge.api import data_file

    if data is not None:
        files = {}
        for split, value in data.items():
            if isinstance(value, DataFile):
                files[split] = value
            else:
                files[split] = data_file(value, split, flag=f"data[{split!r}]", task=task)
    else:
        with _calling("sample_data"):
            sample = task.sample_data()
        if sample is None:
            raise ConformanceError("sample_data", "returns None; ship sample data with the plugin, or pass data= "
                                                  "to check_task")
        _expect(isinstance(sample, Mapping), "sample_data", f"returned {type(sample).__name__}, not a mapping of "
                                                            f"split to DataFile")
        files = dict(sample)
        for split, file in files.items():
            _expect(isinstance(file, DataFile), "sample_data", f"split {split!r} is {file!r}, not a DataFile")
            _expect(file.format == "hub" or Path(file.path).is_file(), "sample_data",
                    f"file {file.path!r} of split {split!r} not found; list it in the package data of pyproject.toml")
    _expect("train" in files, "sample_data" if data is None else "data", f"has splits {sorted(files)} but no 'train'")
    return files


def _check_methods(task: Task, files: Mapping[str, DataFile], model_dir: Path, batch_size: int, max_length: int,
                   score_range: tuple[float, float]) -> _DirectResult:
    import datasets
    import torch
    from transformers import AutoTokenizer, PreTrainedModel

    from taskforge.evaluation import model_input_columns, predict_outputs

    # Examples of every split.
    columns = ColumnOptions()
    examples: dict[str, datasets.Dataset] = {}
    for split, file in files.items():
        with _calling("load_examples"):
            loaded = task.load_examples(file, columns)
        _expect(isinstance(loaded, datasets.Dataset), "load_examples",
                f"returned {type(loaded).__name__} for {file.display_name}, not a datasets.Dataset")
        _expect(len(loaded) > 0, "load_examples", f"returned no examples for {file.display_name}")
        examples[split] = loaded
    train = examples["train"].select(range(min(2 * batch_size, len(examples["train"]))))
    evaluation = examples.get("validation", examples["train"])
    evaluation = evaluation.select(range(min(2 * batch_size, len(evaluation))))

    # Labels.
    with _calling("label_set"):
        labels = task.label_set(examples["train"], columns)
    if labels is not None:
        _expect(isinstance(labels, LabelSet), "label_set", f"returned {type(labels).__name__}, not a LabelSet")
        _expect(len(labels) >= 1 and all(isinstance(name, str) and name for name in labels.names), "label_set",
                f"names {labels.names!r} must be non-empty strings")
        _expect(len(set(labels.names)) == len(labels), "label_set", f"names {labels.names!r} repeat a name")
        _expect(all(isinstance(value, str) for value in labels.values), "label_set",
                f"values {labels.values!r} must be strings, as written in the data files")
    for split in ("validation", "test"):
        if split in examples:
            with _calling("check_labels"):
                task.check_labels(examples[split], labels, files[split])

    # Features.
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    features = {}
    for name, subset, training in (("train", train, True), ("evaluation", evaluation, False)):
        with _calling("preprocess"):
            result = task.preprocess(subset, tokenizer, max_length, labels, training=training)
        _check_features(result, subset, labels, max_length, training)
        features[name] = result

    # Model, batch, loss units and one forward pass.
    with _calling("build_model"):
        model = task.build_model(str(model_dir), labels)
    _expect(isinstance(model, PreTrainedModel), "build_model",
            f"returned {type(model).__name__}, not a transformers PreTrainedModel")
    if labels is not None and hasattr(model.config, "num_labels"):
        _expect(model.config.num_labels == len(labels), "build_model",
                f"the model has {model.config.num_labels} labels, but label_set returned {len(labels)}")
    with _calling("collator"):
        collator = task.collator(tokenizer)
    _expect(callable(collator), "collator", f"returned {type(collator).__name__}, which is not callable")
    input_columns = model_input_columns(model, features["train"])
    _expect("input_ids" in input_columns, "preprocess", f"features have no column the model's forward takes as "
                                                        f"input_ids; columns: {features['train'].column_names}")
    rows = features["train"].select_columns(input_columns)
    with _calling("collator"):
        batch = collator([rows[i] for i in range(min(batch_size, len(rows)))])
    _expect(isinstance(batch, Mapping) and all(isinstance(value, torch.Tensor) for value in batch.values()),
            "collator", "the batch must be a mapping of names to tensors")
    if labels is not None:
        _expect("labels" in batch, "collator", f"the batch has no 'labels'; its keys are {sorted(batch)}")
    with _calling("loss_units"):
        units = task.loss_units(batch)
    _expect(isinstance(units, int) and not isinstance(units, bool), "loss_units",
            f"returned {units!r} ({type(units).__name__}), not an int")
    _expect(0 < units <= batch["input_ids"].numel(), "loss_units",
            f"returned {units} for a batch of shape {tuple(batch['input_ids'].shape)}; count the examples or "
            f"the labelled tokens the loss averages over")
    model.eval()
    with torch.no_grad():
        outputs = model(**batch)
    for name in task.output_names:
        _expect(name in outputs, "output_names", f"the model's outputs have no {name!r}; they have {list(outputs)}")
    if labels is not None:
        _expect(outputs.get("loss") is not None and math.isfinite(float(outputs["loss"])), "preprocess",
                "the model computed no finite loss from the batch's labels")

    # Outputs: postprocess, metrics and formatted predictions.
    raw = predict_outputs(model, features["evaluation"], collator, batch_size, task.output_names)
    predictions = _postprocess(task, evaluation, features["evaluation"], raw)
    with _calling("compute_metrics"):
        metrics = task.compute_metrics(predictions, evaluation, labels)
    _check_metrics(task, metrics, score_range)
    _check_formatted(task, predictions, labels)
    return _DirectResult(examples=examples, labels=labels, model_class=type(model))


def _check_finetune(task: Task, reference: str, files: Mapping[str, DataFile], model_dir: Path, output_dir: Path,
                    batch_size: int, max_length: int, score_range: tuple[float, float]) -> Any:
    import taskforge

    options: dict[str, Any] = dict(
        task=reference, model=str(model_dir), output_dir=str(output_dir), overwrite=True, epochs=1,
        batch_size=batch_size, eval_batch_size=batch_size, max_length=max_length, precision="fp32", seed=0,
        logging_steps=1, max_train_samples=2 * batch_size, max_eval_samples=2 * batch_size,
    )
    if task.options is not None:
        options["task_options"] = dataclasses.asdict(task.options)
    if "validation" not in files:
        # The core holds out part of the training examples; a third leaves about 2 batches to train on.
        options.update(max_train_samples=3 * batch_size, validation_split=1 / 3)
    if set(files) - {"train", "validation", "test"}:
        raise ConformanceError("sample_data", f"has splits {sorted(files)}; use train, validation and test")
    if any(file.format == "hub" for file in files.values()):
        raise ConformanceError("sample_data", "names a hub dataset; the kit runs offline, so ship files")
    if not _is_sample(task, files):
        options.update(train_file=files["train"].path, header=files["train"].header)
        for split in ("validation", "test"):
            if split in files:
                options[f"{split}_file"] = files[split].path

    try:
        result = taskforge.finetune(**options)
    except ConformanceError:
        raise
    except Exception as error:
        member = _member_in_traceback(task, error) or "finetune"
        raise ConformanceError(member, f"fine-tuning failed: {type(error).__name__}: {error}") from error

    _expect((output_dir / "config.json").is_file(), "finetune", f"no config.json in {output_dir}")
    train = result.metrics.get("train", {})
    _expect(train.get("steps", 0) >= 1, "finetune", f"ran {train.get('steps')} optimizer steps")
    _expect(math.isfinite(train.get("loss", math.nan)), "loss_units", f"the training loss is {train.get('loss')}")
    _check_metrics(task, result.metrics.get("validation", {}), score_range)
    return result


def _check_reload(task: Task, files: Mapping[str, DataFile], direct: _DirectResult, run: Any, batch_size: int,
                  inputs: Sequence[Any] | None,
                  score_range: tuple[float, float]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import taskforge
    from taskforge.config import data_format
    from taskforge.evaluation import evaluate_examples

    try:
        predictor = taskforge.load(run.output_dir, precision="fp32", device="cpu")
    except Exception as error:
        member = _member_in_traceback(task, error) or "configure"
        raise ConformanceError(member, f"the saved model failed to load: {type(error).__name__}: {error}") from error

    reloaded_task = predictor.task
    _expect(reloaded_task.name == task.name, "name", f"the saved model reloads as task {reloaded_task.name!r}")
    _expect(predictor.labels == direct.labels, "label_set",
            f"the saved model reloads with labels {predictor.labels}, but label_set returned {direct.labels} when "
            f"the kit called it on the same data; return the same labels in the same order on every call")
    _expect(type(predictor.model) is direct.model_class, "model_class",
            f"the saved model reloads as {type(predictor.model).__name__}, but build_model built "
            f"{direct.model_class.__name__}")

    # The same model on the same examples must score as fine-tuning reported.
    split = "validation" if "validation" in files else None
    reloaded: dict[str, Any] = {}
    if split is not None:
        examples = direct.examples[split].select(range(min(2 * batch_size, len(direct.examples[split]))))
        with _calling("preprocess"):
            features = reloaded_task.preprocess(examples, predictor.tokenizer, predictor.max_length, predictor.labels,
                                                training=False)
        with _calling("compute_metrics"):
            reloaded, _ = evaluate_examples(reloaded_task, predictor.model, examples, features, predictor.labels,
                                            reloaded_task.collator(predictor.tokenizer), batch_size)
        _check_metrics(task, reloaded, score_range)
        metric = task.metric_for_best_model
        before, after = run.metrics["validation"][metric], reloaded[metric]
        _expect(math.isclose(before, after, rel_tol=1e-4, abs_tol=1e-6), "build_model",
                f"the reloaded model scores {metric} {after} on the validation examples, but fine-tuning reported "
                f"{before}; the saved model differs from the trained one")

    # Predictions from direct inputs, and from a file without labels.
    predictions: list[dict[str, Any]] = []
    if type(reloaded_task).examples_from_inputs is not Task.examples_from_inputs:
        if inputs is None:
            inputs = _default_inputs(direct.examples.get("validation", direct.examples["train"]))
        if inputs is None:
            logger.warning("task %r takes direct inputs, but its examples have no 'text' column of strings; pass "
                           "inputs= to check_task to test Predictor.predict", task.name)
        else:
            try:
                predictions = predictor.predict(list(inputs), batch_size=batch_size)
            except Exception as error:
                member = _member_in_traceback(reloaded_task, error) or "examples_from_inputs"
                raise ConformanceError(member, f"Predictor.predict failed: {type(error).__name__}: {error}") from error
            _expect(len(predictions) == len(inputs), "postprocess",
                    f"{len(inputs)} inputs gave {len(predictions)} predictions")
            for prediction in predictions:
                _expect_json("format_prediction", prediction)

    source = files.get("validation", files["train"])
    if data_format(source.path, getattr(reloaded_task, "file_formats", None)) is not None:
        try:
            records = predictor.predict_file(source.path, batch_size=batch_size, header=source.header)
        except Exception as error:
            member = _member_in_traceback(reloaded_task, error) or "load_examples"
            raise ConformanceError(member, f"Predictor.predict_file on {source.display_name} failed: "
                                           f"{type(error).__name__}: {error}") from error
        for record in records[:batch_size]:
            _expect_json("format_prediction", record)
    return reloaded, predictions


# -- checks of results ----------------------------------------------------------------------------


def _check_features(features: Any, examples: Any, labels: LabelSet | None, max_length: int, training: bool) -> None:
    import datasets

    kind = "training" if training else "evaluation"
    _expect(isinstance(features, datasets.Dataset), "preprocess",
            f"returned {type(features).__name__} for {kind} examples, not a datasets.Dataset")
    _expect("input_ids" in features.column_names, "preprocess",
            f"{kind} features have no 'input_ids' column; columns: {features.column_names}")
    _expect(len(features) >= len(examples), "preprocess",
            f"{len(examples)} {kind} examples gave {len(features)} features; every example needs one at least")
    if len(features) > len(examples):
        _expect("example_index" in features.column_names, "preprocess",
                f"{len(examples)} {kind} examples gave {len(features)} features but no 'example_index' column")
    if labels is not None:
        _expect("labels" in features.column_names, "preprocess",
                f"{kind} features have no 'labels' column, though the task has labels; columns: "
                f"{features.column_names}")
    longest = max(len(ids) for ids in features["input_ids"])
    _expect(longest <= max_length, "preprocess", f"a {kind} feature has {longest} tokens, more than max_length "
                                                 f"{max_length}; truncate or split the inputs")


def _postprocess(task: Task, examples: Any, features: Any, outputs: Any) -> list[Any]:
    with _calling("postprocess"):
        predictions = task.postprocess(examples, features, outputs)
    _expect(isinstance(predictions, list), "postprocess", f"returned {type(predictions).__name__}, not a list")
    _expect(len(predictions) == len(examples), "postprocess",
            f"returned {len(predictions)} predictions for {len(examples)} examples; return one per example")
    return predictions


def _check_metrics(task: Task, metrics: Any, score_range: tuple[float, float]) -> None:
    _expect(isinstance(metrics, dict), "compute_metrics", f"returned {type(metrics).__name__}, not a dict")
    metric = task.metric_for_best_model
    _expect(metric in metrics, "metric_for_best_model",
            f"{metric!r} is not a key of compute_metrics' result; its keys are: {', '.join(map(str, metrics))}")
    value = metrics[metric]
    _expect(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
            "metric_for_best_model", f"compute_metrics returned {metric}={value!r}; it must be a finite number")
    _expect_json("compute_metrics", metrics)
    low, high = score_range
    for key, number in _flatten(metrics):
        _expect(isinstance(key, str), "compute_metrics", f"key {key!r} is not a string")
        words = set(re.split(r"[^a-z0-9]+", key.lower()))
        if words & SCORE_WORDS and isinstance(number, (int, float)) and not isinstance(number, bool):
            _expect(low <= number <= high, "compute_metrics",
                    f"{key}={number} is outside [{low}, {high}]; scores named accuracy, precision, recall or f1 are "
                    f"fractions (pass score_range=(0, 100) for a task that reports percentages)")


def _check_formatted(task: Task, predictions: list[Any], labels: LabelSet | None) -> None:
    for prediction in predictions:
        with _calling("format_prediction"):
            formatted = task.format_prediction(prediction, labels)
        _expect(isinstance(formatted, dict), "format_prediction", f"returned {type(formatted).__name__}, not a dict")
        _expect_json("format_prediction", formatted)


def _flatten(metrics: Mapping[Any, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in metrics.items():
        name = f"{prefix}{key}" if isinstance(key, str) else key
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _default_inputs(examples: Any) -> list[str] | None:
    if "text" not in examples.column_names:
        return None
    texts = examples["text"][:2]
    return texts if all(isinstance(text, str) for text in texts) else None


def _is_sample(task: Task, files: Mapping[str, DataFile]) -> bool:
    try:
        sample = task.sample_data()
    except Exception:  # the data stage already reported a failing sample_data
        return False
    return sample is not None and dict(sample) == dict(files)


# -- helpers ----------------------------------------------------------------------------------------


def _expect(condition: bool, member: str, message: str) -> None:
    if not condition:
        raise ConformanceError(member, message)


def _expect_json(member: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConformanceError(member, f"returned a value that is not JSON-serialisable ({error}): "
                                       f"{_short(value)}; convert numpy values with float() or .tolist()") from error


@contextlib.contextmanager
def _calling(member: str) -> Iterator[None]:
    """Turn an exception raised inside ``member`` into a :class:`ConformanceError` naming it."""
    try:
        yield
    except ConformanceError:
        raise
    except Exception as error:
        raise ConformanceError(member, f"raised {type(error).__name__}: {error}") from error


def _member_in_traceback(task: Task, error: BaseException) -> str | None:
    """Return the contract method whose code raised ``error`` or its causes, innermost frame first."""
    codes: dict[types.CodeType, str] = {}
    for member in CONTRACT_METHODS:
        function = inspect.unwrap(getattr(type(task), member, None) or (lambda: None))
        code = getattr(function, "__code__", None)
        if code is not None:
            for nested in _code_objects(code):
                codes[nested] = member
    found = None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback = current.__traceback__
        while traceback is not None:
            found = codes.get(traceback.tb_frame.f_code, found)
            traceback = traceback.tb_next
        current = current.__cause__ or current.__context__
    return found


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_objects(constant)


def _member_named_in(message: str) -> str:
    """Return the member a registry error names, such as 'preprocess' in "does not implement 'preprocess'"."""
    match = re.search(r"(?:member|implement) '(\w+)'", message)
    if match:
        return match.group(1)
    if "API version" in message:
        return "api_version"
    return "import"


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
