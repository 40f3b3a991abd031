"""Sub-word features of word sequences: windows over long sentences and labels on first sub-tokens.

The model's inputs are sub-word tokens, while tags and predictions belong to words. Each feature therefore
carries ``word_ids``: for every token, the index of its word in the whole sentence, or -1 for a
special token such as ``[CLS]``. A sentence longer than ``max_length`` tokens becomes several
features over overlapping runs of whole words, so that no word loses its first sub-token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedTokenizerBase

#: Label of tokens the loss ignores: special tokens and every sub-token after a word's first.
IGNORE_INDEX = -100


def word_windows(token_counts: Sequence[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """Cover the words with runs ``(start, end)`` of at most ``budget`` sub-tokens each.

    Consecutive runs share whole words of up to ``stride`` sub-tokens in all. A word longer than
    ``budget`` gets a run of its own, which the tokenizer then truncates.
    """
    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        end, used = start, 0
        while end < len(token_counts) and used + token_counts[end] <= budget:
            used += token_counts[end]
            end += 1
        end = max(end, start + 1)
        windows.append((start, end))
        if end >= len(token_counts):
            return windows

        # Step back over whole words for the overlap, but always move forward by one word at least.
        next_start, overlap = end, 0
        while next_start - 1 > start and overlap + token_counts[next_start - 1] <= stride:
            next_start -= 1
            overlap += token_counts[next_start]
        start = next_start


def tokenize_words(
    batch_tokens: Sequence[Sequence[str]],
    example_indices: Sequence[int],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    stride: int,
    batch_tag_ids: Sequence[Sequence[int]] | None = None,
) -> dict[str, list[Any]]:
    """Tokenize sentences given as words into features, with ``word_ids``, ``example_index`` and
    ``labels`` when ``batch_tag_ids`` is given."""
    encoded = tokenizer(list(batch_tokens), is_split_into_words=True)
    keys = list(encoded.keys())
    features: dict[str, list[Any]] = {key: [] for key in [*keys, "word_ids", "example_index"]}
    if batch_tag_ids is not None:
        features["labels"] = []
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)

    for row, example_index in enumerate(example_indices):
        word_ids = encoded.word_ids(row)
        if len(word_ids) <= max_length:
            pieces = [(0, {key: encoded[key][row] for key in keys}, word_ids)]
        else:
            counts = [0] * len(batch_tokens[row])
            for word in word_ids:
                if word is not None:
                    counts[word] += 1
            pieces = []
            for start, end in word_windows(counts, budget, stride):
                window = tokenizer(list(batch_tokens[row][start:end]), is_split_into_words=True, truncation=True,
                                   max_length=max_length)
                pieces.append((start, {key: window[key] for key in keys}, window.word_ids()))

        for start, values, window_word_ids in pieces:
            absolute = [-1 if word is None else word + start for word in window_word_ids]
            for key in keys:
                features[key].append(values[key])
            features["word_ids"].append(absolute)
            features["example_index"].append(example_index)
            if batch_tag_ids is not None:
                features["labels"].append(first_subtoken_labels(absolute, batch_tag_ids[row]))
    return features


def first_subtoken_labels(word_ids: Sequence[int], tag_ids: Sequence[int]) -> list[int]:
    """Label each word's first sub-token with the word's tag id and every other token with -100."""
    labels = []
    previous = -1
    for word in word_ids:
        labels.append(tag_ids[word] if word >= 0 and word != previous else IGNORE_INDEX)
        previous = word
    return labels


def word_probabilities(
    logits: np.ndarray, word_ids_column: Sequence[Sequence[int]], example_column: Sequence[int],
    word_counts: Sequence[int],
) -> list[np.ndarray]:
    """Return, per example, the tag probabilities of each word: an array [words, labels].

    A word's probabilities come from its first sub-token. When windows overlap, the window where
    the word has the most words of context on its shorter side wins. A word that no feature holds,
    because the tokenizer gave it no sub-token, keeps all-zero probabilities.
    """
    import numpy as np

    label_count = logits.shape[-1]
    probabilities = [np.zeros((count, label_count), dtype=np.float32) for count in word_counts]
    context = [np.full(count, -1, dtype=np.int64) for count in word_counts]
    for feature, (example_index, word_ids) in enumerate(zip(example_column, word_ids_column)):
        positions = [t for t, word in enumerate(word_ids) if word >= 0 and (t == 0 or word_ids[t - 1] != word)]
        if not positions:
            continue
        words = [word_ids[t] for t in positions]
        first, last = min(words), max(words)
        rows = logits[feature, positions].astype(np.float64)
        rows -= rows.max(axis=-1, keepdims=True)
        rows = np.exp(rows)
        rows /= rows.sum(axis=-1, keepdims=True)
        for word, row in zip(words, rows):
            word_context = min(word - first, last - word)
            if word_context > context[example_index][word]:
                context[example_index][word] = word_context
                probabilities[example_index][word] = row
    return probabilities
