"""Fixtures and helpers of the QA plugin tests: the core suite's CLI runner and tiny models, and SQuAD files.

The core suite's ``tests/conftest.py`` is loaded under its own module name, so that its fixtures (the
MiniLM tokenizer and a tiny random BERT) and ``invoke_cli`` serve these tests too. Test modules
import the fixtures they use from here. The plugin has no ``conftest.py``, because pytest imports
every ``conftest.py`` as the module ``conftest``, which the core tests import helpers from.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CORE_CONFTEST = Path(__file__).resolve().parents[3] / "tests" / "conftest.py"


def _load_core_conftest():
    name = "taskforge_core_test_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, CORE_CONFTEST)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


core_fixtures = _load_core_conftest()
invoke_cli = core_fixtures.invoke_cli
error_lines = core_fixtures.error_lines
tokenizer_dir = core_fixtures.tokenizer_dir
tokenizer = core_fixtures.tokenizer
tiny_bert_dir = core_fixtures.tiny_bert_dir

# Fine-tune flags that keep a run on the tiny BERT (128 positions) to seconds on a CPU.
FAST_FLAGS = ("--max-length", "64", "--doc-stride", "16", "--max-question-length", "16", "--batch-size", "8",
              "--precision", "fp32")

# Toy questions whose answer always follows "is" in a short context, so that a tiny model learns them.
SUBJECTS = ("door", "car", "boat", "kite", "lamp", "ball", "hat", "cup", "box", "fan", "bed", "pen")
COLOURS = ("red", "blue", "green", "black", "white", "yellow", "brown", "pink")


def squad_document(rows: list[dict], title: str = "toy") -> dict:
    """Wrap rows of {"id", "question", "context", "answers": [...]} into SQuAD JSON, one paragraph per row."""
    paragraphs = [{"context": row["context"], "qas": [{key: value for key, value in row.items() if key != "context"}]}
                  for row in rows]
    return {"version": "1.1", "data": [{"title": title, "paragraphs": paragraphs}]}


def write_squad(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(squad_document(rows)), encoding="utf-8")
    return path


def toy_rows(count: int, offset: int = 0, unanswerable_every: int = 0) -> list[dict]:
    """Return rows that ask for the colour of a thing; every ``unanswerable_every``-th row names an absent thing."""
    rows = []
    for i in range(offset, offset + count):
        subject = SUBJECTS[i % len(SUBJECTS)]
        colour = COLOURS[(i * 3 + i // len(SUBJECTS)) % len(COLOURS)]
        other = SUBJECTS[(i + 5) % len(SUBJECTS)]
        context = f"the {other} is old. the {subject} is {colour}. we like it."
        if unanswerable_every and i % unanswerable_every == 0:
            question = f"what colour is the {SUBJECTS[(i + 7) % len(SUBJECTS)]}?"
            answers = []
        else:
            question = f"what colour is the {subject}?"
            answers = [{"text": colour, "answer_start": context.index(f" is {colour}") + 4}]
        rows.append({"id": f"q{i}", "question": question, "context": context, "answers": answers})
    return rows


@pytest.fixture(scope="session")
def toy_squad_dir(tmp_path_factory) -> Path:
    """``train.json`` (48 questions) and ``validation.json`` (12 others), all answerable."""
    path = tmp_path_factory.mktemp("qa-data")
    write_squad(path / "train.json", toy_rows(48))
    write_squad(path / "validation.json", toy_rows(12, offset=100))
    return path
