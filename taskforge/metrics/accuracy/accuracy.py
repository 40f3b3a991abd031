"""Accuracy: the share of predictions equal to their reference."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Accuracy is the number of correct predictions divided by the number of predictions."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted label ids.
    references (list of int): reference label ids.
    sample_weight (list of float, optional): weight of each example; defaults to 1.
Returns:
    accuracy (float): in [0, 1].
"""


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, sample_weight=None):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        weights = np.ones(len(predictions)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        correct = (predictions == references).astype(float)
        return {"accuracy": float((correct * weights).sum() / weights.sum())}
