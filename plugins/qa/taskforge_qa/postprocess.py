"""From start and end logits of every window to one answer per example, and the prediction files.

For each window, the ``n_best_size`` best start tokens and end tokens inside the context give up to
``n_best_size ** 2`` spans. Spans that end before they start or are longer than
``max_answer_length`` tokens are skipped. A span's score is its start logit plus its end logit. The
``n_best_size`` best spans over all windows of an example form its n-best list. The answer text is
sliced from the original context by character offsets, never decoded from tokens, so it keeps the
context's case, accents and spaces.

With SQuAD v2.0 (``version_2_with_negative``), the null score of an example is the lowest null
score (start plus end logit at the null position) over its windows, as in the BERT reference
implementation. The answer is empty when the null score exceeds the best span's score by more than
``null_score_diff_threshold``.

Every step up to the per-example lists runs on numpy arrays of all windows at once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import datasets

# NOTE: the CLI shows only loggers under "taskforge", so this one is "taskforge.qa.<module>", not __name__.
logger = logging.getLogger(__name__.replace("taskforge_qa", "taskforge.qa", 1))

PREDICTIONS_FILE = "predictions.json"
NBEST_FILE = "nbest_predictions.json"
NULL_ODDS_FILE = "null_odds.json"

# Windows scored per numpy pass. At the default n-best size of 20, each (windows, 20, 20) array of a
# pass takes at most 13 MB.
WINDOW_CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """Settings of the search for answer spans."""

    n_best_size: int = 20
    max_answer_length: int = 30
    version_2_with_negative: bool = False
    null_score_diff_threshold: float = 0.0


def postprocess_predictions(
    examples: datasets.Dataset,
    features: datasets.Dataset,
    outputs: Mapping[str, np.ndarray],
    options: DecodeOptions,
) -> list[dict[str, Any]]:
    """Return one prediction per example from the logits of its windows.

    A prediction is a dict: ``id``; ``answer``, ``start`` and ``end`` (character offsets into the
    context, None for an empty answer); ``score``, the answer's probability within the n-best list;
    ``best_span``, the best non-empty span even when the null answer wins (None when there is no
    valid span); ``null_score_diff``, the null score minus the best span's score (None without
    ``version_2_with_negative``); and ``nbest``, the n-best list, best first.
    """
    offsets = padded_offsets(features)
    example_index = np.asarray(features["example_index"], dtype=np.int64)
    start_logits = _fit_width(np.asarray(outputs["start_logits"], dtype=np.float32), offsets.shape[1])
    end_logits = _fit_width(np.asarray(outputs["end_logits"], dtype=np.float32), offsets.shape[1])
    if len(start_logits) != len(offsets):
        raise ValueError(f"{len(start_logits)} rows of logits for {len(offsets)} windows; expected one row per window")

    spans = _best_spans(start_logits, end_logits, offsets, example_index, options)
    null = None
    if options.version_2_with_negative:
        null_position = np.asarray(features["null_position"], dtype=np.int64)
        null = _null_scores(start_logits, end_logits, null_position, example_index, len(examples))

    contexts = examples["context"]
    ids = examples["id"]
    predictions = []
    for row in range(len(examples)):
        candidates = _span_candidates(spans, row, contexts[row])
        predictions.append(_prediction(ids[row], candidates, null, row, options))
    without_span = sum(1 for prediction in predictions if prediction["best_span"] is None)
    if without_span:
        logger.warning("%d of %d questions have no valid answer span in any window (contexts shorter than one token, "
                       "or no span within --max-answer-length); their answer is empty", without_span, len(predictions))
    return predictions


def write_predictions(
    directory: str | os.PathLike[str], predictions: Sequence[Mapping[str, Any]], version_2_with_negative: bool
) -> list[Path]:
    """Write ``predictions.json`` and ``nbest_predictions.json``, and ``null_odds.json`` for SQuAD v2.0.

    The files have the layout of the Hugging Face question-answering examples. The first maps each
    id to its answer text and the second each id to its n-best list. The third maps each id to its
    null score minus its best span's score (null when no span exists), which the official SQuAD
    v2.0 evaluation script reads with ``--na-prob-file``. Returns the paths written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        PREDICTIONS_FILE: {p["id"]: p["answer"] for p in predictions},
        NBEST_FILE: {p["id"]: p["nbest"] for p in predictions},
    }
    if version_2_with_negative:
        files[NULL_ODDS_FILE] = {p["id"]: _finite_or_none(p["null_score_diff"]) for p in predictions}
    written = []
    for name, content in files.items():
        path = directory / name
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def padded_offsets(features: datasets.Dataset) -> np.ndarray:
    """Return ``offset_mapping`` as an int array (windows, longest window, 2), padded with -1."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = features.select_columns(["offset_mapping"]).with_format("arrow")["offset_mapping"]
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.list_flatten(pc.list_flatten(column)).to_numpy(zero_copy_only=False).astype(np.int64)
    width = int(lengths.max()) if len(lengths) else 0
    padded = np.full((len(lengths), width, 2), -1, dtype=np.int64)
    padded[np.arange(width)[None, :] < lengths[:, None]] = values.reshape(-1, 2)
    return padded


# -- span search --------------------------------------------------------------------------------


@dataclasses.dataclass
class _Spans:
    """The n-best spans of all examples, sorted by example and then by score, best first."""

    example: np.ndarray
    score: np.ndarray
    start_logit: np.ndarray
    end_logit: np.ndarray
    start_char: np.ndarray
    end_char: np.ndarray
    group_start: np.ndarray
    """Index of each example's first span; ``group_start[i + 1]`` ends it."""


def _best_spans(start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray, example_index: np.ndarray,
                options: DecodeOptions) -> _Spans:
    n_best = options.n_best_size
    per_window: list[tuple[np.ndarray, ...]] = []
    for begin in range(0, len(offsets), WINDOW_CHUNK):
        chunk = slice(begin, begin + WINDOW_CHUNK)
        per_window.append(_window_spans(start_logits[chunk], end_logits[chunk], offsets[chunk], options, begin))
    window, start, end, score = (np.concatenate(parts) for parts in zip(*per_window))

    # Keep the spans that exist, then the n best of each example over all of its windows.
    exists = np.isfinite(score)
    window, start, end, score = window[exists], start[exists], end[exists], score[exists]
    example = example_index[window]
    order = np.lexsort((-score, example))
    window, start, end, score, example = window[order], start[order], end[order], score[order], example[order]
    first_of_group = np.r_[True, example[1:] != example[:-1]] if len(example) else np.zeros(0, dtype=bool)
    group_first_index = np.maximum.accumulate(np.where(first_of_group, np.arange(len(example)), 0))
    keep = np.arange(len(example)) - group_first_index < n_best
    window, start, end, score, example = window[keep], start[keep], end[keep], score[keep], example[keep]

    group_count = int(example_index.max()) + 1 if len(example_index) else 0
    return _Spans(
        example=example,
        score=score,
        start_logit=start_logits[window, start],
        end_logit=end_logits[window, end],
        start_char=offsets[window, start, 0],
        end_char=offsets[window, end, 1],
        group_start=np.searchsorted(example, np.arange(group_count + 1), side="left"),
    )


def _window_spans(start_logits: np.ndarray, end_logits: np.ndarray, offsets: np.ndarray, options: DecodeOptions,
                  first_window: int) -> tuple[np.ndarray, ...]:
    """Return (window, start token, end token, score) of the n best spans of each window; -inf scores mark none."""
    windows, width = start_logits.shape
    k = min(options.n_best_size, width)
    in_context = offsets[:, :, 0] >= 0
    starts_masked = np.where(in_context, start_logits, -np.inf)
    ends_masked = np.where(in_context, end_logits, -np.inf)
    top_starts = np.argpartition(-starts_masked, k - 1, axis=1)[:, :k]
    top_ends = np.argpartition(-ends_masked, k - 1, axis=1)[:, :k]

    # Every pair of a top start and a top end: (windows, k starts, k ends).
    scores = (np.take_along_axis(starts_masked, top_starts, axis=1)[:, :, None]
              + np.take_along_axis(ends_masked, top_ends, axis=1)[:, None, :])
    lengths = top_ends[:, None, :] - top_starts[:, :, None] + 1
    valid = (lengths >= 1) & (lengths <= options.max_answer_length) & np.isfinite(scores)
    scores = np.where(valid, scores, -np.inf).reshape(windows, k * k)

    m = min(options.n_best_size, k * k)
    best = np.argpartition(-scores, m - 1, axis=1)[:, :m]
    best_scores = np.take_along_axis(scores, best, axis=1)
    start = np.take_along_axis(top_starts, best // k, axis=1)
    end = np.take_along_axis(top_ends, best % k, axis=1)
    window = np.repeat(np.arange(first_window, first_window + windows), m)
    return window, start.ravel(), end.ravel(), best_scores.ravel()


def _null_scores(start_logits: np.ndarray, end_logits: np.ndarray, null_position: np.ndarray,
                 example_index: np.ndarray, examples: int) -> dict[str, np.ndarray]:
    """Return the lowest null score of each example over its windows, with its start and end logits."""
    result = {name: np.full(examples, np.nan, dtype=np.float64) for name in ("score", "start_logit", "end_logit")}
    if len(null_position) == 0:
        return result
    rows = np.arange(len(null_position))
    start = start_logits[rows, null_position]
    end = end_logits[rows, null_position]
    score = start + end
    order = np.lexsort((score, example_index))
    first_of_group = np.r_[True, example_index[order][1:] != example_index[order][:-1]]
    lowest = order[first_of_group]
    result["score"][example_index[lowest]] = score[lowest]
    result["start_logit"][example_index[lowest]] = start[lowest]
    result["end_logit"][example_index[lowest]] = end[lowest]
    return result


# -- per example --------------------------------------------------------------------------------


def _span_candidates(spans: _Spans, row: int, context: str) -> list[dict[str, Any]]:
    if row + 1 >= len(spans.group_start):
        return []
    candidates = []
    for i in range(spans.group_start[row], spans.group_start[row + 1]):
        start, end = int(spans.start_char[i]), int(spans.end_char[i])
        candidates.append({
            "text": context[start:end],
            "start": start,
            "end": end,
            "start_logit": float(spans.start_logit[i]),
            "end_logit": float(spans.end_logit[i]),
            "score": float(spans.score[i]),
        })
    return candidates


def _prediction(example_id: str, candidates: list[dict[str, Any]], null: dict[str, np.ndarray] | None, row: int,
                options: DecodeOptions) -> dict[str, Any]:
    best_span = candidates[0] if candidates else None
    nbest = list(candidates)
    null_score_diff = None
    chosen = best_span
    if null is not None and not math.isnan(null["score"][row]):
        null_entry = {"text": "", "start": None, "end": None, "start_logit": float(null["start_logit"][row]),
                      "end_logit": float(null["end_logit"][row]), "score": float(null["score"][row])}
        null_score_diff = null_entry["score"] - best_span["score"] if best_span is not None else math.inf
        # The null entry and the best span join the n-best list by score, and both stay in it even
        # when other entries push them past n_best_size, because the answer is one of the two.
        nbest = sorted([*candidates, null_entry], key=lambda entry: -entry["score"])[: options.n_best_size]
        for needed in (best_span, null_entry):
            if needed is not None and not any(entry is needed for entry in nbest):
                nbest.append(needed)
        nbest.sort(key=lambda entry: -entry["score"])
        if null_score_diff > options.null_score_diff_threshold:
            chosen = null_entry

    if nbest:
        scores = np.array([entry["score"] for entry in nbest], dtype=np.float64)
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        for entry, probability in zip(nbest, probabilities):
            entry["probability"] = float(probability)
    return {
        "id": example_id,
        "answer": chosen["text"] if chosen is not None else "",
        "start": chosen["start"] if chosen is not None else None,
        "end": chosen["end"] if chosen is not None else None,
        "score": chosen["probability"] if chosen is not None else 0.0,
        "best_span": None if best_span is None else {key: best_span[key] for key in ("text", "start", "end")},
        "null_score_diff": null_score_diff,
        "nbest": nbest,
    }


def _fit_width(logits: np.ndarray, width: int) -> np.ndarray:
    """Cut or pad (with -inf) the logits to ``width`` tokens, the longest window's length."""
    if logits.shape[1] >= width:
        return logits[:, :width]
    return np.pad(logits, ((0, 0), (0, width - logits.shape[1])), constant_values=-np.inf)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
