"""The SQuAD v1.1 and v2.0 metric modules shipped in the plugin, on hand-computed cases."""

from __future__ import annotations

import pytest

from taskforge.metrics import load_metric_from
from taskforge_qa.task import METRICS_DIR


@pytest.fixture(scope="module")
def squad():
    return load_metric_from(METRICS_DIR / "squad")


@pytest.fixture(scope="module")
def squad_v2():
    return load_metric_from(METRICS_DIR / "squad_v2")


def v1_scores(metric, pairs):
    """Score (prediction, gold answers) pairs, one example each."""
    predictions = [{"id": str(i), "prediction_text": prediction} for i, (prediction, _) in enumerate(pairs)]
    references = [{"id": str(i), "answers": {"text": golds, "answer_start": [0] * len(golds)}}
                  for i, (_, golds) in enumerate(pairs)]
    return metric.compute(predictions=predictions, references=references)


def v2_scores(metric, rows, threshold=1.0):
    """Score (prediction, no-answer score, gold answers) rows, one example each."""
    predictions = [{"id": str(i), "prediction_text": text, "no_answer_probability": score}
                   for i, (text, score, _) in enumerate(rows)]
    references = [{"id": str(i), "answers": {"text": golds, "answer_start": [0] * len(golds)}}
                  for i, (_, _, golds) in enumerate(rows)]
    return metric.compute(predictions=predictions, references=references, no_answer_threshold=threshold)


# -- SQuAD v1.1 -----------------------------------------------------------------------------------


def test_v1_partial_overlap(squad):
    # One shared token: precision 1/1, recall 1/2, F1 2 * 0.5 / 1.5 = 66.67.
    scores = v1_scores(squad, [("Broncos", ["Denver Broncos"])])

    assert scores["exact_match"] == 0.0
    assert scores["f1"] == pytest.approx(66.6667, abs=1e-4)


def test_v1_article_only_answers(squad):
    # Both normalise to the empty string: equal, so exact match, but no shared token, so F1 0.
    scores = v1_scores(squad, [("The", ["the"])])

    assert scores["exact_match"] == 100.0
    assert scores["f1"] == 0.0


def test_v1_normalisation(squad):
    scores = v1_scores(squad, [("  the Denver-Broncos!", ["denverbroncos"]), ("An  apple", ["apple."])])

    assert scores["exact_match"] == 100.0
    assert scores["f1"] == 100.0


def test_v1_max_over_golds(squad):
    # The gold answers score F1 0, 80 and 100 against "Super Bowl 50": the best one counts.
    scores = v1_scores(squad, [("Super Bowl 50", ["Denver", "Super Bowl", "super bowl 50"]), ("Denver", ["Carolina"])])

    assert scores["exact_match"] == 50.0
    assert scores["f1"] == 50.0


def test_v1_missing_prediction_rejected(squad):
    with pytest.raises(ValueError, match="no prediction"):
        squad.compute(predictions=[{"id": "a", "prediction_text": "x"}],
                      references=[{"id": "b", "answers": {"text": ["x"], "answer_start": [0]}}])


# -- SQuAD v2.0 -----------------------------------------------------------------------------------


def test_v2_article_only_answers(squad_v2):
    scores = v2_scores(squad_v2, [("The", 0.0, ["the"])])

    assert scores["exact"] == 100.0
    assert scores["f1"] == 100.0


def test_v2_empty_answer_right(squad_v2):
    # An unanswerable question and an empty prediction: right in both metrics.
    scores = v2_scores(squad_v2, [("", 0.0, [])])

    assert scores["exact"] == 100.0
    assert scores["NoAns_f1"] == 100.0
    assert "HasAns_exact" not in scores


def test_v2_has_and_no_answer_split(squad_v2):
    # Threshold 0: scores above it mean "no answer".
    rows = [
        ("Denver Broncos", -1.0, ["Denver Broncos"]),  # answered, right: 1 / 1
        ("Broncos", -1.0, ["Denver Broncos"]),  # answered, partly right: 0 / 0.6667
        ("Carolina", 2.0, ["Carolina Panthers"]),  # no answer predicted for an answerable question: 0 / 0
        ("Paris", 3.0, []),  # no answer, right: 1 / 1
        ("Paris", -2.0, []),  # answered an unanswerable question: 0 / 0
    ]

    scores = v2_scores(squad_v2, rows, threshold=0.0)

    assert scores["total"] == 5
    assert scores["exact"] == pytest.approx(100 * 2 / 5)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 0 + 1 + 0) / 5)
    assert scores["HasAns_total"] == 3
    assert scores["HasAns_exact"] == pytest.approx(100 / 3)
    assert scores["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert scores["NoAns_total"] == 2
    assert scores["NoAns_exact"] == 50.0
    assert scores["NoAns_f1"] == 50.0


def test_v2_best_threshold(squad_v2):
    # "No answer" everywhere gets the 2 unanswerable questions right. Raising the threshold through
    # the sorted scores -2, -1, -1, 2 and 3 adds -1, +1, +0, +0 and -1 to the exact count (running
    # 1, 2, 2, 2, 1), which never beats 2, so the best stays at the official start threshold 0.0.
    # For F1 the steps are -1, +1, +2/3, +2/3 ("Carolina" against "Carolina Panthers") and -1:
    # the best, 2 + 4/3, is reached at 2.
    rows = [
        ("Denver Broncos", -1.0, ["Denver Broncos"]),
        ("Broncos", -1.0, ["Denver Broncos"]),
        ("Carolina", 2.0, ["Carolina Panthers"]),
        ("Paris", 3.0, []),
        ("Paris", -2.0, []),
    ]

    scores = v2_scores(squad_v2, rows, threshold=0.0)

    assert scores["best_exact"] == pytest.approx(40.0)
    assert scores["best_exact_thresh"] == 0.0
    assert scores["best_f1"] == pytest.approx(100 * (2 + 4 / 3) / 5)
    assert scores["best_f1_thresh"] == 2.0
