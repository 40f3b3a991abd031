"""End-to-end ``taskforge finetune``, ``evaluate`` and ``predict`` runs of the qa task on a tiny BERT."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qa_testdata import FAST_FLAGS, error_lines, invoke_cli, toy_rows, write_squad

# Fixtures; tiny_bert_dir needs tokenizer, which needs tokenizer_dir.
from qa_testdata import tiny_bert_dir, tokenizer, tokenizer_dir, toy_squad_dir  # noqa: F401

QUESTION = "what colour is the kite?"
CONTEXTS = [
    "the boat is old. the kite is green. we like it.",
    "the kite is red. the cup is old. we like it.",
    "the pen is blue. the hat is old. the kite is white. we like it.",
]


@pytest.fixture(scope="module")
def trained_qa(tmp_path_factory, tiny_bert_dir, toy_squad_dir):
    """Output dir and CLI result of a tiny BERT fine-tuned on the toy colour questions."""
    output_dir = tmp_path_factory.mktemp("runs") / "qa"
    result = invoke_cli(
        "finetune", "--task", "qa", "--model", tiny_bert_dir,
        "--train-file", toy_squad_dir / "train.json", "--validation-file", toy_squad_dir / "validation.json",
        "--epochs", "2", "--learning-rate", "5e-3", "--seed", "0", "--logging-steps", "1",
        "--output-dir", output_dir, *FAST_FLAGS,
    )
    return output_dir, result


def test_finetune_exit_code(trained_qa):
    output_dir, result = trained_qa

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["output_dir"] == str(output_dir)


def test_finetune_metrics(trained_qa):
    output_dir, _ = trained_qa

    metrics = json.loads((output_dir / "metrics.json").read_text())

    assert set(metrics["validation"]) >= {"exact_match", "f1"}
    assert 0.0 <= metrics["validation"]["exact_match"] <= metrics["validation"]["f1"] <= 100.0
    assert np.isfinite(metrics["train"]["loss"])


def test_finetune_learns(trained_qa):
    metrics = json.loads((trained_qa[0] / "metrics.json").read_text())
    losses = [json.loads(line)["loss"] for line in (trained_qa[0] / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]

    # The tiny model answers all 12 validation questions after one epoch at this learning rate.
    assert metrics["validation"]["f1"] > 90.0
    # Windows of the first batch are padded to 32 tokens, and the untrained model spreads start and
    # end over all of them, so the loss (the mean of the start and end cross-entropies) is near ln(32).
    assert losses[0] == pytest.approx(math.log(32), abs=0.05)
    assert losses[-1] < losses[0] * 0.6


def test_saved_config(trained_qa):
    config = json.loads((trained_qa[0] / "config.json").read_text())

    assert config["architectures"] == ["BertForQuestionAnswering"]
    assert config["taskforge"]["task"] == "qa"
    assert config["taskforge"]["task_options"]["doc_stride"] == 16


def test_predict_cli_fields(trained_qa):
    result = invoke_cli("predict", "--model-dir", trained_qa[0], "--precision", "fp32",
                        "--question", QUESTION, "--context", CONTEXTS[0])
    record = json.loads(result.stdout)

    assert result.exit_code == 0, result.stderr
    assert set(record) == {"question", "context", "answer", "start", "end", "score"}
    assert record["answer"] == CONTEXTS[0][record["start"] : record["end"]]
    assert 0.0 < record["score"] <= 1.0


def test_predict_cli_task_option(trained_qa):
    result = invoke_cli("predict", "--model-dir", trained_qa[0], "--precision", "fp32", "--max-answer-length", "1",
                        "--question", QUESTION, "--context", CONTEXTS[2])
    record = json.loads(result.stdout)

    assert result.exit_code == 0, result.stderr
    assert len(record["answer"].split()) == 1


def test_predict_cli_input_file(trained_qa, tmp_path):
    rows = [{"id": f"k{i}", "question": QUESTION, "context": context, "answers": []} for i, context in enumerate(CONTEXTS)]
    input_file = write_squad(tmp_path / "inputs.json", rows)

    result = invoke_cli("predict", "--model-dir", trained_qa[0], "--precision", "fp32", "--input-file", input_file)
    records = [json.loads(line) for line in result.stdout.splitlines()]

    assert result.exit_code == 0, result.stderr
    assert [record["id"] for record in records] == ["k0", "k1", "k2"]
    assert all(record["answer"] == record["context"][record["start"] : record["end"]] for record in records)


def test_evaluate_cli(trained_qa, toy_squad_dir):
    result = invoke_cli("evaluate", "--model-dir", trained_qa[0], "--precision", "fp32",
                        "--data-file", toy_squad_dir / "validation.json")

    assert result.exit_code == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"exact_match", "f1"}


def test_finetune_writes_prediction_files(trained_qa, toy_squad_dir):
    output_dir = trained_qa[0]
    answers = json.loads((output_dir / "predictions.json").read_text())
    nbest = json.loads((output_dir / "nbest_predictions.json").read_text())
    validation = json.loads((toy_squad_dir / "validation.json").read_text())
    ids = [qa["id"] for article in validation["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]

    assert sorted(answers) == sorted(ids)
    assert sorted(nbest) == sorted(ids)
    # The file agrees with the saved metrics: exact match is the share of answers equal to a gold answer.
    gold = {qa["id"]: {a["text"] for a in qa["answers"]}
            for article in validation["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
    exact = 100 * sum(answers[i] in gold[i] for i in ids) / len(ids)
    assert exact == pytest.approx(json.loads((output_dir / "metrics.json").read_text())["validation"]["exact_match"])
    assert not (output_dir / "null_odds.json").exists()


def test_evaluate_cli_writes_predictions(trained_qa, toy_squad_dir, tmp_path):
    result = invoke_cli("evaluate", "--model-dir", trained_qa[0], "--precision", "fp32",
                        "--data-file", toy_squad_dir / "validation.json", "--predictions-dir", tmp_path / "preds",
                        "--n-best-size", "2")

    assert result.exit_code == 0, result.stderr
    nbest = json.loads((tmp_path / "preds" / "nbest_predictions.json").read_text())
    assert nbest
    assert all(len(candidates) <= 2 for candidates in nbest.values())
    assert (tmp_path / "preds" / "predictions.json").is_file()


def test_evaluate_predictions_dir_unwritable(trained_qa, toy_squad_dir, tmp_path):
    (tmp_path / "afile").write_text("")

    result = invoke_cli("evaluate", "--model-dir", trained_qa[0], "--data-file", toy_squad_dir / "validation.json",
                        "--predictions-dir", tmp_path / "afile" / "sub")

    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert f"--predictions-dir {str(tmp_path / 'afile' / 'sub')!r} could not be created" in line
    assert "Traceback" not in result.stderr
    # Rejected before the model was loaded, which logs its precision.
    assert "predicting in" not in result.stderr


def test_evaluate_cli_rejects_unknown_option(trained_qa, toy_squad_dir):
    result = invoke_cli("evaluate", "--model-dir", trained_qa[0], "--data-file", toy_squad_dir / "validation.json",
                        "--n-best", "2")

    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert "--n-best" in line
    assert "--n-best-size" in line


# -- the saved model outside taskforge ------------------------------------------------------------


def plain_decode(model_dir, question: str, context: str, max_answer_length: int = 30) -> str:
    """Best span by transformers alone: one window, every start and end token of the context."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir).eval()
    encoded = tokenizer(question, context, return_offsets_mapping=True, return_tensors="pt")
    offsets = encoded.pop("offset_mapping")[0].tolist()
    context_tokens = [i for i, sequence in enumerate(encoded.sequence_ids(0)) if sequence == 1]
    with torch.no_grad():
        outputs = model(**encoded)
    starts, ends = outputs.start_logits[0].tolist(), outputs.end_logits[0].tolist()
    best = max(
        ((s, e) for s in context_tokens for e in context_tokens if s <= e < s + max_answer_length),
        key=lambda span: starts[span[0]] + ends[span[1]],
    )
    return context[offsets[best[0]][0] : offsets[best[1]][1]]


def test_predict_matches_plain_transformers(trained_qa):
    import taskforge

    predictor = taskforge.load(trained_qa[0], precision="fp32")
    predictions = predictor.predict([{"question": QUESTION, "context": context} for context in CONTEXTS])

    assert [p["answer"] for p in predictions] == [plain_decode(trained_qa[0], QUESTION, c) for c in CONTEXTS]


def test_question_answering_pipeline(trained_qa):
    import transformers

    try:
        answerer = transformers.pipeline("question-answering", model=str(trained_qa[0]), device="cpu")
    except KeyError as error:
        # transformers 5 removed this pipeline; test_predict_matches_plain_transformers covers the model.
        pytest.skip(f"transformers {transformers.__version__} has no question-answering pipeline: {error}")
    import taskforge

    predictor = taskforge.load(trained_qa[0], precision="fp32")
    for context in CONTEXTS:
        expected = predictor.predict([{"question": QUESTION, "context": context}])[0]["answer"]
        assert answerer(question=QUESTION, context=context)["answer"] == expected


def test_write_prediction_files(trained_qa, toy_squad_dir, tmp_path):
    import taskforge
    from taskforge.evaluation import predict_outputs
    from taskforge.task import ColumnOptions, DataFile
    from taskforge_qa import write_predictions

    predictor = taskforge.load(trained_qa[0], precision="fp32")
    task = predictor.task
    examples = task.load_examples(DataFile(str(toy_squad_dir / "validation.json"), "json", "test"), ColumnOptions())
    features = task.preprocess(examples, predictor.tokenizer, predictor.max_length, None, training=False)
    outputs = predict_outputs(predictor.model, features, task.collator(predictor.tokenizer), 16, task.output_names)
    predictions = task.postprocess(examples, features, outputs)

    write_predictions(tmp_path, predictions, version_2_with_negative=False)
    answers = json.loads((tmp_path / "predictions.json").read_text())
    nbest = json.loads((tmp_path / "nbest_predictions.json").read_text())

    assert list(answers) == examples["id"]
    assert all(nbest[i][0]["text"] == answers[i] for i in answers)


# -- other runs -----------------------------------------------------------------------------------


def test_finetune_v2(tmp_path, tiny_bert_dir):
    write_squad(tmp_path / "train.json", toy_rows(32, unanswerable_every=3))
    write_squad(tmp_path / "validation.json", toy_rows(12, offset=100, unanswerable_every=3))

    result = invoke_cli(
        "finetune", "--task", "qa", "--model", tiny_bert_dir, "--version-2-with-negative",
        "--train-file", tmp_path / "train.json", "--validation-file", tmp_path / "validation.json",
        "--epochs", "1", "--output-dir", tmp_path / "out", *FAST_FLAGS,
    )
    validation = json.loads(result.stdout)["validation"]

    assert result.exit_code == 0, result.stderr
    assert validation["HasAns_total"] == 8
    assert validation["NoAns_total"] == 4
    assert {"exact", "f1", "best_f1", "best_f1_thresh"} <= set(validation)


def test_finetune_sample_data(tmp_path, tiny_bert_dir):
    result = invoke_cli("finetune", "--task", "qa", "--model", tiny_bert_dir, "--epochs", "1",
                        "--max-length", "128", "--doc-stride", "32", "--precision", "fp32",
                        "--output-dir", tmp_path / "out")

    assert result.exit_code == 0, result.stderr
    assert "using the sample data shipped with task 'qa'" in result.stderr
    assert json.loads((tmp_path / "out" / "taskforge_run.json").read_text())["data"]["train_examples"] == 50


def test_unanswerable_without_flag_fails(tmp_path, tiny_bert_dir):
    write_squad(tmp_path / "train.json", toy_rows(16, unanswerable_every=4))

    result = invoke_cli("finetune", "--task", "qa", "--model", tiny_bert_dir, "--train-file", tmp_path / "train.json",
                        "--output-dir", tmp_path / "out", *FAST_FLAGS)

    assert result.exit_code == 1
    assert "--version-2-with-negative" in error_lines(result.stderr)[0]


def test_stride_without_room_fails(tmp_path, toy_squad_dir):
    result = invoke_cli("finetune", "--task", "qa", "--train-file", toy_squad_dir / "train.json",
                        "--max-length", "128", "--doc-stride", "128", "--output-dir", tmp_path / "out")

    assert result.exit_code == 1
    assert "--doc-stride 128 leaves no room" in error_lines(result.stderr)[0]
    assert "128 - 64 (--max-question-length) - 3 (special tokens) = 61" in error_lines(result.stderr)[0]


def test_model_card_example_runs(trained_qa, capsys):
    output_dir, _ = trained_qa
    card = (output_dir / "README.md").read_text()
    code = card.split("```python\n", 1)[1].split("```", 1)[0]

    exec(code, {})

    printed = capsys.readouterr().out
    assert "'question': 'Who won?'" in code
    assert "'answer':" in printed
