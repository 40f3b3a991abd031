"""Reading CoNLL-style files, and splitting raw text into words with character offsets.

A CoNLL file has one token per line with its columns separated by whitespace, and a blank line
after each sentence. Lines that start with ``-DOCSTART-`` separate documents and are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from taskforge.errors import DataError
from taskforge.task import DataFile

DOCSTART = "-DOCSTART-"
_WORD = re.compile(r"\S+")


@dataclass
class Sentences:
    """Sentences read from a CoNLL file: words, tags (empty when not read) and first line numbers."""

    tokens: list[list[str]] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


def read_conll(file: DataFile, token_column: int = 0, tag_column: int | None = -1) -> Sentences:
    """Read the sentences of a CoNLL file; ``tag_column=None`` reads no tags.

    Column positions count from 0, and negative ones from the last column. Raises
    :class:`DataError` naming the line of a token line that lacks a column.
    """
    sentences = Sentences()
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0

    def end_sentence() -> None:
        if tokens:
            sentences.tokens.append(list(tokens))
            sentences.tags.append(list(tags))
            sentences.lines.append(first_line)
        tokens.clear()
        tags.clear()

    try:
        with open(file.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                columns = line.split()
                if not columns:
                    end_sentence()
                    continue
                if columns[0] == DOCSTART:
                    end_sentence()
                    continue
                if not tokens:
                    first_line = number
                tokens.append(_column(columns, token_column, file, number, "token", "--text-column"))
                if tag_column is not None:
                    if len(columns) < 2:
                        raise DataError(
                            f"{file.display_name} line {number} has a token but no tag: {line.strip()!r}; "
                            f"give every token line a tag column, separated by whitespace"
                        )
                    tags.append(_column(columns, tag_column, file, number, "tag", "--label-column"))
    except UnicodeDecodeError as error:
        raise DataError(f"{file.display_name} is not UTF-8 text ({error}); convert it to UTF-8") from error
    end_sentence()

    if not sentences.tokens:
        raise DataError(f"{file.display_name} contains no sentences; pass a CoNLL file with one token per line")
    return sentences


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Split ``text`` at whitespace into words, with each word's start and end character offsets."""
    words, offsets = [], []
    for match in _WORD.finditer(text):
        words.append(match.group())
        offsets.append((match.start(), match.end()))
    return words, offsets


def join_words(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join ``words`` with single spaces into a text, with each word's character offsets in it."""
    offsets = []
    position = 0
    for word in words:
        offsets.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), offsets


def _column(columns: list[str], position: int, file: DataFile, line: int, role: str, flag: str) -> str:
    try:
        return columns[position]
    except IndexError:
        raise DataError(
            f"{file.display_name} line {line} has {len(columns)} column(s) but the {role} is read from column "
            f"{position}: {' '.join(columns)!r}; fix the line or pass {flag} with another column position"
        ) from None
