"""End-to-end ``taskforge finetune`` and ``taskforge evaluate`` runs on tiny models."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import FAST_FLAGS, invoke_cli

TIMING_KEYS = ("seconds", "examples_per_second")


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def without_timing(metrics: dict) -> dict:
    """Return metrics.json without the wall-clock fields, which differ between identical runs."""
    return {
        split: {key: value for key, value in values.items() if split != "train" or key not in TIMING_KEYS}
        for split, values in metrics.items()
    }


@pytest.fixture(scope="module")
def renamed_sentiment(tmp_path_factory, tiny_distilbert_dir, data_dir):
    """Output dir and CLI result of sentiment with --label-names, a test file and no validation file."""
    output_dir = tmp_path_factory.mktemp("runs") / "renamed"
    result = invoke_cli(
        "finetune", "--task", "sentiment", "--model", tiny_distilbert_dir,
        "--train-file", data_dir / "train.csv", "--test-file", data_dir / "validation.csv",
        "--label-column", "sentiment", "--label-names", "bad,good", "--epochs", "1",
        "--output-dir", output_dir, *FAST_FLAGS,
    )
    return output_dir, result


# -- classification on text pairs with string labels ----------------------------------------------


def test_classifier_exit_code(trained_classifier):
    output_dir, result = trained_classifier

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output_dir"] == str(output_dir)


@pytest.mark.parametrize("name", [
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "taskforge_run.json", "metrics.json", "metrics.jsonl", "README.md",
])
def test_classifier_writes_file(trained_classifier, name):
    output_dir, _ = trained_classifier

    assert (output_dir / name).is_file()


def test_no_partial_dir_left(trained_classifier):
    output_dir, _ = trained_classifier

    assert [path.name for path in output_dir.parent.iterdir()] == [output_dir.name]


def test_config_has_label_names(trained_classifier):
    config = read_json(trained_classifier[0] / "config.json")

    assert config["id2label"] == {"0": "neg", "1": "pos"}
    assert config["label2id"] == {"neg": 0, "pos": 1}
    assert config["taskforge"]["task"] == "classification"


def test_run_record_seed_versions(trained_classifier):
    import torch
    import transformers

    run = read_json(trained_classifier[0] / "taskforge_run.json")

    assert run["config"]["seed"] == 42
    assert run["config"]["text_pair_column"] == "text_pair"
    assert run["versions"]["taskforge"] == "0.1.0"
    assert run["versions"]["torch"] == torch.__version__
    assert run["versions"]["transformers"] == transformers.__version__
    assert run["labels"] == ["neg", "pos"]


def test_metrics_log_keyed_by_step(trained_classifier):
    records = read_jsonl(trained_classifier[0] / "metrics.jsonl")
    validation_steps = [record["step"] for record in records if record.get("split") == "validation"]
    loss_steps = [record["step"] for record in records if "loss" in record]

    assert all("step" in record for record in records)
    # 48 examples in batches of 8: 6 steps per epoch, evaluated after each of the 4 epochs.
    assert validation_steps == [6, 12, 18, 24]
    # Logging every 50 steps logs the loss once, at the last step.
    assert loss_steps == [24]


def test_metrics_file_summary(trained_classifier):
    metrics = read_json(trained_classifier[0] / "metrics.json")

    assert metrics["train"]["steps"] == 24
    assert metrics["train"]["epochs"] == 4.0
    assert set(metrics["validation"]["per_class"]) == {"neg", "pos"}


def test_classifier_learns_toy_data(trained_classifier):
    metrics = read_json(trained_classifier[0] / "metrics.json")

    assert metrics["validation"]["accuracy"] >= 0.9


def test_model_card_names_labels(trained_classifier):
    card = (trained_classifier[0] / "README.md").read_text(encoding="utf-8")

    assert "`classification`" in card
    assert "- Labels: neg, pos" in card
    assert "seed: 42" in card


# -- sentiment on 0/1 labels ----------------------------------------------------------------------


def test_sentiment_exit_code(trained_sentiment):
    assert trained_sentiment[1].exit_code == 0, trained_sentiment[1].stderr


def test_sentiment_names_binary_labels(trained_sentiment):
    config = read_json(trained_sentiment[0] / "config.json")

    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["taskforge"]["label_values"] == ["0", "1"]


def test_sentiment_learns_toy_data(trained_sentiment):
    metrics = read_json(trained_sentiment[0] / "metrics.json")

    assert metrics["validation"]["accuracy"] >= 0.9


def test_label_names_override(renamed_sentiment):
    output_dir, result = renamed_sentiment
    config = read_json(output_dir / "config.json")

    assert result.exit_code == 0, result.stderr
    assert config["id2label"] == {"0": "bad", "1": "good"}


def test_held_out_split_logged(renamed_sentiment):
    output_dir, result = renamed_sentiment
    run = read_json(output_dir / "taskforge_run.json")

    # 24 examples per label: round(0.1 * 24) = 2 held out from each.
    assert "no validation file: held out 4 of 48 training examples" in result.stderr
    assert "--validation-file" in result.stderr
    assert run["data"]["train_examples"] == 44
    assert run["data"]["validation_examples"] == 4


def test_test_file_evaluated(renamed_sentiment):
    output_dir, _ = renamed_sentiment
    metrics = read_json(output_dir / "metrics.json")
    test_records = [record for record in read_jsonl(output_dir / "metrics.jsonl") if record.get("split") == "test"]

    assert "accuracy" in metrics["test"]
    assert len(test_records) == 1
    assert test_records[0]["accuracy"] == metrics["test"]["accuracy"]


# -- sample data, overwrite, evaluation and logging steps -----------------------------------------


@pytest.fixture(scope="module")
def sample_data_run(tmp_path_factory, tiny_distilbert_dir):
    """Sentiment on its shipped sample data, over an earlier output, evaluating every 2 steps."""
    output_dir = tmp_path_factory.mktemp("runs") / "sample"
    output_dir.mkdir()
    (output_dir / "stale.txt").write_text("earlier run")
    result = invoke_cli(
        "finetune", "--task", "sentiment", "--model", tiny_distilbert_dir, "--max-train-samples", "32",
        "--max-eval-samples", "20", "--epochs", "1", "--eval-steps", "2", "--logging-steps", "1",
        "--overwrite", "--output-dir", output_dir, *FAST_FLAGS,
    )
    return output_dir, result


def test_sample_data_used(sample_data_run):
    output_dir, result = sample_data_run
    run = read_json(output_dir / "taskforge_run.json")

    assert result.exit_code == 0, result.stderr
    assert "using the sample data shipped with task 'sentiment'" in result.stderr
    assert run["data"]["train_examples"] == 32
    assert run["data"]["validation_examples"] == 20
    assert run["labels"] == ["negative", "positive"]


def test_overwrite_replaces_output(sample_data_run):
    output_dir, _ = sample_data_run

    assert not (output_dir / "stale.txt").exists()
    assert (output_dir / "model.safetensors").is_file()
    assert [path.name for path in output_dir.parent.iterdir()] == [output_dir.name]


def test_eval_and_logging_steps(sample_data_run):
    records = read_jsonl(sample_data_run[0] / "metrics.jsonl")
    validation_steps = [record["step"] for record in records if record.get("split") == "validation"]
    loss_steps = [record["step"] for record in records if "loss" in record]

    # 32 examples in batches of 8: 4 steps. Every 2 steps, and at the end of the epoch, which is
    # also step 4, so step 4 is evaluated once.
    assert validation_steps == [2, 4]
    assert loss_steps == [1, 2, 3, 4]


# -- configuration file ---------------------------------------------------------------------------


def test_config_file_precedence(tmp_path, tiny_distilbert_dir, data_dir, run_cli):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("epochs: 1\nlearning_rate: 0.02\nbatch_size: 16\nseed: 3\n")

    result = run_cli(
        "finetune", "--task", "sentiment", "--model", tiny_distilbert_dir, "--config", config_file,
        "--train-file", data_dir / "train.csv", "--validation-file", data_dir / "validation.csv",
        "--label-column", "sentiment", "--output-dir", tmp_path / "out", *FAST_FLAGS,
    )
    run = read_json(tmp_path / "out" / "taskforge_run.json")
    metrics = read_json(tmp_path / "out" / "metrics.json")

    assert result.exit_code == 0, result.stderr
    assert run["config"]["batch_size"] == 8  # flag over file
    assert run["config"]["learning_rate"] == 0.02  # file over the task default 1e-4
    assert run["config"]["seed"] == 3  # file over the default 42
    assert run["config"]["epochs"] == 1.0
    assert run["config"]["warmup_ratio"] == 0.06  # task default
    assert run["config"]["eval_batch_size"] == 64  # dataclass default
    # 48 examples in batches of 8 (not 16) for 1 epoch.
    assert metrics["train"]["steps"] == 6


# -- determinism ----------------------------------------------------------------------------------


def test_same_seed_same_result(trained_classifier, tmp_path, tiny_bert_dir, data_dir, run_cli):
    from safetensors.torch import load_file

    first_dir, _ = trained_classifier
    result = run_cli(
        "finetune", "--task", "classification", "--model", tiny_bert_dir,
        "--train-file", data_dir / "train.csv", "--validation-file", data_dir / "validation.csv",
        "--text-pair-column", "text_pair", "--epochs", "4", "--learning-rate", "5e-3",
        "--output-dir", tmp_path / "again", *FAST_FLAGS,
    )
    first_weights = load_file(first_dir / "model.safetensors")
    second_weights = load_file(tmp_path / "again" / "model.safetensors")

    assert result.exit_code == 0, result.stderr
    assert without_timing(read_json(tmp_path / "again" / "metrics.json")) == without_timing(
        read_json(first_dir / "metrics.json")
    )
    assert set(second_weights) == set(first_weights)
    assert all(first_weights[name].equal(second_weights[name]) for name in first_weights)


# -- task given as module:attribute ---------------------------------------------------------------


@pytest.fixture(scope="module")
def local_task_run(tmp_path_factory, tiny_distilbert_dir, data_dir):
    """Output dir and CLI result of a run whose --task is a class in a local module.

    The module's folder stays on sys.path while the module's tests run.
    """
    module_dir = tmp_path_factory.mktemp("local-task")
    (module_dir / "toy_topic_task.py").write_text(textwrap.dedent("""
        from taskforge_classification import ClassificationTask

        class TopicTask(ClassificationTask):
            name = "toy-topic"
            description = "Topic classification from a local module"
    """))
    output_dir = module_dir / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(module_dir))
        result = invoke_cli(
            "finetune", "--task", "toy_topic_task:TopicTask", "--model", tiny_distilbert_dir,
            "--train-file", data_dir / "train.csv", "--validation-file", data_dir / "validation.csv",
            "--epochs", "1", "--output-dir", output_dir, *FAST_FLAGS,
        )
        yield output_dir, result


def test_local_task_trains(local_task_run):
    output_dir, result = local_task_run

    assert result.exit_code == 0, result.stderr
    assert read_json(output_dir / "taskforge_run.json")["task"] == "toy-topic"


def test_local_task_model_loads(local_task_run):
    import taskforge

    output_dir, _ = local_task_run
    predictions = taskforge.load(output_dir, precision="fp32").predict(["the food was good"])

    assert predictions[0]["label"] in {"neg", "pos"}


# -- use of the output ----------------------------------------------------------------------------


def test_pipeline_returns_label_names(trained_sentiment):
    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(trained_sentiment[0]), device="cpu")
    results = classifier(["the food was great", "the hotel was awful"])

    assert {result["label"] for result in results} <= {"negative", "positive"}


def test_evaluate_matches_training_metrics(trained_classifier, data_dir, run_cli):
    output_dir, _ = trained_classifier

    result = run_cli(
        "evaluate", "--model-dir", output_dir, "--data-file", data_dir / "validation.csv", "--precision", "fp32"
    )
    printed = json.loads(result.stdout)
    trained = read_json(output_dir / "metrics.json")["validation"]

    assert result.exit_code == 0, result.stderr
    assert printed["accuracy"] == trained["accuracy"]
    assert printed["f1_macro"] == trained["f1_macro"]
    assert printed["per_class"] == trained["per_class"]


def test_evaluate_writes_output_file(trained_sentiment, data_dir, tmp_path, run_cli):
    output_dir, _ = trained_sentiment

    result = run_cli(
        "evaluate", "--model-dir", output_dir, "--data-file", data_dir / "validation.csv", "--precision", "fp32",
        "--output-file", tmp_path / "scores.json",
    )

    assert result.exit_code == 0, result.stderr
    assert read_json(tmp_path / "scores.json") == json.loads(result.stdout)


def test_bf16_model_trains_in_float32(tmp_path, tiny_bert_dir, data_dir, run_cli):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = tmp_path / "bf16"
    AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).to(torch.bfloat16).save_pretrained(base)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(base)

    result = run_cli("finetune", "--task", "classification", "--model", base, "--train-file",
                     data_dir / "train.csv", "--output-dir", tmp_path / "out", "--epochs", "1", *FAST_FLAGS)

    assert result.exit_code == 0, result.stderr
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as weights:
        dtypes = {weights.get_tensor(key).dtype for key in weights.keys()}
    assert dtypes == {torch.float32}
