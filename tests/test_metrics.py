"""The metrics shipped with taskforge, checked against values computed by hand."""

from __future__ import annotations

import pytest

from taskforge.errors import PluginError
from taskforge.metrics import load_metric, load_metric_from

# Hand table: 6 examples over 3 classes, and class 2 is never predicted.
#
#   index       0  1  2  3  4  5
#   reference   0  0  0  1  1  2
#   prediction  0  0  1  1  0  1
REFERENCES = [0, 0, 0, 1, 1, 2]
PREDICTIONS = [0, 0, 1, 1, 0, 1]

# class 0: TP 2 (indices 0, 1), predicted 3 times (0, 1, 4), support 3.
#          precision 2/3, recall 2/3, F1 2/3.
# class 1: TP 1 (index 3), predicted 3 times (2, 3, 5), support 2.
#          precision 1/3, recall 1/2, F1 2 * (1/3 * 1/2) / (1/3 + 1/2) = 2/5.
# class 2: TP 0, never predicted, support 1. precision 0, recall 0, F1 0.
PER_CLASS = {
    0: {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3},
    1: {"precision": 1 / 3, "recall": 1 / 2, "f1": 2 / 5, "support": 2},
    2: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
}
# macro: plain means over the 3 classes.
#   precision (2/3 + 1/3 + 0) / 3 = 1/3
#   recall    (2/3 + 1/2 + 0) / 3 = 7/18
#   F1        (2/3 + 2/5 + 0) / 3 = 16/45
# weighted: means weighted by support 3, 2, 1 over 6.
#   precision (3 * 2/3 + 2 * 1/3 + 1 * 0) / 6 = 4/9
#   recall    (3 * 2/3 + 2 * 1/2 + 1 * 0) / 6 = 1/2
#   F1        (3 * 2/3 + 2 * 2/5 + 1 * 0) / 6 = 7/15
AVERAGES = {
    "precision_macro": 1 / 3,
    "recall_macro": 7 / 18,
    "f1_macro": 16 / 45,
    "precision_weighted": 4 / 9,
    "recall_weighted": 1 / 2,
    "f1_weighted": 7 / 15,
}


@pytest.fixture(scope="module")
def hand_report() -> dict:
    return load_metric("classification_report").compute(predictions=PREDICTIONS, references=REFERENCES)


def test_accuracy_on_hand_table():
    # Correct at indices 0, 1 and 3: 3 of 6.
    result = load_metric("accuracy").compute(predictions=PREDICTIONS, references=REFERENCES)

    assert result == {"accuracy": pytest.approx(0.5)}


def test_accuracy_with_sample_weights():
    # Weights 1, 1, 1, 2, 2, 3. The correct ones weigh 1 + 1 + 2 = 4 of 10.
    result = load_metric("accuracy").compute(
        predictions=PREDICTIONS, references=REFERENCES, sample_weight=[1, 1, 1, 2, 2, 3]
    )

    assert result["accuracy"] == pytest.approx(0.4)


@pytest.mark.parametrize("label", [0, 1, 2])
def test_report_per_class(hand_report, label):
    scores = hand_report["per_class"][label]

    assert scores["precision"] == pytest.approx(PER_CLASS[label]["precision"])
    assert scores["recall"] == pytest.approx(PER_CLASS[label]["recall"])
    assert scores["f1"] == pytest.approx(PER_CLASS[label]["f1"])
    assert scores["support"] == PER_CLASS[label]["support"]


@pytest.mark.parametrize("name", sorted(AVERAGES))
def test_report_averages(hand_report, name):
    assert hand_report[name] == pytest.approx(AVERAGES[name])


def test_never_predicted_class_precision_zero():
    report = load_metric("classification_report").compute(predictions=[0, 0, 0], references=[0, 1, 1])

    assert report["per_class"][1]["precision"] == 0.0
    assert report["per_class"][1]["f1"] == 0.0
    assert report["per_class"][0]["precision"] == pytest.approx(1 / 3)


def test_report_label_without_references():
    # Listing label 3, which has neither references nor predictions, adds a class of zeros that
    # lowers the macro means to 3/4 of the values above, and leaves the weighted means unchanged.
    report = load_metric("classification_report").compute(
        predictions=PREDICTIONS, references=REFERENCES, labels=[0, 1, 2, 3]
    )

    assert report["per_class"][3] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["precision_macro"] == pytest.approx(1 / 4)
    assert report["f1_macro"] == pytest.approx(4 / 15)
    assert report["f1_weighted"] == pytest.approx(7 / 15)


def test_perfect_predictions():
    report = load_metric("classification_report").compute(predictions=[1, 0, 1], references=[1, 0, 1])

    assert report["f1_macro"] == 1.0
    assert report["precision_weighted"] == 1.0


def test_missing_metric_folder(tmp_path):
    (tmp_path / "rouge").mkdir()

    with pytest.raises(PluginError) as caught:
        load_metric_from(tmp_path / "rouge")

    assert "rouge.py" in str(caught.value)
