"""Output directories written whole or not at all, and the files that describe a run."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from taskforge.errors import ConfigError, OutputExistsError

logger = logging.getLogger(__name__)

RUN_CONFIG_FILE = "taskforge_run.json"
METRICS_FILE = "metrics.json"
METRICS_LOG_FILE = "metrics.jsonl"
STAGING_SUFFIX = ".partial"
RETIRED_SUFFIX = ".old"


def staging_path(output_dir: str | os.PathLike[str]) -> Path:
    """Return ``<output_dir>.partial``, where a run writes until it is complete."""
    target = Path(output_dir)
    return target.with_name(target.name + STAGING_SUFFIX)


def retired_path(output_dir: str | os.PathLike[str]) -> Path:
    """Return ``<output_dir>.old``, where ``--overwrite`` moves the previous output while it swaps in the new one."""
    target = Path(output_dir)
    return target.with_name(target.name + RETIRED_SUFFIX)


def has_checkpoints(staging: Path) -> bool:
    """Return True when ``staging`` contains checkpoints of an unfinished run."""
    return any((staging / "checkpoints").glob("step-*"))


def unfinished_run_message(staging: Path) -> str:
    """Return the error text for a staging directory whose checkpoints a new run would delete."""
    return (f"{str(staging)!r} contains checkpoints of an unfinished run; pass --resume auto to continue it, "
            f"or --overwrite to start over")


@contextlib.contextmanager
def staged_directory(output_dir: str | os.PathLike[str], overwrite: bool, is_main: bool = True,
                     resume: bool = False) -> Iterator[Path]:
    """Yield a staging directory that replaces ``output_dir`` only when the block succeeds.

    The staging directory is ``<output_dir>.partial`` beside the target. When the block raises, it
    is removed, unless it contains checkpoints to resume from. A resumed run keeps it. Checkpoints and
    the best-model copy are deleted once the run succeeds. Only the main process writes.
    """
    target = Path(output_dir)
    staging = staging_path(target)
    checkpoints = staging / "checkpoints"
    if is_main:
        if target.exists() and not overwrite:
            raise OutputExistsError(
                f"output directory {str(target)!r} already exists; pass --overwrite (overwrite=True in Python) "
                f"to replace it or choose another"
            )
        if staging.exists() and not resume:
            if has_checkpoints(staging) and not overwrite:
                raise OutputExistsError(unfinished_run_message(staging))
            shutil.rmtree(staging)
        try:
            staging.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"could not create {str(staging)!r} for --output-dir {str(target)!r}: {error.strerror}; "
                              f"choose a directory you can write to") from None
    try:
        yield staging
    except BaseException:
        if is_main:
            if has_checkpoints(staging):
                logger.warning("kept %s with its checkpoints; run the same command with --resume auto to continue",
                               staging)
            else:
                shutil.rmtree(staging, ignore_errors=True)
        raise
    if is_main:
        shutil.rmtree(checkpoints, ignore_errors=True)
        shutil.rmtree(staging / "best", ignore_errors=True)
        try:
            if target.exists():
                # Move the old output aside first so that a failure here still leaves one complete copy.
                retired = retired_path(target)
                shutil.rmtree(retired, ignore_errors=True)
                target.rename(retired)
                staging.rename(target)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                staging.rename(target)
        except OSError as error:
            raise ConfigError(f"the finished run is in {str(staging)!r}, but it could not replace {str(target)!r}: "
                              f"{error.strerror}; move it there by hand") from None


def library_versions() -> dict[str, str]:
    """Return the versions of Python and of the libraries that decide a run's result."""
    versions = {"python": platform.python_version()}
    for name in ("taskforge", "torch", "transformers", "accelerate", "datasets", "evaluate", "tokenizers"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


def write_model_card(path: Path, run: dict[str, Any], metrics: dict[str, Any], example_input: Any = "an example input") -> None:
    """Write a short model card: what was trained, on what, how, and how well."""
    config = run["config"]
    labels = run.get("labels")
    lines = [
        "---",
        "library_name: transformers",
        "tags:",
        "- taskforge",
        f"- {run['task']}",
        "---",
        "",
        f"# {Path(config['output_dir']).name}",
        "",
        f"Fine-tuned with taskforge {run['versions'].get('taskforge', '')} for the task `{run['task']}`, "
        f"starting from `{run['base_model']}`.",
        "",
        "## Training",
        "",
        f"- Training data: {run['data'].get('train', 'n/a')} ({run['data'].get('train_examples', '?')} examples)",
        f"- Validation data: {run['data'].get('validation', 'held out from the training data')} ({run['data'].get('validation_examples', '?')} examples)",
        f"- Epochs: {config['epochs']}, batch size: {config['batch_size']}, learning rate: {config['learning_rate']}, "
        f"max length: {config['max_length']}, precision: {run['precision']}, seed: {config['seed']}",
    ]
    if labels:
        lines.append(f"- Labels: {', '.join(labels)}")
    distillation = run.get("distillation")
    if distillation:
        student = (f"teacher layers {', '.join(map(str, distillation['student_layers']))}"
                   if distillation["student_layers"] else f"`{run['base_model']}`")
        if distillation["alpha"] == 0 and distillation["hidden_weight"] == 0:
            lines.append(f"- Student made of {student} from `{distillation['teacher']}`, trained on the labels alone "
                         f"(alpha 0, no distillation loss)")
        else:
            lines.append(f"- Distilled from the teacher `{distillation['teacher']}` into a student made of {student}: "
                         f"alpha {distillation['alpha']}, temperature {distillation['temperature']}, "
                         f"hidden-state loss weight {distillation['hidden_weight']}")
    lines += ["", "## Results", "", "| split | metric | value |", "| --- | --- | --- |"]
    for split, values in metrics.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if isinstance(value, float):
                lines.append(f"| {split} | {key} | {value:.4f} |")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "import taskforge",
        f'predictor = taskforge.load("{config["output_dir"]}")',
        f"print(predictor.predict([{example_input!r}]))",
        "```",
        "",
        f"The resolved configuration, seed and library versions are in `{RUN_CONFIG_FILE}`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
