"""The training loop: length-grouped batches, and gradient accumulation equal to one large batch."""

from __future__ import annotations

import copy
import random
from collections import Counter

import pytest
import torch

from taskforge.config import resolve
from taskforge.engine import LengthGroupedBatchSampler, MetricsLog, train
from taskforge.registry import get_task
from taskforge.task import ColumnOptions, DataFile

# -- LengthGroupedBatchSampler --------------------------------------------------------------------


def random_lengths(count: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 512) for _ in range(count)]


def batches_of(sampler: LengthGroupedBatchSampler, epoch: int) -> list[list[int]]:
    sampler.select_epoch(epoch)
    return [list(batch) for batch in sampler]


@pytest.mark.parametrize("group_by_length", [True, False])
def test_sampler_yields_each_index_once(group_by_length):
    lengths = random_lengths(1003)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=8, seed=1, group_by_length=group_by_length)

    for epoch in range(3):
        indices = [index for batch in batches_of(sampler, epoch) for index in batch]
        assert sorted(indices) == list(range(1003))


def test_sampler_batch_count():
    sampler = LengthGroupedBatchSampler(random_lengths(1003), batch_size=8, seed=1)
    batches = batches_of(sampler, 0)

    # 1003 = 125 * 8 + 3: 126 batches, one of them with the 3 left over.
    assert len(sampler) == 126
    assert len(batches) == 126
    assert sorted(len(batch) for batch in batches) == [3] + [8] * 125


def test_sampler_longest_batch_first():
    # 1003 examples make 3 chunks of 50 batches, so the longest batch must be moved to the front.
    lengths = random_lengths(1003)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=8, seed=1)

    for epoch in range(3):
        batches = batches_of(sampler, epoch)
        first_max = max(lengths[i] for i in batches[0])
        assert first_max == max(lengths)
        assert all(first_max >= max(lengths[i] for i in batch) for batch in batches[1:])


def test_sampler_groups_similar_lengths():
    # Lengths 0..99 fit in one chunk, so each batch of 10 contains 10 consecutive lengths.
    lengths = list(range(100))
    sampler = LengthGroupedBatchSampler(lengths, batch_size=10, seed=0)

    groups = {frozenset(batch) for batch in batches_of(sampler, 0)}

    assert groups == {frozenset(range(start, start + 10)) for start in range(0, 100, 10)}


def test_sampler_epochs_differ():
    sampler = LengthGroupedBatchSampler(random_lengths(200), batch_size=8, seed=1)

    assert batches_of(sampler, 0) != batches_of(sampler, 1)


def test_sampler_same_seed_repeats():
    lengths = random_lengths(200)
    first = LengthGroupedBatchSampler(lengths, batch_size=8, seed=7)
    second = LengthGroupedBatchSampler(lengths, batch_size=8, seed=7)

    assert batches_of(first, 2) == batches_of(second, 2)


def test_sampler_seed_changes_order():
    lengths = random_lengths(200)
    first = LengthGroupedBatchSampler(lengths, batch_size=8, seed=7)
    second = LengthGroupedBatchSampler(lengths, batch_size=8, seed=8)

    assert batches_of(first, 0) != batches_of(second, 0)


# -- gradient accumulation ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classification_setup(data_dir, tokenizer, tiny_bert_dir):
    """The classification task, its labelled features of the toy data, and a tiny BERT classifier."""
    task = get_task("classification")
    examples = task.load_examples(DataFile(str(data_dir / "train.csv"), "csv", "train"), ColumnOptions())
    labels = task.label_set(examples, ColumnOptions())
    features = task.preprocess(examples, tokenizer, max_length=32, labels=labels, training=True)
    torch.manual_seed(0)
    # No dropout, so that the forward pass depends only on the inputs.
    model = task.build_model(
        str(tiny_bert_dir), labels, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    return task, features, labels, model


def train_one_step(setup, tokenizer, example_count: int, batch_size: int, accumulation: int):
    """Train a copy of the setup's model for one optimizer step, and return it, its gradient and the result.

    The gradient is read by hooks that fire after each backward pass, so the last value per
    parameter is the gradient accumulated over the whole window, before the optimizer step.
    """
    from accelerate import Accelerator

    task, features, labels, model = setup
    model = copy.deepcopy(model)
    config = resolve({
        "task": "classification",
        "epochs": 1,
        "batch_size": batch_size,
        "gradient_accumulation_steps": accumulation,
        "learning_rate": 1e-4,
        "warmup_ratio": 0,
        "weight_decay": 0,
        "max_grad_norm": 0,
        "group_by_length": False,
        "precision": "fp32",
        "seed": 0,
    })
    gradients: dict[str, torch.Tensor] = {}

    def record(name: str):
        return lambda parameter: gradients.__setitem__(name, parameter.grad.detach().clone())

    hooks = [parameter.register_post_accumulate_grad_hook(record(name)) for name, parameter in model.named_parameters()]
    try:
        result = train(
            task, model, features.select(range(example_count)), [], labels, task.collator(tokenizer), config,
            Accelerator(cpu=True), MetricsLog(None),
        )
    finally:
        for hook in hooks:
            hook.remove()
    return model, gradients, result


def max_parameter_difference(first: torch.nn.Module, second: torch.nn.Module) -> float:
    second_parameters = dict(second.named_parameters())
    return max((p - second_parameters[name]).abs().max().item() for name, p in first.named_parameters())


def relative_gradient_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    """Return ||first - second|| / ||first||, over all parameters as one vector."""
    difference = sum(((first[name] - second[name]) ** 2).sum() for name in first) ** 0.5
    norm = sum((first[name] ** 2).sum() for name in first) ** 0.5
    return (difference / norm).item()


# One optimizer step over the same set of examples has the same mean gradient whatever the order
# in which the sampler shuffles them, so one batch of N and accumulated micro-batches must agree.
# Summing in another order leaves fp32 differences near 1e-5 of the gradient norm. The first AdamW
# step moves each weight by about the learning rate (1e-4) times the sign of its gradient, so
# parameters differ by under 1e-7 where the gradients agree.
@pytest.mark.parametrize("example_count, batch_size, accumulation", [
    (32, 8, 4),  # micro-batches 8, 8, 8, 8 against one batch of 32
    (28, 8, 4),  # micro-batches 8, 8, 8, 4 against one batch of 28
])
def test_accumulation_matches_large_batch(classification_setup, tokenizer, example_count, batch_size, accumulation):
    large, large_gradients, large_result = train_one_step(
        classification_setup, tokenizer, example_count, example_count, 1
    )
    accumulated, accumulated_gradients, accumulated_result = train_one_step(
        classification_setup, tokenizer, example_count, batch_size, accumulation
    )
    initial = classification_setup[3]

    assert large_result.global_step == 1
    assert accumulated_result.global_step == 1
    assert set(accumulated_gradients) == set(large_gradients)
    assert relative_gradient_difference(large_gradients, accumulated_gradients) <= 1e-4
    assert max_parameter_difference(large, accumulated) <= 1e-6
    assert accumulated_result.train_loss == pytest.approx(large_result.train_loss, abs=1e-6)
    # The step moved the weights, so the comparison above is not between two untouched models.
    assert max_parameter_difference(large, initial) > 5e-5


def test_uneven_window_weights_examples(classification_setup, tokenizer):
    # Equal weights for micro-batches 8, 8, 8, 4 would give the last 4 examples twice their share.
    # So the gradient matches one batch of 28 only when the window weights each example 1/28.
    _, equal_share, _ = train_one_step(classification_setup, tokenizer, 28, 28, 1)
    _, short_window, _ = train_one_step(classification_setup, tokenizer, 28, 8, 4)
    _, other_examples, _ = train_one_step(classification_setup, tokenizer, 24, 24, 1)

    assert relative_gradient_difference(equal_share, short_window) <= 1e-4
    # The gradient depends on which examples it averages over, so the tolerance above can fail.
    assert relative_gradient_difference(equal_share, other_examples) > 1e-2


def test_steps_per_epoch_with_accumulation(classification_setup, tokenizer):
    # 28 examples in micro-batches of 8 make 4 micro-batches. Accumulation 3 gives windows of 3
    # and 1, so one epoch is 2 optimizer steps.
    from accelerate import Accelerator

    task, features, labels, model = classification_setup
    config = resolve({
        "task": "classification", "epochs": 1, "batch_size": 8, "gradient_accumulation_steps": 3,
        "learning_rate": 1e-3, "precision": "fp32", "seed": 0,
    }, task_defaults=task.defaults)

    result = train(
        task, copy.deepcopy(model), features.select(range(28)), [], labels, task.collator(tokenizer), config,
        Accelerator(cpu=True), MetricsLog(None),
    )

    assert result.global_step == 2
    assert result.epochs == 1.0


def test_train_batches_per_epoch(classification_setup, tokenizer):
    # 48 examples in batches of 8 for 2 epochs: 12 micro-steps, 6 per epoch. A forward hook reads
    # the unpadded token ids of every batch that reaches the model through Accelerate's loader.
    from accelerate import Accelerator

    task, features, labels, model = classification_setup
    model = copy.deepcopy(model)
    config = resolve({
        "task": "classification", "epochs": 2, "batch_size": 8, "learning_rate": 1e-4, "precision": "fp32",
        "seed": 0,
    }, task_defaults=task.defaults)
    batches: list[list[tuple[int, ...]]] = []

    def record(module, args, kwargs):
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        batches.append([tuple(row[row_mask.bool()].tolist()) for row, row_mask in zip(ids, mask)])

    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        train(task, model, features, [], labels, task.collator(tokenizer), config, Accelerator(cpu=True),
              MetricsLog(None))
    finally:
        handle.remove()
    every_example = Counter(tuple(ids) for ids in features["input_ids"])
    longest = max(len(ids) for ids in every_example)
    epochs = [batches[:6], batches[6:]]

    assert len(batches) == 12
    for epoch in epochs:
        assert Counter(ids for batch in epoch for ids in batch) == every_example
        assert max(len(ids) for ids in epoch[0]) == longest
    assert epochs[0] != epochs[1]
