"""One fine-tuning run from a validated configuration: data, model, training loop, saved output."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskforge import outputs
from taskforge.api import FinetuneResult, column_options, data_file, load_split
from taskforge.data import stratified_split
from taskforge.errors import ConfigError, DataError, TaskforgeError
from taskforge.models import attention_dropout_override, check_finite_weights, resolve_model, unloadable_model_error
from taskforge.task import DataFile

if TYPE_CHECKING:
    import datasets

    from taskforge.config import FinetuneConfig
    from taskforge.task import Task

logger = logging.getLogger(__name__)


def run(task: Task, config: FinetuneConfig) -> FinetuneResult:
    """Load data and model, train, evaluate, and write the output directory.

    With a :class:`~taskforge.config.DistillConfig`, the model is the student and a teacher's outputs
    join the loss (see :mod:`taskforge.distillation`).
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import AutoConfig, AutoTokenizer

    from taskforge import distillation
    from taskforge.config import DistillConfig
    from taskforge.engine import EvalSet, MetricsLog, train
    from taskforge.evaluation import evaluate_examples
    from taskforge.precision import mixed_precision_name, resolve_precision

    # Precision first: an impossible request is a configuration error, raised before any loading.
    use_cpu = not torch.cuda.is_available()
    precision, reason = resolve_precision(config.precision, use_cpu)
    distilling = isinstance(config, DistillConfig)
    if distilling:
        assert config.teacher is not None
        teacher_path = resolve_model(config.teacher, "--teacher")
    model_path = None
    if config.model is not None:
        model_path = resolve_model(config.model, "--student" if distilling else "--model")

    # Data, validated in full before the model is loaded.
    columns = column_options(config)
    files = _data_files(task, config)
    train_examples = load_split(task, files["train"], columns, config.max_train_samples)
    if "validation" in files:
        validation_examples = load_split(task, files["validation"], columns, config.max_eval_samples)
    else:
        train_examples, validation_examples = stratified_split(
            train_examples, config.validation_split, config.seed, getattr(task, "stratify_column", None)
        )
        logger.info(
            "no validation file: held out %d of %d training examples (%.0f%%, stratified by label, seed %d); "
            "pass --validation-file to use your own", len(validation_examples),
            len(train_examples) + len(validation_examples), 100 * config.validation_split, config.seed,
        )
        if config.max_eval_samples is not None and len(validation_examples) > config.max_eval_samples:
            validation_examples = validation_examples.select(range(config.max_eval_samples))
    test_examples = None
    if "test" in files:
        test_examples = load_split(task, files["test"], columns, config.max_eval_samples)

    assert config.batch_size is not None
    if len(train_examples) < config.batch_size:
        raise DataError(
            f"{files['train'].display_name} has {len(train_examples)} training examples, fewer than one batch "
            f"of {config.batch_size}; pass a smaller --batch-size or more data"
        )
    labels = task.label_set(train_examples, columns)
    teacher = None
    if distilling:
        # The run takes the teacher's label ids, so that the classes of both models line up.
        teacher = distillation.load_teacher(task, teacher_path, labels)
        labels = teacher.labels
        distillation.warn_about_columns(teacher, config)
        logger.info("teacher: %s (%s, %d layers)", config.teacher, type(teacher.model).__name__,
                    teacher.model.config.num_hidden_layers)
    if labels is not None:
        shown = ", ".join(name if name == value else f"{name} ({value})" for name, value in zip(labels.names, labels.values))
        hint = "" if config.label_names else "; pass --label-names to rename them"
        logger.info("labels (%d), in id order: %s%s", len(labels), shown, hint)
    task.check_labels(validation_examples, labels, files.get("validation", files["train"]))
    if test_examples is not None:
        task.check_labels(test_examples, labels, files["test"])

    # Accelerator, seed, model and tokenizer.
    accelerator = Accelerator(mixed_precision=mixed_precision_name(precision), cpu=use_cpu)
    if accelerator.is_main_process:
        logger.info("precision %s (%s); device %s, %d process(es)", precision, reason, accelerator.device,
                    accelerator.num_processes)
    set_seed(config.seed)
    cut_from = distillation.student_layers(config, teacher) if teacher is not None else None
    if teacher is not None and cut_from is not None:
        model_path = teacher.path
        tokenizer = teacher.tokenizer
        model = distillation.cut_student(
            teacher.model, cut_from, attention_dropout_override(teacher.model.config, config.attention_dropout))
        logger.info("student: teacher layers %s with its embeddings and head, %.1fM parameters (teacher %.1fM)",
                    ",".join(map(str, cut_from)), model.num_parameters() / 1e6, teacher.model.num_parameters() / 1e6)
    else:
        assert model_path is not None
        flag = "--student" if distilling else "--model"
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_path)
            # A head of another size (a model fine-tuned on other labels) is replaced, as the log line states.
            settings = attention_dropout_override(AutoConfig.from_pretrained(model_path), config.attention_dropout)
            # transformers loads a checkpoint in its saved dtype, and bf16 weights would round most small
            # updates away, so the model to train is loaded in float32.
            model = task.build_model(model_path, labels, ignore_mismatched_sizes=True, dtype=torch.float32, **settings)
        except TaskforgeError:
            raise
        except Exception as error:  # damaged folders give OSError, ValueError, TypeError or safetensors errors
            raise unloadable_model_error(flag, config.model, task.model_class, error,
                                         "pass a complete model directory") from error
        check_finite_weights(model, flag, config.model)
        logger.info("loaded %s from %s as %s; the task head is newly initialised", config.model, model_path,
                    type(model).__name__)
    max_length = _check_max_length(config.max_length, tokenizer)
    _check_positions(max_length, model.config)
    model.config.taskforge = {
        "task": task.name,
        # The --task value, so that a task given as module:attribute loads again without an entry point.
        "task_reference": config.task,
        "task_options": dataclasses.asdict(task.options) if task.options is not None else {},
        "api_version": task.api_version,
        "label_values": list(labels.values) if labels is not None else None,
    }

    # Features: the main process tokenizes first so the others reuse the datasets cache.
    with accelerator.main_process_first():
        train_features = task.preprocess(train_examples, tokenizer, max_length, labels, training=True)
        validation_features = task.preprocess(validation_examples, tokenizer, max_length, labels, training=False)
        test_features = (
            task.preprocess(test_examples, tokenizer, max_length, labels, training=False)
            if test_examples is not None else None
        )
    eval_sets = [EvalSet("validation", validation_examples, validation_features)]
    collator = task.collator(tokenizer)

    run_record = {
        "task": task.name,
        "task_plugin": type(task).__module__,
        "base_model": config.model if config.model is not None else f"{config.teacher} (layers cut)",
        "base_model_path": model_path,
        "precision": precision,
        "precision_reason": reason,
        "labels": list(labels.names) if labels is not None else None,
        "config": dataclasses.asdict(config) | {"max_length": max_length},
        "data": {
            **{split: file.display_name for split, file in files.items()},
            "train_examples": len(train_examples),
            "validation_examples": len(validation_examples),
            "test_examples": len(test_examples) if test_examples is not None else None,
        },
        "processes": accelerator.num_processes,
        "versions": outputs.library_versions(),
    }
    if distilling:
        run_record["distillation"] = {
            "teacher": config.teacher,
            "teacher_path": teacher_path,
            "student_layers": cut_from,
            "temperature": config.temperature,
            "alpha": config.alpha,
            "hidden_weight": config.hidden_weight,
            "cache_teacher": config.cache_teacher,
        }

    with outputs.staged_directory(config.output_dir, config.overwrite, accelerator.is_main_process,
                                  resume=config.resume is not None) as staging:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            outputs.write_json(staging / outputs.RUN_CONFIG_FILE, run_record)
        metrics_log = MetricsLog(staging / outputs.METRICS_LOG_FILE if accelerator.is_main_process else None)

        setup = None
        if teacher is not None:
            setup = distillation.prepare(task, config, teacher, model, tokenizer, train_examples, train_features,
                                    max_length, labels, accelerator, staging, cut_from)
        result = train(task, model, setup.features if setup else train_features, eval_sets, labels, collator, config,
                       accelerator, metrics_log, run_dir=staging,
                       training_module=setup.module if setup else None,
                       train_collator=setup.collator if setup else None,
                       extra_columns=setup.extra_columns if setup else ())

        final_metrics: dict[str, dict[str, Any]] = {
            "train": {
                "loss": result.train_loss,
                "steps": result.global_step,
                "epochs": result.epochs,
                "seconds": round(result.train_seconds, 2),
                "examples_per_second": round(result.train_examples_per_second, 2),
                "best_step": result.best_step,
                "skipped_steps": result.skipped_steps,
            },
            "validation": _without_bookkeeping(result.final_evaluation),
        }
        validation_predictions = result.final_predictions
        if validation_predictions is None and result.evaluations:
            # The saved model's evaluation ran before a resume, so its predictions are made again.
            _, validation_predictions = evaluate_examples(
                task, model, validation_examples, validation_features, labels, collator, config.eval_batch_size,
                accelerator,
            )
        test_predictions = None
        if test_features is not None:
            test_metrics, test_predictions = evaluate_examples(
                task, model, test_examples, test_features, labels, collator, config.eval_batch_size, accelerator
            )
            metrics_log.write({"step": result.global_step, "split": "test", **test_metrics})
            final_metrics["test"] = test_metrics
            logger.info("test: %s", _summary(test_metrics))

        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            unwrapped = accelerator.unwrap_model(model)
            unwrapped.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            outputs.write_json(staging / outputs.METRICS_FILE, final_metrics)
            outputs.write_model_card(staging / "README.md", run_record, final_metrics, task.example_input)
            written = []
            if validation_predictions is not None:
                written += task.write_predictions(staging, validation_predictions, validation_examples, labels)
            if test_predictions is not None:
                written += task.write_predictions(staging / "test", test_predictions, test_examples, labels)
            if written:
                logger.info("wrote %s", ", ".join(str(path.relative_to(staging)) for path in written))
            if setup is not None:
                distillation.remove_cache(staging)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        logger.info("saved the model and metrics to %s", config.output_dir)
    return FinetuneResult(output_dir=Path(config.output_dir), metrics=final_metrics, config=config)


def _data_files(task: Task, config: FinetuneConfig) -> dict[str, DataFile]:
    if config.dataset is not None:
        # NOTE: hub datasets need the network; this path has not been run offline.
        files = {"train": DataFile(config.dataset, "hub", "train", dataset_config=config.dataset_config)}
        if config.validation_file:
            files["validation"] = data_file(config.validation_file, "validation", config.header, "--validation-file", task)
        else:
            files["validation"] = DataFile(config.dataset, "hub", "validation", dataset_config=config.dataset_config)
        return files

    if config.train_file is None:
        sample = task.sample_data()
        if not sample:
            raise ConfigError(
                f"no training data given, and task {task.name!r} ships no sample data; pass --train-file"
            )
        logger.info("no --train-file: using the sample data shipped with task %r", task.name)
        return dict(sample)

    files = {"train": data_file(config.train_file, "train", config.header, "--train-file", task)}
    if config.validation_file:
        files["validation"] = data_file(config.validation_file, "validation", config.header, "--validation-file", task)
    if config.test_file:
        files["test"] = data_file(config.test_file, "test", config.header, "--test-file", task)
    return files


def _check_max_length(max_length: int | None, tokenizer: Any) -> int:
    assert max_length is not None
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < max_length:
        raise ConfigError(f"--max-length {max_length} is above the model's maximum of {model_max}; pass at most {model_max}")
    return max_length


def _check_positions(max_length: int, model_config: Any) -> None:
    positions = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return
    # RoBERTa-style models start position ids after the padding index, which leaves fewer usable slots.
    if getattr(model_config, "model_type", "") in ("roberta", "xlm-roberta", "camembert", "longformer"):
        positions -= (getattr(model_config, "pad_token_id", 1) or 0) + 1
    if max_length > positions:
        raise ConfigError(
            f"--max-length {max_length} is above the {positions} positions the model supports; pass at most {positions}"
        )


def _without_bookkeeping(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key not in ("step", "epoch", "split")}


def _summary(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value:.4f}" for key, value in metrics.items() if isinstance(value, float))
