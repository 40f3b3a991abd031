"""SQuAD v2.0 scores, computed as the official v2.0 evaluation script computes them."""

import collections
import re
import string

import datasets
import evaluate

_DESCRIPTION = """
Exact match and token F1 of extractive answers where some questions have no answer, as
percentages: over all examples, over the answerable ones (HasAns) and over the unanswerable ones
(NoAns). Texts are normalised as in SQuAD v1.1 (lower case, punctuation and the articles a, an and
the removed, whitespace collapsed). Unlike v1.1, two texts that are both empty after normalisation
score 1 for F1, and gold answers that normalise to nothing count as the empty answer.

A prediction counts as "no answer" when its no_answer_probability exceeds no_answer_threshold; its
prediction_text is used otherwise. no_answer_probability may be any score where higher means "no
answer", such as the null score minus the best span's score. best_exact and best_f1 are the scores
at the threshold that maximises each, given as best_exact_thresh and best_f1_thresh.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of dict): {"id": str, "prediction_text": str, "no_answer_probability": float}
        per example. prediction_text is the best non-empty answer, or "" when there is none.
    references (list of dict): {"id": str, "answers": {"text": list of str, "answer_start": list of int}}
        per example; empty lists mark an unanswerable question.
    no_answer_threshold (float): predictions whose no_answer_probability is above it count as
        "no answer". Defaults to 1.0, the official script's default.
Returns:
    exact, f1 (float) and total (int) over all examples; HasAns_exact, HasAns_f1, HasAns_total when
    some examples are answerable; NoAns_exact, NoAns_f1, NoAns_total when some are not; and
    best_exact, best_exact_thresh, best_f1, best_f1_thresh.
Raises:
    ValueError: when a reference has no prediction.
"""

PUNCTUATION = frozenset(string.punctuation)

_CITATION = """
Rajpurkar, Jia and Liang. Know What You Don't Know: Unanswerable Questions for SQuAD. ACL 2018.
"""


def normalize_answer(text):
    """Lower-case, drop punctuation and the articles a, an and the, and collapse whitespace."""
    text = text.lower()
    text = "".join(character for character in text if character not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text, flags=re.UNICODE)
    return " ".join(text.split())


def answer_tokens(text):
    return normalize_answer(text).split() if text else []


def exact_score(gold, prediction):
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_score(gold, prediction):
    gold_tokens = answer_tokens(gold)
    prediction_tokens = answer_tokens(prediction)
    if not gold_tokens or not prediction_tokens:
        # An empty answer is right only against an empty one.
        return int(gold_tokens == prediction_tokens)
    same = sum((collections.Counter(gold_tokens) & collections.Counter(prediction_tokens)).values())
    if same == 0:
        return 0
    precision = same / len(prediction_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def mean_scores(exact, f1, ids):
    total = len(ids)
    return {
        "exact": 100.0 * sum(exact[i] for i in ids) / total,
        "f1": 100.0 * sum(f1[i] for i in ids) / total,
        "total": total,
    }


def best_threshold(predicted, raw_scores, no_answer_scores, has_answer):
    """Return the best total score (in percent) over thresholds, and that threshold.

    Starting from "every prediction is no answer", the threshold rises through the sorted
    no-answer scores, and each step turns one prediction into its answer text.
    """
    score = sum(1 for i in has_answer if not has_answer[i])
    best_score = score
    best_thresh = 0.0
    for i in sorted(no_answer_scores, key=lambda key: no_answer_scores[key]):
        if has_answer[i]:
            difference = raw_scores[i]
        else:
            difference = -1 if predicted[i] else 0
        score += difference
        if score > best_score:
            best_score = score
            best_thresh = no_answer_scores[i]
    return 100.0 * best_score / len(raw_scores), best_thresh


class SquadV2(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": {
                    "id": datasets.Value("string"),
                    "prediction_text": datasets.Value("string"),
                    "no_answer_probability": datasets.Value("float64"),
                },
                "references": {
                    "id": datasets.Value("string"),
                    "answers": {
                        "text": datasets.List(datasets.Value("string")),
                        "answer_start": datasets.List(datasets.Value("int32")),
                    },
                },
            }),
        )

    def _compute(self, predictions, references, no_answer_threshold=1.0):
        predicted = {prediction["id"]: prediction["prediction_text"] for prediction in predictions}
        no_answer_scores = {prediction["id"]: prediction["no_answer_probability"] for prediction in predictions}
        missing = [reference["id"] for reference in references if reference["id"] not in predicted]
        if missing:
            raise ValueError(f"{len(missing)} references have no prediction, such as id {missing[0]!r}")

        has_answer = {}
        exact_raw = {}
        f1_raw = {}
        for reference in references:
            i = reference["id"]
            has_answer[i] = bool(reference["answers"]["text"])
            golds = [text for text in reference["answers"]["text"] if normalize_answer(text)] or [""]
            exact_raw[i] = max(exact_score(gold, predicted[i]) for gold in golds)
            f1_raw[i] = max(f1_score(gold, predicted[i]) for gold in golds)

        # A prediction above the threshold is "no answer": right exactly when the question has none.
        exact = {}
        f1 = {}
        for i in has_answer:
            if no_answer_scores[i] > no_answer_threshold:
                exact[i] = f1[i] = float(not has_answer[i])
            else:
                exact[i], f1[i] = exact_raw[i], f1_raw[i]

        result = mean_scores(exact, f1, list(has_answer))
        for name, wanted in (("HasAns", True), ("NoAns", False)):
            ids = [i for i in has_answer if has_answer[i] == wanted]
            if ids:
                result.update({f"{name}_{key}": value for key, value in mean_scores(exact, f1, ids).items()})
        scored = {i: no_answer_scores[i] for i in has_answer}
        result["best_exact"], result["best_exact_thresh"] = best_threshold(predicted, exact_raw, scored, has_answer)
        result["best_f1"], result["best_f1_thresh"] = best_threshold(predicted, f1_raw, scored, has_answer)
        return result
