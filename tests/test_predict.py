"""Predictions from a fine-tuned model: the Python Predictor and ``taskforge predict``."""

from __future__ import annotations

import json
import re

import pytest

import taskforge
from conftest import command_options, error_lines, write_csv
from taskforge.errors import ConfigError, DataError, ModelNotFoundError

# Inputs of very different token counts, alternating sentiment, so that batching sorts them by
# length and must put the results back in input order.
TEXTS = [
    "the food was great",
    "the hotel was awful according to my whole family after the long weekend",
    "the book was good and i would say so again",
    "the phone was bad",
    "the movie was great according to my whole family after the long weekend",
    "the phone was awful today",
]
EXPECTED_LABELS = ["positive", "negative", "positive", "negative", "positive", "negative"]


@pytest.fixture(scope="module")
def predictor(trained_sentiment):
    output_dir, result = trained_sentiment
    assert result.exit_code == 0, result.stderr
    return taskforge.load(output_dir, precision="fp32")


def test_predict_returns_label_dicts(predictor):
    predictions = predictor.predict(TEXTS[:2], batch_size=1)

    assert len(predictions) == 2
    assert set(predictions[0]) == {"label", "score", "scores"}
    assert set(predictions[0]["scores"]) == {"negative", "positive"}
    assert predictions[0]["score"] == predictions[0]["scores"][predictions[0]["label"]]
    assert sum(predictions[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)


def test_predict_expected_labels(predictor):
    labels = [prediction["label"] for prediction in predictor.predict(TEXTS, batch_size=4)]

    assert labels == EXPECTED_LABELS


@pytest.mark.parametrize("batch_size", [2, 4, 32])
def test_batching_keeps_input_order(predictor, batch_size):
    one_by_one = [predictor.predict([text], batch_size=1)[0] for text in TEXTS]

    batched = predictor.predict(TEXTS, batch_size=batch_size)

    assert [p["label"] for p in batched] == [p["label"] for p in one_by_one]
    for single, together in zip(one_by_one, batched):
        assert together["scores"] == pytest.approx(single["scores"], abs=1e-5)


def test_predict_empty_list(predictor):
    assert predictor.predict([]) == []


def test_predict_rejects_bare_string(predictor):
    with pytest.raises(ConfigError) as caught:
        predictor.predict("the food was great")

    assert "wrap a single input in a list" in str(caught.value)


def test_predict_rejects_empty_text(predictor):
    with pytest.raises(DataError) as caught:
        predictor.predict(["the food was great", "  "])

    assert "input 1 has empty text" in str(caught.value)


def test_load_rejects_plain_model(tiny_bert_dir):
    with pytest.raises(ModelNotFoundError) as caught:
        taskforge.load(tiny_bert_dir)

    assert "was not saved by taskforge" in str(caught.value)


def test_load_missing_directory(tmp_path):
    with pytest.raises(ModelNotFoundError) as caught:
        taskforge.load(tmp_path / "nowhere")

    assert "nowhere" in str(caught.value)
    assert "--output-dir" in str(caught.value)


# -- taskforge predict ----------------------------------------------------------------------------


def test_cli_predict_prints_jsonl(trained_sentiment, run_cli):
    output_dir, _ = trained_sentiment

    result = run_cli(
        "predict", "--model-dir", output_dir, "--precision", "fp32", "the food was great", "the book was awful"
    )
    records = [json.loads(line) for line in result.stdout.splitlines()]

    assert result.exit_code == 0, result.stderr
    assert len(records) == 2
    assert records[0]["text"] == "the food was great"
    assert records[0]["label"] == "positive"
    assert records[1]["text"] == "the book was awful"
    assert records[1]["label"] == "negative"
    assert set(records[1]["scores"]) == {"negative", "positive"}


def test_cli_predict_file_to_jsonl(trained_sentiment, tmp_path, run_cli):
    output_dir, _ = trained_sentiment
    input_file = write_csv(tmp_path / "inputs.csv", [{"text": text, "id": i} for i, text in enumerate(TEXTS)])

    result = run_cli(
        "predict", "--model-dir", output_dir, "--precision", "fp32",
        "--input-file", input_file, "--output-file", tmp_path / "predictions.jsonl",
    )
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert len(records) == len(TEXTS)
    assert [record["text"] for record in records] == TEXTS
    assert [record["label"] for record in records] == EXPECTED_LABELS
    assert not (tmp_path / "predictions.jsonl.partial").exists()


def test_predict_file_tsv_like_training(trained_sentiment, tmp_path):
    """Files to predict skip the datasets cache; quotes stay text and NA stays a string, as in training."""
    path = tmp_path / "inputs.tsv"
    path.write_text('text\n"the food was great\nNA\n\nthe book was awful\n', encoding="utf-8")

    records = taskforge.load(trained_sentiment[0], precision="fp32").predict_file(path)

    assert [record["text"] for record in records] == ['"the food was great', "NA", "the book was awful"]


def test_predict_file_not_utf8(trained_sentiment, tmp_path):
    path = tmp_path / "inputs.csv"
    path.write_bytes("text\ncaf\u00e9\n".encode("latin-1"))

    with pytest.raises(DataError, match=r"inputs.csv is not valid UTF-8 \(invalid continuation byte at byte 8\)"):
        taskforge.load(trained_sentiment[0], precision="fp32").predict_file(path)


def test_predict_output_file_unwritable(trained_sentiment, tmp_path, run_cli):
    (tmp_path / "afile").write_text("")

    result = run_cli("predict", "--model-dir", trained_sentiment[0], "--precision", "fp32",
                     "--output-file", tmp_path / "afile" / "out.jsonl", "the food was great")

    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert f"--output-file {str(tmp_path / 'afile' / 'out.jsonl')!r} could not be written (Not a directory)" in line
    assert "Traceback" not in result.stderr


def test_cli_predict_needs_input(trained_sentiment, run_cli):
    result = run_cli("predict", "--model-dir", trained_sentiment[0])

    assert result.exit_code == 2
    assert "--input-file" in result.stderr


@pytest.mark.parametrize("flags", [["--question", "A", "--question", "B"], ["--question=A", "--question", "B"]])
def test_cli_predict_field_given_twice(trained_sentiment, run_cli, flags):
    result = run_cli("predict", "--model-dir", trained_sentiment[0], *flags)

    assert result.exit_code == 2
    assert "--question is given twice; pass it once" in result.stderr


def test_cli_predict_misspelled_option(trained_sentiment, run_cli, tmp_path):
    result = run_cli("predict", "--model-dir", trained_sentiment[0], "--text", "fine", "--ouput-file", tmp_path / "p.jsonl")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert errors == ["Error: unknown option --ouput-file; did you mean --output-file?"]
    assert not (tmp_path / "p.jsonl").exists()


def test_predict_rejects_unknown_field(predictor):
    with pytest.raises(DataError) as caught:
        predictor.predict([{"text": "fine", "txt_pair": "also fine"}])

    assert str(caught.value) == ("input 0 has the unknown field(s) txt_pair; task 'sentiment' takes the fields "
                                 "text and text_pair")


@pytest.mark.parametrize("command, source_flag, content", [
    ("predict", "--input-file", "text\na fine film\n"),
    ("evaluate", "--data-file", "text,label\na fine film,positive\n"),
])
def test_cli_output_file_is_input(trained_sentiment, run_cli, tmp_path, command, source_flag, content):
    source = tmp_path / "rows.csv"
    source.write_text(content)

    result = run_cli(command, "--model-dir", trained_sentiment[0], source_flag, source, "--output-file", source)
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert errors == [f"Error: --output-file {str(source)!r} is the same file as {source_flag}, so writing it would "
                      f"overwrite the input; choose another --output-file"]
    assert source.read_text() == content


def test_cli_predict_missing_model(tmp_path, run_cli):
    result = run_cli("predict", "--model-dir", tmp_path / "nowhere", "some text")
    errors = error_lines(result.stderr)

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "nowhere" in errors[0]
    assert "Traceback" not in result.stderr


def test_cli_predict_empty_text_row(trained_sentiment, tmp_path, run_cli):
    input_file = tmp_path / "inputs.csv"
    input_file.write_text("text,id\nthe food was great,1\n,2\n")

    result = run_cli("predict", "--model-dir", trained_sentiment[0], "--precision", "fp32", "--input-file", input_file)
    errors = error_lines(result.stderr)
    suggested_flags = set(re.findall(r"--[a-z][a-z-]*", errors[0])) if errors else set()

    assert result.exit_code == 1
    assert len(errors) == 1, result.stderr
    assert "inputs.csv row 2" in errors[0]
    # The fix the message suggests must be one that this command accepts.
    assert suggested_flags <= command_options("predict")


def test_load_rejects_unknown_precision(trained_sentiment):
    with pytest.raises(ConfigError) as caught:
        taskforge.load(trained_sentiment[0], precision="fp8")

    assert str(caught.value) == "--precision must be one of auto, fp32, bf16, fp16, got 'fp8'"
