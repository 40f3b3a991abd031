"""The entity_f1 metric shipped with the ner task, checked against counts made by hand."""

from __future__ import annotations

import pytest

import ner_testdata  # noqa: F401  (puts taskforge_ner on sys.path)
from taskforge.metrics import load_metric_from
from taskforge_ner.task import METRIC_DIR

# Hand table: 3 sentences.
#
#   sentence 1  reference  B-PER I-PER O     B-LOC           entities: PER(0,2) LOC(3,4)
#               predicted  B-PER I-PER O     B-ORG           entities: PER(0,2) ORG(3,4)
#   sentence 2  reference  B-ORG I-ORG I-ORG O               entities: ORG(0,3)
#               predicted  B-ORG I-ORG O     O               entities: ORG(0,2), wrong end
#   sentence 3  reference  O     B-LOC O                     entities: LOC(1,2)
#               predicted  O     I-LOC O                     lenient: LOC(1,2); strict: none
REFERENCES = [
    ["B-PER", "I-PER", "O", "B-LOC"],
    ["B-ORG", "I-ORG", "I-ORG", "O"],
    ["O", "B-LOC", "O"],
]
PREDICTIONS = [
    ["B-PER", "I-PER", "O", "B-ORG"],
    ["B-ORG", "I-ORG", "O", "O"],
    ["O", "I-LOC", "O"],
]

# Lenient: predicted PER(0,2) ORG(3,4) ORG(0,2) LOC(1,2) = 4; reference PER LOC ORG LOC = 4.
#   Correct: PER(0,2) and LOC(1,2) = 2. Precision 2/4, recall 2/4, F1 1/2.
#   PER: 1 correct of 1 predicted, 1 reference -> 1, 1, 1.
#   LOC: 1 correct (sentence 3) of 1 predicted, 2 reference -> precision 1, recall 1/2, F1 2/3.
#   ORG: 0 correct of 2 predicted, 1 reference -> 0, 0, 0.
# Accuracy: words right 3 of 4, 3 of 4, 2 of 3 (I-LOC is not B-LOC) = 8 of 11.
LENIENT = {
    "precision": 0.5,
    "recall": 0.5,
    "f1": 0.5,
    "accuracy": 8 / 11,
    "per_class": {
        "LOC": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    },
}
# Strict: LOC(1,2) is not predicted, so 3 predicted, 1 correct (PER).
#   Precision 1/3, recall 1/4, F1 2 * (1/3 * 1/4) / (1/3 + 1/4) = 2/7.
#   LOC: 0 predicted, 2 reference -> 0, 0, 0.
STRICT = {
    "precision": 1 / 3,
    "recall": 1 / 4,
    "f1": 2 / 7,
    "accuracy": 8 / 11,
    "per_class": {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    },
}


@pytest.fixture(scope="module")
def metric():
    return load_metric_from(METRIC_DIR)


def assert_scores(result: dict, expected: dict) -> None:
    """Compare overall scores and each entity type's scores, floats approximately."""
    assert set(result) == set(expected)
    for key in ("precision", "recall", "f1", "accuracy"):
        assert result[key] == pytest.approx(expected[key]), key
    assert set(result["per_class"]) == set(expected["per_class"])
    for entity_type, scores in expected["per_class"].items():
        assert result["per_class"][entity_type] == pytest.approx(scores), entity_type


def test_lenient_scores_by_hand(metric):
    result = metric.compute(predictions=PREDICTIONS, references=REFERENCES)

    assert_scores(result, LENIENT)


def test_strict_scores_by_hand(metric):
    result = metric.compute(predictions=PREDICTIONS, references=REFERENCES, mode="strict")

    assert_scores(result, STRICT)


def test_perfect_predictions_score_one(metric):
    result = metric.compute(predictions=REFERENCES, references=REFERENCES)

    assert result["f1"] == 1.0
    assert result["precision"] == 1.0
    assert result["recall"] == 1.0
    assert result["accuracy"] == 1.0


def test_no_entities_scores_zero(metric):
    result = metric.compute(predictions=[["O", "O"]], references=[["O", "O"]])

    assert result["f1"] == 0.0
    assert result["per_class"] == {}
    assert result["accuracy"] == 1.0


def test_length_mismatch_rejected(metric):
    with pytest.raises(ValueError) as caught:
        metric.compute(predictions=[["O"]], references=[["O", "B-PER"]])

    assert "sentence 0 has 1 predicted tags and 2 reference tags" in str(caught.value)
