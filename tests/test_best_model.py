"""Best-model selection, early stopping and non-finite losses, through the CLI on the tiny BERT.

A scripted task returns a chosen sequence of values for its metric, one per evaluation, so the
expected stopping step and best step can be worked out by hand. The task also reports a
fingerprint of its predictions, which identifies the weights that produced them.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from conftest import FAST_FLAGS, error_lines

SCRIPTED_TASK = '''
from taskforge_classification import ClassificationTask

VALUES = {values!r}


class ScriptedTask(ClassificationTask):
    name = "scripted"
    metric_for_best_model = {metric!r}
    calls = 0

    def compute_metrics(self, predictions, examples, labels):
        result = super().compute_metrics(predictions, examples, labels)
        index = min(type(self).calls, len(VALUES) - 1)
        type(self).calls += 1
        result[self.metric_for_best_model] = VALUES[index]
        result["fingerprint"] = float(sum(float(p["probabilities"][1]) for p in predictions))
        return result
'''


def scripted_task(directory: Path, monkeypatch, metric: str, values: list[float]) -> str:
    module = f"scripted_{uuid.uuid4().hex[:8]}"
    (directory / f"{module}.py").write_text(SCRIPTED_TASK.format(metric=metric, values=values), encoding="utf-8")
    monkeypatch.syspath_prepend(str(directory))
    return f"{module}:ScriptedTask"


def finetune(run_cli, task: str, model_dir: Path, data_dir: Path, output_dir: Path, *extra: str):
    return run_cli(
        "finetune", "--task", task, "--model", model_dir, "--train-file", data_dir / "train.csv",
        "--validation-file", data_dir / "validation.csv", "--output-dir", output_dir, *FAST_FLAGS, *extra,
    )


def records(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


# 48 rows at batch size 8: 6 optimizer steps an epoch.


def test_early_stopping_on_ties(tmp_path, monkeypatch, run_cli, tiny_bert_dir, data_dir):
    # Evaluations: 0.5 (best), 0.7 (best), 0.7 (tie: 1 without improvement), 0.7 (2: stop).
    task = scripted_task(tmp_path, monkeypatch, "score", [0.5, 0.7, 0.7, 0.7, 0.9, 0.95])
    output_dir = tmp_path / "out"
    result = finetune(run_cli, task, tiny_bert_dir, data_dir, output_dir, "--epochs", "6",
                      "--early-stopping-patience", "2")

    assert result.exit_code == 0, result.stderr
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 24
    assert metrics["train"]["best_step"] == 12
    assert metrics["validation"]["score"] == 0.7
    evaluations = [r for r in records(output_dir) if r.get("split") == "validation"]
    assert [r["step"] for r in evaluations] == [6, 12, 18, 24]
    assert "early stopping at step 24" in result.stderr
    assert "best model: step 12 with score 0.7000" in result.stderr


def test_best_model_is_saved(tmp_path, monkeypatch, run_cli, tiny_bert_dir, data_dir):
    import taskforge

    task = scripted_task(tmp_path, monkeypatch, "score", [0.5, 0.9, 0.6, 0.4])
    output_dir = tmp_path / "out"
    result = finetune(run_cli, task, tiny_bert_dir, data_dir, output_dir, "--epochs", "4")
    assert result.exit_code == 0, result.stderr

    best = next(r for r in records(output_dir) if r.get("split") == "validation" and r["step"] == 12)
    last = [r for r in records(output_dir) if r.get("split") == "validation"][-1]
    again = taskforge.load(output_dir, precision="fp32").evaluate(data_dir / "validation.csv")

    assert last["step"] == 24
    assert again["fingerprint"] == pytest.approx(best["fingerprint"], abs=1e-4)
    assert again["fingerprint"] != pytest.approx(last["fingerprint"], abs=1e-4)


def test_loss_metric_is_minimised(tmp_path, monkeypatch, run_cli, tiny_bert_dir, data_dir):
    # A metric named like a loss is lower-is-better: 0.9, 0.5 (best), 0.6 (1), 0.7 (2: stop).
    task = scripted_task(tmp_path, monkeypatch, "eval_loss", [0.9, 0.5, 0.6, 0.7, 0.1])
    output_dir = tmp_path / "out"
    result = finetune(run_cli, task, tiny_bert_dir, data_dir, output_dir, "--epochs", "5",
                      "--early-stopping-patience", "2")

    assert result.exit_code == 0, result.stderr
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["train"]["best_step"] == 12
    assert metrics["train"]["steps"] == 24
    assert metrics["validation"]["eval_loss"] == 0.5


@pytest.fixture(scope="module")
def nan_model_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    """The tiny BERT with an embedding LayerNorm scaled to overflow, so every loss is NaN.

    The weights themselves stay finite: a NaN weight is rejected when the model loads.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_bert_dir)
    with torch.no_grad():
        model.embeddings.LayerNorm.weight.fill_(3e38)
    path = tmp_path_factory.mktemp("nan-bert")
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(path)
    return path


def test_nan_loss_stops_run(tmp_path, run_cli, nan_model_dir, data_dir):
    output_dir = tmp_path / "out"
    result = finetune(run_cli, "classification", nan_model_dir, data_dir, output_dir, "--epochs", "1")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "the loss is nan at step 1 (epoch 1)" in errors[0]
    assert "the last good checkpoint is none" in errors[0]
    assert "--skip-nonfinite" in errors[0]
    assert not output_dir.exists()
    assert not (tmp_path / "out.partial").exists()


def test_skip_nonfinite_counts_steps(tmp_path, run_cli, nan_model_dir, data_dir):
    output_dir = tmp_path / "out"
    result = finetune(run_cli, "classification", nan_model_dir, data_dir, output_dir, "--epochs", "1",
                      "--skip-nonfinite")

    assert result.exit_code == 0, result.stderr
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["train"]["skipped_steps"] == 6
    assert metrics["train"]["steps"] == 0
