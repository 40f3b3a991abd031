"""Checkpoints: training state written whole or not at all, found again, and checked before resuming.

A checkpoint is a folder ``checkpoints/step-000120`` inside the run's staging directory. It contains
what ``Accelerator.save_state`` writes (model, optimizer, gradient scaler, schedule, every random
number state) and ``trainer_state.json`` (step, epoch, position in the epoch, best-model and
early-stopping state, and the configuration fields that decide the result). ``manifest.json`` lists
every file with its size and SHA-256, so a truncated or corrupt checkpoint is detected when loading.
The folder is written as ``step-000120.tmp`` and renamed when complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskforge.errors import ConfigError, TaskforgeError

if TYPE_CHECKING:
    from accelerate import Accelerator

    from taskforge.config import FinetuneConfig

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
MANIFEST_FILE = "manifest.json"

# Configuration fields whose change makes a resumed run differ from an uninterrupted one.
RESUME_FIELDS = (
    "task", "model", "train_file", "validation_file", "dataset", "dataset_config", "text_column",
    "text_pair_column", "label_column", "label_names", "header", "max_train_samples", "validation_split",
    "drop_invalid", "epochs", "batch_size", "learning_rate", "weight_decay", "warmup_ratio", "max_length",
    "gradient_accumulation_steps", "max_grad_norm", "group_by_length", "seed", "task_options",
    "attention_dropout", "precision",
    # Distillation runs only.
    "teacher", "student_layers", "temperature", "alpha", "hidden_weight",
)


class CheckpointError(TaskforgeError, RuntimeError):
    """A checkpoint that cannot be used to resume."""


@dataclasses.dataclass
class TrainerState:
    """Progress of a training run, saved in every checkpoint."""

    global_step: int = 0
    micro_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    """Micro-batches of the current epoch already trained on."""
    best_metric: float | None = None
    best_step: int | None = None
    evaluations_without_improvement: int = 0
    skipped_steps: int = 0
    total_loss_sum: float = 0.0
    logged_loss_sum: float = 0.0
    """Loss summed over the steps since the last logged loss, so a resumed run logs the same mean."""
    logged_loss_steps: int = 0
    logged_terms: dict[str, float] = dataclasses.field(default_factory=dict)
    """Sums of the loss terms (such as a distillation run's ``loss_soft``) since the last logged loss."""
    evaluations: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    resume_fields: dict[str, Any] = dataclasses.field(default_factory=dict)


def resume_fields(config: FinetuneConfig) -> dict[str, Any]:
    """Return the configuration fields a resumed run must share with the run it continues."""
    values = dataclasses.asdict(config)
    return {name: values.get(name) for name in RESUME_FIELDS}


def save_checkpoint(accelerator: Accelerator, checkpoints_dir: Path, state: TrainerState, keep: int | None) -> Path:
    """Write a checkpoint for ``state.global_step`` and delete all but the newest ``keep``."""
    final = checkpoints_dir / f"step-{state.global_step:06d}"
    temporary = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (temporary / STATE_FILE).write_text(json.dumps(dataclasses.asdict(state), indent=2), encoding="utf-8")
        (temporary / MANIFEST_FILE).write_text(json.dumps(_manifest(temporary), indent=2), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        temporary.rename(final)
        if keep is not None:
            for old in list_checkpoints(checkpoints_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        logger.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Return the complete checkpoint folders, oldest first; ``.tmp`` folders are never complete."""
    if not checkpoints_dir.is_dir():
        return []
    folders = [p for p in checkpoints_dir.iterdir() if p.is_dir() and p.name.startswith("step-") and "." not in p.name]
    return sorted(folders, key=lambda p: int(p.name.split("-", 1)[1]))


def find_resumable(checkpoints_dir: Path) -> Path | None:
    """Return the newest checkpoint that passes its manifest, warning about each newer one that fails."""
    candidates = list_checkpoints(checkpoints_dir)
    rejected: list[tuple[Path, str]] = []
    for checkpoint in reversed(candidates):
        problem = verify_checkpoint(checkpoint)
        if problem is None:
            for bad, reason in rejected:
                logger.warning("checkpoint %s is unusable (%s); resuming from the previous one, %s",
                               bad, reason, checkpoint)
            return checkpoint
        rejected.append((checkpoint, problem))
    for bad, reason in rejected:
        logger.warning("checkpoint %s is unusable (%s)", bad, reason)
    return None


def verify_checkpoint(checkpoint: Path) -> str | None:
    """Return why ``checkpoint`` cannot be used, or None when every file matches its manifest."""
    manifest_path = checkpoint / MANIFEST_FILE
    if not manifest_path.is_file():
        return f"{MANIFEST_FILE} is missing"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        return f"{MANIFEST_FILE} is unreadable: {error}"
    for name, expected in manifest.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{name} has {path.stat().st_size} bytes, expected {expected['size']}"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match its checksum"
    return None


def load_checkpoint(accelerator: Accelerator, checkpoint: Path, config: FinetuneConfig, force: bool) -> TrainerState:
    """Restore the accelerator's state from ``checkpoint`` and return the saved trainer state.

    Raises :class:`ConfigError` naming the differing fields when the configuration changed in a way
    that changes the result, unless ``force`` is set.
    """
    problem = verify_checkpoint(checkpoint)
    if problem is not None:
        raise CheckpointError(f"checkpoint {str(checkpoint)!r} is unusable: {problem}")
    saved = json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
    state = TrainerState(**saved)
    current = resume_fields(config)
    # A checkpoint of an older taskforge lacks the fields added since, so those are not compared.
    differences = [
        f"{name}: {state.resume_fields.get(name)!r} -> {current.get(name)!r}"
        for name in RESUME_FIELDS
        if name in state.resume_fields and _normalise(state.resume_fields[name]) != _normalise(current.get(name))
    ]
    if differences and not force:
        raise ConfigError(
            f"cannot resume from {str(checkpoint)!r} because the configuration changed ({'; '.join(differences)}); "
            f"restore those values, or pass --force-resume to continue anyway"
        )
    if differences:
        logger.warning("resuming from %s with a changed configuration (--force-resume): %s; the position in "
                       "the data is kept as a count of batches, so a changed batch size skips or repeats examples",
                       checkpoint, "; ".join(differences))
    state.resume_fields = current
    try:
        accelerator.load_state(str(checkpoint))
    except RuntimeError as error:
        # The first line of load_state_dict's error names the problem, and the rest lists every key.
        if "state_dict" not in str(error):
            raise
        reason = str(error).splitlines()[0].rstrip(":")
        raise ConfigError(
            f"checkpoint {str(checkpoint)!r} does not match the model ({reason}), and --force-resume cannot "
            f"change the model's shape; restore the model options, or pass --overwrite to start over"
        ) from None
    logger.info("resumed from %s at step %d (epoch %d, %d batches into it)", checkpoint, state.global_step,
                state.epoch, state.batches_in_epoch)
    return state


def _manifest(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        str(path.relative_to(folder)): {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_FILE
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _normalise(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalise(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
