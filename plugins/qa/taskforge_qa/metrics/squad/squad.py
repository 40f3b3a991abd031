"""SQuAD v1.1 exact match and F1, computed as the official v1.1 evaluation script computes them."""

import collections
import re
import string

import datasets
import evaluate

_DESCRIPTION = """
Exact match and token F1 of extractive answers, each the maximum over an example's gold answers
and averaged over examples, as percentages. Before comparing, both texts are normalised as the
official SQuAD v1.1 script does: lower case, punctuation removed, the articles a, an and the
removed, and whitespace collapsed. F1 is computed on the whitespace tokens of the normalised texts.
An empty normalised text shares no token with anything, so its F1 is 0, even against an empty
gold answer; the SQuAD v2.0 metric scores that case as 100.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of dict): {"id": str, "prediction_text": str} per example.
    references (list of dict): {"id": str, "answers": {"text": list of str, "answer_start": list of int}}
        per example, each with at least one gold answer.
Returns:
    exact_match (float): percentage of examples whose prediction equals a gold answer after normalisation.
    f1 (float): mean over examples of the best token F1 against any gold answer, as a percentage.
Raises:
    ValueError: when a reference has no prediction, or an example has no gold answer.
"""

PUNCTUATION = frozenset(string.punctuation)

_CITATION = """
Rajpurkar, Zhang, Lopyrev and Liang. SQuAD: 100,000+ Questions for Machine Comprehension of Text.
EMNLP 2016.
"""


def normalize_answer(text):
    """Lower-case, drop punctuation and the articles a, an and the, and collapse whitespace."""
    text = text.lower()
    text = "".join(character for character in text if character not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match_score(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction, gold):
    prediction_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    same = sum((collections.Counter(prediction_tokens) & collections.Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


class Squad(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")},
                "references": {
                    "id": datasets.Value("string"),
                    "answers": {
                        "text": datasets.List(datasets.Value("string")),
                        "answer_start": datasets.List(datasets.Value("int32")),
                    },
                },
            }),
        )

    def _compute(self, predictions, references):
        predicted = {prediction["id"]: prediction["prediction_text"] for prediction in predictions}
        missing = [reference["id"] for reference in references if reference["id"] not in predicted]
        if missing:
            raise ValueError(f"{len(missing)} references have no prediction, such as id {missing[0]!r}")
        exact_match = f1 = 0.0
        for reference in references:
            golds = reference["answers"]["text"]
            if not golds:
                raise ValueError(f"example {reference['id']!r} has no gold answer; SQuAD v1.1 needs one per "
                                 f"example (use the squad_v2 metric for unanswerable questions)")
            prediction = predicted[reference["id"]]
            exact_match += max(exact_match_score(prediction, gold) for gold in golds)
            f1 += max(f1_score(prediction, gold) for gold in golds)
        total = len(references)
        return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}
