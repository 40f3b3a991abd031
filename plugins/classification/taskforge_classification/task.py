"""The ``classification`` task: one label per text or text pair.

Examples carry the columns ``text``, ``label`` and, for pairs, ``text_pair``. Labels may be strings
or integers; they are compared as strings, so ``1`` and ``1.0`` in a file both mean label ``1``.
The label set is the sorted set of training labels, numerically when every label is a number.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from taskforge import DataError, Task, TaskDefaults
from taskforge.data import drop_or_raise, invalid_text_rows, read_table, require_column
from taskforge.task import ColumnOptions, DataFile, LabelSet

if TYPE_CHECKING:
    import datasets
    import numpy as np
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


class ClassificationTask(Task):
    """Single-label classification with a sequence-classification head."""

    name: ClassVar[str] = "classification"
    description: ClassVar[str] = "Single-label text classification of single texts or text pairs"
    model_class: ClassVar[str] = "AutoModelForSequenceClassification"
    metric_for_best_model: ClassVar[str] = "accuracy"
    greater_is_better: ClassVar[bool] = True
    defaults: ClassVar[TaskDefaults] = TaskDefaults(learning_rate=5e-5, epochs=3, batch_size=32, max_length=128)

    #: Column that the held-out validation split is stratified by.
    stratify_column: ClassVar[str] = "label"
    default_text_column: ClassVar[str] = "text"
    default_label_column: ClassVar[str] = "label"
    #: Names given to labels whose sorted raw values are exactly ``default_label_names[0]`` keys.
    default_label_names: ClassVar[Mapping[tuple[str, ...], tuple[str, ...]]] = {}

    # -- data ------------------------------------------------------------------------------------

    def load_examples(self, file: DataFile, columns: ColumnOptions) -> datasets.Dataset:
        table = read_table(file)
        text_column = columns.text_column or self.default_text_column
        label_column = columns.label_column or self.default_label_column
        require_column(table, text_column, file, "--text-column")
        if columns.text_pair_column:
            require_column(table, columns.text_pair_column, file, "--text-pair-column")
        has_labels = file.split != "predict"
        if has_labels:
            require_column(table, label_column, file, "--label-column")

        roles = [(text_column, "text", "--text-column")]
        if columns.text_pair_column:
            roles.append((columns.text_pair_column, "text_pair", "--text-pair-column"))
        if has_labels:
            roles.append((label_column, "label", "--label-column"))
        for column, _, flag in roles:
            clashing = [other_flag for other, _, other_flag in roles if other == column and other_flag != flag]
            if clashing:
                raise DataError(f"column {column!r} of {file.display_name} is given for two roles ({flag} and "
                                f"{clashing[0]}); pass a different column to one of them")
        keep = {column: role for column, role, _ in roles}
        table = table.select_columns(list(keep)).rename_columns({k: v for k, v in keep.items() if k != v})

        table = drop_or_raise(table, invalid_text_rows(table, "text"), f"empty or missing text in column {text_column!r}",
                              file, columns.drop_invalid)
        if columns.text_pair_column:
            table = drop_or_raise(table, invalid_text_rows(table, "text_pair"),
                                  f"empty or missing text in column {columns.text_pair_column!r}", file, columns.drop_invalid)
        if has_labels:
            bad = [i for i, value in enumerate(table["label"]) if _label_key(value) is None]
            table = drop_or_raise(table, bad, f"missing label in column {label_column!r}", file, columns.drop_invalid)
            keys = [_label_key(value) for value in table["label"]]
            table = table.remove_columns("label").add_column("label", keys)
        return table

    def examples_from_inputs(self, inputs: Sequence[Any]) -> datasets.Dataset:
        import datasets

        texts, pairs = [], []
        for position, item in enumerate(inputs):
            if isinstance(item, str):
                text, pair = item, None
            elif isinstance(item, Mapping) and "text" in item:
                unknown = sorted(set(item) - {"text", "text_pair"})
                if unknown:
                    raise DataError(f"input {position} has the unknown field(s) {', '.join(map(str, unknown))}; "
                                    f"task {self.name!r} takes the fields text and text_pair")
                text, pair = item["text"], item.get("text_pair")
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                text, pair = item
            else:
                raise DataError(f"input {position} is {item!r}; pass a string, a (text, text_pair) pair "
                                f"or a dict with 'text'")
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"input {position} has empty text; pass non-empty strings")
            texts.append(text)
            pairs.append(pair)
        columns: dict[str, list[Any]] = {"text": texts}
        if any(pair is not None for pair in pairs):
            if any(pair is None for pair in pairs):
                raise DataError("some inputs have a text_pair and some do not; pass pairs for all or none")
            columns["text_pair"] = pairs
        return datasets.Dataset.from_dict(columns)

    # -- labels ----------------------------------------------------------------------------------

    def label_set(self, train_examples: datasets.Dataset, columns: ColumnOptions) -> LabelSet:
        values = sorted(set(train_examples["label"]), key=_label_sort_key)
        if len(values) < 2:
            raise DataError(f"the training data has {len(values)} distinct label(s) ({', '.join(values)}); "
                            f"classification needs at least 2")
        if columns.label_names is not None:
            if len(columns.label_names) != len(values):
                raise DataError(
                    f"--label-names gives {len(columns.label_names)} names ({', '.join(columns.label_names)}) "
                    f"for {len(values)} labels in the training data ({', '.join(values)}); give one name per label, "
                    f"in the sorted order of the values"
                )
            names = tuple(columns.label_names)
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise DataError(f"--label-names repeats {', '.join(duplicates)}; give each label a different name")
        else:
            names = tuple(self.default_label_names.get(tuple(values), values))
        return LabelSet(names=names, values=tuple(values))

    def check_labels(self, examples: datasets.Dataset, labels: LabelSet | None, file: DataFile) -> None:
        if labels is None or "label" not in examples.column_names:
            return
        lookup = labels.lookup()
        for row, value in enumerate(examples["label"]):
            if value not in lookup:
                known = ", ".join(labels.values)
                raise DataError(
                    f"label {value!r} in {file.display_name} row {row + 1} was not seen in the training data; "
                    f"training labels are: {known}. Fix the row or add examples of {value!r} to the training data"
                )

    # -- features --------------------------------------------------------------------------------

    def preprocess(
        self,
        examples: datasets.Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        labels: LabelSet | None,
        training: bool,
    ) -> datasets.Dataset:
        has_pair = "text_pair" in examples.column_names
        has_labels = labels is not None and "label" in examples.column_names
        lookup = labels.lookup() if labels is not None else {}

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            encoded = tokenizer(
                batch["text"], batch["text_pair"] if has_pair else None, truncation=True, max_length=max_length
            )
            if has_labels:
                encoded["labels"] = [lookup[value] for value in batch["label"]]
            return encoded

        from taskforge.data import map_fingerprint

        fingerprint = map_fingerprint(examples, tokenizer, tokenize, max_length, has_pair, has_labels,
                                      sorted(lookup.items()))
        return examples.map(tokenize, batched=True, remove_columns=examples.column_names,
                            desc="tokenizing" if training else None, new_fingerprint=fingerprint)

    # -- outputs ---------------------------------------------------------------------------------

    def postprocess(
        self, examples: datasets.Dataset, features: datasets.Dataset, outputs: Mapping[str, np.ndarray]
    ) -> list[dict[str, Any]]:
        import numpy as np

        logits = outputs["logits"].astype(np.float64)
        logits -= logits.max(axis=-1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        return [{"label_id": int(row.argmax()), "probabilities": row} for row in probabilities]

    def compute_metrics(
        self, predictions: Sequence[dict[str, Any]], examples: datasets.Dataset, labels: LabelSet | None
    ) -> dict[str, Any]:
        from taskforge.metrics import load_metric

        assert labels is not None
        lookup = labels.lookup()
        references = [lookup[value] for value in examples["label"]]
        predicted = [prediction["label_id"] for prediction in predictions]
        result: dict[str, Any] = load_metric("accuracy").compute(predictions=predicted, references=references)
        report = load_metric("classification_report").compute(
            predictions=predicted, references=references, labels=list(range(len(labels)))
        )
        per_class = report.pop("per_class")
        result.update(report)
        result["per_class"] = {labels.names[i]: scores for i, scores in per_class.items()}
        return result

    def format_prediction(self, prediction: dict[str, Any], labels: LabelSet | None) -> dict[str, Any]:
        assert labels is not None
        probabilities = prediction["probabilities"]
        label_id = prediction["label_id"]
        return {
            "label": labels.names[label_id],
            "score": round(float(probabilities[label_id]), 6),
            "scores": {name: round(float(p), 6) for name, p in zip(labels.names, probabilities)},
        }


def _label_key(value: Any) -> str | None:
    """Return a label as a string, writing integral floats as integers; None when missing."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def _label_sort_key(value: str) -> tuple[int, float, str]:
    try:
        number = float(value)
    except ValueError:
        return (1, 0.0, value)
    # "nan" and "inf" parse as floats but have no numeric order, so they sort as text.
    return (0, number, value) if math.isfinite(number) else (1, 0.0, value)
