"""Predictions and evaluation with a model saved by taskforge."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskforge.errors import ConfigError, ModelNotFoundError
from taskforge.outputs import RUN_CONFIG_FILE
from taskforge.registry import get_task
from taskforge.task import LabelSet

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from taskforge.task import Task

logger = logging.getLogger(__name__)


class Predictor:
    """A trained model with its task, tokenizer and labels, ready to predict and evaluate."""

    def __init__(
        self,
        task: Task,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        run_config: dict[str, Any],
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.task = task
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.run_config = run_config
        self.autocast_dtype = autocast_dtype
        self.labels = saved_label_set(model.config)

    def predict(self, inputs: Sequence[Any], batch_size: int = 32) -> list[dict[str, Any]]:
        """Predict each input (a string, or a dict for tasks with several fields); one dict per input."""
        if isinstance(inputs, (str, dict)):
            raise ConfigError("predict takes a list of inputs; wrap a single input in a list")
        if len(inputs) == 0:
            return []
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        examples = self.task.examples_from_inputs(inputs)
        return self._predict_examples(examples, batch_size)

    def predict_file(self, input_file: str | os.PathLike[str], batch_size: int = 32, header: bool | None = None,
                     **columns: Any) -> list[dict[str, Any]]:
        """Predict every row of a data file; each result contains the row's inputs and its prediction."""
        from taskforge.api import column_options, data_file as describe_file

        config = dict(self.run_config.get("config", {}))
        config.update({key: value for key, value in columns.items() if value is not None})
        config["drop_invalid"] = False
        if header is None:
            header = bool(config.get("header", True))
        file = describe_file(input_file, "predict", header, "--input-file", self.task)
        examples = self.task.load_examples(file, column_options(config))
        predictions = self._predict_examples(examples, batch_size)
        inputs = examples.to_list()
        return [{**row, **prediction} for row, prediction in zip(inputs, predictions)]

    def _predict_examples(self, examples: Any, batch_size: int) -> list[dict[str, Any]]:
        from taskforge.evaluation import predict_outputs

        features = self.task.preprocess(examples, self.tokenizer, self.max_length, self.labels, training=False)
        outputs = predict_outputs(
            self.model, features, self.task.collator(self.tokenizer), batch_size, self.task.output_names,
            autocast_dtype=self.autocast_dtype,
        )
        predictions = self.task.postprocess(examples, features, outputs)
        return [self.task.format_prediction(prediction, self.labels) for prediction in predictions]

    def evaluate(self, data_file: str | os.PathLike[str], batch_size: int = 64, header: bool | None = None,
                 max_samples: int | None = None, drop_invalid: bool = False,
                 predictions_dir: str | os.PathLike[str] | None = None, **columns: Any) -> dict[str, Any]:
        """Score the model on a labelled file with the task's metrics.

        Column options default to those the model was trained with. With ``predictions_dir``, the
        task also writes its prediction files there (for example SQuAD's ``predictions.json``).
        """
        from taskforge.api import column_options, data_file as describe_file, load_split
        from taskforge.evaluation import evaluate_examples

        config = dict(self.run_config.get("config", {}))
        config.update({key: value for key, value in columns.items() if value is not None})
        config["drop_invalid"] = drop_invalid
        if header is None:
            header = bool(config.get("header", True))
        file = describe_file(data_file, "test", header, "--data-file", self.task)
        options = column_options(config)
        examples = load_split(self.task, file, options, max_samples)
        self.task.check_labels(examples, self.labels, file)
        features = self.task.preprocess(examples, self.tokenizer, self.max_length, self.labels, training=False)
        metrics, predictions = evaluate_examples(
            self.task, self.model, examples, features, self.labels, self.task.collator(self.tokenizer),
            batch_size, autocast_dtype=self.autocast_dtype,
        )
        if predictions_dir is not None:
            written = self.task.write_predictions(Path(predictions_dir), predictions, examples, self.labels)
            if written:
                logger.info("wrote %s", ", ".join(str(path) for path in written))
            else:
                logger.warning("task %r writes no prediction files, so --predictions-dir stays empty", self.task.name)
        return metrics


def load(model_dir: str | os.PathLike[str], precision: str = "auto", device: str | None = None,
         task_options: dict[str, Any] | None = None) -> Predictor:
    """Load the model, tokenizer and task saved in ``model_dir``.

    The task gets the options it was trained with, updated by ``task_options``.
    """
    # datasets is imported here, not by the first predict call, which would otherwise take about
    # 0.8 s longer than the next ones on a 2-core CPU.
    import datasets  # noqa: F401
    import torch
    import transformers

    from taskforge.precision import resolve_precision

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"model directory {str(path)!r} not found or has no config.json; "
                                 f"pass the --output-dir of a taskforge finetune run")
    model_config = _read_json_object(path / "config.json")
    saved = model_config.get("taskforge") or {}
    if not isinstance(saved, dict):
        raise ModelNotFoundError(f"config.json in {str(path)!r} has an invalid 'taskforge' entry; re-run finetune")
    task_name = saved.get("task")
    if task_name is None:
        raise ModelNotFoundError(f"model directory {str(path)!r} was not saved by taskforge (config.json has no "
                                 f"'taskforge' entry); fine-tune it with taskforge first")
    reference = saved.get("task_reference") or task_name
    task = get_task(reference if ":" in str(reference) else task_name)
    task = task.configure({**(saved.get("task_options") or {}), **(task_options or {})})
    run_config_path = path / RUN_CONFIG_FILE
    run_config = _read_json_object(run_config_path) if run_config_path.is_file() else {}
    max_length = int(run_config.get("config", {}).get("max_length") or task.defaults.max_length)

    use_cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    resolved, reason = resolve_precision(precision, use_cpu)
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(resolved)
    logger.info("predicting in %s (%s)", resolved, reason)

    try:
        model = getattr(transformers, task.model_class).from_pretrained(str(path))
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as error:
        reason = str(error).splitlines()[0]
        raise ModelNotFoundError(f"model in {str(path)!r} could not be loaded ({reason}); restore the directory "
                                 f"or re-run finetune") from error
    model.to(device or ("cpu" if use_cpu else "cuda"))
    model.eval()
    return Predictor(task, model, tokenizer, max_length, run_config, autocast_dtype)


def saved_label_set(model_config: Any) -> LabelSet | None:
    """Rebuild the label set saved in a model's config: names from ``id2label``, raw values beside them."""
    saved = getattr(model_config, "taskforge", None) or {}
    values = saved.get("label_values")
    if not values:
        return None
    id2label = {int(key): name for key, name in model_config.id2label.items()}
    names = tuple(id2label[i] for i in range(len(values)))
    return LabelSet(names=names, values=tuple(values))


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(f"{path.name} in {str(path.parent)!r} is not valid JSON ({error}); restore it "
                                 f"or re-run finetune") from error
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{path.name} in {str(path.parent)!r} is not a JSON object; restore it or re-run finetune")
    return data
