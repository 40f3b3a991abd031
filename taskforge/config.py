"""The fine-tuning configuration: one typed dataclass whose field help is also the CLI's help.

Values are resolved in this order, first found wins: an explicit flag or keyword argument, the
``--config`` file, the task's recommended defaults, the defaults below. :func:`validate` then checks the
whole configuration before any model is loaded and reports every problem in one error.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from taskforge.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
DATA_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
DEFAULT_MODEL = "minilm-l6"

# Fields that fall back to the task's recommended value when neither a flag nor the file sets them.
TASK_DEFAULT_FIELDS = (
    "learning_rate", "epochs", "batch_size", "max_length", "warmup_ratio", "weight_decay", "attention_dropout",
)


def _field(default: Any, help: str, group: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "group": group})


@dataclasses.dataclass
class FinetuneConfig:
    """Everything that defines one fine-tuning run."""

    task: str | None = _field(None, "Task to train: an installed task name or module:attribute.", "Task")
    model: str = _field(
        DEFAULT_MODEL,
        "Model to start from: a local directory, a Hugging Face hub id, or 'minilm-l6' for the "
        "packaged all-MiniLM-L6-v2.",
        "Model",
    )
    output_dir: str | None = _field(None, "Directory for the trained model (default: outputs/TASK).", "Model")
    overwrite: bool = _field(False, "Replace the output directory if it exists.", "Model")

    train_file: str | None = _field(None, "Training data: CSV, TSV, JSON, JSONL or Parquet.", "Data")
    validation_file: str | None = _field(
        None, "Validation data. Without it, a stratified share of the training data is held out.", "Data"
    )
    test_file: str | None = _field(None, "Test data, evaluated once after training.", "Data")
    dataset: str | None = _field(None, "Hugging Face hub dataset name, used instead of files (needs network).", "Data")
    dataset_config: str | None = _field(None, "Configuration name of --dataset.", "Data")
    text_column: str | None = _field(None, "Column holding the text (default: the task's).", "Data")
    text_pair_column: str | None = _field(None, "Column holding the second text of a pair.", "Data")
    label_column: str | None = _field(None, "Column holding the label (default: the task's).", "Data")
    label_names: list[str] | None = _field(
        None, "Comma-separated names for the labels, in the sorted order of the label values.", "Data"
    )
    header: bool = _field(True, "Whether the first row of CSV/TSV files names the columns; "
                          "with --no-header, columns are named 0, 1, 2, ...", "Data")
    max_train_samples: int | None = _field(None, "Use only the first N training examples.", "Data")
    max_eval_samples: int | None = _field(None, "Use only the first N validation and test examples.", "Data")
    validation_split: float = _field(0.1, "Share of the training data held out when no validation file is given.", "Data")
    drop_invalid: bool = _field(False, "Skip invalid rows (empty text, missing label) and count them, instead of failing.", "Data")

    epochs: float | None = _field(None, "Number of passes over the training data (default: the task's).", "Training")
    batch_size: int | None = _field(None, "Examples per micro-batch on each device (default: the task's).", "Training")
    eval_batch_size: int = _field(64, "Examples per evaluation batch on each device.", "Training")
    learning_rate: float | None = _field(None, "Peak learning rate of AdamW (default: the task's).", "Training")
    weight_decay: float | None = _field(None, "AdamW weight decay, not applied to biases and LayerNorm weights.", "Training")
    warmup_ratio: float | None = _field(None, "Share of the optimizer steps spent warming up the learning rate linearly.", "Training")
    max_length: int | None = _field(None, "Maximum number of tokens per example; longer inputs are truncated.", "Training")
    gradient_accumulation_steps: int = _field(1, "Micro-batches per optimizer step.", "Training")
    max_grad_norm: float = _field(1.0, "Clip the gradient norm to this value; 0 turns clipping off.", "Training")
    group_by_length: bool = _field(True, "Batch examples of similar length together to cut padding.", "Training")
    attention_dropout: float | None = _field(
        None, "Dropout on attention probabilities while training, in [0, 1) (default: the task's, else the "
              "model's own). 0 lets PyTorch use its fused attention, which stores no attention matrix.", "Training")
    precision: Precision = _field(
        "auto",
        "Numeric precision: auto picks bf16 on a GPU or CPU that runs it fast, else fp16 on a GPU, else fp32.",
        "Training",
    )
    seed: int = _field(42, "Random seed for data order, held-out split and weight initialisation.", "Training")
    eval_steps: int | None = _field(None, "Also evaluate every N optimizer steps (evaluation always runs after each epoch).", "Training")
    logging_steps: int = _field(50, "Log the training loss every N optimizer steps.", "Training")

    save_checkpoints: bool = _field(True, "Save checkpoints to resume from: after each epoch, and every --save-steps.",
                                    "Checkpoints")
    save_steps: int | None = _field(None, "Also save a checkpoint every N optimizer steps.", "Checkpoints")
    save_total_limit: int | None = _field(2, "Keep only the newest N checkpoints.", "Checkpoints")
    resume: str | None = _field(
        None, "Resume from a checkpoint: 'auto' takes the newest valid one of this output directory, or pass a "
              "checkpoint folder.", "Checkpoints")
    force_resume: bool = _field(False, "Resume even when result-changing options differ from the checkpoint's.",
                                "Checkpoints")
    load_best_model: bool = _field(True, "Save the model of the best evaluation (by the task's metric) "
                                         "instead of the last one.", "Checkpoints")
    early_stopping_patience: int | None = _field(
        None, "Stop after N evaluations in a row without improvement of the task's metric.", "Checkpoints")
    early_stopping_threshold: float = _field(
        0.0, "Smallest change of the metric that counts as an improvement.", "Checkpoints")
    skip_nonfinite: bool = _field(False, "Skip optimizer steps whose loss or gradient norm is NaN or infinite, "
                                         "and count them, instead of stopping.", "Training")
    task_options: dict[str, Any] = dataclasses.field(
        default_factory=dict,
        metadata={"help": "Options of the task itself (see 'taskforge tasks NAME'); on the command line, "
                          "pass them as flags such as --doc-stride 128.", "group": "Task"},
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DistillConfig(FinetuneConfig):
    """A fine-tuning run whose student also learns from a teacher's outputs.

    ``model`` is the student; on the command line and in :func:`taskforge.distill` it is called
    ``student``.
    """

    model: str | None = dataclasses.field(  # type: ignore[assignment]
        default=None,
        metadata={"help": "Student to train: a model directory or hub id, trained from its pretrained weights "
                          "with a new task head. Pass this or --student-layers.", "group": "Model",
                  "flag": "student"},
    )
    teacher: str | None = _field(
        None, "Teacher: a model directory with a trained task head, usually written by 'taskforge finetune'.",
        "Distillation")
    student_layers: str | None = _field(
        None, "Cut the student from the teacher: a number of layers (3) spread evenly over the teacher's, or "
              "the teacher's layer indices (0,2,4), kept with its embeddings and task head.", "Distillation")
    temperature: float = _field(2.0, "Temperature that softens both models' logits in the distillation loss.",
                                "Distillation")
    alpha: float = _field(0.5, "Weight of the distillation loss; the task loss gets 1 - alpha. 0 trains on the "
                               "labels alone and runs no teacher.", "Distillation")
    hidden_weight: float = _field(
        0.0, "Weight of a hidden-state loss between mapped layers: cosine distance when the hidden sizes "
             "match, else mean squared error through a learned projection. 0 turns it off.", "Distillation")
    cache_teacher: bool = _field(
        False, "Compute the teacher's outputs once before training and reuse them in every epoch.", "Distillation")

    @property
    def teacher_needed(self) -> bool:
        """Whether the run uses the teacher at all."""
        return self.alpha > 0 or self.hidden_weight > 0


# Range of --temperature; common values are 1 to 10.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.1, 100.0


def config_class(values: Mapping[str, Any]) -> type[FinetuneConfig]:
    """Return the configuration class for a mapping of options: DistillConfig when a teacher is set."""
    return DistillConfig if values.get("teacher") is not None else FinetuneConfig


def flag_name(field: dataclasses.Field) -> str:
    """Return the command-line spelling of ``field``, without the leading dashes."""
    return field.metadata.get("flag", field.name).replace("_", "-")


def parse_student_layers(value: str, teacher_layers: int | None) -> list[int]:
    """Turn ``--student-layers`` into the teacher layer indices the student keeps.

    A single number ``k`` keeps ``k`` layers spread evenly from the first to the last, as
    ``round(i * (n - 1) / (k - 1))``: 3 of 6 layers gives 0, 2, 5; 6 of 12 gives 0, 2, 4, 7, 9, 11; 1 gives 0.
    A comma-separated list, or a bracketed one such as ``[4]``, keeps those layers in that order.
    Without ``teacher_layers``, only the form is checked and a count comes back as ``[count]``.
    """
    raw = str(value).strip()
    bracketed = raw.startswith(("[", "(")) and raw.endswith(("]", ")"))
    text = raw[1:-1].strip() if bracketed else raw
    if bracketed and text == "":
        raise ConfigError(f"--student-layers {value!r} names no layers; pass for example 3 or 0,2,4")
    # ASCII digits only: int() would also take "1_0" and non-Latin digits.
    if not re.fullmatch(r"[0-9]+(\s*,\s*[0-9]+)*\s*,?", text):
        raise ConfigError(f"--student-layers {value!r} is not a number of layers or a comma-separated list of "
                          f"layer indices; pass for example 3 or 0,2,4")
    is_list = bracketed or "," in text
    numbers = [int(part) for part in text.split(",") if part.strip()]
    if not is_list:
        count = numbers[0]
        if count < 1:
            raise ConfigError(f"--student-layers {count} must be at least 1 (a single layer index is written [{count}])")
        if teacher_layers is None:
            return [count]
        if count > teacher_layers:
            raise ConfigError(f"--student-layers {count} must be between 1 and the teacher's {teacher_layers} layers")
        if count == 1:
            return [0]
        return [round(i * (teacher_layers - 1) / (count - 1)) for i in range(count)]
    if len(set(numbers)) != len(numbers):
        raise ConfigError(f"--student-layers {value!r} names a layer twice; name each teacher layer once")
    if min(numbers) < 0:
        raise ConfigError(f"--student-layers {value!r} names a negative layer; layers count from 0")
    if teacher_layers is not None and max(numbers) >= teacher_layers:
        wrong = [n for n in numbers if n >= teacher_layers]
        raise ConfigError(f"--student-layers {value!r} names layer(s) {', '.join(map(str, wrong))}, but the teacher "
                          f"has layers 0 to {teacher_layers - 1}")
    return numbers


def field_help(cls: type = FinetuneConfig) -> dict[str, tuple[str, str]]:
    """Map each field name to its (help, group)."""
    return {f.name: (f.metadata["help"], f.metadata["group"]) for f in dataclasses.fields(cls)}


def read_config_file(path: str | os.PathLike[str], cls: type[FinetuneConfig] | None = None) -> dict[str, Any]:
    """Read a YAML or JSON config file into a dict of field values, rejecting unknown keys."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found (from --config); pass an existing YAML or JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {str(path)!r} is not valid UTF-8 ({error.reason} at byte {error.start}); "
                          f"save it as UTF-8") from error
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"config file {str(path)!r} could not be parsed: {reason}") from error
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {str(path)!r} must contain a mapping of option names to values")

    cls = cls or config_class({str(key).replace("-", "_"): value for key, value in values.items()})
    # Keys may use the command-line spelling of a field, such as 'student' for the distillation student.
    aliases = {flag_name(f).replace("-", "_"): f.name for f in dataclasses.fields(cls)}
    known = {f.name for f in dataclasses.fields(cls)} | set(aliases)
    result = {}
    unknown = []
    for key, value in values.items():
        name = str(key).replace("-", "_")
        name = aliases.get(name, name)
        if name in result:
            raise ConfigError(f"config file {str(path)!r} sets {name!r} twice (as {key!r} and under another "
                              f"spelling); keep one")
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if not close and name in {f.name for f in dataclasses.fields(DistillConfig)} | {"student"}:
                hint = " (an option of 'taskforge distill')"
            unknown.append(f"{key!r}{hint}")
            continue
        result[name] = value
    if unknown:
        raise ConfigError(f"unknown option(s) in config file {str(path)!r}: {', '.join(unknown)}")
    return result


def resolve(
    explicit: Mapping[str, Any],
    file_values: Mapping[str, Any] | None = None,
    task_defaults: Any | None = None,
    source: str = "argument",
    problems: list[str] | None = None,
    cls: type[FinetuneConfig] = FinetuneConfig,
    file_source: str = "config file",
) -> FinetuneConfig:
    """Merge explicit values, config-file values and task defaults into a :class:`FinetuneConfig`.

    ``explicit`` holds only the values the user set; ``None`` counts as unset. Values are coerced to
    the field types, and a value that cannot be is reported with the place it came from (``source``
    for explicit values, ``file_source`` for those of the file). With a
    ``problems`` list, such values are appended to it and left at their defaults, so that
    :func:`validate` can report them together with every other problem.
    """
    collect = problems is not None
    problems = problems if problems is not None else []
    file_values = dict(file_values or {})
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if explicit.get(field.name) is not None:
            raw, where = explicit[field.name], source
        elif file_values.get(field.name) is not None:
            raw, where = file_values[field.name], file_source
        elif task_defaults is not None and field.name in TASK_DEFAULT_FIELDS:
            raw, where = getattr(task_defaults, field.name), "task default"
        else:
            continue
        try:
            values[field.name] = _coerce(raw, hints[field.name])
        except (TypeError, ValueError) as error:
            problems.append(f"{field.name}={raw!r} from {where}: {error}; fix the value")
            # Fall back to the task's value so that validate() does not report the field twice.
            if task_defaults is not None and field.name in TASK_DEFAULT_FIELDS:
                values[field.name] = getattr(task_defaults, field.name)
    if problems and not collect:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    # Task options merge key by key, so a flag overrides one option of the file and keeps the rest.
    task_options: dict[str, Any] = {}
    for source_values, where in ((file_values, file_source), (explicit, source)):
        given = source_values.get("task_options")
        if given is None:
            continue
        if not isinstance(given, Mapping):
            problems.append(f"task_options={given!r} from {where}: expected a mapping of option names to values")
            continue
        task_options.update(given)
    if problems and not collect:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    values["task_options"] = task_options
    return cls(**values)


def validate(config: FinetuneConfig, task: Any | None = None, problems: list[str] | None = None) -> None:
    """Check the whole configuration and raise one :class:`ConfigError` listing every problem.

    With ``task``, the task's own checks of the configuration are included. ``problems`` contains those
    already found, for example by :func:`resolve`.
    """
    problems = list(problems or [])

    def check(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    check(config.task is not None, "no task given; pass --task NAME (run 'taskforge tasks' to list them)")
    check(config.epochs is not None and config.epochs > 0, f"--epochs must be greater than 0, got {config.epochs}")
    check(config.batch_size is not None and config.batch_size >= 1, f"--batch-size must be at least 1, got {config.batch_size}")
    check(config.eval_batch_size >= 1, f"--eval-batch-size must be at least 1, got {config.eval_batch_size}")
    check(config.learning_rate is not None and config.learning_rate > 0,
          f"--learning-rate must be greater than 0, got {config.learning_rate}")
    check(config.weight_decay is not None and config.weight_decay >= 0,
          f"--weight-decay must be 0 or more, got {config.weight_decay}")
    check(config.warmup_ratio is not None and 0 <= config.warmup_ratio < 1,
          f"--warmup-ratio must be in [0, 1), got {config.warmup_ratio}")
    check(config.attention_dropout is None or 0 <= config.attention_dropout < 1,
          f"--attention-dropout must be in [0, 1), got {config.attention_dropout}")
    check(config.max_length is not None and config.max_length >= 8, f"--max-length must be at least 8, got {config.max_length}")
    check(config.gradient_accumulation_steps >= 1,
          f"--gradient-accumulation-steps must be at least 1, got {config.gradient_accumulation_steps}")
    check(config.max_grad_norm >= 0, f"--max-grad-norm must be 0 or more, got {config.max_grad_norm}")
    check(config.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}")
    check(0 < config.validation_split < 1, f"--validation-split must be between 0 and 1, got {config.validation_split}")
    check(config.logging_steps >= 1, f"--logging-steps must be at least 1, got {config.logging_steps}")
    check(config.eval_steps is None or config.eval_steps >= 1, f"--eval-steps must be at least 1, got {config.eval_steps}")
    check(config.save_steps is None or config.save_steps >= 1, f"--save-steps must be at least 1, got {config.save_steps}")
    check(config.save_total_limit is None or config.save_total_limit >= 1,
          f"--save-total-limit must be at least 1, got {config.save_total_limit}")
    check(config.early_stopping_patience is None or config.early_stopping_patience >= 1,
          f"--early-stopping-patience must be at least 1, got {config.early_stopping_patience}")
    check(config.early_stopping_threshold >= 0,
          f"--early-stopping-threshold must be 0 or more, got {config.early_stopping_threshold}")
    if config.resume not in (None, "auto") and not Path(config.resume).is_dir():
        problems.append(f"--resume {config.resume!r} is not a checkpoint folder; pass 'auto' or an existing "
                        f"checkpoints/step-N folder")
    for name in ("max_train_samples", "max_eval_samples"):
        value = getattr(config, name)
        check(value is None or value >= 1, f"--{name.replace('_', '-')} must be at least 1, got {value}")

    if config.train_file and config.dataset:
        problems.append("--train-file and --dataset are both given; pass only one data source")
    if config.dataset is None and config.train_file is None and (config.validation_file or config.test_file):
        problems.append("--validation-file or --test-file given without --train-file; pass --train-file too")
    extra_formats = getattr(task, "file_formats", None) or {}
    for flag in ("train_file", "validation_file", "test_file"):
        path = getattr(config, flag)
        if path is None:
            continue
        option = "--" + flag.replace("_", "-")
        if not Path(path).is_file():
            problems.append(f"{option} {path!r} not found; check the path")
        elif data_format(path, extra_formats) is None:
            known = ", ".join(sorted({**DATA_FORMATS, **extra_formats}))
            problems.append(f"{option} {path!r} has an unknown format; use one of {known}")
    for name in ("epochs", "learning_rate", "weight_decay", "warmup_ratio", "max_grad_norm", "validation_split",
                 "early_stopping_threshold", "attention_dropout"):
        value = getattr(config, name)
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    check(0 <= config.seed < 2**32, f"--seed must be between 0 and 2**32 - 1, got {config.seed}")
    problems.extend(_output_dir_problems(config))
    if isinstance(config, DistillConfig):
        problems.extend(_distill_problems(config))
    if task is not None:
        problems.extend(task.validate_config(config))

    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))


# Linux limits in bytes: NAME_MAX for a file name (ext4, XFS) and PATH_MAX for a whole path.
NAME_MAX = 255
PATH_MAX = 4096


def _output_dir_problems(config: FinetuneConfig) -> list[str]:
    """Return the problems with ``--output-dir``: its name, its place, and the inputs it would replace."""
    from taskforge.outputs import STAGING_SUFFIX, has_checkpoints, staging_path, unfinished_run_message

    value = config.output_dir
    if value is None:
        return []
    output = Path(value)
    if "\0" in value:
        return [f"--output-dir {value!r} contains a NUL character; pass a plain path"]
    if not value.strip() or output.name in ("", ".", ".."):
        return [f"--output-dir {value!r} is not a directory name; pass a path such as outputs/run1"]
    too_long = _overlong_output_name(value)
    if too_long is not None:
        return [too_long]
    if len(os.fsencode(str(staging_path(output).absolute()))) >= PATH_MAX:
        return [f"--output-dir is a path of more than {PATH_MAX} bytes with '{STAGING_SUFFIX}' added; "
                f"choose a shorter path"]
    if output.is_symlink() and not output.exists():
        return [f"--output-dir {value!r} is a symbolic link to a missing folder; remove the link or choose another "
                f"--output-dir"]

    problems = []
    if output.exists() and not output.is_dir():
        problems.append(f"--output-dir {value!r} is a file; pass a directory path")
    elif not output.parent.is_dir() and output.parent.exists():
        problems.append(f"--output-dir {value!r} is inside {str(output.parent)!r}, which is a file")
    else:
        # The run writes <output-dir>.partial beside the target, so the nearest existing folder
        # above it must be writable.
        existing = output.absolute().parent
        while not existing.exists():
            existing = existing.parent
        if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
            problems.append(f"--output-dir {value!r} cannot be written: {str(existing)!r} is not writable; "
                            f"choose a directory you can write to")
        elif config.overwrite and output.is_dir() and not os.access(output, os.W_OK):
            problems.append(f"--output-dir {value!r} is not writable, so --overwrite cannot replace it; "
                            f"choose a directory you can write to")
    if output.is_dir() and not config.overwrite:
        problems.append(f"--output-dir {value!r} already exists; pass --overwrite (overwrite=True in Python) to replace it "
                        f"or choose another directory")
    problems.extend(_inputs_in_output_dir(config))
    problems.extend(_reserved_names_taken(value))

    if config.resume is None and not config.overwrite:
        staging = staging_path(value)
        if has_checkpoints(staging):
            problems.append(unfinished_run_message(staging))
    return problems


def _overlong_output_name(output_dir: str) -> str | None:
    """Return the problem with a folder name in ``output_dir`` too long to create, or None."""
    from taskforge.outputs import STAGING_SUFFIX

    *parents, last = Path(output_dir).parts or ("",)
    for part in parents:
        if len(os.fsencode(part)) > NAME_MAX:
            return (f"--output-dir has a folder name of {len(os.fsencode(part))} bytes ({part[:24]!r}...); "
                    f"names can have at most {NAME_MAX}; choose a shorter path")
    limit = NAME_MAX - len(STAGING_SUFFIX)
    if len(os.fsencode(last)) > limit:
        return (f"--output-dir ends in a name of {len(os.fsencode(last))} bytes ({last[:24]!r}...); it can have at most "
                f"{limit}, as the run writes to '<name>{STAGING_SUFFIX}' first; choose a shorter name")
    return None


def _reserved_names_taken(output_dir: str) -> list[str]:
    """Return a problem for each file or link where the run needs its own staging or backup folder."""
    from taskforge.outputs import retired_path, staging_path

    problems = []
    for folder in (staging_path(output_dir), retired_path(output_dir)):
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            problems.append(f"{str(folder)!r} exists and is not a folder, but the run writes a folder there for "
                            f"--output-dir {output_dir!r}; move it away or choose another --output-dir")
    return problems


def _inputs_in_output_dir(config: FinetuneConfig) -> list[str]:
    """Return a problem for each input file or model inside the folders that the run replaces or deletes."""
    from taskforge.errors import TaskforgeError
    from taskforge.models import PACKAGED_MODELS, resolve_model
    from taskforge.outputs import retired_path, staging_path

    assert config.output_dir is not None
    # The run writes to these names as given, so each is resolved on its own. Through a symbolic
    # link, <output-dir>.partial can lie outside the target's resolved folder.
    replaced = [Path(folder).resolve() for folder in (config.output_dir, staging_path(config.output_dir),
                                                      retired_path(config.output_dir))]
    distilling = isinstance(config, DistillConfig)
    models = [("--student" if distilling else "--model", config.model)]
    if distilling:
        models.append(("--teacher", config.teacher))
    inputs = [(flag, value, Path(value)) for flag, value in (("--train-file", config.train_file),
              ("--validation-file", config.validation_file), ("--test-file", config.test_file)) if value is not None]
    for flag, value in models:
        if value is None:
            continue
        if value in PACKAGED_MODELS:
            try:
                inputs.append((flag, value, Path(resolve_model(value, flag))))
            except TaskforgeError:
                continue
        else:
            # Model paths expand ~ as resolve_model does.
            inputs.append((flag, value, Path(value).expanduser()))
    problems = []
    for flag, value, location in inputs:
        if not location.exists():
            continue
        path = location.resolve()
        for folder in replaced:
            if path == folder or folder in path.parents:
                problems.append(f"{flag} {value!r} is inside {str(folder)!r}, which the run replaces; "
                                f"choose another --output-dir")
                break
    return problems


def _distill_problems(config: DistillConfig) -> list[str]:
    problems = []
    if config.teacher is None or not str(config.teacher).strip():
        problems.append("no teacher given; pass --teacher with a model directory fine-tuned by 'taskforge finetune'")
    if config.model is None and config.student_layers is None:
        problems.append("no student given; pass --student DIR_OR_ID, or --student-layers N to cut one from the teacher")
    if config.model is not None and config.student_layers is not None:
        problems.append(f"--student {config.model!r} and --student-layers {config.student_layers!r} are both given; "
                        f"pass only one")

    if config.student_layers is not None:
        try:
            parse_student_layers(config.student_layers, teacher_layers=None)
        except ConfigError as error:
            problems.append(str(error))

    for name in ("temperature", "alpha", "hidden_weight"):
        value = getattr(config, name)
        if not math.isfinite(value):
            problems.append(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    if math.isfinite(config.temperature) and config.temperature <= 0:
        problems.append(f"--temperature must be greater than 0, got {config.temperature}")
    elif math.isfinite(config.temperature) and not MIN_TEMPERATURE <= config.temperature <= MAX_TEMPERATURE:
        # Far outside this range the softened distributions become one-hot or uniform in float32, so the
        # soft loss and its gradient vanish, or T^2 overflows. The bounds leave room around the usual 1 to 10.
        problems.append(f"--temperature must be between {MIN_TEMPERATURE} and {MAX_TEMPERATURE}, got {config.temperature}")
    if math.isfinite(config.alpha) and not 0 <= config.alpha <= 1:
        problems.append(f"--alpha must be between 0 and 1, got {config.alpha}")
    if math.isfinite(config.hidden_weight) and config.hidden_weight < 0:
        problems.append(f"--hidden-weight must be 0 or more, got {config.hidden_weight}")

    if config.cache_teacher and config.hidden_weight > 0:
        problems.append("--cache-teacher keeps only the teacher's logits, not its hidden states; pass --hidden-weight 0 "
                        "or drop --cache-teacher")
    if config.cache_teacher and config.alpha == 0:
        problems.append("--cache-teacher with --alpha 0: the run uses no teacher outputs; drop --cache-teacher")
    return problems


def data_format(path: str, extra_formats: Mapping[str, str] | None = None) -> str | None:
    """Return the data format of ``path`` from its extension, or None when it is unknown.

    ``extra_formats`` maps further extensions to formats, as a task's ``file_formats`` does.
    """
    suffix = Path(path).suffix.lower()
    return DATA_FORMATS.get(suffix) or (extra_formats or {}).get(suffix)


def coerce_fields(cls: type, values: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Convert ``values`` to the field types of dataclass ``cls``, raising one error for all problems."""
    hints = get_type_hints(cls)
    names = [field.name for field in dataclasses.fields(cls)]
    result: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean --{close[0].replace('_', '-')}?" if close else ""
            known = ", ".join("--" + n.replace("_", "-") for n in names)
            problems.append(f"unknown option --{name.replace('_', '-')} for {owner} (its options: {known}){hint}")
            continue
        try:
            result[name] = _coerce(value, hints[name])
        except (TypeError, ValueError) as error:
            problems.append(f"--{name.replace('_', '-')} {value!r}: {error}")
    if problems:
        raise ConfigError("invalid task options: " + "; ".join(problems))
    return result


def _coerce(value: Any, annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Union or (origin is not None and type(None) in get_args(annotation)):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0])
    if origin is Literal:
        if value not in get_args(annotation):
            raise ValueError(f"expected one of {', '.join(map(str, get_args(annotation)))}")
        return value
    if origin is list:
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",")]
        elif isinstance(value, (list, tuple)):
            items = [str(item) for item in value]
        else:
            raise TypeError("expected a list or a comma-separated string")
        if not items or any(item == "" for item in items):
            raise ValueError("expected non-empty comma-separated names")
        return items
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
            return value.lower() in {"true", "yes", "1"}
        raise TypeError("expected true or false")
    if annotation is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError("expected an integer")
        try:
            return int(value)
        except (TypeError, ValueError, OverflowError):
            raise TypeError("expected an integer") from None
    if annotation is float:
        if isinstance(value, bool):
            raise TypeError("expected a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise TypeError("expected a number") from None
    if annotation is str:
        if isinstance(value, (list, tuple, dict, set)):
            raise TypeError("expected a single text value")
        return str(value)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise TypeError("expected a mapping of option names to values")
        return dict(value)
    return value
