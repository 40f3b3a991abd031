"""Precision, recall and F1 per class, with their macro and weighted averages."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
Per-class precision, recall and F1 of single-label classification, and their averages: macro (the
unweighted mean over classes) and weighted (the mean weighted by each class's number of references).
A class with no predictions has precision 0; a class with no references has recall 0. Both follow
scikit-learn's zero_division=0.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted label ids.
    references (list of int): reference label ids.
    labels (list of int, optional): the label ids to report, in order; defaults to the sorted ids
        found in predictions and references.
Returns:
    precision_macro, recall_macro, f1_macro, precision_weighted, recall_weighted, f1_weighted (float),
    and per_class (dict): label id -> {"precision", "recall", "f1", "support"}.
"""


class ClassificationReport(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, labels=None):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        if labels is None:
            labels = sorted(set(predictions.tolist()) | set(references.tolist()))

        per_class = {}
        for label in labels:
            true_positive = int(np.sum((predictions == label) & (references == label)))
            predicted = int(np.sum(predictions == label))
            support = int(np.sum(references == label))
            precision = true_positive / predicted if predicted else 0.0
            recall = true_positive / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}

        supports = np.array([per_class[label]["support"] for label in labels], dtype=float)
        result = {}
        for name in ("precision", "recall", "f1"):
            values = np.array([per_class[label][name] for label in labels], dtype=float)
            result[f"{name}_macro"] = float(values.mean()) if len(values) else 0.0
            result[f"{name}_weighted"] = float((values * supports).sum() / supports.sum()) if supports.sum() else 0.0
        result["per_class"] = per_class
        return result
