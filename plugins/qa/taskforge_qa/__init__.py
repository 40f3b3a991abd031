"""Extractive question answering as a taskforge task plugin.

The ``qa`` task reads SQuAD JSON or flat files of questions, contexts and answers, cuts long
contexts into overlapping windows, and predicts the answer span from start and end logits, scored
with the official SQuAD v1.1 or v2.0 metric. With no data flags, it trains on an embedded sample of
60 questions. :func:`write_predictions` writes ``predictions.json`` and ``nbest_predictions.json``
from the predictions that ``QuestionAnsweringTask.postprocess`` returns; fine-tuning and
``taskforge evaluate --predictions-dir`` call it through ``Task.write_predictions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskforge_qa.task import QuestionAnsweringOptions, QuestionAnsweringTask

if TYPE_CHECKING:
    from taskforge_qa.postprocess import write_predictions

__all__ = ["QuestionAnsweringOptions", "QuestionAnsweringTask", "write_predictions"]


def __getattr__(name: str) -> Any:
    # Listing tasks imports this package, so numpy loads only when write_predictions is used.
    if name == "write_predictions":
        from taskforge_qa.postprocess import write_predictions

        return write_predictions
    raise AttributeError(f"module 'taskforge_qa' has no attribute {name!r}")
