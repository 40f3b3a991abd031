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
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Sampler

from taskforge import checkpoint
from taskforge.errors import PluginError, TaskforgeError
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
    final_evaluation: dict[str, Any]
    """The evaluation of the model that is saved: the best one, or the last with --no-load-best-model."""
    best_step: int | None = None
    skipped_steps: int = 0
    stop_reason: str | None = None
    final_predictions: list[Any] | None = None
    """The validation predictions of the saved model, or None when this process did not make them (a
    best step from before a resume)."""


class MetricsLog:
    """Append-only ``metrics.jsonl``: one JSON object per line, keyed by ``step``, main process only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records of steps after ``step``, which a resumed run writes again."""
        if self.path is None or not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


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

    def select_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration yields.

        Not named ``set_epoch`` on purpose: Accelerate's data loader calls ``set_epoch`` with its own
        count of iterations, which restarts at 0 in a resumed process.
        """
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
    run_dir: Path | None = None,
    training_module: torch.nn.Module | None = None,
    train_collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]] | None = None,
    extra_columns: Sequence[str] = (),
) -> TrainResult:
    """Fine-tune ``model`` on ``train_features``, evaluating after each epoch and every ``eval_steps``.

    ``run_dir`` is the run's staging directory: checkpoints go to ``run_dir/checkpoints`` and the
    best model so far to ``run_dir/best``. Without it, nothing is saved during training.

    ``training_module`` replaces ``model`` as the module that is optimised and checkpointed, such as a
    distillation wrapper that contains ``model``. Its output has a ``loss`` and may have
    ``loss_terms``, a dict of named parts of the loss that are logged beside it. ``model`` is still
    the one evaluated and saved. ``train_collator`` batches the training features, and
    ``extra_columns`` names feature columns the training module needs beyond the model's inputs.
    """
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    assert config.batch_size is not None
    assert config.epochs is not None
    assert config.learning_rate is not None
    accumulation = config.gradient_accumulation_steps

    # Data: length-grouped batches, sharded across processes by Accelerate.
    columns = model_input_columns(model, train_features)
    columns += [column for column in extra_columns if column in train_features.column_names and column not in columns]
    lengths = [len(ids) for ids in train_features["input_ids"]]
    sampler = LengthGroupedBatchSampler(lengths, config.batch_size, config.seed, config.group_by_length)
    train_loader = DataLoader(train_features.select_columns(columns), batch_sampler=sampler,
                              collate_fn=train_collator or collator)

    # Optimizer and schedule. Biases and LayerNorm weights get no weight decay.
    module = training_module if training_module is not None else model
    decay, no_decay = [], []
    for name, parameter in module.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    module, optimizer, train_loader = accelerator.prepare(module, optimizer, train_loader)
    if training_module is None:
        model = module
    steps_per_epoch = math.ceil(len(train_loader) / accumulation)
    max_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    # Capped so that at least one step runs at a learning rate above zero.
    warmup_steps = min(math.ceil(config.warmup_ratio * max_steps), max_steps - 1)
    # The scheduler stays outside accelerator.prepare, which would step it once per process, but is
    # registered so that checkpoints include it.
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, max_steps)
    accelerator.register_for_checkpointing(scheduler)

    # State, restored from a checkpoint when resuming.
    checkpoints_dir = run_dir / checkpoint.CHECKPOINTS_DIR if run_dir is not None else None
    best_dir = run_dir / "best" if run_dir is not None else None
    state = checkpoint.TrainerState(resume_fields=checkpoint.resume_fields(config))
    last_checkpoint: Path | None = None
    if config.resume is not None and checkpoints_dir is not None:
        if config.resume == "auto":
            last_checkpoint = checkpoint.find_resumable(checkpoints_dir)
            if last_checkpoint is None:
                logger.info("--resume auto: no checkpoint in %s, so training starts from the beginning", checkpoints_dir)
        else:
            last_checkpoint = Path(config.resume)
        if last_checkpoint is not None:
            state = checkpoint.load_checkpoint(accelerator, last_checkpoint, config, config.force_resume)
            metrics_log.truncate_after(state.global_step)

    examples_per_step = config.batch_size * accumulation * accelerator.num_processes
    logger.info(
        "training on %d examples for %s epochs: %d optimizer steps of %d examples "
        "(batch size %d x accumulation %d x %d processes), %d warmup steps",
        len(train_features), config.epochs, max_steps, examples_per_step, config.batch_size, accumulation,
        accelerator.num_processes, warmup_steps,
    )
    metric_name = task.metric_for_best_model
    # A metric named like a loss is minimised, whatever greater_is_better states.
    greater_is_better = task.greater_is_better and "loss" not in metric_name.lower()

    train_seconds = 0.0
    stop_reason: str | None = None
    # Validation predictions of the best and of the latest evaluation, kept for Task.write_predictions.
    kept_predictions: dict[str, tuple[int, list[Any]]] = {}
    interrupt = _InterruptFlag()
    progress = tqdm(total=max_steps, initial=state.global_step, desc="training",
                    disable=not (accelerator.is_main_process and logger.isEnabledFor(logging.INFO)))

    def run_evaluation() -> None:
        nonlocal stop_reason
        for eval_set in eval_sets:
            if eval_set.name != "validation":
                continue
            metrics, predictions = evaluate_examples(
                task, model, eval_set.examples, eval_set.features, labels, collator, config.eval_batch_size, accelerator
            )
            kept_predictions["last"] = (state.global_step, predictions)
            record = {"step": state.global_step, "epoch": round(state.global_step / steps_per_epoch, 4),
                      "split": eval_set.name}
            record.update(metrics)
            state.evaluations.append(record)
            metrics_log.write(record)
            shown = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items() if isinstance(value, float))
            logger.info("step %d: %s %s", state.global_step, eval_set.name, shown)

            # Best model and early stopping. A tie is not an improvement.
            if metric_name not in metrics:
                raise PluginError(f"task {task.name!r} names {metric_name!r} as metric_for_best_model, but "
                                  f"compute_metrics returned only: {', '.join(metrics)}")
            value = float(metrics[metric_name])
            threshold = config.early_stopping_threshold
            improved = state.best_metric is None or (
                value > state.best_metric + threshold if greater_is_better else value < state.best_metric - threshold
            )
            if improved:
                state.best_metric, state.best_step = value, state.global_step
                kept_predictions["best"] = (state.global_step, predictions)
                state.evaluations_without_improvement = 0
                if best_dir is not None and config.load_best_model and accelerator.is_main_process:
                    accelerator.unwrap_model(model).save_pretrained(best_dir)
            else:
                state.evaluations_without_improvement += 1
                patience = config.early_stopping_patience
                if patience is not None and state.evaluations_without_improvement >= patience:
                    stop_reason = (f"early stopping at step {state.global_step}: {metric_name} has not improved on "
                                   f"{state.best_metric:.4f} (step {state.best_step}) for {patience} evaluations")
        module.train()

    def save(reason: str) -> None:
        nonlocal last_checkpoint
        if checkpoints_dir is None or not config.save_checkpoints:
            return
        if last_checkpoint is not None and last_checkpoint.name == f"step-{state.global_step:06d}":
            return  # already saved at this step, for example by --save-steps just before a signal
        last_checkpoint = checkpoint.save_checkpoint(accelerator, checkpoints_dir, state, config.save_total_limit)
        logger.debug("checkpoint after %s", reason)

    module.train()
    # The bar is closed on errors too, so that an error message starts on a line of its own.
    try:
        with interrupt.installed():
            # Skipped steps do not count, so the epoch count also bounds the loop.
            while state.global_step < max_steps and state.epoch < math.ceil(config.epochs) and stop_reason is None:
                sampler.select_epoch(state.epoch)
                loader = train_loader
                if state.batches_in_epoch:
                    loader = accelerator.skip_first_batches(train_loader, state.batches_in_epoch)
                # Fetching the first batch makes the data loader draw a seed from the global RNG. Restoring
                # the state keeps that draw from shifting dropout masks, which would then differ between a
                # straight run and one resumed mid-epoch.
                rng_state = torch.get_rng_state()
                batches = iter(loader)
                first = next(batches, None)
                torch.set_rng_state(rng_state)
                batches = itertools.chain([first] if first is not None else [], batches)
                started = time.perf_counter()
                while state.global_step < max_steps and stop_reason is None:
                    window = list(itertools.islice(batches, accumulation))
                    if not window:
                        break

                    # Loss weights: each micro-batch's share of the loss units of the whole window, over
                    # all processes. DDP averages gradients over processes, hence the factor num_processes.
                    units = [task.loss_units(batch) for batch in window]
                    window_units = accelerator.reduce(torch.tensor(float(sum(units)), device=accelerator.device), "sum").item()
                    if window_units == 0:
                        raise RuntimeError(f"micro-batches of step {state.global_step + 1} contain no loss units (no labels)")

                    # Forward and backward; gradients are synchronised only on the window's last micro-batch.
                    window_loss = torch.zeros((), device=accelerator.device)
                    window_terms: dict[str, torch.Tensor] = {}
                    for index, batch in enumerate(window):
                        last = index == len(window) - 1
                        with contextlib.nullcontext() if last else accelerator.no_sync(module):
                            outputs = module(**batch)
                            weight = units[index] / window_units
                            accelerator.backward(outputs.loss * weight * accelerator.num_processes)
                        window_loss += outputs.loss.detach().float() * weight
                        for term, value in (getattr(outputs, "loss_terms", None) or {}).items():
                            window_terms[term] = window_terms.get(term, 0.0) + value.detach().float() * weight
                        state.micro_step += 1
                    state.batches_in_epoch += len(window)
                    step_loss = accelerator.reduce(window_loss, "sum").item()
                    step_terms = {term: accelerator.reduce(value, "sum").item() for term, value in sorted(window_terms.items())}

                    # Clip. A non-finite loss or gradient norm stops the run, or skips the update.
                    grad_norm = None
                    if config.max_grad_norm > 0:
                        grad_norm = accelerator.clip_grad_norm_(module.parameters(), config.max_grad_norm)
                    fault = _nonfinite(step_loss, grad_norm, accelerator)
                    if fault is not None:
                        optimizer.zero_grad(set_to_none=True)
                        if not config.skip_nonfinite:
                            raise NonFiniteLossError(
                                f"{fault} at step {state.global_step + 1} (epoch {state.epoch + 1}); the last good "
                                f"checkpoint is {last_checkpoint or 'none'}. Likely causes: a learning rate too high "
                                f"(now {scheduler.get_last_lr()[0]:.3g}), or fp16 overflow (try --precision bf16 or "
                                f"fp32). Pass --skip-nonfinite to skip such steps"
                            )
                        state.skipped_steps += 1
                        logger.warning("skipped step %d: %s (%d skipped so far, --skip-nonfinite)",
                                       state.global_step + 1, fault, state.skipped_steps)
                        continue

                    # Optimizer step and schedule.
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    state.global_step += 1
                    progress.update(1)

                    # Log the true loss of the step, summed over processes.
                    state.logged_loss_sum += step_loss
                    state.logged_loss_steps += 1
                    state.total_loss_sum += step_loss
                    for term, value in step_terms.items():
                        state.logged_terms[term] = state.logged_terms.get(term, 0.0) + value
                    if state.global_step % config.logging_steps == 0 or state.global_step == max_steps:
                        mean_loss = state.logged_loss_sum / state.logged_loss_steps
                        record = {
                            "step": state.global_step,
                            "epoch": round(state.global_step / steps_per_epoch, 4),
                            "loss": round(mean_loss, 6),
                        }
                        record.update({term: round(total / state.logged_loss_steps, 6)
                                       for term, total in state.logged_terms.items()})
                        record["learning_rate"] = scheduler.get_last_lr()[0]
                        metrics_log.write(record)
                        progress.set_postfix(loss=f"{mean_loss:.4f}", **{
                            term.removeprefix("loss_"): f"{total / state.logged_loss_steps:.4f}"
                            for term, total in state.logged_terms.items()})
                        state.logged_loss_sum, state.logged_loss_steps = 0.0, 0
                        state.logged_terms = {}

                    # Evaluate and checkpoint every eval_steps / save_steps; the end of an epoch does both
                    # below. The time spent is not training time.
                    end_of_epoch = state.batches_in_epoch >= len(train_loader)
                    evaluate_now = bool(config.eval_steps) and state.global_step % config.eval_steps == 0
                    save_now = bool(config.save_steps) and state.global_step % config.save_steps == 0
                    if not end_of_epoch and state.global_step < max_steps and (evaluate_now or save_now):
                        train_seconds += time.perf_counter() - started
                        if evaluate_now:
                            run_evaluation()
                        if save_now:
                            save(f"step {state.global_step}")
                        started = time.perf_counter()

                    # A signal is acted on here, at a step boundary, on every process at once.
                    if interrupt.agreed(accelerator):
                        train_seconds += time.perf_counter() - started
                        save("an interrupt")
                        raise TrainingInterrupted(
                            f"interrupted by {interrupt.signal_name} at step {state.global_step}; "
                            + (f"checkpoint saved to {last_checkpoint}. Resume by running the same command with --resume auto"
                               if last_checkpoint is not None else "no checkpoint was saved (--no-save-checkpoints)")
                        )

                train_seconds += time.perf_counter() - started
                if state.batches_in_epoch >= len(train_loader):
                    state.epoch += 1
                    state.batches_in_epoch = 0
                if not state.evaluations or state.evaluations[-1]["step"] != state.global_step:
                    run_evaluation()
                save(f"epoch {state.epoch}")
    finally:
        progress.close()
    if stop_reason is not None:
        logger.info("%s", stop_reason)

    # Keep the best model: its weights replace the last ones before the output is saved.
    final_record = state.evaluations[-1] if state.evaluations else {}
    if state.best_step is not None:
        best_record = next(r for r in reversed(state.evaluations) if r["step"] == state.best_step)
        if config.load_best_model and best_dir is not None and state.best_step != state.global_step:
            accelerator.wait_for_everyone()
            _load_weights(accelerator.unwrap_model(model), best_dir)
            final_record = best_record
        logger.info("best model: step %d with %s %.4f; %s", state.best_step, metric_name, state.best_metric,
                    "saving it" if config.load_best_model else "saving the last model (--no-load-best-model)")

    saved_step = final_record.get("step")
    final_predictions = next((predictions for step, predictions in kept_predictions.values() if step == saved_step), None)
    trained_examples = min(len(train_features) * config.epochs, state.global_step * examples_per_step)
    return TrainResult(
        global_step=state.global_step,
        epochs=round(state.global_step / steps_per_epoch, 4),
        train_loss=state.total_loss_sum / max(state.global_step, 1),
        train_seconds=train_seconds,
        train_examples_per_second=trained_examples / train_seconds if train_seconds > 0 else 0.0,
        evaluations=state.evaluations,
        final_evaluation=final_record,
        best_step=state.best_step,
        skipped_steps=state.skipped_steps,
        stop_reason=stop_reason,
        final_predictions=final_predictions,
    )


class NonFiniteLossError(TaskforgeError, FloatingPointError):
    """A NaN or infinite loss or gradient norm during training."""


class TrainingInterrupted(TaskforgeError):
    """Training stopped by SIGINT or SIGTERM after saving a checkpoint; the CLI exits with 130."""

    exit_code = 130


class _InterruptFlag:
    """Records SIGINT and SIGTERM so the loop can stop at the next step boundary."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

        def handle(number: int, frame: Any) -> None:
            if self.signal_name is not None:
                # A second signal stops at once, without a checkpoint.
                sys.exit(128 + number)
            self.signal_name = signal.Signals(number).name
            logger.warning("%s received: saving a checkpoint at the end of this step", self.signal_name)

        for number in previous:
            signal.signal(number, handle)
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def agreed(self, accelerator: Accelerator) -> bool:
        """Return True on every process when any process received a signal."""
        local = torch.tensor(1.0 if self.signal_name else 0.0, device=accelerator.device)
        if accelerator.num_processes > 1:
            local = accelerator.reduce(local, "max")
        if local.item() > 0 and self.signal_name is None:
            self.signal_name = "a signal on another process"
        return local.item() > 0


def _nonfinite(step_loss: float, grad_norm: Any, accelerator: Accelerator) -> str | None:
    if not math.isfinite(step_loss):
        return f"the loss is {step_loss}"
    # Under fp16 the gradient scaler skips steps with overflowing gradients by itself.
    if grad_norm is not None and accelerator.mixed_precision != "fp16":
        norm = float(grad_norm)
        if not math.isfinite(norm):
            return f"the gradient norm is {norm}"
    return None


def _load_weights(model: torch.nn.Module, folder: Path) -> None:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    state_dict: dict[str, torch.Tensor] = {}
    for file in files:
        state_dict.update(load_file(str(file)))
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    # Tied weights (such as an output embedding) are saved once; everything else must match.
    if unexpected or any("embed" not in key and "tied" not in key for key in missing):
        raise RuntimeError(f"best model in {folder} does not match the model: missing {missing}, unexpected {unexpected}")
