"""The training loop: one loop on Accelerate for every task.

A ``step`` is one optimizer update; a ``micro_step`` is one forward and backward pass. A step spans
``gradient_accumulation_steps`` micro-batches, or fewer in the last window of an epoch. Each
micro-batch's loss is weighted by its share of the window's loss units (examples, or label tokens
for token-level tasks). So accumulating k micro-batches of size b gives the update of one batch of
size k*b.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Sampler

from taskforge.evaluation import evaluate_examples, model_input_columns

if TYPE_CHECKING:
    import datasets
    from accelerate import Accelerator

    from taskforge.config import FinetuneConfig
    from taskforge.task import LabelSet, Task

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class EvalSet:
    """Examples and their features, evaluated under ``name`` (``validation`` or ``test``)."""

    name: str
    examples: datasets.Dataset
    features: datasets.Dataset


@dataclasses.dataclass
class TrainResult:
    """Summary of a finished training loop."""

    global_step: int
    epochs: float
    train_loss: float
    train_seconds: float
    train_examples_per_second: float
    evaluations: list[dict[str, Any]]


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per line, keyed by ``step``, main process only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of examples of similar length, so that dynamic padding adds little.

    Each epoch shuffles the indices with ``seed + epoch``, sorts chunks of 50 batches by length, cuts
    them into batches and shuffles the batches. The longest batch goes first, so that running out
    of memory happens at the first step rather than hours in.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool = True) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group_by_length = group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        indices = list(range(len(self.lengths)))
        rng.shuffle(indices)
        if not self.group_by_length:
            yield from (indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size))
            return

        chunk = self.batch_size * 50
        batches: list[list[int]] = []
        for start in range(0, len(indices), chunk):
            group = sorted(indices[start : start + chunk], key=lambda i: -self.lengths[i])
            batches.extend(group[i : i + self.batch_size] for i in range(0, len(group), self.batch_size))
        longest = max(range(len(batches)), key=lambda b: max(self.lengths[i] for i in batches[b]))
        first = batches.pop(longest)
        rng.shuffle(batches)
        yield first
        yield from batches


def train(
    task: Task,
    model: torch.nn.Module,
    train_features: datasets.Dataset,
    eval_sets: Sequence[EvalSet],
    labels: LabelSet | None,
    collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    config: FinetuneConfig,
    accelerator: Accelerator,
    metrics_log: MetricsLog,
) -> TrainResult:
    """Fine-tune ``model`` on ``train_features`` and evaluate it after each epoch and every ``eval_steps``."""
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    assert config.batch_size is not None
    assert config.epochs is not None
    assert config.learning_rate is not None
    accumulation = config.gradient_accumulation_steps

    # Data: length-grouped batches, sharded across processes by Accelerate.
    columns = model_input_columns(model, train_features)
    lengths = [len(ids) for ids in train_features["input_ids"]]
    sampler = LengthGroupedBatchSampler(lengths, config.batch_size, config.seed, config.group_by_length)
    train_loader = DataLoader(train_features.select_columns(columns), batch_sampler=sampler, collate_fn=collator)

    # Optimizer and schedule. Biases and LayerNorm weights get no weight decay.
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    steps_per_epoch = math.ceil(len(train_loader) / accumulation)
    max_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    # Capped so that at least one step runs at a learning rate above zero.
    warmup_steps = min(math.ceil(config.warmup_ratio * max_steps), max_steps - 1)
    # The scheduler stays outside accelerator.prepare, which would step it once per process.
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, max_steps)

    examples_per_step = config.batch_size * accumulation * accelerator.num_processes
    logger.info(
        "training on %d examples for %s epochs: %d optimizer steps of %d examples "
        "(batch size %d x accumulation %d x %d processes), %d warmup steps",
        len(train_features), config.epochs, max_steps, examples_per_step, config.batch_size, accumulation,
        accelerator.num_processes, warmup_steps,
    )

    global_step = 0
    micro_step = 0
    epoch = 0
    logged_loss_sum = 0.0
    logged_loss_steps = 0
    total_loss_sum = 0.0
    evaluations: list[dict[str, Any]] = []
    train_seconds = 0.0
    show_progress = accelerator.is_main_process and logger.isEnabledFor(logging.INFO)
    progress = tqdm(total=max_steps, desc="training", disable=not show_progress)

    def run_evaluation() -> None:
        for eval_set in eval_sets:
            if eval_set.name != "validation":
                continue
            metrics, _ = evaluate_examples(
                task, model, eval_set.examples, eval_set.features, labels, collator, config.eval_batch_size, accelerator
            )
            record = {"step": global_step, "epoch": round(global_step / steps_per_epoch, 4), "split": eval_set.name}
            record.update(metrics)
            evaluations.append(record)
            metrics_log.write(record)
            shown = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items() if isinstance(value, float))
            logger.info("step %d: %s %s", global_step, eval_set.name, shown)
        model.train()

    model.train()
    while global_step < max_steps:
        sampler.set_epoch(epoch)
        batches = iter(train_loader)
        started = time.perf_counter()
        while global_step < max_steps:
            window = list(itertools.islice(batches, accumulation))
            if not window:
                break

            # Loss weights: each micro-batch's share of the loss units of the whole window, over
            # all processes. DDP averages gradients over processes, hence the factor num_processes.
            units = [task.loss_units(batch) for batch in window]
            window_units = accelerator.reduce(torch.tensor(float(sum(units)), device=accelerator.device), "sum").item()
            if window_units == 0:
                raise RuntimeError(f"micro-batches of step {global_step + 1} contain no loss units (no labels)")

            # Forward and backward; gradients are synchronised only on the window's last micro-batch.
            window_loss = torch.zeros((), device=accelerator.device)
            for index, batch in enumerate(window):
                last = index == len(window) - 1
                with contextlib.nullcontext() if last else accelerator.no_sync(model):
                    outputs = model(**batch)
                    weight = units[index] / window_units
                    accelerator.backward(outputs.loss * weight * accelerator.num_processes)
                window_loss += outputs.loss.detach().float() * weight
                micro_step += 1

            # Clip, optimizer step, schedule.
            if config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            global_step += 1
            progress.update(1)

            # Log the true loss of the step, summed over processes.
            step_loss = accelerator.reduce(window_loss, "sum").item()
            logged_loss_sum += step_loss
            logged_loss_steps += 1
            total_loss_sum += step_loss
            if global_step % config.logging_steps == 0 or global_step == max_steps:
                mean_loss = logged_loss_sum / logged_loss_steps
                record = {
                    "step": global_step,
                    "epoch": round(global_step / steps_per_epoch, 4),
                    "loss": round(mean_loss, 6),
                    "learning_rate": scheduler.get_last_lr()[0],
                }
                metrics_log.write(record)
                progress.set_postfix(loss=f"{mean_loss:.4f}")
                logged_loss_sum, logged_loss_steps = 0.0, 0

            # Evaluate every eval_steps; the time spent is not training time.
            if (
                config.eval_steps
                and global_step % config.eval_steps == 0
                and global_step % steps_per_epoch != 0
                and global_step < max_steps
            ):
                train_seconds += time.perf_counter() - started
                run_evaluation()
                started = time.perf_counter()

        train_seconds += time.perf_counter() - started
        epoch += 1
        run_evaluation()
    progress.close()

    trained_examples = min(len(train_features) * config.epochs, max_steps * examples_per_step)
    return TrainResult(
        global_step=global_step,
        epochs=round(global_step / steps_per_epoch, 4),
        train_loss=total_loss_sum / max(global_step, 1),
        train_seconds=train_seconds,
        train_examples_per_second=trained_examples / train_seconds if train_seconds > 0 else 0.0,
        evaluations=evaluations,
    )
