"""Reading CoNLL files and splitting raw text into words with character offsets."""

from __future__ import annotations

import pytest

import ner_testdata  # noqa: F401  (puts taskforge_ner on sys.path)
from taskforge import DataError
from taskforge.task import DataFile
from taskforge_ner.conll import join_words, read_conll, split_words


def conll_file(tmp_path, text: str, split: str = "train") -> DataFile:
    path = tmp_path / "data.txt"
    path.write_text(text, encoding="utf-8")
    return DataFile(str(path), "conll", split)


def test_read_conll_skips_docstart(tmp_path):
    file = conll_file(tmp_path, (
        "-DOCSTART- -X- -X- O\n"
        "\n"
        "EU NNP B-NP B-ORG\n"
        "rejects VBZ B-VP O\n"
        "\n"
        "\n"
        "-DOCSTART- -X- -X- O\n"
        "Peter\tNNP\tB-NP\tB-PER\n"
        "Blackburn NNP I-NP I-PER"
    ))

    sentences = read_conll(file)

    assert sentences.tokens == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert sentences.tags == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    assert sentences.lines == [3, 8]


def test_read_conll_other_columns(tmp_path):
    file = conll_file(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")

    sentences = read_conll(file, token_column=0, tag_column=2)

    assert sentences.tags == [["B-NP", "B-VP"]]


def test_read_conll_without_tags(tmp_path):
    file = conll_file(tmp_path, "Peter\nBlackburn\n\nBRUSSELS\n")

    sentences = read_conll(file, tag_column=None)

    assert sentences.tokens == [["Peter", "Blackburn"], ["BRUSSELS"]]


def test_missing_tag_names_line(tmp_path):
    file = conll_file(tmp_path, "EU B-ORG\n\nrejects O\nGerman\n")

    with pytest.raises(DataError) as caught:
        read_conll(file)
    message = str(caught.value)

    assert "line 4" in message
    assert "'German'" in message


def test_missing_column_names_flag(tmp_path):
    file = conll_file(tmp_path, "EU NNP B-ORG\n")

    with pytest.raises(DataError) as caught:
        read_conll(file, tag_column=5)

    assert "line 1 has 3 column(s)" in str(caught.value)
    assert "--label-column" in str(caught.value)


def test_empty_file_rejected(tmp_path):
    file = conll_file(tmp_path, "-DOCSTART- -X- -X- O\n\n")

    with pytest.raises(DataError) as caught:
        read_conll(file)

    assert "contains no sentences" in str(caught.value)


def test_split_words_offsets():
    words, offsets = split_words("  John Smith\tvisited  Paris.\n")

    assert words == ["John", "Smith", "visited", "Paris."]
    assert offsets == [(2, 6), (7, 12), (13, 20), (22, 28)]


def test_join_words_offsets():
    text, offsets = join_words(["New", "York", "."])

    assert text == "New York ."
    assert offsets == [(0, 3), (4, 8), (9, 10)]
