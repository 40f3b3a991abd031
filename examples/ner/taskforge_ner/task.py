"""The ``ner`` task: named-entity recognition as token classification over IOB2 tags.

Examples have the columns ``tokens`` (the words of one sentence), ``tags`` (one IOB2 tag per word;
absent in prediction inputs), ``text`` (the sentence as one string) and ``offsets`` (each word's
start and end character in ``text``). Sentences read from files get ``text`` by joining their words
with single spaces; raw strings given to ``predict`` keep their own text, split at whitespace.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taskforge import DataError, Task, TaskDefaults
from taskforge.task import ColumnOptions, DataFile, LabelSet
from taskforge_ner.conll import join_words, read_conll, split_words
from taskforge_ner.iob2 import entity_spans, is_iob2_tag, stray_inside_tags

if TYPE_CHECKING:
    import datasets
    import numpy as np
    import torch
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DIR = PACKAGE_DIR / "data"
METRIC_DIR = PACKAGE_DIR / "metrics" / "entity_f1"


@dataclasses.dataclass
class NerOptions:
    """Options of the ``ner`` task."""

    stride: int = dataclasses.field(default=16, metadata={
        "help": "Sub-word tokens that consecutive windows share when a sentence is longer than --max-length."
    })


class NerTask(Task):
    """Named-entity recognition with a token-classification head, scored on entities."""

    name: ClassVar[str] = "ner"
    description: ClassVar[str] = "Named-entity recognition (IOB2 tags) on CoNLL-style files, scored by entity F1"
    model_class: ClassVar[str] = "AutoModelForTokenClassification"
    metric_for_best_model: ClassVar[str] = "f1"
    defaults: ClassVar[TaskDefaults] = TaskDefaults(learning_rate=1e-4, epochs=3, batch_size=32, max_length=128)
    file_formats: ClassVar[Mapping[str, str]] = {".txt": "conll", ".conll": "conll"}
    options_class: ClassVar[type] = NerOptions
    # Tags are distilled per labelled token (the default distillation_logits), which needs the teacher's tokens.
    distillation_level: ClassVar[str] = "token"

    #: Columns of JSON, JSON Lines and Parquet files, as Hugging Face token-classification sets name them.
    default_tokens_field: ClassVar[str] = "tokens"
    default_tags_field: ClassVar[str] = "ner_tags"

    def validate_config(self, config: Any) -> list[str]:
        stride = self.options.stride
        if stride < 0:
            return [f"--stride must be 0 or more, got {stride}"]
        if config.max_length is not None and 2 * stride > config.max_length:
            return [f"--stride {stride} must be at most half of --max-length {config.max_length}; "
                    f"pass a smaller --stride"]
        return []

    # -- data ------------------------------------------------------------------------------------

    def sample_data(self) -> dict[str, DataFile]:
        return {
            "train": DataFile(str(SAMPLE_DIR / "train.conll"), "conll", "train"),
            "validation": DataFile(str(SAMPLE_DIR / "validation.conll"), "conll", "validation"),
        }

    def load_examples(self, file: DataFile, columns: ColumnOptions) -> datasets.Dataset:
        import datasets

        with_tags = file.split != "predict"
        if file.format == "conll":
            tokens, tags, places = self._read_conll(file, columns, with_tags)
        elif file.format in ("json", "jsonl", "parquet", "hub"):
            tokens, tags, places = self._read_table(file, columns, with_tags)
        else:
            raise DataError(
                f"{file.display_name} is {file.format}, which the ner task does not read; pass a CoNLL file "
                f"(.txt or .conll, one token per line) or JSON, JSON Lines or Parquet with a list of tokens and "
                f"a list of tags per row"
            )

        keep = list(range(len(tokens)))
        if with_tags:
            bad = _invalid_tag_rows(tags, places)
            keep = _drop_or_raise(bad, len(tokens), file, columns.drop_invalid)
            stray = sum(stray_inside_tags(tags[i]) for i in keep)
            if stray:
                logger.warning(
                    "%s has %d I- tags that follow O or another entity type, which IOB2 does not allow "
                    "(IOB1 files have them); each is scored as the start of an entity", file.display_name, stray,
                )

        texts, offsets = zip(*(join_words(tokens[i]) for i in keep)) if keep else ((), ())
        data: dict[str, list[Any]] = {
            "tokens": [tokens[i] for i in keep],
            "text": list(texts),
            "offsets": [list(map(list, row)) for row in offsets],
        }
        if with_tags:
            data["tags"] = [tags[i] for i in keep]
        return datasets.Dataset.from_dict(data)

    def examples_from_inputs(self, inputs: Sequence[Any]) -> datasets.Dataset:
        import datasets

        tokens, texts, offsets = [], [], []
        for position, item in enumerate(inputs):
            if isinstance(item, str) or (isinstance(item, Mapping) and isinstance(item.get("text"), str)):
                text = item if isinstance(item, str) else item["text"]
                words, word_offsets = split_words(text)
            elif isinstance(item, Mapping) and isinstance(item.get("tokens"), (list, tuple)):
                words = [str(word) for word in item["tokens"]]
                text, word_offsets = join_words(words)
            else:
                raise DataError(f"input {position} is {item!r}; pass a string, a dict with 'text', "
                                f"or a dict with 'tokens' (a list of words)")
            if not words or not all(word.strip() for word in words):
                raise DataError(f"input {position} has no words or an empty word; pass non-empty text")
            tokens.append(words)
            texts.append(text)
            offsets.append([list(pair) for pair in word_offsets])
        return datasets.Dataset.from_dict({"tokens": tokens, "text": texts, "offsets": offsets})

    # -- labels ----------------------------------------------------------------------------------

    def label_set(self, train_examples: datasets.Dataset, columns: ColumnOptions) -> LabelSet:
        """Return ``O`` and then ``B-X``, ``I-X`` for each entity type X in the data, types sorted.

        Both tags of a type are included even when training has only one of them, so that the
        model can predict an ``I-`` tag that training data never showed. Integer tags, as Hugging
        Face datasets store them, need ``--label-names`` in the order of the ids.
        """
        values = sorted({tag for tags in train_examples["tags"] for tag in tags}, key=_tag_sort_key)
        if columns.label_names is not None:
            return _named_label_set(values, columns.label_names)
        non_tags = [value for value in values if not is_iob2_tag(value)]
        if non_tags:
            raise DataError(
                f"the training tags include {', '.join(non_tags[:5])}, which are not IOB2 tags; pass --label-names "
                f"with one IOB2 tag per id, such as O,B-PER,I-PER, in the sorted order of the values"
            )
        types = sorted({value[2:] for value in values if value != "O"})
        if not types:
            raise DataError("the training data has no entities (every tag is O); ner needs tagged entities")
        names = ("O", *(f"{prefix}-{entity_type}" for entity_type in types for prefix in "BI"))
        return LabelSet(names=names, values=names)

    def check_labels(self, examples: datasets.Dataset, labels: LabelSet | None, file: DataFile) -> None:
        if labels is None or "tags" not in examples.column_names:
            return
        lookup = labels.lookup()
        for row, tags in enumerate(examples["tags"]):
            unknown = [tag for tag in tags if tag not in lookup]
            if unknown:
                raise DataError(
                    f"tag {unknown[0]!r} in {file.display_name} sentence {row + 1} was not seen in the training data; "
                    f"training tags are: {', '.join(labels.values)}. Fix the sentence or add examples of it to the "
                    f"training data"
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
        from taskforge_ner.features import tokenize_words

        if not getattr(tokenizer, "is_fast", False):
            raise DataError(f"the ner task needs a fast tokenizer to map sub-words to words, but "
                            f"{type(tokenizer).__name__} is not one; use a model whose tokenizer.json is available")
        with_labels = labels is not None and "tags" in examples.column_names
        lookup = labels.lookup() if labels is not None else {}
        stride = self.options.stride

        def tokenize(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
            tag_ids = [[lookup[tag] for tag in tags] for tags in batch["tags"]] if with_labels else None
            return tokenize_words(batch["tokens"], indices, tokenizer, max_length, stride, tag_ids)

        features = examples.map(tokenize, batched=True, with_indices=True, remove_columns=examples.column_names,
                                desc="tokenizing" if training else None)
        if len(features) > len(examples):
            logger.info(
                "%d sentences gave %d features: sentences longer than %d tokens were split into windows that "
                "share up to %d tokens (--stride)", len(examples), len(features), max_length, stride,
            )
        return features

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def loss_units(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Count the labelled tokens, which the token-classification loss is a mean over."""
        from taskforge_ner.features import IGNORE_INDEX

        return int((batch["labels"] != IGNORE_INDEX).sum())

    # -- outputs ---------------------------------------------------------------------------------

    def postprocess(
        self, examples: datasets.Dataset, features: datasets.Dataset, outputs: Mapping[str, np.ndarray]
    ) -> list[dict[str, Any]]:
        """Return per sentence the tag id and its probability for each word, with the text and offsets.

        Tag names are applied later, in ``compute_metrics`` and ``format_prediction``, which receive
        the label set.
        """
        from taskforge_ner.features import word_probabilities

        word_counts = [len(tokens) for tokens in examples["tokens"]]
        probabilities = word_probabilities(
            outputs["logits"], features["word_ids"], features["example_index"], word_counts
        )
        predictions = []
        for rows, text, offsets in zip(probabilities, examples["text"], examples["offsets"]):
            tag_ids = rows.argmax(axis=-1) if len(rows) else rows.reshape(0)
            predictions.append({
                "tag_ids": [int(i) for i in tag_ids],
                "scores": [float(rows[word, i]) for word, i in enumerate(tag_ids)],
                "text": text,
                "offsets": offsets,
            })
        return predictions

    def compute_metrics(
        self, predictions: Sequence[dict[str, Any]], examples: datasets.Dataset, labels: LabelSet | None
    ) -> dict[str, Any]:
        from taskforge.metrics import load_metric_from

        assert labels is not None, "the ner task always has a label set"
        lookup = labels.lookup()
        references = [[labels.names[lookup[tag]] for tag in tags] for tags in examples["tags"]]
        predicted = [_tag_names(prediction, labels) for prediction in predictions]
        return load_metric_from(METRIC_DIR).compute(predictions=predicted, references=references)

    def format_prediction(self, prediction: dict[str, Any], labels: LabelSet | None) -> dict[str, Any]:
        """Return the entities with their character offsets in the input text, and each word's tag.

        An entity's ``score`` is the mean probability of its words' predicted tags.
        """
        assert labels is not None, "the ner task always has a label set"
        tags = _tag_names(prediction, labels)
        text, offsets, scores = prediction["text"], prediction["offsets"], prediction["scores"]
        entities = []
        for span in entity_spans(tags):
            start, end = offsets[span.start][0], offsets[span.end - 1][1]
            entities.append({
                "entity": span.type,
                "text": text[start:end],
                "start": start,
                "end": end,
                "score": round(sum(scores[span.start:span.end]) / (span.end - span.start), 6),
            })
        return {"entities": entities, "tags": tags}

    # -- helpers ---------------------------------------------------------------------------------

    def _read_conll(self, file: DataFile, columns: ColumnOptions,
                    with_tags: bool) -> tuple[list[list[str]], list[list[str]], list[str]]:
        token_column = _column_position(columns.text_column, 0, "--text-column")
        tag_column = _column_position(columns.label_column, -1, "--label-column") if with_tags else None
        sentences = read_conll(file, token_column, tag_column)
        return sentences.tokens, sentences.tags, [f"line {line}" for line in sentences.lines]

    def _read_table(self, file: DataFile, columns: ColumnOptions,
                    with_tags: bool) -> tuple[list[list[str]], list[list[str]], list[str]]:
        from taskforge.data import read_table, require_column

        table = read_table(file)
        tokens_field = columns.text_column or self.default_tokens_field
        tags_field = columns.label_column or self.default_tags_field
        require_column(table, tokens_field, file, "--text-column")
        if with_tags:
            require_column(table, tags_field, file, "--label-column")

        tokens, tags, places = [], [], []
        for row, words in enumerate(table[tokens_field]):
            if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
                raise DataError(f"column {tokens_field!r} of {file.display_name} row {row + 1} is {words!r}; "
                                f"each row needs a non-empty list of non-empty words")
            tokens.append(words)
            places.append(f"row {row + 1}")
        if with_tags:
            for row, (words, row_tags) in enumerate(zip(tokens, table[tags_field])):
                if not isinstance(row_tags, list) or len(row_tags) != len(words):
                    count = len(row_tags) if isinstance(row_tags, list) else row_tags
                    raise DataError(f"{file.display_name} row {row + 1} has {len(words)} words but {count!r} tags in "
                                    f"column {tags_field!r}; give one tag per word")
                tags.append([str(tag) for tag in row_tags])
        return tokens, tags, places


def _column_position(value: str | None, default: int, flag: str) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{flag} {value!r} is not a column position; in CoNLL files columns are numbered from 0, "
                        f"and -1 is the last one") from None


def _invalid_tag_rows(tags: list[list[str]], places: list[str]) -> list[tuple[int, str]]:
    """Return (sentence index, problem) for sentences whose tags are neither all IOB2 nor all integers."""
    integer_ids = all(tag.isdigit() for row in tags for tag in row)
    if integer_ids:
        return []
    bad = []
    for index, row in enumerate(tags):
        invalid = next((tag for tag in row if not is_iob2_tag(tag)), None)
        if invalid is not None:
            bad.append((index, f"tag {invalid!r} at {places[index]} is not an IOB2 tag (O, B-TYPE or I-TYPE)"))
    return bad


def _drop_or_raise(bad: list[tuple[int, str]], count: int, file: DataFile, drop_invalid: bool) -> list[int]:
    """Return the indices of the sentences to keep, raising for the first bad one unless ``drop_invalid``."""
    if not bad:
        return list(range(count))
    if not drop_invalid:
        more = f" ({len(bad)} sentences in all)" if len(bad) > 1 else ""
        raise DataError(f"{bad[0][1]} in {file.display_name}{more}; fix the data or pass --drop-invalid to skip "
                        f"such sentences")
    dropped = {index for index, _ in bad}
    logger.warning("dropped %d of %d sentences of %s with tags that are not IOB2 (--drop-invalid)",
                   len(dropped), count, file.display_name)
    if len(dropped) == count:
        raise DataError(f"no valid sentences left in {file.display_name} after dropping {count}")
    return [index for index in range(count) if index not in dropped]


def _named_label_set(values: list[str], label_names: tuple[str, ...]) -> LabelSet:
    """Name raw tag values with ``--label-names``, given in the sorted order of the values."""
    non_tags = [name for name in label_names if not is_iob2_tag(name)]
    if non_tags:
        raise DataError(f"--label-names has {', '.join(non_tags)}, which are not IOB2 tags (O, B-TYPE or I-TYPE)")
    if values and all(value.isdigit() for value in values) and int(values[-1]) < len(label_names):
        # Integer tags are ids: name every id up to the last name, including ids absent from training.
        values = [str(i) for i in range(len(label_names))]
    if len(values) != len(label_names):
        raise DataError(
            f"--label-names gives {len(label_names)} names for {len(values)} tag values in the training data "
            f"({', '.join(values)}); give one name per value, in the sorted order of the values"
        )
    return LabelSet(names=tuple(label_names), values=tuple(values))


def _tag_names(prediction: Mapping[str, Any], labels: LabelSet) -> list[str]:
    """Return the predicted tag of each word; a word without sub-tokens is tagged ``O``."""
    return [labels.names[i] if score > 0 else "O" for i, score in zip(prediction["tag_ids"], prediction["scores"])]


def _tag_sort_key(value: str) -> tuple[int, int, str]:
    return (0, int(value), value) if value.isdigit() else (1, 0, value)
