"""Cutting contexts into windows: answer labels, offsets, the null position and the collator.

Contexts made of the letters a to v tokenize to one token per letter, so window contents can be
worked out by hand. With the question "who?" ([CLS] who ? [SEP], 4 tokens), --max-length 15 and
--doc-stride 4, a window holds 15 - 2 - 3 = 10 context tokens and each window starts 10 - 4 = 6
tokens after the previous one: letters 0-9, 6-15 and 12-21.
"""

from __future__ import annotations

import logging

import pytest

from qa_testdata import tokenizer, tokenizer_dir  # noqa: F401  (fixtures)
from taskforge import ConfigError
from taskforge_qa.examples import build_dataset
from taskforge_qa.windows import WindowCollator, tokenize_windows, window_room_problem

LETTERS = " ".join("abcdefghijklmnopqrstuv")  # 22 one-token words; letter k starts at character 2k


def examples_of(context: str, answer: str | None, question: str = "who?", start: int | None = None):
    answers = {"text": [], "answer_start": []}
    if answer is not None:
        answers = {"text": [answer], "answer_start": [context.index(answer) if start is None else start]}
    return build_dataset(
        [{"id": "x", "title": "", "question": question, "context": context, "answers": answers}], with_answers=True
    )


def letter_span(first: str, last: str) -> str:
    return LETTERS[LETTERS.index(first) : LETTERS.index(last) + 1]


# -- three windows -------------------------------------------------------------------------------


def test_three_windows_answer_across_boundary(tokenizer):
    # Letters i-l are tokens 8-11: window 1 ends at token 9, window 2 contains 6-15, window 3 starts at 12.
    examples = examples_of(LETTERS, letter_span("i", "l"))

    features = tokenize_windows(examples, tokenizer, 15, 4, 2, training=True)

    assert len(features) == 3
    assert features["example_index"] == [0, 0, 0]
    assert features["start_positions"] == [0, 4 + 8 - 6, 0]
    assert features["end_positions"] == [0, 4 + 11 - 6, 0]


def test_three_windows_tokens(tokenizer):
    features = tokenize_windows(examples_of(LETTERS, "a"), tokenizer, 15, 4, 2, training=True)

    tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in features["input_ids"]]

    assert tokens[0][4:14] == list("abcdefghij")
    assert tokens[1][4:14] == list("ghijklmnop")
    assert tokens[2][4:14] == list("mnopqrstuv")
    assert all(window[:4] == ["[CLS]", "who", "?", "[SEP]"] for window in tokens)


def test_answer_at_first_context_token(tokenizer):
    features = tokenize_windows(examples_of(LETTERS, "a"), tokenizer, 15, 4, 2, training=True)

    assert features["start_positions"] == [4, 0, 0]
    assert features["end_positions"] == [4, 0, 0]


def test_answer_at_last_context_token(tokenizer):
    # "v" is token 21, the last context token of window 3 (position 4 + 21 - 12 = 13).
    features = tokenize_windows(examples_of(LETTERS, "v"), tokenizer, 15, 4, 2, training=True)

    assert features["start_positions"] == [0, 0, 13]
    assert features["end_positions"] == [0, 0, 13]
    assert len(features["input_ids"][2]) == 15


def test_evaluation_offsets_cover_context_only(tokenizer):
    features = tokenize_windows(examples_of(LETTERS, "a"), tokenizer, 15, 4, 2, training=False)

    second = features["offset_mapping"][1]

    assert "start_positions" not in features.column_names
    assert features["null_position"] == [0, 0, 0]
    assert second[:4] == [[-1, -1]] * 4
    assert second[4] == [12, 13]  # letter g, token 6, at character 12
    assert second[13] == [30, 31]  # letter p, token 15
    assert second[14] == [-1, -1]


def test_unanswerable_labels_null(tokenizer):
    features = tokenize_windows(examples_of(LETTERS, None), tokenizer, 15, 4, 2, training=True)

    assert features["start_positions"] == [0, 0, 0]
    assert features["end_positions"] == [0, 0, 0]


def test_answer_in_no_window_logged(tokenizer, caplog):
    # Letters f-q (12 tokens) exceed the 10 context tokens of a window.
    with caplog.at_level(logging.WARNING, logger="taskforge.qa"):
        features = tokenize_windows(examples_of(LETTERS, letter_span("f", "q")), tokenizer, 15, 4, 2, training=True)

    assert features["start_positions"] == [0, 0, 0]
    assert "1 of 1 answerable questions have a first answer that no window contains whole" in caplog.text


def test_answer_whitespace_trimmed(tokenizer):
    # " c " starts and ends on spaces, which belong to no token; the label is the token of c alone.
    features = tokenize_windows(examples_of(LETTERS, " c ", start=3), tokenizer, 15, 4, 2, training=True)

    assert features["start_positions"][0] == 6
    assert features["end_positions"][0] == 6


def test_accents_nbsp_double_spaces(tokenizer):
    context = "Le  café\u00a0noir  est à Paris."
    answer = "café\u00a0noir"
    features = tokenize_windows(examples_of(context, answer, question="quoi?"), tokenizer, 32, 4, 8, training=False)
    labels = tokenize_windows(examples_of(context, answer, question="quoi?"), tokenizer, 32, 4, 8, training=True)

    start, end = labels["start_positions"][0], labels["end_positions"][0]
    offsets = features["offset_mapping"][0]

    assert context[offsets[start][0] : offsets[end][1]] == answer
    assert tokenizer.convert_ids_to_tokens(labels["input_ids"][0][start : end + 1]) == ["cafe", "noir"]


def test_zero_width_answer_not_labelled(tokenizer):
    context = "a b \u200b c"
    features = tokenize_windows(examples_of(context, "\u200b"), tokenizer, 15, 4, 2, training=True)

    assert features["start_positions"] == [0]


# -- questions and room ---------------------------------------------------------------------------


def test_long_question_truncated(tokenizer, caplog):
    question = " ".join(["what"] * 12) + "?"
    with caplog.at_level(logging.WARNING, logger="taskforge.qa"):
        features = tokenize_windows(examples_of(LETTERS, "a", question=question), tokenizer, 20, 2, 5, training=True)

    tokens = tokenizer.convert_ids_to_tokens(features["input_ids"][0])

    assert tokens[:7] == ["[CLS]", "what", "what", "what", "what", "what", "[SEP]"]
    assert "1 questions are longer than --max-question-length 5 tokens" in caplog.text


def test_leading_question_spaces_stripped(tokenizer):
    features = tokenize_windows(examples_of(LETTERS, "a", question="   who?"), tokenizer, 15, 4, 2, training=True)

    assert len(features) == 3


def test_stride_without_room_rejected(tokenizer):
    with pytest.raises(ConfigError) as caught:
        tokenize_windows(examples_of(LETTERS, "a"), tokenizer, 15, 8, 4, training=True)

    # 15 - 4 - 3 = 8 context tokens, and the stride must be smaller.
    assert "--doc-stride 8 leaves no room" in str(caught.value)
    assert "15 - 4 (--max-question-length) - 3 (special tokens) = 8" in str(caught.value)


def test_room_problem_numbers():
    assert window_room_problem(384, 64, 128, 3) is None
    assert "384 - 64 (--max-question-length) - 3 (special tokens) = 317" in window_room_problem(384, 64, 317, 3)
    assert "leaves no room for the context" in window_room_problem(60, 64, 0, 3)


def test_slow_tokenizer_rejected(tokenizer):
    class SlowTokenizer:
        is_fast = False

    with pytest.raises(ConfigError) as caught:
        tokenize_windows(examples_of(LETTERS, "a"), SlowTokenizer(), 15, 4, 2, training=True)

    assert "needs a fast tokenizer" in str(caught.value)


# -- tokenizer without a CLS token ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer_without_cls(tokenizer):
    """The MiniLM vocabulary with pairs written "q [SEP] c [SEP]": no CLS token at all."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.post_processor = TemplateProcessing(
        single="$A [SEP]", pair="$A [SEP] $B:1 [SEP]:1", special_tokens=[("[SEP]", tokenizer.sep_token_id)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]")


def test_no_cls_null_at_first_token(tokenizer_without_cls, caplog):
    # who ? [SEP] leaves 15 - 2 - 2 = 11 context tokens; windows hold letters 0-10, 7-17 and 14-21.
    with caplog.at_level(logging.INFO, logger="taskforge.qa"):
        features = tokenize_windows(examples_of(LETTERS, "m"), tokenizer_without_cls, 15, 4, 2, training=True)

    assert tokenizer_without_cls.cls_token is None
    assert features["start_positions"] == [0, 3 + 12 - 7, 0]
    assert features["end_positions"] == [0, 3 + 12 - 7, 0]
    assert "3 windows have no CLS token; the null answer of those windows is scored at their first token" in caplog.text


def test_no_cls_null_position_feature(tokenizer_without_cls):
    features = tokenize_windows(examples_of(LETTERS, "m"), tokenizer_without_cls, 15, 4, 2, training=False)

    assert features["null_position"] == [0, 0, 0]
    assert features["offset_mapping"][0][3] == [0, 1]


def test_left_padding_tokenizer_context_first(tokenizer):
    tokenizer_left = tokenizer.__class__.from_pretrained(tokenizer.name_or_path, padding_side="left")

    features = tokenize_windows(examples_of(LETTERS, letter_span("i", "l")), tokenizer_left, 15, 4, 2, training=True)
    tokens = [tokenizer.convert_ids_to_tokens(ids) for ids in features["input_ids"]]

    # [CLS] context [SEP] who ? [SEP]: the context windows start at position 1.
    assert tokens[0][:2] == ["[CLS]", "a"]
    assert tokens[1][-3:] == ["who", "?", "[SEP]"]
    assert features["start_positions"] == [0, 1 + 8 - 6, 0]
    assert features["end_positions"] == [0, 1 + 11 - 6, 0]


# -- collator -------------------------------------------------------------------------------------


def test_collator_pads_right(tokenizer):
    tokenizer_left = tokenizer.__class__.from_pretrained(tokenizer.name_or_path, padding_side="left")
    collate = WindowCollator(tokenizer_left)

    batch = collate([
        {"input_ids": [101, 7, 102], "attention_mask": [1, 1, 1], "token_type_ids": [0, 0, 1], "start_positions": 1},
        {"input_ids": [101, 102], "attention_mask": [1, 1], "token_type_ids": [0, 1], "start_positions": 0},
    ])

    assert batch["input_ids"].tolist() == [[101, 7, 102], [101, 102, tokenizer.pad_token_id]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 1, 0]]
    assert batch["start_positions"].tolist() == [1, 0]


def test_collator_rounds_length_up_to_multiple(tokenizer):
    collate = WindowCollator(tokenizer, pad_to_multiple_of=4)
    pad = tokenizer.pad_token_id

    five = collate([{"input_ids": [101, 7, 8, 9, 102], "attention_mask": [1] * 5}])
    four = collate([{"input_ids": [101, 7, 8, 102], "attention_mask": [1] * 4}])

    assert five["input_ids"].tolist() == [[101, 7, 8, 9, 102, pad, pad, pad]]
    assert five["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 0, 0, 0]]
    assert four["input_ids"].tolist() == [[101, 7, 8, 102]]
