"""The ner task: data loading, labels, sub-word features, decoding, and the conformance kit."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from ner_testdata import run_cli, tokenizer  # noqa: F401  (fixtures; puts taskforge_ner on sys.path)
from taskforge import DataError
from taskforge.task import ColumnOptions, DataFile, LabelSet
from taskforge.testing import build_tiny_model, check_task
from taskforge_ner import NerTask
from taskforge_ner.features import IGNORE_INDEX, word_windows

LABELS = LabelSet(names=("O", "B-LOC", "I-LOC", "B-PER", "I-PER"), values=("O", "B-LOC", "I-LOC", "B-PER", "I-PER"))
TRAIN_CONLL = (
    "-DOCSTART- O\n\n"
    "Maria B-PER\nLopez I-PER\nvisited O\nMunich B-LOC\n.  O\n\n"
    "Paris B-LOC\nis O\nbig O\n\n"
    "Tom B-PER\nlives O\nin O\nLeeds B-LOC\n\n"
    "Anna B-PER\nsmiled O\n\n"
)


@pytest.fixture
def task() -> NerTask:
    return NerTask()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- data -------------------------------------------------------------------------------------------


def test_sample_data_sizes(task):
    sample = task.sample_data()
    train = task.load_examples(sample["train"], ColumnOptions())
    validation = task.load_examples(sample["validation"], ColumnOptions())

    assert len(train) == 64
    assert len(validation) == 16
    assert train.column_names == ["tokens", "text", "offsets", "tags"]


def test_conll_examples_have_text_and_offsets(task, tmp_path):
    file = DataFile(write(tmp_path, "train.txt", TRAIN_CONLL), "conll", "train")

    examples = task.load_examples(file, ColumnOptions())

    assert len(examples) == 4
    assert examples[0]["tokens"] == ["Maria", "Lopez", "visited", "Munich", "."]
    assert examples[0]["tags"] == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert examples[0]["text"] == "Maria Lopez visited Munich ."
    assert examples[0]["offsets"] == [[0, 5], [6, 11], [12, 19], [20, 26], [27, 28]]


def test_predict_split_reads_no_tags(task, tmp_path):
    file = DataFile(write(tmp_path, "input.txt", "Maria\nLopez\n\nParis\n"), "conll", "predict")

    examples = task.load_examples(file, ColumnOptions())

    assert "tags" not in examples.column_names
    assert examples["tokens"] == [["Maria", "Lopez"], ["Paris"]]


def test_invalid_tag_names_line(task, tmp_path):
    file = DataFile(write(tmp_path, "train.txt", "Maria B-PER\n\nParis S-LOC\n\nTom E-PER\n"), "conll", "train")

    with pytest.raises(DataError) as caught:
        task.load_examples(file, ColumnOptions())
    message = str(caught.value)

    assert "tag 'S-LOC' at line 3 is not an IOB2 tag" in message
    assert "(2 sentences in all)" in message
    assert "--drop-invalid" in message


def test_invalid_tag_dropped(task, tmp_path, caplog):
    file = DataFile(write(tmp_path, "train.txt", "Maria B-PER\n\nParis S-LOC\n"), "conll", "train")

    with caplog.at_level(logging.WARNING, logger="taskforge_ner"):
        examples = task.load_examples(file, ColumnOptions(drop_invalid=True))

    assert examples["tokens"] == [["Maria"]]
    assert "dropped 1 of 2 sentences" in caplog.text


def test_iob1_tags_warned(task, tmp_path, caplog):
    file = DataFile(write(tmp_path, "train.txt", "Maria I-PER\nLopez I-PER\nin O\nRome I-LOC\n"), "conll", "train")

    with caplog.at_level(logging.WARNING, logger="taskforge_ner"):
        task.load_examples(file, ColumnOptions())

    assert "2 I- tags that follow O or another entity type" in caplog.text


def test_csv_rejected(task, tmp_path):
    file = DataFile(write(tmp_path, "train.csv", "text,label\na,b\n"), "csv", "train")

    with pytest.raises(DataError) as caught:
        task.load_examples(file, ColumnOptions())

    assert "CoNLL file (.txt or .conll" in str(caught.value)


def test_jsonl_integer_tags_named(task, tmp_path):
    rows = [{"words": ["Maria", "visited", "Rome"], "ner": [1, 0, 3]}, {"words": ["Tom", "Lee"], "ner": [1, 2]}]
    path = write(tmp_path, "train.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    columns = ColumnOptions(text_column="words", label_column="ner", label_names=("O", "B-PER", "I-PER", "B-LOC"))

    examples = task.load_examples(DataFile(path, "jsonl", "train"), columns)
    labels = task.label_set(examples, columns)

    assert examples["tags"] == [["1", "0", "3"], ["1", "2"]]
    assert labels.names == ("O", "B-PER", "I-PER", "B-LOC")
    assert labels.values == ("0", "1", "2", "3")


def test_integer_tags_need_names(task, tmp_path):
    path = write(tmp_path, "train.jsonl", json.dumps({"tokens": ["Maria"], "ner_tags": [1]}) + "\n")
    examples = task.load_examples(DataFile(path, "jsonl", "train"), ColumnOptions())

    with pytest.raises(DataError) as caught:
        task.label_set(examples, ColumnOptions())

    assert "--label-names" in str(caught.value)


def test_jsonl_tag_count_mismatch(task, tmp_path):
    path = write(tmp_path, "train.jsonl", json.dumps({"tokens": ["Maria", "Lopez"], "ner_tags": ["B-PER"]}) + "\n")

    with pytest.raises(DataError) as caught:
        task.load_examples(DataFile(path, "jsonl", "train"), ColumnOptions())

    assert "row 1 has 2 words but 1 tags" in str(caught.value)


# -- labels -----------------------------------------------------------------------------------------


def test_label_set_order(task, tmp_path):
    # I-LOC never occurs in training, but it is in the label set.
    file = DataFile(write(tmp_path, "train.txt", TRAIN_CONLL), "conll", "train")

    labels = task.label_set(task.load_examples(file, ColumnOptions()), ColumnOptions())

    assert labels == LABELS


def test_unknown_tag_rejected(task, tmp_path):
    train = task.load_examples(DataFile(write(tmp_path, "train.txt", TRAIN_CONLL), "conll", "train"), ColumnOptions())
    validation_file = DataFile(write(tmp_path, "valid.txt", "Paris B-LOC\n\nSony B-ORG\n"), "conll", "validation")
    validation = task.load_examples(validation_file, ColumnOptions())

    with pytest.raises(DataError) as caught:
        task.check_labels(validation, task.label_set(train, ColumnOptions()), validation_file)

    assert "tag 'B-ORG'" in str(caught.value)
    assert "sentence 2" in str(caught.value)


# -- features ---------------------------------------------------------------------------------------


def test_word_windows_by_hand():
    # Budget 6: words of 3+1 tokens fit, 5 more do not. Windows step back over whole words of up
    # to 3 tokens: word 1 (1 token) after the first window, word 4 (2 tokens) after the third.
    assert word_windows([3, 1, 5, 2, 2, 4], budget=6, stride=3) == [(0, 2), (1, 3), (3, 5), (4, 6)]
    # A word of 9 tokens gets a window of its own.
    assert word_windows([2, 9, 1], budget=6, stride=2) == [(0, 1), (1, 2), (2, 3)]
    assert word_windows([1, 1], budget=6, stride=2) == [(0, 2)]


def test_first_subtoken_labelled(task, tokenizer):
    examples = task.examples_from_inputs([{"tokens": ["Kowalczykowska", "visited", "Oslo"]}])
    examples = examples.add_column("tags", [["B-PER", "O", "B-LOC"]])
    pieces = len(tokenizer.tokenize("Kowalczykowska"))

    features = task.preprocess(examples, tokenizer, 32, LABELS, training=True)

    assert pieces > 1
    assert features[0]["labels"] == [IGNORE_INDEX, 3, *[IGNORE_INDEX] * (pieces - 1), 0, 1, IGNORE_INDEX]
    assert features[0]["word_ids"] == [-1, *[0] * pieces, 1, 2, -1]
    assert features[0]["example_index"] == 0


def test_long_sentence_split_into_windows(task, tokenizer):
    words = [f"w{i}" for i in range(30)]
    counts = [len(tokenizer.tokenize(word)) for word in words]
    examples = task.examples_from_inputs([{"tokens": words}, {"tokens": ["short"]}])

    features = task.preprocess(examples, tokenizer, 16, None, training=False)
    expected = word_windows(counts, budget=14, stride=task.options.stride)

    assert len(features) == len(expected) + 1
    assert features["example_index"] == [0] * len(expected) + [1]
    for feature, (start, end) in zip(features, expected):
        assert len(feature["input_ids"]) <= 16
        assert min(w for w in feature["word_ids"] if w >= 0) == start
        assert max(w for w in feature["word_ids"] if w >= 0) == end - 1


def test_postprocess_prefers_most_context(task):
    examples = task.examples_from_inputs([{"tokens": ["a", "b", "c", "d", "e"]}])
    features = {
        "word_ids": [[-1, 0, 1, 2, 3, -1], [-1, 2, 3, 4, -1]],
        "example_index": [0, 0],
    }
    logits = np.full((2, 6, len(LABELS)), -5.0, dtype=np.float32)
    # Window 1 predicts tag 1 for words 0 to 3, and window 2 predicts tag 2 for words 2 to 4.
    logits[0, 1:5, 1] = 5.0
    logits[1, 1:4, 2] = 5.0

    predictions = task.postprocess(examples, features, {"logits": logits})

    # Word 2 has 1 word of context on its shorter side in window 1 and 0 in window 2; word 3 has
    # 0 in window 1 and 1 in window 2.
    assert predictions[0]["tag_ids"] == [1, 1, 1, 2, 2]


# -- predictions ------------------------------------------------------------------------------------


def test_entities_have_character_offsets(task):
    examples = task.examples_from_inputs(["John Smith  visited Paris."])
    prediction = {
        "tag_ids": [3, 4, 0, 1],
        "scores": [0.9, 0.7, 0.99, 0.6],
        "text": examples[0]["text"],
        "offsets": examples[0]["offsets"],
    }

    formatted = task.format_prediction(prediction, LABELS)

    assert formatted["tags"] == ["B-PER", "I-PER", "O", "B-LOC"]
    assert formatted["entities"] == [
        {"entity": "PER", "text": "John Smith", "start": 0, "end": 10, "score": 0.8},
        {"entity": "LOC", "text": "Paris.", "start": 20, "end": 26, "score": 0.6},
    ]


def test_empty_input_rejected(task):
    with pytest.raises(DataError) as caught:
        task.examples_from_inputs(["John", "   "])

    assert "input 1" in str(caught.value)


def test_stride_checked_against_max_length(task):
    from taskforge.config import FinetuneConfig

    configured = task.configure({"stride": "65"})

    assert configured.options.stride == 65
    assert configured.validate_config(FinetuneConfig(max_length=128)) == [
        "--stride 65 must be at most half of --max-length 128; pass a smaller --stride"
    ]
    assert configured.validate_config(FinetuneConfig(max_length=130)) == []


# -- end to end -------------------------------------------------------------------------------------


def test_ner_conformance(tmp_path, tiny_model_dir):
    report = check_task(NerTask, model=tiny_model_dir, tmp_dir=tmp_path)

    assert report.labels.names == ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert report.train_steps == 2
    assert set(report.validation_metrics) == {"precision", "recall", "f1", "accuracy", "per_class"}
    assert len(report.predictions) == 2
    assert set(report.predictions[0]) == {"entities", "tags"}


def test_txt_files_through_cli(tmp_path, tiny_model_dir, run_cli):
    train = write(tmp_path, "train.txt", TRAIN_CONLL * 4)
    validation = write(tmp_path, "valid.txt", TRAIN_CONLL)
    output_dir = tmp_path / "model"

    finetune = run_cli("finetune", "--task", "taskforge_ner.task:NerTask", "--model", tiny_model_dir,
                       "--train-file", train, "--validation-file", validation, "--epochs", "1",
                       "--batch-size", "4", "--max-length", "32", "--precision", "fp32",
                       "--output-dir", output_dir)
    evaluate = run_cli("evaluate", "--model-dir", output_dir, "--data-file", validation, "--precision", "fp32")
    predict = run_cli("predict", "--model-dir", output_dir, "--precision", "fp32", "Maria Lopez visited Munich")

    assert finetune.exit_code == 0, finetune.stderr
    assert json.loads(finetune.stdout)["validation"]["f1"] >= 0.0
    assert evaluate.exit_code == 0, evaluate.stderr
    assert set(json.loads(evaluate.stdout)) == {"precision", "recall", "f1", "accuracy", "per_class"}
    assert predict.exit_code == 0, predict.stderr
    record = json.loads(predict.stdout)
    assert record["text"] == "Maria Lopez visited Munich"
    assert len(record["tags"]) == 4
    assert isinstance(record["entities"], list)
