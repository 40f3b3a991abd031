"""``taskforge distill`` on the qa task: start and end logits distilled over the positions of each window."""

from __future__ import annotations

import json

import pytest
import torch

from qa_testdata import FAST_FLAGS, error_lines, invoke_cli

# Fixtures; tiny_bert_dir needs tokenizer, which needs tokenizer_dir.
from qa_testdata import tiny_bert_dir, tokenizer, tokenizer_dir, toy_squad_dir  # noqa: F401

from taskforge_qa.task import QuestionAnsweringTask


@pytest.fixture(scope="module")
def qa_teacher(tmp_path_factory, tiny_bert_dir, toy_squad_dir):
    output_dir = tmp_path_factory.mktemp("runs") / "qa-teacher"
    result = invoke_cli(
        "finetune", "--task", "qa", "--model", tiny_bert_dir,
        "--train-file", toy_squad_dir / "train.json", "--validation-file", toy_squad_dir / "validation.json",
        "--epochs", "2", "--learning-rate", "5e-3", "--seed", "0", "--output-dir", output_dir, *FAST_FLAGS,
    )
    assert result.exit_code == 0, result.stderr
    return output_dir


def distill(teacher, squad_dir, output_dir, *extra):
    return invoke_cli(
        "distill", "--task", "qa", "--teacher", teacher, "--student-layers", "1",
        "--train-file", squad_dir / "train.json", "--validation-file", squad_dir / "validation.json",
        "--epochs", "1", "--learning-rate", "5e-3", "--seed", "0", "--logging-steps", "1",
        "--output-dir", output_dir, *FAST_FLAGS, *extra,
    )


def test_distillation_logits_mask_padding():
    task = QuestionAnsweringTask()
    outputs = {"start_logits": torch.tensor([[1.0, 2.0, 3.0]]), "end_logits": torch.tensor([[0.5, 0.0, 9.0]])}
    batch = {"attention_mask": torch.tensor([[1, 1, 0]])}

    logits = task.distillation_logits(outputs, batch)

    assert logits["start_logits"].tolist() == [[1.0, 2.0, -10000.0]]
    assert logits["end_logits"].tolist() == [[0.5, 0.0, -10000.0]]
    assert task.distillation_level == "token"


def test_distill_qa_student(tmp_path, qa_teacher, toy_squad_dir):
    import taskforge

    live = tmp_path / "live"
    result = distill(qa_teacher, toy_squad_dir, live)

    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in (live / "metrics.jsonl").read_text().splitlines()]
    losses = [record for record in records if "loss" in record]
    assert losses
    for record in losses:
        assert record["loss_soft"] >= 0
        assert "loss_task" in record
    validation = json.loads((live / "metrics.json").read_text())["validation"]
    assert {"exact_match", "f1"} <= set(validation)
    assert json.loads((live / "config.json").read_text())["num_hidden_layers"] == 1

    [answer] = taskforge.load(live, precision="fp32").predict(
        [{"question": "what colour is the kite?", "context": "the kite is red. the cup is old."}])
    assert {"answer", "start", "end", "score"} <= set(answer)

    # Cached teacher outputs, padded per window, teach the same student as the live teacher.
    cached = tmp_path / "cached"
    assert distill(qa_teacher, toy_squad_dir, cached, "--cache-teacher").exit_code == 0
    from safetensors.torch import load_file

    first, second = load_file(str(live / "model.safetensors")), load_file(str(cached / "model.safetensors"))
    # Float rounding differs because the cache pass pads the windows differently; the drift stays small.
    assert max(float((first[key] - second[key]).abs().max()) for key in first) <= 1e-3


def test_qa_refuses_a_teacher_with_another_tokenizer(tmp_path, qa_teacher, toy_squad_dir):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "kite", "is", "red"]) + "\n")
    student_dir = tmp_path / "student-model"
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(student_dir)
    BertModel(BertConfig(vocab_size=9, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=128)).save_pretrained(student_dir)

    result = invoke_cli(
        "distill", "--task", "qa", "--teacher", qa_teacher, "--student", student_dir,
        "--train-file", toy_squad_dir / "train.json", "--validation-file", toy_squad_dir / "validation.json",
        "--epochs", "1", "--output-dir", tmp_path / "out", *FAST_FLAGS,
    )

    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert "distils per token" in line
    assert "--student-layers" in line
    assert not (tmp_path / "out").exists()
