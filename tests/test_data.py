"""Reading data files in every format, the row checks, and the stratified held-out split."""

from __future__ import annotations

from collections import Counter

import pytest

from taskforge.data import drop_or_raise, invalid_text_rows, read_table, require_column, stratified_split
from taskforge.errors import DataError
from taskforge.task import ColumnOptions, DataFile
from taskforge_classification import ClassificationTask


def labelled(counts: dict[str, int]):
    """A Dataset with ``count`` rows of each label, in label order."""
    import datasets

    labels = [label for label, count in counts.items() for _ in range(count)]
    return datasets.Dataset.from_dict({"text": [f"text {i}" for i in range(len(labels))], "label": labels})


# -- read_table -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, data_format", [
    ("train.csv", "csv"),
    ("train.tsv", "tsv"),
    ("train.jsonl", "jsonl"),
    ("train.json", "json"),
    ("train.parquet", "parquet"),
])
def test_read_each_format(data_dir, name, data_format):
    table = read_table(DataFile(str(data_dir / name), data_format, "train"))

    assert len(table) == 48
    assert set(table.column_names) == {"text", "text_pair", "label", "sentiment"}
    assert table[0]["text"] == "the movie was good"
    assert table[1]["label"] == "neg"


def test_csv_without_header(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("the food was good,pos,1\nthe food was bad,neg,0\n")

    table = read_table(DataFile(str(path), "csv", "train", header=False))

    assert table.column_names == ["0", "1", "2"]
    assert len(table) == 2
    assert table[0]["0"] == "the food was good"
    assert table[1]["1"] == "neg"


def test_tsv_keeps_bare_quotes(tmp_path):
    path = tmp_path / "rows.tsv"
    path.write_text('text\tlabel\nhe said "hi\tpos\n"quoted" word and more\tneg\n')

    table = read_table(DataFile(str(path), "tsv", "train"))

    assert len(table) == 2
    assert table[0]["text"] == 'he said "hi'
    assert table[1]["text"] == '"quoted" word and more'
    assert table[1]["label"] == "neg"


def test_empty_cells_become_none(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text,label\nhello,pos\n,neg\nnull,NA\nNone,\n")

    rows = read_table(DataFile(str(path), "csv", "train")).to_list()

    assert rows[1]["text"] is None
    assert rows[3]["label"] is None
    assert rows[2]["text"] == "null"
    assert rows[2]["label"] == "NA"
    assert rows[3]["text"] == "None"


def test_tsv_empty_cell_is_none(tmp_path):
    path = tmp_path / "rows.tsv"
    path.write_text("text\tlabel\n\tneg\nnull\tpos\n")

    rows = read_table(DataFile(str(path), "tsv", "train")).to_list()

    assert rows[0]["text"] is None
    assert rows[1]["text"] == "null"


def test_header_only_file_rejected(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text,label\n")

    with pytest.raises(DataError) as caught:
        read_table(DataFile(str(path), "csv", "train"))

    assert "contains no rows" in str(caught.value)
    assert "rows.csv" in str(caught.value)


@pytest.mark.parametrize("name, content", [("rows.jsonl", ""), ("rows.json", " \n"), ("rows.csv", "\n\n"),
                                           ("rows.parquet", "")])
def test_blank_file_rejected(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(DataError) as caught:
        read_table(DataFile(str(path), name.split(".")[1], "train"))

    assert str(caught.value) == f"{path} is empty; pass a file with data"


def test_unparsable_json_rejected(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "good", "label": \n')

    with pytest.raises(DataError) as caught:
        read_table(DataFile(str(path), "jsonl", "train"))

    assert "rows.jsonl could not be read as jsonl" in str(caught.value)


# -- row checks -----------------------------------------------------------------------------------


def test_require_column_lists_found(tmp_path, data_dir):
    table = read_table(DataFile(str(data_dir / "train.csv"), "csv", "train"))

    with pytest.raises(DataError) as caught:
        require_column(table, "review", DataFile(str(data_dir / "train.csv"), "csv", "train"), "--text-column")
    message = str(caught.value)

    assert "column 'review' not found" in message
    assert "columns are: text, text_pair, label, sentiment" in message
    assert "--text-column" in message
    assert "--no-header" in message


def test_invalid_text_rows_found():
    import datasets

    table = datasets.Dataset.from_dict({"text": ["fine", None, "  ", "ok", ""]})

    assert invalid_text_rows(table, "text") == [1, 2, 4]


def test_drop_or_raise_names_row():
    table = labelled({"a": 5})
    file = DataFile("rows.csv", "csv", "train")

    with pytest.raises(DataError) as caught:
        drop_or_raise(table, [2, 4], "empty text in column 'text'", file, drop_invalid=False)
    message = str(caught.value)

    assert "rows.csv row 3" in message
    assert "(2 rows in all)" in message
    assert "--drop-invalid" in message


def test_drop_or_raise_drops_rows():
    table = labelled({"a": 5})

    kept = drop_or_raise(table, [2, 4], "empty text", DataFile("rows.csv", "csv", "train"), drop_invalid=True)

    assert list(kept["text"]) == ["text 0", "text 1", "text 3"]


def test_label_floats_read_as_integers(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text,label\ngood,1.0\nbad,0\nfine,\n")

    examples = ClassificationTask().load_examples(
        DataFile(str(path), "csv", "train"), ColumnOptions(drop_invalid=True)
    )

    assert list(examples["label"]) == ["1", "0"]


# -- stratified_split -----------------------------------------------------------------------------


def test_split_counts_per_label():
    # 30 * 0.1 = 3 examples of a, 10 * 0.1 = 1 example of b.
    kept, held_out = stratified_split(labelled({"a": 30, "b": 10}), 0.1, seed=0, stratify_column="label")

    assert len(held_out) == 4
    assert len(kept) == 36
    assert Counter(held_out["label"]) == {"a": 3, "b": 1}
    assert Counter(kept["label"]) == {"a": 27, "b": 9}


def test_split_small_groups():
    # 20 * 0.1 = 2. A group of two gives one although 2 * 0.1 rounds to 0, and a group of one gives none.
    kept, held_out = stratified_split(labelled({"a": 20, "b": 2, "c": 1}), 0.1, seed=0, stratify_column="label")

    assert Counter(held_out["label"]) == {"a": 2, "b": 1}
    assert Counter(kept["label"]) == {"a": 18, "b": 1, "c": 1}


def test_split_partitions_examples():
    examples = labelled({"a": 30, "b": 10})

    kept, held_out = stratified_split(examples, 0.25, seed=3, stratify_column="label")

    assert sorted([*kept["text"], *held_out["text"]]) == sorted(examples["text"])
    assert not set(kept["text"]) & set(held_out["text"])


def test_split_same_seed_repeats():
    examples = labelled({"a": 30, "b": 10})

    _, first = stratified_split(examples, 0.1, seed=5, stratify_column="label")
    _, second = stratified_split(examples, 0.1, seed=5, stratify_column="label")

    assert list(first["text"]) == list(second["text"])


def test_split_seed_changes_choice():
    examples = labelled({"a": 30, "b": 10})

    choices = {tuple(stratified_split(examples, 0.1, seed=seed, stratify_column="label")[1]["text"])
               for seed in range(5)}

    assert len(choices) > 1


def test_split_without_stratify_column():
    kept, held_out = stratified_split(labelled({"a": 15, "b": 5}), 0.2, seed=0, stratify_column=None)

    assert len(held_out) == 4
    assert len(kept) == 16


def test_split_too_small_rejected():
    with pytest.raises(DataError) as caught:
        stratified_split(labelled({"a": 1}), 0.1, seed=0, stratify_column="label")

    assert "--validation-file" in str(caught.value)
    assert "--validation-split" in str(caught.value)


def test_map_fingerprint_tracks_every_input(tokenizer):
    import datasets

    from taskforge.data import map_fingerprint

    examples = datasets.Dataset.from_dict({"text": ["a b", "c"]})
    other_examples = datasets.Dataset.from_dict({"text": ["a b", "d"]})

    def tokenize(batch):
        return tokenizer(batch["text"])

    def tokenize_truncated(batch):
        return tokenizer(batch["text"], truncation=True)

    first = map_fingerprint(examples, tokenizer, tokenize, 128)

    assert first == map_fingerprint(examples, tokenizer, tokenize, 128)
    assert first != map_fingerprint(examples, tokenizer, tokenize, 64)
    assert first != map_fingerprint(other_examples, tokenizer, tokenize, 128)
    assert first != map_fingerprint(examples, tokenizer, tokenize_truncated, 128)
    changed = tokenizer.__class__.from_pretrained(tokenizer.name_or_path, do_lower_case=False)
    assert first != map_fingerprint(examples, changed, tokenize, 128)
