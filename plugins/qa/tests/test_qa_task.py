"""The task object: registration, options, configuration checks and the prediction format."""

from __future__ import annotations

import subprocess
import sys

import pytest

from taskforge import ConfigError
from taskforge.config import FinetuneConfig
from taskforge.registry import get_task
from taskforge_qa import QuestionAnsweringOptions, QuestionAnsweringTask


def config(**values) -> FinetuneConfig:
    return FinetuneConfig(task="qa", max_length=values.pop("max_length", 384), **values)


def test_registered_as_qa():
    task = get_task("qa")

    assert isinstance(task, QuestionAnsweringTask)
    assert task.output_names == ("start_logits", "end_logits")
    assert task.model_class == "AutoModelForQuestionAnswering"
    assert task.metric_for_best_model == "f1"


def test_listing_imports_nothing_heavy():
    code = ("import sys; from taskforge.registry import list_tasks; list_tasks(); "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'numpy') if m in sys.modules))")

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def test_options_from_flags():
    task = QuestionAnsweringTask().configure({"doc_stride": "64", "version_2_with_negative": True})

    assert task.options.doc_stride == 64
    assert task.options.version_2_with_negative is True
    assert QuestionAnsweringTask().options.doc_stride == 128


def test_bad_options_listed_together():
    with pytest.raises(ConfigError) as caught:
        QuestionAnsweringTask().configure({"n_best_size": 0, "max_answer_length": -1})

    assert "--n-best-size must be at least 1, got 0" in str(caught.value)
    assert "--max-answer-length must be at least 1, got -1" in str(caught.value)


def test_misspelled_option():
    with pytest.raises(ConfigError, match="did you mean --doc-stride"):
        QuestionAnsweringTask().configure({"doc_strid": 10})


def test_default_config_valid():
    assert QuestionAnsweringTask().validate_config(config()) == []


def test_stride_without_room():
    task = QuestionAnsweringTask().configure({"doc_stride": 100})

    problems = task.validate_config(config(max_length=128))

    assert problems == [
        "--doc-stride 100 leaves no room: a window of --max-length 128 holds at least 128 - 64 "
        "(--max-question-length) - 3 (special tokens) = 61 context tokens, and consecutive windows must "
        "overlap by fewer; pass --doc-stride below 61, such as 30"
    ]


def test_column_flags_and_threshold_rejected():
    task = QuestionAnsweringTask().configure({"null_score_diff_threshold": 1.5})

    problems = task.validate_config(config(text_column="q", label_column="a"))

    assert len(problems) == 3
    assert problems[0].startswith("--text-column does not apply to task 'qa'")
    assert problems[1].startswith("--label-column does not apply to task 'qa'")
    assert "--null-score-diff-threshold 1.5 applies only with --version-2-with-negative" in problems[2]


def test_format_prediction():
    prediction = {"answer": "Denver", "start": 0, "end": 6, "score": 0.1234567891, "nbest": [], "best_span": None,
                  "null_score_diff": None, "id": "x"}

    formatted = QuestionAnsweringTask().format_prediction(prediction, None)

    assert formatted == {"answer": "Denver", "start": 0, "end": 6, "score": 0.123457}


def test_options_dataclass_help():
    import dataclasses

    fields = dataclasses.fields(QuestionAnsweringOptions)

    assert [field.name for field in fields] == [
        "doc_stride", "max_question_length", "n_best_size", "max_answer_length", "version_2_with_negative",
        "null_score_diff_threshold",
    ]
    assert all(field.metadata["help"] for field in fields)


def test_contract_conformance(tmp_path):
    from taskforge.testing import check_task

    # The kit fine-tunes with --max-length 64, which needs shorter windows than the defaults.
    task = QuestionAnsweringTask().configure({"doc_stride": 16, "max_question_length": 16})

    report = check_task(task, tmp_dir=tmp_path, score_range=(0, 100),
                        inputs=[{"question": "Who won?", "context": "Denver won the final in 2016."}])

    assert report.validation_metrics == report.reloaded_metrics
    assert set(report.predictions[0]) == {"answer", "start", "end", "score"}
