"""Bad input to ``taskforge finetune``: one ``Error:`` line naming the value and the fix, exit code 1.

Every case also checks that no output directory (nor its ``.partial`` staging folder) is left.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAST_FLAGS, command_options, error_lines, toy_rows, write_csv


def assert_no_output(output_dir: Path) -> None:
    assert not output_dir.exists()
    assert not output_dir.with_name(output_dir.name + ".partial").exists()


@pytest.fixture
def finetune(run_cli, tiny_bert_dir, tmp_path):
    """Run ``taskforge finetune`` on the tiny BERT into ``tmp_path/out`` with the given extra flags."""

    def run(*flags: str, task: str = "classification"):
        return run_cli(
            "finetune", "--task", task, "--model", tiny_bert_dir, "--epochs", "1",
            "--output-dir", tmp_path / "out", *FAST_FLAGS, *flags,
        )

    return run


@pytest.fixture
def finetune_to(run_cli, tiny_bert_dir, data_dir):
    """Run ``taskforge finetune`` on the tiny BERT and the toy data into the given output directory."""

    def run(output_dir, *flags: str):
        return run_cli("finetune", "--task", "classification", "--model", tiny_bert_dir, "--train-file",
                       data_dir / "train.csv", "--output-dir", output_dir, *FAST_FLAGS, *flags)

    return run


def test_missing_train_file(finetune, tmp_path):
    result = finetune("--train-file", tmp_path / "absent.csv")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "absent.csv" in errors[0]
    assert "--train-file" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_unknown_file_format(finetune, tmp_path):
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04")

    result = finetune("--train-file", tmp_path / "data.xlsx")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "data.xlsx" in errors[0]
    assert "--train-file" in errors[0]
    assert ".csv, .json, .jsonl, .parquet, .tsv" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_missing_label_column(finetune, data_dir, tmp_path):
    result = finetune("--train-file", data_dir / "train.csv", "--label-column", "stars")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "column 'stars' not found in" in errors[0]
    assert "train.csv" in errors[0]
    assert "columns are: text, text_pair, label, sentiment" in errors[0]
    assert "--label-column" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


@pytest.fixture
def file_with_empty_texts(tmp_path) -> Path:
    """48 toy rows with the text of rows 3 and 10 (counted from 1 after the header) blanked."""
    rows = toy_rows(48)
    rows[2]["text"] = ""
    rows[9]["text"] = "   "
    return write_csv(tmp_path / "gaps.csv", rows)


def test_empty_text_names_row(finetune, file_with_empty_texts, tmp_path):
    result = finetune("--train-file", file_with_empty_texts)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "gaps.csv row 3" in errors[0]
    assert "(2 rows in all)" in errors[0]
    assert "--drop-invalid" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_drop_invalid_skips_rows(finetune, file_with_empty_texts, data_dir, tmp_path):
    result = finetune(
        "--train-file", file_with_empty_texts, "--validation-file", data_dir / "validation.csv", "--drop-invalid"
    )

    assert result.exit_code == 0, result.stderr
    assert "dropped 2 of 48 rows" in result.stderr
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_unseen_validation_label(finetune, data_dir, tmp_path):
    rows = toy_rows(4)
    rows[2]["label"] = "neutral"
    validation_file = write_csv(tmp_path / "odd_labels.csv", rows)

    result = finetune("--train-file", data_dir / "train.csv", "--validation-file", validation_file)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "label 'neutral'" in errors[0]
    assert "odd_labels.csv row 3" in errors[0]
    assert "training labels are: neg, pos" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_fewer_examples_than_batch(finetune, data_dir, tmp_path):
    small_file = write_csv(tmp_path / "small.csv", toy_rows(5))

    result = finetune("--train-file", small_file, "--validation-file", data_dir / "validation.csv")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "small.csv has 5 training examples, fewer than one batch of 8" in errors[0]
    assert "--batch-size" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_unknown_task(finetune, data_dir, tmp_path):
    result = finetune("--train-file", data_dir / "train.csv", task="sentimnt")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "unknown task 'sentimnt'" in errors[0]
    assert "Did you mean 'sentiment'?" in errors[0]
    assert "taskforge tasks" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_model_not_found_offline(run_cli, data_dir, tmp_path):
    result = run_cli(
        "finetune", "--task", "classification", "--model", "some-org/nonexistent-model-xyz",
        "--train-file", data_dir / "train.csv", "--output-dir", tmp_path / "out", *FAST_FLAGS,
    )
    errors = error_lines(result.stderr)

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "'some-org/nonexistent-model-xyz'" in errors[0]
    assert "--model" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_missing_model_directory(run_cli, data_dir, tmp_path):
    result = run_cli(
        "finetune", "--task", "classification", "--model", tmp_path / "no-model",
        "--train-file", data_dir / "train.csv", "--output-dir", tmp_path / "out", *FAST_FLAGS,
    )
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "no-model" in errors[0]
    assert "--model" in errors[0]
    assert_no_output(tmp_path / "out")


@pytest.mark.parametrize("name", ["outputs/teacher2", "runs/sst2/teacher", "runs\\teacher"])
def test_model_path_typo_stays_local(tmp_path, monkeypatch, name):
    from taskforge.errors import ModelNotFoundError
    from taskforge.models import resolve_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()

    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model(name, "--teacher")

    assert str(caught.value) == f"model directory {name!r} not found; check the --teacher path"


@pytest.mark.parametrize("damage", ["no weights", "dropout 1.5"])
def test_damaged_model_directory(run_cli, tiny_bert_dir, data_dir, tmp_path, damage):
    import json
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_bert_dir, model_dir)
    if damage == "no weights":
        (model_dir / "model.safetensors").unlink()
    else:
        config = json.loads((model_dir / "config.json").read_text())
        (model_dir / "config.json").write_text(json.dumps({**config, "attention_probs_dropout_prob": 1.5}))

    result = run_cli(
        "finetune", "--task", "classification", "--model", model_dir,
        "--train-file", data_dir / "train.csv", "--output-dir", tmp_path / "out", *FAST_FLAGS,
    )
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert f"--model {str(model_dir)!r} could not be loaded" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_output_dir_exists(finetune, data_dir, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("earlier run")

    result = finetune("--train-file", data_dir / "train.csv")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert str(tmp_path / "out") in errors[0]
    assert "--overwrite" in errors[0]
    assert "Traceback" not in result.stderr
    # The earlier output stays as it was.
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["keep.txt"]
    assert not (tmp_path / "out.partial").exists()


def test_max_length_above_positions(finetune, data_dir, tmp_path):
    # The tokenizer allows 512 tokens but the tiny model has 128 position embeddings, and one
    # training text is longer than 128 tokens.
    rows = toy_rows(48)
    rows[0]["text"] = " ".join(["good"] * 200)
    train_file = write_csv(tmp_path / "long.csv", rows)

    result = finetune(
        "--train-file", train_file, "--validation-file", data_dir / "validation.csv", "--max-length", "256"
    )
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "--max-length 256" in errors[0]
    assert "128" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_unknown_config_key(finetune, data_dir, tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("learning_rat: 0.1\n")

    result = finetune("--train-file", data_dir / "train.csv", "--config", config_file)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "unknown option(s) in config file" in errors[0]
    assert "'learning_rat'" in errors[0]
    assert "did you mean 'learning_rate'?" in errors[0]
    assert_no_output(tmp_path / "out")


def test_label_names_count_mismatch(finetune, data_dir, tmp_path):
    result = finetune("--train-file", data_dir / "train.csv", "--label-names", "bad,good,neutral")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "--label-names gives 3 names (bad, good, neutral) for 2 labels" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_max_length_above_model(finetune, data_dir, tmp_path):
    # The MiniLM tokenizer saved with the tiny model allows 512 tokens.
    result = finetune("--train-file", data_dir / "train.csv", "--max-length", "1024")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "--max-length 1024 is above the model's maximum of 512" in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_fp16_on_cpu_rejected(finetune, data_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("fp16 runs on this machine's GPU")
    result = finetune("--train-file", data_dir / "train.csv", "--precision", "fp16")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "--precision fp16 needs a CUDA GPU" in errors[0]
    assert "--precision bf16 or fp32" in errors[0]
    assert_no_output(tmp_path / "out")


def test_config_problems_in_one_line(finetune, data_dir, tmp_path):
    result = finetune("--train-file", data_dir / "train.csv", "--epochs", "0", "--learning-rate", "-1")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "--epochs must be greater than 0, got 0.0" in errors[0]
    assert "--learning-rate must be greater than 0, got -1.0" in errors[0]
    assert_no_output(tmp_path / "out")


def test_bad_flag_type_is_usage_error(finetune, data_dir, tmp_path):
    result = finetune("--train-file", data_dir / "train.csv", "--seed", "abc")

    assert result.exit_code == 2
    assert "--seed" in result.stderr
    assert_no_output(tmp_path / "out")


def test_evaluate_empty_text_row(trained_sentiment, tmp_path, run_cli):
    rows = toy_rows(4)
    rows[1]["text"] = ""
    data_file = write_csv(tmp_path / "gaps.csv", rows)

    result = run_cli("evaluate", "--model-dir", trained_sentiment[0], "--data-file", data_file, "--precision", "fp32")
    errors = error_lines(result.stderr)
    suggested_flags = set(re.findall(r"--[a-z][a-z-]*", errors[0])) if errors else set()

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "gaps.csv row 2" in errors[0]
    # The fix the message suggests must be one that this command accepts.
    assert suggested_flags <= command_options("evaluate")


# -- tracebacks in a real process -----------------------------------------------------------------


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskforge", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def test_process_error_without_traceback(tmp_path):
    result = run_module("finetune", "--task", "classification", "--train-file", str(tmp_path / "absent.csv"),
                        "--output-dir", str(tmp_path / "out"))

    assert result.returncode == 1
    assert len(error_lines(result.stderr)) == 1
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


@pytest.mark.parametrize("arguments, repeated", [
    (["finetune", "--epochs", "1", "--task", "sentiment", "--epochs=2"], "--epochs"),
    (["predict", "--model-dir", "a", "--model-dir", "b", "text"], "--model-dir"),
])
def test_option_given_twice(tmp_path, arguments, repeated):
    result = run_module(*arguments)

    assert result.returncode == 2
    assert error_lines(result.stderr) == [f"Error: {repeated} is given twice; pass it once"]


@pytest.mark.parametrize("arguments, message", [
    (["finetune", "--no-header", "--task", "sentiment", "--header"], "--header and --no-header"),
    (["evaluate", "--model-dir", "m", "--data-file", "a.csv", "--test-file", "b.csv"], "--test-file and --data-file"),
    (["-q", "--quiet", "tasks"], "--quiet and -q"),
])
def test_option_spellings_given_together(arguments, message):
    result = run_module(*arguments)

    assert result.returncode == 2
    assert error_lines(result.stderr) == [f"Error: {message} set the same option; pass one of them"]


def test_negative_values_are_not_options(tmp_path):
    result = run_module("finetune", "--task", "sentiment", "--epochs", "-1", "--seed", "-1",
                        "--output-dir", str(tmp_path / "out"))

    assert result.returncode == 1
    assert "is given twice" not in result.stderr
    assert "--epochs must be greater than 0, got -1.0" in error_lines(result.stderr)[0]


def test_debug_shows_traceback(tmp_path):
    result = run_module("--debug", "finetune", "--task", "classification", "--train-file", str(tmp_path / "absent.csv"),
                        "--output-dir", str(tmp_path / "out"))

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr
    assert "absent.csv" in result.stderr


# -- cases found by attacking the CLI ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--label-names", "a,a"), "--label-names repeats a"),
        (("--seed", "-1"), "--seed must be between 0 and 2**32 - 1, got -1"),
        (("--epochs", "inf"), "--epochs must be a finite number, got inf"),
        (("--learning-rate", "nan"), "--learning-rate must be a finite number, got nan"),
        (("--label-column", "text"), "column 'text' of"),
    ],
)
def test_attack_cases_rejected(finetune, tmp_path, data_dir, flags, expected):
    result = finetune("--train-file", data_dir / "train.csv", *flags)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1, result.stderr
    assert len(errors) == 1, result.stderr
    assert expected in errors[0]
    assert "Traceback" not in result.stderr
    assert_no_output(tmp_path / "out")


def test_output_dir_is_file(finetune, tmp_path, data_dir):
    target = tmp_path / "out"
    target.write_text("not a directory")

    result = finetune("--train-file", data_dir / "train.csv", "--overwrite")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert "is a file; pass a directory path" in errors[0]
    assert target.read_text() == "not a directory"
    assert not tmp_path.joinpath("out.old").exists()


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder this process cannot write into: immutable for root, mode 0o555 for other users."""
    folder = tmp_path / "locked"
    folder.mkdir()
    immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    if not immutable:
        folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        pytest.skip("cannot make a folder read-only here")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_output_dir_not_writable(finetune_to, read_only_dir):
    result = finetune_to(read_only_dir / "run" / "out")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert f"{str(read_only_dir)!r} is not writable" in errors[0]
    assert "--output-dir" in errors[0]
    assert "Traceback" not in result.stderr
    assert list(read_only_dir.iterdir()) == []


@pytest.mark.parametrize("relative, expected", [
    ("x" * 248, "ends in a name of 248 bytes ('xxxxxxxxxxxxxxxxxxxxxxxx'...); it can have at most 247"),
    ("y" * 256 + "/out", "has a folder name of 256 bytes ('yyyyyyyyyyyyyyyyyyyyyyyy'...); names can have at most 255"),
])
def test_output_dir_name_too_long(finetune_to, tmp_path, relative, expected):
    result = finetune_to(tmp_path / relative)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert expected in errors[0]
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_inputs_inside_output_dir(run_cli, tiny_bert_dir, data_dir, tmp_path):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(tiny_bert_dir, runs / "base")
    shutil.copy(data_dir / "train.csv", tmp_path / "runs.partial.csv")
    (tmp_path / "runs.partial").mkdir()
    shutil.copy(data_dir / "train.csv", tmp_path / "runs.partial" / "valid.csv")

    result = run_cli("finetune", "--task", "classification", "--model", runs / "base", "--train-file",
                     tmp_path / "runs.partial.csv", "--validation-file", tmp_path / "runs.partial" / "valid.csv",
                     "--output-dir", runs, "--overwrite", *FAST_FLAGS)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert f"--model {str(runs / 'base')!r} is inside {str(runs)!r}, which the run replaces" in errors[0]
    assert f"--validation-file {str(tmp_path / 'runs.partial' / 'valid.csv')!r} is inside" in errors[0]
    assert "--train-file" not in errors[0]
    assert (runs / "base" / "config.json").is_file()
    assert (tmp_path / "runs.partial" / "valid.csv").is_file()


def test_overwrite_of_locked_output_dir(finetune_to, read_only_dir):
    result = finetune_to(read_only_dir, "--overwrite")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "is not writable, so --overwrite cannot replace it" in errors[0]
    assert not read_only_dir.with_name("locked.partial").exists()


@pytest.mark.parametrize("suffix", [".partial", ".old"])
def test_staging_name_taken_by_file(finetune, data_dir, tmp_path, suffix):
    (tmp_path / f"out{suffix}").write_text("mine")

    result = finetune("--train-file", data_dir / "train.csv")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert f"{str(tmp_path / ('out' + suffix))!r} exists and is not a folder" in errors[0]
    assert (tmp_path / f"out{suffix}").read_text() == "mine"
    assert not (tmp_path / "out").exists()


def test_model_with_nan_weights(run_cli, tiny_bert_dir, data_dir, tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_bert_dir)
    with torch.no_grad():
        model.encoder.layer[1].output.dense.weight[0, 0] = float("nan")
    model.save_pretrained(tmp_path / "nan")
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(tmp_path / "nan")

    result = run_cli("finetune", "--task", "classification", "--model", tmp_path / "nan", "--train-file",
                     data_dir / "train.csv", "--output-dir", tmp_path / "out", *FAST_FLAGS)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert errors[0] == (f"Error: --model {str(tmp_path / 'nan')!r} has NaN or infinite values in "
                         f"bert.encoder.layer.1.output.dense.weight; pass an undamaged model")
    assert_no_output(tmp_path / "out")


def test_symlinked_output_dir_keeps_inputs(finetune, data_dir, tmp_path):
    import shutil

    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    (tmp_path / "out.partial").mkdir()
    shutil.copy(data_dir / "train.csv", tmp_path / "out.partial" / "train.csv")

    result = finetune("--train-file", tmp_path / "out.partial" / "train.csv", "--overwrite")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert f"is inside {str(tmp_path / 'out.partial')!r}, which the run replaces" in errors[0]
    assert (tmp_path / "out.partial" / "train.csv").is_file()
    assert (tmp_path / "out").is_symlink()


def test_literal_tilde_output_dir_keeps_inputs(run_cli, tiny_bert_dir, data_dir, tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    (tmp_path / "~" / "out").mkdir(parents=True)
    shutil.copy(data_dir / "train.csv", tmp_path / "~" / "out" / "train.csv")

    result = run_cli("finetune", "--task", "classification", "--model", tiny_bert_dir, "--train-file",
                     "./~/out/train.csv", "--output-dir", "~/out", "--overwrite", *FAST_FLAGS)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "--train-file './~/out/train.csv' is inside" in errors[0]
    assert (tmp_path / "~" / "out" / "train.csv").is_file()


def test_packaged_model_folder_not_output(tmp_path):
    import dataclasses

    from taskforge.config import resolve, validate
    from taskforge.errors import ConfigError
    from taskforge.models import resolve_model
    from taskforge_sentiment import SentimentTask

    (tmp_path / "train.csv").write_text("text,label\ngood,1\nbad,0\n")
    packaged = resolve_model("minilm-l6")
    config = resolve({"task": "sentiment", "train_file": str(tmp_path / "train.csv")}, task_defaults=SentimentTask.defaults)
    config = dataclasses.replace(config, output_dir=packaged, overwrite=True)

    with pytest.raises(ConfigError) as caught:
        validate(config)

    assert f"--model 'minilm-l6' is inside {packaged!r}, which the run replaces" in str(caught.value)


@pytest.mark.parametrize("value", [".", "/", "..", "runs/.."])
def test_output_dir_without_name(finetune_to, value):
    result = finetune_to(value, "--overwrite")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert f"--output-dir {value!r} is not a directory name" in errors[0]


def test_output_dir_dangling_symlink(finetune, data_dir, tmp_path):
    (tmp_path / "out").symlink_to(tmp_path / "gone")

    result = finetune("--train-file", data_dir / "train.csv")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "is a symbolic link to a missing folder" in errors[0]
    assert not (tmp_path / "out.partial").exists()


def test_model_without_tokenizer(run_cli, tmp_path, tiny_bert_dir, data_dir):
    import shutil

    model_dir = tmp_path / "no-tokenizer"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_bert_dir / name, model_dir / name)

    result = run_cli("finetune", "--task", "classification", "--model", model_dir, "--train-file",
                     data_dir / "train.csv", "--output-dir", tmp_path / "out", *FAST_FLAGS)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert "has no tokenizer files" in errors[0]
    assert_no_output(tmp_path / "out")


def test_nan_label_sorts_as_text():
    from taskforge_classification.task import _label_sort_key

    values = ["NaN", "1", "0", "2", "nan"]

    assert sorted(values, key=_label_sort_key) == ["0", "1", "2", "NaN", "nan"]
