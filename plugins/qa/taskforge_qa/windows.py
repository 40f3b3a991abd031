"""Cutting (question, context) pairs into overlapping windows: the features of the QA task.

A context that does not fit beside its question in ``max_length`` tokens is cut into windows that
overlap by ``doc_stride`` tokens, and every window becomes one feature. Each feature carries
``example_index``, the row of its example.

Training features carry ``start_positions`` and ``end_positions``: the token indices of the first
gold answer when the window contains all of it, else the null position. Evaluation features carry
``offset_mapping``, the character span in the context of every token, with (-1, -1) for tokens
outside the context, and ``null_position``.

The null position is the token whose start and end logits score "no answer in this window": the CLS
token, or the first token of the window for a tokenizer that adds no CLS token.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from taskforge import ConfigError

if TYPE_CHECKING:
    import datasets
    import torch
    from transformers import PreTrainedTokenizerBase

# NOTE: the CLI shows only loggers under "taskforge", so this one is "taskforge.qa.<module>", not __name__.
logger = logging.getLogger(__name__.replace("taskforge_qa", "taskforge.qa", 1))

#: Offsets stored for tokens outside the context (question, special and padding tokens).
NO_OFFSET = (-1, -1)

#: Special tokens that a BERT-style tokenizer adds to a pair ([CLS] q [SEP] c [SEP]), assumed
#: while checking the configuration, before the tokenizer is loaded.
BERT_PAIR_SPECIAL_TOKENS = 3


@dataclasses.dataclass
class WindowCounts:
    """Counts gathered while cutting windows, logged once at the end."""

    windows: int = 0
    truncated_questions: int = 0
    windows_without_null_token: int = 0
    answerable: int = 0
    answer_in_a_window: int = 0


def window_room_problem(max_length: int, max_question_length: int, doc_stride: int, special_tokens: int) -> str | None:
    """Return why windows of these sizes cannot be cut, or None when they can.

    The tokenizer needs the stride to be smaller than the context tokens of a window, which is
    what remains of ``max_length`` after the longest question and the special tokens.
    """
    room = max_length - max_question_length - special_tokens
    if room < 1:
        return (
            f"--max-length {max_length} leaves no room for the context: {max_length} - {max_question_length} "
            f"(--max-question-length) - {special_tokens} (special tokens) = {room}; pass a larger --max-length "
            f"or a smaller --max-question-length"
        )
    if doc_stride >= room:
        return (
            f"--doc-stride {doc_stride} leaves no room: a window of --max-length {max_length} holds at least "
            f"{max_length} - {max_question_length} (--max-question-length) - {special_tokens} (special tokens) = "
            f"{room} context tokens, and consecutive windows must overlap by fewer; pass --doc-stride below "
            f"{room}, such as {room // 2}"
        )
    return None


def tokenize_windows(
    examples: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    doc_stride: int,
    max_question_length: int,
    training: bool,
) -> datasets.Dataset:
    """Tokenize examples into windows; see the module docstring for the columns of each kind."""
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"task 'qa' needs a fast tokenizer, which maps tokens to character offsets, but "
            f"{type(tokenizer).__name__} is a slow one; use a model that ships a tokenizer.json"
        )
    special_tokens = tokenizer.num_special_tokens_to_add(pair=True)
    problem = window_room_problem(max_length, max_question_length, doc_stride, special_tokens)
    if problem is not None:
        raise ConfigError(problem)

    # Tokenizers that pad on the left (XLNet) were pre-trained with the context first.
    question_first = tokenizer.padding_side == "right"
    context_sequence = 1 if question_first else 0
    null_token_id = tokenizer.cls_token_id
    with_answers = "answers" in examples.column_names
    counts = WindowCounts()

    def tokenize(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, Any]:
        questions = _truncate_questions([q.lstrip() for q in batch["question"]], tokenizer, max_question_length, counts)
        contexts = batch["context"]
        encoded = tokenizer(
            questions if question_first else contexts,
            contexts if question_first else questions,
            truncation="only_second" if question_first else "only_first",
            max_length=max_length,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        samples = encoded.pop("overflow_to_sample_mapping")
        offsets = encoded.pop("offset_mapping")
        features: dict[str, list[Any]] = {key: list(values) for key, values in encoded.items()}
        features["example_index"] = [indices[sample] for sample in samples]
        if training:
            features["start_positions"], features["end_positions"] = [], []
        else:
            features["offset_mapping"], features["null_position"] = [], []

        answered: set[int] = set()
        for window, sample in enumerate(samples):
            sequence_ids = encoded.sequence_ids(window)
            context_span = _context_span(sequence_ids, context_sequence)
            null_position = _null_position(encoded["input_ids"][window], null_token_id, counts)
            span = None
            if with_answers and batch["answers"][sample]["text"]:
                span = _answer_tokens(batch["answers"][sample], offsets[window], context_span)
                if span is not None:
                    answered.add(sample)
            if training:
                start, end = span if span is not None else (null_position, null_position)
                features["start_positions"].append(start)
                features["end_positions"].append(end)
            else:
                features["offset_mapping"].append(_context_offsets(offsets[window], context_span))
                features["null_position"].append(null_position)

        counts.windows += len(samples)
        if with_answers:
            counts.answerable += sum(1 for answers in batch["answers"] if answers["text"])
            counts.answer_in_a_window += len(answered)
        return features

    features = examples.map(
        tokenize, batched=True, with_indices=True, remove_columns=examples.column_names,
        load_from_cache_file=False, desc="cutting windows" if training else None,
    )
    _log_counts(counts, len(examples), max_length, doc_stride, max_question_length, training)
    return features


class WindowCollator:
    """Pad windows on the right to the longest window of the batch, rounded up to a multiple of
    ``pad_to_multiple_of``, and stack them into tensors.

    Padding always goes on the right, whatever the tokenizer's ``padding_side``, because the
    answer positions and the offsets count tokens from the left end of a window.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int = 1) -> None:
        self.pad_to_multiple_of = pad_to_multiple_of
        pad_token_id = tokenizer.pad_token_id
        if pad_token_id is None:
            # The attention mask hides padding, so any id works; 0 exists in every vocabulary.
            logger.info("the tokenizer has no pad token; windows are padded with token id 0, which the "
                        "attention mask hides")
            pad_token_id = 0
        self.pad_values: dict[str, int] = {
            "input_ids": pad_token_id,
            "attention_mask": 0,
            "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0),
            "special_tokens_mask": 1,
        }

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        import torch

        longest = max(len(feature["input_ids"]) for feature in features)
        longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch: dict[str, torch.Tensor] = {}
        for key, first in features[0].items():
            if isinstance(first, (list, tuple)):
                array = np.full((len(features), longest), self.pad_values.get(key, 0), dtype=np.int64)
                for row, feature in enumerate(features):
                    array[row, : len(feature[key])] = feature[key]
                batch[key] = torch.from_numpy(array)
            else:
                batch[key] = torch.tensor([feature[key] for feature in features])
        return batch


def _truncate_questions(
    questions: list[str], tokenizer: PreTrainedTokenizerBase, max_question_length: int, counts: WindowCounts
) -> list[str]:
    """Cut questions longer than ``max_question_length`` tokens at the end of their last allowed token."""
    result = list(questions)
    pending = list(range(len(questions)))
    truncated: set[int] = set()
    # A cut inside a word can re-tokenize into more pieces, so cut again until every question fits.
    for _ in range(4):
        if not pending:
            break
        encoded = tokenizer([result[i] for i in pending], add_special_tokens=False, return_offsets_mapping=True)
        still_long = []
        for i, token_offsets in zip(pending, encoded["offset_mapping"]):
            if len(token_offsets) > max_question_length:
                result[i] = result[i][: token_offsets[max_question_length - 1][1]]
                truncated.add(i)
                still_long.append(i)
        pending = still_long
    if pending:
        raise ConfigError(f"{len(pending)} questions could not be cut to --max-question-length {max_question_length} "
                          f"tokens; pass a larger --max-question-length")
    counts.truncated_questions += len(truncated)
    return result


def _context_span(sequence_ids: list[int | None], context_sequence: int) -> tuple[int, int] | None:
    """Return the first and last token index of the context in a window, or None when it has none."""
    if context_sequence not in sequence_ids:
        return None
    first = sequence_ids.index(context_sequence)
    last = len(sequence_ids) - 1 - sequence_ids[::-1].index(context_sequence)
    return first, last


def _null_position(input_ids: list[int], null_token_id: int | None, counts: WindowCounts) -> int:
    if null_token_id is not None and null_token_id in input_ids:
        return input_ids.index(null_token_id)
    counts.windows_without_null_token += 1
    return 0


def _answer_tokens(
    answers: Mapping[str, list[Any]], offsets: list[tuple[int, int]], context_span: tuple[int, int] | None
) -> tuple[int, int] | None:
    """Return the first and last token of the first answer, or None unless the window contains all of it."""
    if context_span is None:
        return None
    text = answers["text"][0]
    # Whitespace around an answer belongs to no token; without it the span still covers the answer.
    start_char = answers["answer_start"][0] + (len(text) - len(text.lstrip()))
    end_char = answers["answer_start"][0] + len(text.rstrip())
    first, last = context_span
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None
    context_offsets = np.asarray(offsets[first : last + 1], dtype=np.int64)
    # The first token that ends after the answer starts, and the last that starts before it ends.
    start = first + int(np.searchsorted(context_offsets[:, 1], start_char, side="right"))
    end = first + int(np.searchsorted(context_offsets[:, 0], end_char, side="left")) - 1
    if start > end:
        return None  # the answer consists of characters the tokenizer drops, such as zero-width spaces
    return start, end


def _context_offsets(offsets: list[tuple[int, int]], context_span: tuple[int, int] | None) -> list[tuple[int, int]]:
    if context_span is None:
        return [NO_OFFSET] * len(offsets)
    first, last = context_span
    return [NO_OFFSET] * first + list(offsets[first : last + 1]) + [NO_OFFSET] * (len(offsets) - last - 1)


def _log_counts(counts: WindowCounts, examples: int, max_length: int, doc_stride: int, max_question_length: int,
                training: bool) -> None:
    purpose = "training" if training else "evaluation"
    logger.info("%s: %d questions cut into %d windows of at most %d tokens (doc stride %d)",
                purpose, examples, counts.windows, max_length, doc_stride)
    if counts.truncated_questions:
        logger.warning("%s: %d questions are longer than --max-question-length %d tokens and were truncated",
                       purpose, counts.truncated_questions, max_question_length)
    if counts.windows_without_null_token:
        logger.info("%s: %d windows have no CLS token; the null answer of those windows is scored at their first "
                    "token (position 0)", purpose, counts.windows_without_null_token)
    missing = counts.answerable - counts.answer_in_a_window
    if missing:
        consequence = ("all their windows are labelled with the null position" if training
                       else "the model cannot predict them exactly")
        logger.warning(
            "%s: %d of %d answerable questions have a first answer that no window contains whole (answers longer "
            "than --doc-stride tokens can cross every window boundary); %s",
            purpose, missing, counts.answerable, consequence,
        )
