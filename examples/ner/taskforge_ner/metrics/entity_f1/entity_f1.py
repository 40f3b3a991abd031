"""Entity-level precision, recall and F1 of IOB2 tag sequences, overall and per entity type."""

import datasets
import evaluate

from taskforge_ner.iob2 import entity_spans

_DESCRIPTION = """
Entity-level scores of named-entity recognition, computed as conlleval and seqeval do. Each tag
sequence is decoded into entities (type, first word, last word). A predicted entity counts as
correct only when a reference entity has the same type and the same boundaries. Precision is
correct / predicted, recall is correct / reference entities, F1 their harmonic mean; each is 0 when
its denominator is 0. Overall scores are micro averages over all entities. Accuracy is the share of
words whose tag is right, "O" included.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of str): predicted IOB2 tags, one list per sentence.
    references (list of list of str): reference IOB2 tags, the same lengths as the predictions.
    mode (str, optional): "lenient" (default) starts an entity at an I-X that follows O or another
        type, as conlleval does; "strict" ignores such tags, as seqeval's mode="strict" does.
Returns:
    precision, recall, f1, accuracy (float), and per_class (dict): entity type ->
    {"precision", "recall", "f1", "support"}, where support is the number of reference entities.
"""


class EntityF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("string")),
                "references": datasets.Sequence(datasets.Value("string")),
            }),
        )

    def _compute(self, predictions, references, mode="lenient"):
        correct_words = 0
        total_words = 0
        counts = {}  # entity type -> [correct, predicted, reference]
        for index, (predicted, reference) in enumerate(zip(predictions, references)):
            if len(predicted) != len(reference):
                raise ValueError(
                    f"sentence {index} has {len(predicted)} predicted tags and {len(reference)} reference tags"
                )
            correct_words += sum(p == r for p, r in zip(predicted, reference))
            total_words += len(reference)

            predicted_spans = set(entity_spans(predicted, mode))
            reference_spans = set(entity_spans(reference, mode))
            for span in predicted_spans:
                counts.setdefault(span.type, [0, 0, 0])[1] += 1
            for span in reference_spans:
                counts.setdefault(span.type, [0, 0, 0])[2] += 1
            for span in predicted_spans & reference_spans:
                counts[span.type][0] += 1

        per_class = {entity_type: _scores(*counts[entity_type]) for entity_type in sorted(counts)}
        totals = [sum(values[i] for values in counts.values()) for i in range(3)]
        overall = _scores(*totals)
        return {
            "precision": overall["precision"],
            "recall": overall["recall"],
            "f1": overall["f1"],
            "accuracy": correct_words / total_words if total_words else 0.0,
            "per_class": per_class,
        }


def _scores(correct, predicted, reference):
    precision = correct / predicted if predicted else 0.0
    recall = correct / reference if reference else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": reference}
