"""From window logits to answers: span search over all windows, the null answer and the prediction files.

The letter context of test_qa_windows is reused: "a b c ... v" in three windows of 15 tokens, where
position p of window w (p from 4 to 13) holds letter 6 * w + p - 4, at character 2 * (6 * w + p - 4).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from qa_testdata import tokenizer, tokenizer_dir  # noqa: F401  (fixtures)
from taskforge.evaluation import OUTPUT_PAD_VALUE
from taskforge_qa.examples import build_dataset
from taskforge_qa.postprocess import DecodeOptions, postprocess_predictions, write_predictions
from taskforge_qa.windows import tokenize_windows

LETTERS = " ".join("abcdefghijklmnopqrstuv")


def make_examples(contexts: list[str]):
    rows = [{"id": f"e{i}", "title": "", "question": "who?", "context": context,
             "answers": {"text": [], "answer_start": []}} for i, context in enumerate(contexts)]
    return build_dataset(rows, with_answers=True)


def windows_of(tokenizer, contexts: list[str]):
    examples = make_examples(contexts)
    return examples, tokenize_windows(examples, tokenizer, 15, 4, 2, training=False)


def logits(windows: int, width: int = 15, fill: float = 0.0) -> dict[str, np.ndarray]:
    return {"start_logits": np.full((windows, width), fill, dtype=np.float32),
            "end_logits": np.full((windows, width), fill, dtype=np.float32)}


def test_answer_from_middle_window(tokenizer):
    examples, features = windows_of(tokenizer, [LETTERS])
    outputs = logits(3)
    outputs["start_logits"][1, 6] = 10.0  # letter i
    outputs["end_logits"][1, 9] = 10.0  # letter l

    prediction = postprocess_predictions(examples, features, outputs, DecodeOptions())[0]

    assert prediction["answer"] == "i j k l"
    assert prediction["start"] == 16
    assert prediction["end"] == 23
    assert prediction["nbest"][0]["score"] == pytest.approx(20.0)


def test_no_span_across_windows(tokenizer):
    # Start of j in window 1 plus end of l in window 2 would score 16, but no window contains both.
    examples, features = windows_of(tokenizer, [LETTERS])
    outputs = logits(3, fill=-10.0)
    outputs["start_logits"][0, 13] = 8.0  # letter j, window 1
    outputs["end_logits"][0, 13] = -9.0
    outputs["end_logits"][1, 9] = 8.0  # letter l, window 2

    prediction = postprocess_predictions(examples, features, outputs, DecodeOptions())[0]

    assert prediction["answer"] == "j"
    assert prediction["nbest"][0]["score"] == pytest.approx(-1.0)


def test_spans_at_context_edges(tokenizer):
    examples, features = windows_of(tokenizer, [LETTERS, LETTERS])
    outputs = logits(6)
    outputs["start_logits"][0, 4] = outputs["end_logits"][0, 4] = 5.0  # first letter of example 0
    outputs["start_logits"][5, 13] = outputs["end_logits"][5, 13] = 5.0  # last letter of example 1

    first, last = postprocess_predictions(examples, features, outputs, DecodeOptions())

    assert (first["answer"], first["start"], first["end"]) == ("a", 0, 1)
    assert (last["answer"], last["start"], last["end"]) == ("v", 42, 43)


def test_padding_and_non_context_ignored(tokenizer):
    # Example 1 has one window of 8 tokens: [CLS] who ? [SEP] a b c [SEP].
    examples, features = windows_of(tokenizer, [LETTERS, "a b c"])
    outputs = logits(4)
    outputs["start_logits"][3, 8:] = OUTPUT_PAD_VALUE
    outputs["end_logits"][3, 8:] = OUTPUT_PAD_VALUE
    outputs["start_logits"][3, :4] = 50.0  # question and special tokens
    outputs["end_logits"][3, 7] = 50.0  # the final [SEP]
    outputs["start_logits"][3, 5] = outputs["end_logits"][3, 6] = 1.0  # b c

    prediction = postprocess_predictions(examples, features, outputs, DecodeOptions())[1]

    assert prediction["answer"] == "b c"


def test_max_answer_length(tokenizer):
    examples, features = windows_of(tokenizer, [LETTERS])
    outputs = logits(3)
    outputs["start_logits"][0, 4] = 10.0  # a
    outputs["end_logits"][0, 13] = 10.0  # j, 10 tokens after a

    long = postprocess_predictions(examples, features, outputs, DecodeOptions(max_answer_length=10))[0]
    short = postprocess_predictions(examples, features, outputs, DecodeOptions(max_answer_length=9))[0]

    assert long["answer"] == "a b c d e f g h i j"
    assert short["answer"] != long["answer"]
    assert len(short["answer"].split()) <= 9


def test_end_before_start_skipped(tokenizer):
    examples, features = windows_of(tokenizer, [LETTERS])
    outputs = logits(3)
    outputs["start_logits"][0, 10] = 10.0  # g
    outputs["end_logits"][0, 5] = 10.0  # b
    outputs["end_logits"][0, 11] = 1.0  # h

    prediction = postprocess_predictions(examples, features, outputs, DecodeOptions())[0]

    assert prediction["answer"] == "g h"


def test_nbest_sorted_probabilities(tokenizer):
    examples, features = windows_of(tokenizer, [LETTERS])
    outputs = logits(3)
    outputs["start_logits"][1] = np.linspace(0, 1, 15)

    prediction = postprocess_predictions(examples, features, outputs, DecodeOptions(n_best_size=5))[0]
    scores = [entry["score"] for entry in prediction["nbest"]]

    assert len(prediction["nbest"]) == 5
    assert scores == sorted(scores, reverse=True)
    assert sum(entry["probability"] for entry in prediction["nbest"]) == pytest.approx(1.0)
    assert prediction["score"] == pytest.approx(prediction["nbest"][0]["probability"])


def test_context_without_tokens(tokenizer, caplog):
    examples, features = windows_of(tokenizer, ["\u200b"])
    with caplog.at_level(logging.WARNING, logger="taskforge.qa"):
        prediction = postprocess_predictions(examples, features, logits(1, width=len(features["input_ids"][0])),
                                             DecodeOptions())[0]

    assert prediction["answer"] == ""
    assert prediction["start"] is None
    assert prediction["best_span"] is None
    assert "1 of 1 questions have no valid answer span" in caplog.text


# -- SQuAD v2.0 -----------------------------------------------------------------------------------

V2 = DecodeOptions(version_2_with_negative=True)


def test_null_answer_wins(tokenizer):
    # Null score 5 + 5 = 10 beats the span "c" at 3 + 3 = 6 by 4.
    examples, features = windows_of(tokenizer, ["a b c"])
    outputs = logits(1, width=8)
    outputs["start_logits"][0, 0] = outputs["end_logits"][0, 0] = 5.0
    outputs["start_logits"][0, 6] = outputs["end_logits"][0, 6] = 3.0

    prediction = postprocess_predictions(examples, features, outputs, V2)[0]

    assert prediction["answer"] == ""
    assert prediction["start"] is None
    assert prediction["null_score_diff"] == pytest.approx(4.0)
    assert prediction["best_span"]["text"] == "c"
    assert prediction["nbest"][0]["text"] == ""


def test_threshold_keeps_span(tokenizer):
    examples, features = windows_of(tokenizer, ["a b c"])
    outputs = logits(1, width=8)
    outputs["start_logits"][0, 0] = outputs["end_logits"][0, 0] = 5.0
    outputs["start_logits"][0, 6] = outputs["end_logits"][0, 6] = 3.0

    prediction = postprocess_predictions(examples, features, outputs,
                                         DecodeOptions(version_2_with_negative=True, null_score_diff_threshold=4.5))[0]

    assert prediction["answer"] == "c"
    assert prediction["score"] == pytest.approx(next(e["probability"] for e in prediction["nbest"] if e["text"] == "c"))


def test_null_score_lowest_window(tokenizer):
    # Null scores 10, 2 and 6 in the three windows: the example's null score is 2.
    examples, features = windows_of(tokenizer, [LETTERS])
    outputs = logits(3)
    for window, null_score in enumerate((10.0, 2.0, 6.0)):
        outputs["start_logits"][window, 0] = outputs["end_logits"][window, 0] = null_score / 2
    outputs["start_logits"][2, 5] = outputs["end_logits"][2, 5] = 0.5  # n in window 3 scores 1

    prediction = postprocess_predictions(examples, features, outputs, V2)[0]
    null_entry = next(entry for entry in prediction["nbest"] if entry["text"] == "")

    assert prediction["null_score_diff"] == pytest.approx(1.0)
    assert prediction["answer"] == ""
    assert null_entry["score"] == pytest.approx(2.0)


def test_null_entry_kept_in_short_nbest(tokenizer):
    examples, features = windows_of(tokenizer, [LETTERS])
    outputs = logits(3)
    outputs["start_logits"][:, 0] = outputs["end_logits"][:, 0] = -20.0

    prediction = postprocess_predictions(
        examples, features, outputs, DecodeOptions(n_best_size=3, version_2_with_negative=True))[0]

    assert len(prediction["nbest"]) == 4
    assert prediction["nbest"][-1]["text"] == ""


def test_span_kept_when_null_fills_nbest(tokenizer):
    # With one n-best entry the null answer (10) fills the list, but the threshold of 5 keeps the
    # span "c" (6), so the span must stay in the list to get a probability.
    examples, features = windows_of(tokenizer, ["a b c"])
    outputs = logits(1, width=8)
    outputs["start_logits"][0, 0] = outputs["end_logits"][0, 0] = 5.0
    outputs["start_logits"][0, 6] = outputs["end_logits"][0, 6] = 3.0
    options = DecodeOptions(n_best_size=1, version_2_with_negative=True, null_score_diff_threshold=5.0)

    prediction = postprocess_predictions(examples, features, outputs, options)[0]

    assert prediction["answer"] == "c"
    assert [entry["text"] for entry in prediction["nbest"]] == ["", "c"]
    assert prediction["score"] == pytest.approx(1 / (1 + np.exp(4.0)))


# -- against a plain loop -------------------------------------------------------------------------


def loop_decode(context: str, offsets, start_logits, end_logits, n_best: int, max_answer_length: int):
    """Best span by looping over windows and token pairs, as the reference scripts do."""
    best_score, best_text = -np.inf, ""
    for window_offsets, starts, ends in zip(offsets, start_logits, end_logits):
        n = len(window_offsets)
        for s in np.argsort(starts[:n])[::-1][:n_best]:
            for e in np.argsort(ends[:n])[::-1][:n_best]:
                if window_offsets[s][0] < 0 or window_offsets[e][0] < 0 or e < s or e - s + 1 > max_answer_length:
                    continue
                if starts[s] + ends[e] > best_score:
                    best_score = starts[s] + ends[e]
                    best_text = context[window_offsets[s][0] : window_offsets[e][1]]
    return best_text, best_score


def test_matches_plain_loop(tokenizer):
    rng = np.random.default_rng(0)
    contexts = [" ".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=size)) for size in (3, 9, 17, 22, 30)]
    examples, features = windows_of(tokenizer, contexts)
    width = max(len(ids) for ids in features["input_ids"])
    outputs = {name: rng.normal(size=(len(features), width)).astype(np.float32)
               for name in ("start_logits", "end_logits")}

    predictions = postprocess_predictions(examples, features, outputs, DecodeOptions(n_best_size=20, max_answer_length=4))

    for index, prediction in enumerate(predictions):
        rows = [row for row, example in enumerate(features["example_index"]) if example == index]
        text, score = loop_decode(contexts[index], [features["offset_mapping"][row] for row in rows],
                                  outputs["start_logits"][rows], outputs["end_logits"][rows], 20, 4)
        assert prediction["answer"] == text
        assert prediction["nbest"][0]["score"] == pytest.approx(score)


# -- files ----------------------------------------------------------------------------------------


def test_write_predictions_v1(tokenizer, tmp_path):
    examples, features = windows_of(tokenizer, [LETTERS, "a b c"])
    outputs = logits(4)
    outputs["start_logits"][3, 5] = outputs["end_logits"][3, 6] = 1.0
    predictions = postprocess_predictions(examples, features, outputs, DecodeOptions(n_best_size=3))

    written = write_predictions(tmp_path, predictions, version_2_with_negative=False)
    answers = json.loads((tmp_path / "predictions.json").read_text())
    nbest = json.loads((tmp_path / "nbest_predictions.json").read_text())

    assert [path.name for path in written] == ["predictions.json", "nbest_predictions.json"]
    assert answers == {"e0": predictions[0]["answer"], "e1": "b c"}
    assert len(nbest["e1"]) == 3
    assert set(nbest["e1"][0]) == {"text", "start", "end", "start_logit", "end_logit", "score", "probability"}


def test_write_predictions_v2(tokenizer, tmp_path):
    examples, features = windows_of(tokenizer, ["a b c", "\u200b"])
    outputs = logits(2, width=8)
    outputs["start_logits"][0, 0] = outputs["end_logits"][0, 0] = 5.0
    predictions = postprocess_predictions(examples, features, outputs, V2)

    write_predictions(tmp_path, predictions, version_2_with_negative=True)
    null_odds = json.loads((tmp_path / "null_odds.json").read_text())
    answers = json.loads((tmp_path / "predictions.json").read_text())

    assert answers == {"e0": "", "e1": ""}
    assert null_odds["e0"] == pytest.approx(10.0)
    assert null_odds["e1"] is None  # no span at all
