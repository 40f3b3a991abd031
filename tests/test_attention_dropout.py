"""--attention-dropout: validation, the configuration key per architecture, and its effect on training."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertConfig, DistilBertConfig, T5Config

from conftest import FAST_FLAGS, invoke_cli
from taskforge.config import resolve, validate
from taskforge.distillation import cut_student
from taskforge.errors import ConfigError
from taskforge.models import attention_dropout_override
from taskforge_sentiment import SentimentTask
from test_config import valid_config


def test_sentiment_keeps_the_models_dropout():
    assert resolve({}, task_defaults=SentimentTask.defaults).attention_dropout is None


def test_flag_overrides_task_default():
    config = resolve({"attention_dropout": "0.05"}, task_defaults=SentimentTask.defaults)

    assert config.attention_dropout == 0.05


@pytest.mark.parametrize("value", [1.0, -0.1, float("nan")])
def test_out_of_range_rejected(tmp_path, value):
    with pytest.raises(ConfigError, match=r"--attention-dropout must be"):
        validate(valid_config(tmp_path, attention_dropout=value))


@pytest.mark.parametrize("config, key", [
    (BertConfig(), "attention_probs_dropout_prob"),
    (DistilBertConfig(), "attention_dropout"),
])
def test_override_key_per_architecture(config, key):
    assert attention_dropout_override(config, 0.0) == {key: 0.0}


def test_override_none_changes_nothing():
    assert attention_dropout_override(BertConfig(), None) == {}


def test_override_without_key_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="taskforge.models"):
        assert attention_dropout_override(T5Config(), 0.0) == {}

    assert "T5Config has no attention dropout setting" in caplog.text


def attention_matrices_saved(model: torch.nn.Module, length: int) -> int:
    """Count the [batch, heads, length, length] tensors one training step keeps for the backward pass."""
    model.train()
    batch = {
        "input_ids": torch.randint(5, 100, (2, length)),
        "attention_mask": torch.ones(2, length, dtype=torch.long),
        "labels": torch.tensor([0, 1]),
    }
    batch["attention_mask"][1, length // 2:] = 0
    shapes = []

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model(**batch).loss.backward()
    heads = model.config.num_attention_heads
    return sum(1 for shape in shapes if shape == (2, heads, length, length))


def test_dropout_zero_keeps_no_attention_matrix(tiny_bert_dir):
    """With dropout, every layer keeps its attention probabilities for the backward pass."""
    with_dropout = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    without = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=2, **attention_dropout_override(with_dropout.config, 0.0))

    assert with_dropout.config.attention_probs_dropout_prob == 0.1
    # Two layers, each keeping at least its attention probabilities.
    assert attention_matrices_saved(with_dropout, 48) >= 2
    assert attention_matrices_saved(without, 48) == 0


def test_cut_student_takes_the_setting(tiny_bert_dir):
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)

    student = cut_student(teacher, [1], attention_dropout_override(teacher.config, 0.0))

    assert student.config.attention_probs_dropout_prob == 0.0
    assert student.bert.encoder.layer[0].attention.self.dropout.p == 0.0
    assert teacher.bert.encoder.layer[1].attention.self.dropout.p == 0.1


def test_finetune_saves_attention_dropout(tmp_path, tiny_bert_dir, data_dir):
    output_dir = tmp_path / "run"

    result = invoke_cli(
        "finetune", "--task", "sentiment", "--model", tiny_bert_dir, "--train-file", data_dir / "train.csv",
        "--label-column", "sentiment", "--epochs", "1", "--attention-dropout", "0",
        "--output-dir", output_dir, *FAST_FLAGS,
    )

    assert result.exit_code == 0, result.stderr
    assert json.loads((output_dir / "config.json").read_text())["attention_probs_dropout_prob"] == 0.0
    assert json.loads((output_dir / "taskforge_run.json").read_text())["config"]["attention_dropout"] == 0.0
    assert "attention dropout 0.0 (the model's own is 0.1)" in result.stderr
