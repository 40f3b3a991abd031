"""Reading QA examples from SQuAD JSON and flat files, with every answer checked against its context.

An example is one question, with the columns ``id``, ``title``, ``question``, ``context`` and
``answers``. ``answers`` has the layout of the Hugging Face ``squad`` dataset,
``{"text": [...], "answer_start": [...]}``, where ``answer_start`` is a character offset into
``context``. An unanswerable question (SQuAD v2.0) has empty lists. Examples read for prediction
have no ``answers`` column.

Accepted files:

- SQuAD JSON: ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
  "answers": [{"text", "answer_start"}], "is_impossible"}]}]}]}``.
- Flat files (CSV, TSV, JSON Lines, a JSON list of records, Parquet) with the columns ``question``
  and ``context``, and either ``answers`` (the ``squad`` layout, a list of ``{"text",
  "answer_start"}`` objects, or either of them as a JSON string) or ``answer_text`` and
  ``answer_start`` for one answer per row. ``id``, ``title`` and ``is_impossible`` are optional;
  without ``id``, the row number is the id.

Rows are numbered from 1 in file order; in SQuAD JSON a row is a question.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskforge import DataError
from taskforge.data import drop_or_raise, read_table
from taskforge.task import DataFile

if TYPE_CHECKING:
    import datasets

# NOTE: the CLI shows only loggers under "taskforge", so this one is "taskforge.qa.<module>", not __name__.
logger = logging.getLogger(__name__.replace("taskforge_qa", "taskforge.qa", 1))

VERSION_2_FLAG = "--version-2-with-negative"

#: Kinds of invalid rows, in the order they are checked and reported.
PROBLEM_KINDS: dict[str, str] = {
    "id": "invalid or duplicate id",
    "question": "missing, empty or non-string question",
    "context": "missing, empty or non-string context",
    "answer": "malformed answer",
    "mismatch": "answer text that differs from the context at answer_start",
    "is_impossible": "is_impossible value that contradicts the answers",
}

# Ids of invalid rows listed in one message before the rest are only counted.
MAX_IDS_SHOWN = 10


@dataclasses.dataclass
class RowProblem:
    """Why one row is invalid: its kind (a key of ``PROBLEM_KINDS``) and the detail, naming the id."""

    kind: str
    detail: str


def load_examples(file: DataFile, drop_invalid: bool, version_2_with_negative: bool) -> datasets.Dataset:
    """Read ``file`` into examples, checking every row and every answer.

    Invalid rows raise :class:`DataError` naming the id, or are dropped and counted with
    ``drop_invalid``. Unanswerable questions raise unless ``version_2_with_negative`` is set, even
    with ``drop_invalid``, because dropping them would silently turn a SQuAD v2.0 file into a v1.1
    one.
    """
    with_answers = file.split != "predict"
    raw_rows = _read_rows(file)
    if not raw_rows:
        raise DataError(f"{file.display_name} contains no questions; pass a file with data")

    examples: list[dict[str, Any] | None] = []
    problems: list[RowProblem | None] = []
    for number, raw in enumerate(raw_rows, start=1):
        example, problem = _parse_row(raw, number, with_answers)
        examples.append(example)
        problems.append(problem)
    _mark_duplicate_ids(examples, problems)

    kept = _drop_invalid_rows(examples, problems, file, drop_invalid)
    valid = [examples[row] for row in kept]
    assert all(example is not None for example in valid)

    if with_answers:
        unanswerable = [example["id"] for example in valid if not example["answers"]["text"]]
        if unanswerable and not version_2_with_negative:
            raise DataError(
                f"{file.display_name} contains {len(unanswerable)} unanswerable questions (empty answers or "
                f"is_impossible true), the first with id {unanswerable[0]!r}, but task 'qa' is set up for "
                f"SQuAD v1.1, where every question has an answer; pass {VERSION_2_FLAG} when fine-tuning, "
                f"so that the model learns to predict an empty answer"
            )
        if unanswerable:
            logger.info("%s: %d of %d questions are unanswerable", file.display_name, len(unanswerable), len(valid))
    return build_dataset(valid, with_answers)


def examples_from_inputs(inputs: Sequence[Any]) -> datasets.Dataset:
    """Turn a list of ``{"question", "context"}`` dicts (``id`` and ``title`` optional) into examples.

    Ids default to the position in ``inputs``. Unknown keys raise, so a misspelled
    ``--contxt`` flag is reported rather than ignored.
    """
    allowed = ("id", "title", "question", "context")
    examples: list[dict[str, Any]] = []
    for position, item in enumerate(inputs):
        if not isinstance(item, Mapping):
            raise DataError(
                f"input {position} is {item!r}; task 'qa' takes dicts with 'question' and 'context', "
                f"such as --question 'Who wrote it?' --context 'It was written by ...'"
            )
        unknown = sorted(set(item) - set(allowed))
        if unknown:
            raise DataError(
                f"input {position} has the unknown field(s) {', '.join(unknown)}; "
                f"task 'qa' takes the fields {', '.join(allowed)}"
            )
        example_id = _id_text(item["id"]) if "id" in item else str(position)
        if not example_id:
            raise DataError(f"input {position} has the id {item['id']!r}; pass a non-empty id or none")
        for field in ("question", "context"):
            reason = _text_problem(item.get(field))
            if reason is not None:
                raise DataError(f"input {position} (id {example_id!r}) has {reason} in {field!r}; "
                                f"pass a non-empty string")
        examples.append({
            "id": example_id,
            "title": str(item.get("title") or ""),
            "question": item["question"],
            "context": item["context"],
        })
    ids = [example["id"] for example in examples]
    if len(set(ids)) < len(ids):
        duplicate = next(value for value in ids if ids.count(value) > 1)
        raise DataError(f"id {duplicate!r} is given to more than one input; give each input its own id")
    return build_dataset(examples, with_answers=False)


def build_dataset(examples: Sequence[Mapping[str, Any]], with_answers: bool) -> datasets.Dataset:
    """Build the examples dataset with fixed column types, so that all-empty answers keep their type."""
    import datasets

    columns: dict[str, Any] = {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "question": datasets.Value("string"),
        "context": datasets.Value("string"),
    }
    if with_answers:
        columns["answers"] = {
            "text": datasets.List(datasets.Value("string")),
            "answer_start": datasets.List(datasets.Value("int32")),
        }
    data = {name: [example[name] for example in examples] for name in columns}
    return datasets.Dataset.from_dict(data, features=datasets.Features(columns))


# -- reading ------------------------------------------------------------------------------------


def _read_rows(file: DataFile) -> list[dict[str, Any]]:
    """Return one raw dict per question: SQuAD JSON is flattened, flat files are read by ``read_table``."""
    if file.format == "json" and _first_character(file) == "{":
        try:
            # utf-8-sig also reads files that start with a byte order mark, as some editors save them.
            document = json.loads(Path(file.path).read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError as error:
            raise DataError(_not_utf8(file, error)) from error
        except json.JSONDecodeError as error:
            if "Extra data" not in str(error):
                raise DataError(f"{file.display_name} is not valid JSON: {error}") from error
            # Several objects, one per line: JSON Lines under a .json name.
            logger.info("%s contains one JSON object per line; reading it as JSON Lines", file.display_name)
            return _flat_rows(DataFile(file.path, "jsonl", file.split, file.header), file)
        if not isinstance(document, dict) or not isinstance(document.get("data"), list):
            keys = ", ".join(sorted(document)) if isinstance(document, dict) else type(document).__name__
            raise DataError(
                f"{file.display_name} is a JSON object without a 'data' list (keys: {keys}); pass SQuAD JSON "
                f"({{'data': [{{'paragraphs': [{{'context', 'qas'}}]}}]}}) or a list of records with "
                f"question, context and answers"
            )
        return _squad_rows(document["data"], file)
    return _flat_rows(file, file)


def _first_character(file: DataFile) -> str:
    try:
        with open(file.path, encoding="utf-8") as handle:
            while True:
                chunk = handle.read(4096)
                if not chunk:
                    return ""
                stripped = chunk.lstrip("\ufeff \t\r\n")
                if stripped:
                    return stripped[0]
    except UnicodeDecodeError as error:
        raise DataError(_not_utf8(file, error)) from error


def _not_utf8(file: DataFile, error: UnicodeDecodeError) -> str:
    return f"{file.display_name} is not valid UTF-8 ({error.reason} at byte {error.start}); save the file as UTF-8"


def _squad_rows(articles: list[Any], file: DataFile) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for article_number, article in enumerate(articles):
        where = f"{file.display_name} data[{article_number}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataError(f"{where} has no 'paragraphs' list; pass SQuAD JSON")
        title = article.get("title")
        for paragraph_number, paragraph in enumerate(article["paragraphs"]):
            place = f"{where}.paragraphs[{paragraph_number}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("qas"), list):
                raise DataError(f"{place} has no 'qas' list; pass SQuAD JSON")
            for question in paragraph["qas"]:
                if not isinstance(question, dict):
                    raise DataError(f"{place}.qas contains {question!r}, not an object with id, question and answers")
                rows.append({**question, "title": title, "context": paragraph.get("context")})
    return rows


def _flat_rows(file: DataFile, shown: DataFile) -> list[dict[str, Any]]:
    table = read_table(file)
    required = ["question", "context"]
    if shown.split != "predict":
        if "answers" in table.column_names and "answer_text" in table.column_names:
            raise DataError(f"{shown.display_name} has both an 'answers' and an 'answer_text' column; "
                            f"keep only one of them")
        if "answers" not in table.column_names:
            required += ["answer_text", "answer_start"]
    missing = [column for column in required if column not in table.column_names]
    if missing:
        raise DataError(
            f"column(s) {', '.join(map(repr, missing))} not found in {shown.display_name}; columns are: "
            f"{', '.join(table.column_names)}. A QA file needs the columns question, context and answers (or "
            f"answer_text and answer_start), and optionally id, title and is_impossible"
        )
    rows = table.to_list()
    if "answers" not in table.column_names and "answer_text" in table.column_names:
        for row in rows:
            row["answers"] = _single_answer(row.pop("answer_text"), row.pop("answer_start", None))
    return rows


def _single_answer(text: Any, start: Any) -> list[dict[str, Any]]:
    """Return the answers of a row with ``answer_text`` and ``answer_start``.

    Empty text with an empty or -1 start means an unanswerable question.
    """
    no_text = _is_missing(text) or text == ""
    if no_text and (_is_missing(start) or start == -1):
        return []
    return [{"text": text, "answer_start": start}]


# -- checking -----------------------------------------------------------------------------------


def _parse_row(raw: dict[str, Any], number: int, with_answers: bool) -> tuple[dict[str, Any] | None, RowProblem | None]:
    """Return the example of one raw row, or None and the row's first problem."""
    example_id = _id_text(raw.get("id", str(number)))
    if not example_id:
        return None, RowProblem("id", f"row {number} has the id {raw.get('id')!r}; ids must be non-empty")
    name = f"question id {example_id!r}"

    for field in ("question", "context"):
        reason = _text_problem(raw.get(field))
        if reason is not None:
            return None, RowProblem(field, f"{name} has {reason} in {field!r}")
    example = {
        "id": example_id,
        "title": "" if _is_missing(raw.get("title")) else str(raw["title"]),
        "question": raw["question"],
        "context": raw["context"],
    }
    if not with_answers:
        return example, None

    answers, problem = _parse_answers(raw.get("answers"), example["context"], name)
    if problem is not None:
        return None, problem
    impossible = raw.get("is_impossible")
    if not _is_missing(impossible):
        flag = _boolean(impossible)
        if flag is None:
            return None, RowProblem("is_impossible", f"{name} has is_impossible {impossible!r}; expected true or false")
        if flag and answers["text"]:
            return None, RowProblem("is_impossible", f"{name} has is_impossible true but {len(answers['text'])} "
                                                     f"answer(s); unanswerable questions have empty answers")
        if not flag and not answers["text"]:
            return None, RowProblem("is_impossible", f"{name} has is_impossible false but no answers")
    example["answers"] = answers
    return example, None


def _parse_answers(value: Any, context: str, name: str) -> tuple[dict[str, list[Any]], RowProblem | None]:
    """Return the answers in the ``squad`` layout, each checked against ``context``."""
    empty: dict[str, list[Any]] = {"text": [], "answer_start": []}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return empty, RowProblem("answer", f"{name} has answers {value!r}, which is not valid JSON")
    if _is_missing(value):
        return empty, RowProblem("answer", f"{name} has no answers; give [] for an unanswerable question")
    if isinstance(value, Mapping):
        texts, starts = value.get("text"), value.get("answer_start")
        texts = texts if isinstance(texts, list) else [texts]
        starts = starts if isinstance(starts, list) else [starts]
        if len(texts) != len(starts):
            return empty, RowProblem("answer", f"{name} has {len(texts)} answer texts but {len(starts)} answer_start values")
        pairs = list(zip(texts, starts))
    elif isinstance(value, list):
        if not all(isinstance(item, Mapping) for item in value):
            return empty, RowProblem("answer", f"{name} has answers {value!r}; expected objects with text and answer_start")
        pairs = [(item.get("text"), item.get("answer_start")) for item in value]
    else:
        return empty, RowProblem("answer", f"{name} has answers {value!r}; expected a list of {{text, answer_start}}")

    answers: dict[str, list[Any]] = {"text": [], "answer_start": []}
    for text, start in pairs:
        if not isinstance(text, str) or not text.strip():
            return empty, RowProblem("answer", f"{name} has the answer text {text!r}; expected a non-empty string")
        offset = _offset(start)
        if offset is None:
            return empty, RowProblem("answer", f"{name} has answer_start {start!r} for the answer {text!r}; "
                                               f"expected a character offset into the context")
        if offset < 0:
            return empty, RowProblem(
                "answer", f"{name} has answer_start {offset} for the answer {text!r}; an answerable question needs "
                          f"the answer's character offset in the context (an unanswerable one has empty answers)")
        found = context[offset : offset + len(text)]
        if found != text:
            hint = ""
            position = context.find(text)
            if position >= 0:
                hint = f", but the text occurs at {position}"
            return empty, RowProblem(
                "mismatch", f"{name}: context[{offset}:{offset + len(text)}] is {found!r}, the answer text is "
                            f"{text!r}{hint}")
        answers["text"].append(text)
        answers["answer_start"].append(offset)
    return answers, None


def _mark_duplicate_ids(examples: list[dict[str, Any] | None], problems: list[RowProblem | None]) -> None:
    first_row: dict[str, int] = {}
    for row, example in enumerate(examples):
        if example is None:
            continue
        previous = first_row.setdefault(example["id"], row)
        if previous != row:
            examples[row] = None
            problems[row] = RowProblem("id", f"id {example['id']!r} of row {row + 1} is also the id of row {previous + 1}")


def _drop_invalid_rows(
    examples: list[dict[str, Any] | None], problems: list[RowProblem | None], file: DataFile, drop_invalid: bool
) -> list[int]:
    """Return the rows to keep; ``drop_or_raise`` raises for, or drops, each kind of problem in turn."""
    import datasets

    kept = list(range(len(examples)))
    for kind, description in PROBLEM_KINDS.items():
        bad_positions = [position for position, row in enumerate(kept)
                         if problems[row] is not None and problems[row].kind == kind]
        if not bad_positions:
            continue
        details = [problems[kept[position]].detail for position in bad_positions]
        index = datasets.Dataset.from_dict({"row": kept})
        kept = drop_or_raise(index, bad_positions, _describe(description, details), file, drop_invalid)["row"]
    return kept


def _describe(description: str, details: list[str]) -> str:
    shown = "; ".join(details[:MAX_IDS_SHOWN])
    more = f"; and {len(details) - MAX_IDS_SHOWN} more" if len(details) > MAX_IDS_SHOWN else ""
    return f"{description} ({shown}{more})"


def _text_problem(value: Any) -> str | None:
    """Return why ``value`` is not usable text, or None when it is a non-blank string."""
    if _is_missing(value):
        return "no value"
    if not isinstance(value, str):
        return f"the {type(value).__name__} {value!r} instead of a string"
    if not value.strip():
        return f"the blank string {value!r}"
    return None


def _id_text(value: Any) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _offset(value: Any) -> int | None:
    if isinstance(value, bool) or _is_missing(value):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        # Only ASCII digits with at most one minus sign: str.isdigit also accepts digits such as "²"
        # that int() rejects.
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if digits.isascii() and digits.isdigit():
            return int(text)
    return None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
