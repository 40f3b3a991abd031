"""Reading QA data: SQuAD JSON and flat files, answer checks, unanswerable questions and bad rows."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from qa_testdata import squad_document, write_squad
from taskforge import DataError
from taskforge.task import ColumnOptions, DataFile
from taskforge_qa import QuestionAnsweringTask

CONTEXT = "Denver Broncos won Super Bowl 50 in 2016."


def task(version_2: bool = False) -> QuestionAnsweringTask:
    return QuestionAnsweringTask().configure({"version_2_with_negative": True} if version_2 else {})


def load(path, version_2: bool = False, drop_invalid: bool = False, split: str = "train", file_format: str | None = None):
    file = DataFile(str(path), file_format or path.suffix.lstrip("."), split)
    return task(version_2).load_examples(file, ColumnOptions(drop_invalid=drop_invalid))


def row(qid: str = "q1", question="Who won?", context=CONTEXT, text="Denver Broncos", start=0, **extra) -> dict:
    answers = [] if text is None else [{"text": text, "answer_start": start}]
    return {"id": qid, "question": question, "context": context, "answers": answers, **extra}


# -- formats --------------------------------------------------------------------------------------


def test_squad_json(tmp_path):
    examples = load(write_squad(tmp_path / "train.json", [row("q1"), row("q2", "When?", text="2016", start=36)]))

    assert examples.column_names == ["id", "title", "question", "context", "answers"]
    assert examples["id"] == ["q1", "q2"]
    assert examples["title"] == ["toy", "toy"]
    assert examples[1]["answers"] == {"text": ["2016"], "answer_start": [36]}


def test_squad_json_several_answers(tmp_path):
    answers = [{"text": "Denver Broncos", "answer_start": 0}, {"text": "Broncos", "answer_start": 7}]

    examples = load(write_squad(tmp_path / "train.json", [{**row(), "answers": answers}]))

    assert examples[0]["answers"] == {"text": ["Denver Broncos", "Broncos"], "answer_start": [0, 7]}


def test_csv_answer_text_columns(tmp_path):
    path = tmp_path / "train.csv"
    pd.DataFrame([{"question": "Who won?", "context": CONTEXT, "answer_text": "Denver Broncos", "answer_start": 0}]).to_csv(
        path, index=False)

    examples = load(path)

    assert examples["id"] == ["1"]
    assert examples[0]["answers"] == {"text": ["Denver Broncos"], "answer_start": [0]}


def test_jsonl_squad_layout_answers(tmp_path):
    path = tmp_path / "train.jsonl"
    record = {"id": "a", "question": "When?", "context": CONTEXT, "answers": {"text": ["2016"], "answer_start": [36]}}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")

    examples = load(path)

    assert examples[0]["answers"] == {"text": ["2016"], "answer_start": [36]}


def test_json_list_of_records(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps([row("a"), row("b", text="2016", start=36)]), encoding="utf-8")

    assert load(path)["id"] == ["a", "b"]


def test_parquet_answers(tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame([{"id": "p", "question": "Who?", "context": CONTEXT,
                   "answers": {"text": ["Broncos"], "answer_start": [7]}}]).to_parquet(path)

    assert load(path)[0]["answers"]["text"] == ["Broncos"]


def test_predict_split_needs_no_answers(tmp_path):
    path = tmp_path / "inputs.jsonl"
    path.write_text(json.dumps({"question": "Who won?", "context": CONTEXT}) + "\n", encoding="utf-8")

    examples = load(path, split="predict")

    assert examples.column_names == ["id", "title", "question", "context"]


def test_sample_data_loads():
    qa = task()
    files = qa.sample_data()

    train = qa.load_examples(files["train"], ColumnOptions())
    validation = qa.load_examples(files["validation"], ColumnOptions())

    assert len(train) == 50
    assert len(validation) == 10
    assert not set(train["id"]) & set(validation["id"])


# -- answers against the context ------------------------------------------------------------------


def test_answer_mismatch_names_ids(tmp_path):
    rows = [row("ok"), row("bad1", text="Broncos", start=0), row("bad2", text="2016", start=35)]

    with pytest.raises(DataError) as caught:
        load(write_squad(tmp_path / "train.json", rows))

    message = str(caught.value)
    assert "question id 'bad1': context[0:7] is 'Denver ', the answer text is 'Broncos', but the text occurs at 7" in message
    assert "question id 'bad2'" in message
    assert "row 2 (2 rows in all)" in message
    assert "--drop-invalid" in message


def test_answer_mismatch_dropped(tmp_path, caplog):
    rows = [row("ok"), row("bad1", text="Broncos", start=0), row("bad2", text="2016", start=35)]

    with caplog.at_level(logging.WARNING, logger="taskforge"):
        examples = load(write_squad(tmp_path / "train.json", rows), drop_invalid=True)

    assert examples["id"] == ["ok"]
    assert "dropped 2 of 3 rows" in caplog.text
    assert "bad1" in caplog.text
    assert "bad2" in caplog.text


def test_answer_beyond_context(tmp_path):
    with pytest.raises(DataError, match=r"context\[38:42\] is '16.'"):
        load(write_squad(tmp_path / "train.json", [row(text="2016", start=38)]))


def test_answer_start_minus_one(tmp_path):
    with pytest.raises(DataError) as caught:
        load(write_squad(tmp_path / "train.json", [row("m1", text="Broncos", start=-1)]))

    assert "question id 'm1' has answer_start -1 for the answer 'Broncos'" in str(caught.value)


def test_csv_answer_start_minus_one(tmp_path):
    path = tmp_path / "train.csv"
    pd.DataFrame([{"id": "c1", "question": "Who?", "context": CONTEXT, "answer_text": "Broncos",
                   "answer_start": -1}]).to_csv(path, index=False)

    with pytest.raises(DataError, match="question id 'c1' has answer_start -1"):
        load(path)


@pytest.mark.parametrize("start", ["zero", "--0", "\u00b2", "1.5"])
def test_answer_start_not_integer(tmp_path, start):
    with pytest.raises(DataError, match=f"answer_start {start!r}"):
        load(write_squad(tmp_path / "train.json", [row(start=start)]))


def test_nbsp_accents_double_spaces(tmp_path):
    context = "Le  café\u00a0noir  est à Paris."
    rows = [row("fr", "Quoi?", context, "café\u00a0noir", context.index("café"))]

    examples = load(write_squad(tmp_path / "train.json", rows))

    assert examples[0]["answers"]["text"] == ["café\u00a0noir"]
    assert examples[0]["context"] == context


def test_nbsp_written_as_space_rejected(tmp_path):
    context = "Le café\u00a0noir."
    with pytest.raises(DataError, match="question id 'fr'"):
        load(write_squad(tmp_path / "train.json", [row("fr", "Quoi?", context, "café noir", 3)]))


# -- unanswerable questions -----------------------------------------------------------------------


def test_unanswerable_needs_flag(tmp_path):
    rows = [row("a"), row("u1", text=None, is_impossible=True), row("u2", text=None)]

    with pytest.raises(DataError) as caught:
        load(write_squad(tmp_path / "train.json", rows), drop_invalid=True)

    assert "2 unanswerable questions" in str(caught.value)
    assert "'u1'" in str(caught.value)
    assert "--version-2-with-negative" in str(caught.value)


def test_unanswerable_with_flag(tmp_path):
    rows = [row("a"), row("u1", text=None, is_impossible=True, plausible_answers=[{"text": "x", "answer_start": 0}])]

    examples = load(write_squad(tmp_path / "train.json", rows), version_2=True)

    assert examples[1]["answers"] == {"text": [], "answer_start": []}


def test_csv_unanswerable_empty_cells(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(f"id,question,context,answer_text,answer_start\nu,Who?,{CONTEXT},,\n", encoding="utf-8")

    examples = load(path, version_2=True)

    assert examples[0]["answers"]["text"] == []


def test_is_impossible_with_answers(tmp_path):
    with pytest.raises(DataError, match="question id 'x' has is_impossible true but 1 answer"):
        load(write_squad(tmp_path / "train.json", [row("x", is_impossible=True)]), version_2=True)


def test_is_possible_without_answers(tmp_path):
    with pytest.raises(DataError, match="question id 'y' has is_impossible false but no answers"):
        load(write_squad(tmp_path / "train.json", [row("y", text=None, is_impossible=False)]), version_2=True)


# -- bad rows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("question", "", "question id 'q1' has the blank string '' in 'question'"),
    ("question", "   ", "question id 'q1' has the blank string '   ' in 'question'"),
    ("question", 42, "question id 'q1' has the int 42 instead of a string in 'question'"),
    ("context", "", "question id 'q1' has the blank string '' in 'context'"),
    ("context", None, "question id 'q1' has no value in 'context'"),
    ("context", ["a", "list"], "question id 'q1' has the list ['a', 'list'] instead of a string in 'context'"),
])
def test_bad_text_field(tmp_path, field, value, expected):
    with pytest.raises(DataError) as caught:
        load(write_squad(tmp_path / "train.json", [{**row(), field: value}]))

    assert expected in str(caught.value)
    assert "row 1" in str(caught.value)


def test_bad_answer_text(tmp_path):
    with pytest.raises(DataError, match="question id 'q1' has the answer text 7; expected a non-empty string"):
        load(write_squad(tmp_path / "train.json", [row(text=7)]))


def test_duplicate_id(tmp_path):
    with pytest.raises(DataError, match="id 'q1' of row 2 is also the id of row 1"):
        load(write_squad(tmp_path / "train.json", [row("q1"), row("q1")]))


def test_all_rows_dropped(tmp_path):
    with pytest.raises(DataError, match="no valid rows left"):
        load(write_squad(tmp_path / "train.json", [row(question="")]), drop_invalid=True)


def test_squad_json_with_byte_order_mark(tmp_path):
    path = write_squad(tmp_path / "train.json", [row("q1")])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())

    assert load(path)["id"] == ["q1"]


def test_squad_json_utf16_rejected(tmp_path):
    path = write_squad(tmp_path / "train.json", [row("q1")])
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))

    with pytest.raises(DataError) as caught:
        load(path)

    assert str(caught.value) == f"{path} is not valid UTF-8 (invalid start byte at byte 0); save the file as UTF-8"


def test_json_object_without_data(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"version": "1.1", "articles": []}), encoding="utf-8")

    with pytest.raises(DataError, match="JSON object without a 'data' list"):
        load(path)


def test_paragraph_without_qas(tmp_path):
    path = tmp_path / "train.json"
    document = squad_document([row()])
    document["data"][0]["paragraphs"][0].pop("qas")
    path.write_text(json.dumps(document), encoding="utf-8")

    with pytest.raises(DataError, match=r"data\[0\]\.paragraphs\[0\] has no 'qas' list"):
        load(path)


def test_flat_file_missing_columns(tmp_path):
    path = tmp_path / "train.csv"
    pd.DataFrame([{"query": "Who?", "passage": CONTEXT, "answer": "x"}]).to_csv(path, index=False)

    with pytest.raises(DataError) as caught:
        load(path)

    assert "'question', 'context', 'answer_text', 'answer_start' not found" in str(caught.value)
    assert "columns are: query, passage, answer" in str(caught.value)


def test_flat_file_two_answer_layouts(tmp_path):
    path = tmp_path / "train.jsonl"
    record = {"question": "Who?", "context": CONTEXT, "answers": [], "answer_text": "x"}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")

    with pytest.raises(DataError, match="both an 'answers' and an 'answer_text' column"):
        load(path)


def test_column_flags_rejected(tmp_path):
    file = DataFile(str(write_squad(tmp_path / "train.json", [row()])), "json", "train")

    with pytest.raises(DataError, match="--text-column does not apply to task 'qa'"):
        task().load_examples(file, ColumnOptions(text_column="question"))


# -- direct inputs --------------------------------------------------------------------------------


def test_inputs_to_examples():
    examples = task().examples_from_inputs([{"question": "Who?", "context": CONTEXT}, {"id": "b", "question": "When?",
                                                                                     "context": CONTEXT}])

    assert examples["id"] == ["0", "b"]
    assert "answers" not in examples.column_names


@pytest.mark.parametrize(("inputs", "expected"), [
    (["just a string"], "takes dicts with 'question' and 'context'"),
    ([{"question": "Who?", "contxt": CONTEXT}], "unknown field(s) contxt"),
    ([{"question": "", "context": CONTEXT}], "input 0 (id '0') has the blank string '' in 'question'"),
    ([{"question": "Who?"}], "input 0 (id '0') has no value in 'context'"),
    ([{"id": "", "question": "Who?", "context": CONTEXT}], "input 0 has the id ''"),
    ([{"id": "a", "question": "Who?", "context": CONTEXT}] * 2, "id 'a' is given to more than one input"),
])
def test_bad_inputs(inputs, expected):
    with pytest.raises(DataError) as caught:
        task().examples_from_inputs(inputs)

    assert expected in str(caught.value)
