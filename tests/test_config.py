"""Configuration: precedence of the sources, config-file keys, type coercion and validation."""

from __future__ import annotations

import dataclasses

import pytest

from taskforge.config import FinetuneConfig, read_config_file, resolve, validate
from taskforge.errors import ConfigError
from taskforge_sentiment import SentimentTask

from conftest import error_lines


def valid_config(tmp_path, **changes) -> FinetuneConfig:
    """A configuration that passes validate(), with ``changes`` applied."""
    train_file = tmp_path / "train.csv"
    train_file.write_text("text,label\ngood,1\nbad,0\n")
    config = resolve({"task": "sentiment", "train_file": str(train_file)}, task_defaults=SentimentTask.defaults)
    return dataclasses.replace(config, **changes)


# -- precedence -----------------------------------------------------------------------------------


def test_precedence_of_sources(tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("learning_rate: 0.003\nepochs: 5\nseed: 7\n")

    config = resolve(
        {"learning_rate": 0.002}, read_config_file(config_file), SentimentTask.defaults, source="flag"
    )

    # Flag over config file.
    assert config.learning_rate == 0.002
    # Config file over the task default (3 epochs) and over the dataclass default (seed 42).
    assert config.epochs == 5.0
    assert config.seed == 7
    # Task default (sentiment: batch size 32, warmup 0.06) where neither flag nor file sets it.
    assert config.batch_size == 32
    assert config.warmup_ratio == 0.06
    # Dataclass default where nothing else sets it.
    assert config.eval_batch_size == 64
    assert config.logging_steps == 50


def test_task_default_over_dataclass():
    config = resolve({}, task_defaults=SentimentTask.defaults)
    bare = resolve({})

    assert config.learning_rate == 1e-4
    assert bare.learning_rate is None


def test_none_flag_counts_as_unset(tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("batch_size: 16\n")

    config = resolve({"batch_size": None}, read_config_file(config_file), SentimentTask.defaults)

    assert config.batch_size == 16


def test_zero_flag_overrides_file(tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("warmup_ratio: 0.2\nmax_grad_norm: 2.0\n")

    config = resolve({"warmup_ratio": 0, "max_grad_norm": 0}, read_config_file(config_file), SentimentTask.defaults)

    assert config.warmup_ratio == 0.0
    assert config.max_grad_norm == 0.0


# -- config files ---------------------------------------------------------------------------------


def test_unknown_key_suggests_closest(tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("learning_rat: 0.1\n")

    with pytest.raises(ConfigError) as caught:
        read_config_file(config_file)
    message = str(caught.value)

    assert "'learning_rat'" in message
    assert str(config_file) in message
    assert "did you mean 'learning_rate'?" in message


def test_hyphenated_keys_accepted(tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("learning-rate: 0.01\nlabel-names: [bad, good]\n")

    values = read_config_file(config_file)

    assert values == {"learning_rate": 0.01, "label_names": ["bad", "good"]}


def test_json_config_file(tmp_path):
    config_file = tmp_path / "options.json"
    config_file.write_text('{"epochs": 2, "group_by_length": false}')

    assert read_config_file(config_file) == {"epochs": 2, "group_by_length": False}


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        read_config_file(tmp_path / "absent.yaml")

    assert "absent.yaml" in str(caught.value)
    assert "--config" in str(caught.value)


def test_config_file_not_mapping(tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("- epochs\n- 3\n")

    with pytest.raises(ConfigError) as caught:
        read_config_file(config_file)

    assert "must contain a mapping" in str(caught.value)


def test_empty_config_file(tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("")

    assert read_config_file(config_file) == {}


# -- coercion -------------------------------------------------------------------------------------


def test_coerces_strings_to_types():
    config = resolve({"overwrite": "yes", "seed": "7", "learning_rate": "1e-3", "label_names": "bad, good"})

    assert config.overwrite is True
    assert config.seed == 7
    assert config.learning_rate == 0.001
    assert config.label_names == ["bad", "good"]


def test_bool_error_names_field_source(tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("overwrite: maybe\n")

    with pytest.raises(ConfigError) as caught:
        resolve({}, read_config_file(config_file))
    message = str(caught.value)

    assert "overwrite='maybe'" in message
    assert "from config file" in message
    assert "expected true or false" in message


def test_int_error_names_field_source():
    with pytest.raises(ConfigError) as caught:
        resolve({"batch_size": 2.5}, source="flag")
    message = str(caught.value)

    assert "batch_size=2.5" in message
    assert "from flag" in message
    assert "expected an integer" in message


def test_float_error_names_field_source():
    with pytest.raises(ConfigError) as caught:
        resolve({"learning_rate": "fast"}, source="argument")
    message = str(caught.value)

    assert "learning_rate='fast'" in message
    assert "from argument" in message


def test_precision_choice_error():
    with pytest.raises(ConfigError) as caught:
        resolve({"precision": "fp8"}, source="flag")

    assert "precision='fp8'" in str(caught.value)
    assert "auto, fp32, bf16, fp16" in str(caught.value)


def test_coercion_errors_reported_together(tmp_path):
    config_file = tmp_path / "options.yaml"
    config_file.write_text("seed: abc\n")

    with pytest.raises(ConfigError) as caught:
        resolve({"group_by_length": "often"}, read_config_file(config_file), source="flag")
    message = str(caught.value)

    assert "group_by_length='often' from flag" in message
    assert "seed='abc' from config file" in message


# -- validation -----------------------------------------------------------------------------------


def test_valid_config_passes(tmp_path):
    validate(valid_config(tmp_path))


def test_validate_reports_every_problem(tmp_path):
    config = valid_config(tmp_path, epochs=0, batch_size=0, warmup_ratio=1.5, max_length=4, validation_split=1.0)

    with pytest.raises(ConfigError) as caught:
        validate(config)
    message = str(caught.value)

    assert "--epochs must be greater than 0, got 0" in message
    assert "--batch-size must be at least 1, got 0" in message
    assert "--warmup-ratio must be in [0, 1), got 1.5" in message
    assert "--max-length must be at least 8, got 4" in message
    assert "--validation-split must be between 0 and 1, got 1.0" in message


def test_validate_checks_data_files(tmp_path):
    (tmp_path / "data.xlsx").write_text("")
    config = valid_config(tmp_path, validation_file=str(tmp_path / "data.xlsx"), test_file=str(tmp_path / "nope.csv"))

    with pytest.raises(ConfigError) as caught:
        validate(config)
    message = str(caught.value)

    assert "--validation-file" in message
    assert "has an unknown format" in message
    assert "--test-file" in message
    assert "nope.csv' not found" in message


def test_validate_rejects_two_sources(tmp_path):
    config = valid_config(tmp_path, dataset="imdb")

    with pytest.raises(ConfigError) as caught:
        validate(config)

    assert "--train-file and --dataset are both given" in str(caught.value)


def test_validate_existing_output_dir(tmp_path):
    (tmp_path / "out").mkdir()
    config = valid_config(tmp_path, output_dir=str(tmp_path / "out"))

    with pytest.raises(ConfigError) as caught:
        validate(config)

    assert "--overwrite" in str(caught.value)
    validate(dataclasses.replace(config, overwrite=True))


def test_validate_requires_task(tmp_path):
    config = valid_config(tmp_path, task=None)

    with pytest.raises(ConfigError) as caught:
        validate(config)

    assert "--task" in str(caught.value)


def test_config_file_reports_all_problems(tmp_path):
    from taskforge import ConfigError
    from taskforge.api import _run_finetune

    config_file = tmp_path / "bad.yaml"
    config_file.write_text("task: sentiment\nepochs: -1\nbatch_size: 0\nlearning_rate: abc\n")
    with pytest.raises(ConfigError) as raised:
        _run_finetune({}, read_config_file(config_file), source="flag")
    message = str(raised.value)
    assert "learning_rate='abc' from config file" in message
    assert "--epochs must be greater than 0, got -1.0" in message
    assert "--batch-size must be at least 1, got 0" in message
    assert "got None" not in message


@pytest.mark.parametrize("line", ["attention_dropout: abc", "attention_dropout: [0.1]", "seed: {a: 1}",
                                  "label_column: [a, b]", "text_column: {a: 1}"])
def test_config_type_error_names_file(tmp_path, run_cli, line):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(f"task: sentiment\n{line}\n")

    result = run_cli("finetune", "--config", config_file, "--output-dir", tmp_path / "out")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    key = line.split(":")[0]
    assert f"from config file {str(config_file)!r}:" in errors[0]
    expected = {"attention_dropout": "expected a number", "seed": "expected an integer"}.get(key, "expected a single text value")
    assert expected in errors[0]
    assert errors[0].endswith("fix the value")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_config_file_lists_unknown_keys(tmp_path):
    config_file = tmp_path / "typos.yaml"
    config_file.write_text("epoch: 2\nlerning_rate: 0.1\n")
    with pytest.raises(ConfigError) as raised:
        read_config_file(config_file)
    message = str(raised.value)
    assert "'epoch' (did you mean 'epochs'?)" in message
    assert "'lerning_rate' (did you mean 'learning_rate'?)" in message
