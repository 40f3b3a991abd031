"""Knowledge distillation: the loss terms by hand, students cut from teacher layers, and whole runs.

The teacher of the runs is the tiny BERT of the ``trained_classifier`` fixture (2 layers, labels
neg and pos); students are cut from it or are tiny models of their own.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import FAST_FLAGS, error_lines, toy_rows, write_csv
from test_resume import load_weights, max_difference, metric_lines, start_and_stop

from taskforge.config import parse_student_layers
from taskforge.distillation import cut_student, hidden_loss, layer_pairs, soft_loss
from taskforge.errors import ConfigError


def kl_by_hand(teacher: list[float], student: list[float], temperature: float) -> float:
    def softmax(logits):
        exps = [math.exp(x / temperature) for x in logits]
        return [e / sum(exps) for e in exps]

    p, q = softmax(teacher), softmax(student)
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))


# -- the loss terms -------------------------------------------------------------------------------


def test_soft_loss_matches_hand_value():
    # p = softmax([1, 0, -0.5]) = [0.62853, 0.23122, 0.14024], q = softmax([0.5, 0, 0]) = [0.45186, 0.27407, 0.27407]
    # KL(p || q) = 0.62853 ln(1.39098) + 0.23122 ln(0.84367) + 0.14024 ln(0.51171)
    #           = 0.20742 - 0.03931 - 0.09396 = 0.074152; times T^2 = 4.
    loss = soft_loss(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[2.0, 0.0, -1.0]]), temperature=2.0)

    assert loss.item() == pytest.approx(4 * 0.074152, abs=1e-5)
    assert loss.item() == pytest.approx(4 * kl_by_hand([2, 0, -1], [1, 0, 0], 2.0), rel=1e-6)


def test_soft_loss_batch_mean():
    student = torch.tensor([[1.0, 0.0, 0.0], [3.0, 1.0, 2.0]])
    teacher = torch.tensor([[2.0, 0.0, -1.0], [3.0, 1.0, 2.0]])  # the second row agrees: divergence 0

    loss = soft_loss(student, teacher, temperature=2.0)

    # Batch mean: (0.29661 + 0) / 2 rows. An element mean would divide by 6 elements.
    assert loss.item() == pytest.approx(4 * kl_by_hand([2, 0, -1], [1, 0, 0], 2.0) / 2, rel=1e-6)


def test_soft_loss_at_temperature_one_is_plain_kl():
    loss = soft_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]), temperature=1.0)

    # p = [e/(e+1), 1/(e+1)] = [0.731059, 0.268941] and q is p reversed: KL = (0.731059 - 0.268941) * ln(0.731059/0.268941).
    assert loss.item() == pytest.approx(0.462117 * math.log(0.731059 / 0.268941), abs=1e-5)


def test_soft_loss_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        soft_loss(torch.zeros(2, 3), torch.zeros(2, 4), temperature=2.0)


def test_hidden_loss_cosine_and_projected_mse():
    same = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]]])
    orthogonal = torch.tensor([[[0.0, 3.0], [-1.0, 0.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0]])  # the third token is padding and does not count

    assert hidden_loss([same], [same], mask).item() == pytest.approx(0.0, abs=1e-6)
    assert hidden_loss([same], [orthogonal], mask).item() == pytest.approx(1.0, abs=1e-6)
    # Two layer pairs with distances 0 and 1 average to 0.5.
    assert hidden_loss([same, same], [same, orthogonal], mask).item() == pytest.approx(0.5, abs=1e-6)

    projection = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        projection.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    target = torch.tensor([[[1.0, 0.0, 3.0], [0.0, 0.0, 0.0], [7.0, 7.0, 7.0]]])
    # Token 1: projected [1, 0, 0] vs [1, 0, 3] -> (0 + 0 + 9) / 3 = 3. Token 2: [0, 2, 0] vs 0 -> 4 / 3.
    expected = (3.0 + 4.0 / 3.0) / 2
    assert hidden_loss([same], [target], mask, projection).item() == pytest.approx(expected, rel=1e-6)


# -- students cut from the teacher ----------------------------------------------------------------


def test_student_layer_choice():
    assert parse_student_layers("3", 6) == [0, 2, 5]
    assert parse_student_layers("6", 12) == [0, 2, 4, 7, 9, 11]
    assert parse_student_layers("1", 6) == [0]
    assert parse_student_layers("0,2,4", 6) == [0, 2, 4]
    assert parse_student_layers("[5, 1]", 6) == [5, 1]
    assert parse_student_layers("[4]", 6) == [4]
    assert parse_student_layers("4,", 6) == [4]
    for value, message in (("7", "between 1 and the teacher's 6"), ("0", r"written \[0\]"), ("0,6", "layers 0 to 5"),
                           ("0,0", "twice"), ("two", "not a number"), ("-1,2", "not a number"), ("[]", "no layers"),
                           ("0,,2", "not a number"), (",0", "not a number"), ("[0", "not a number"),
                           ("1_0", "not a number"), ("\u0662", "not a number")):
        with pytest.raises(ConfigError, match=message):
            parse_student_layers(value, 6)


def test_layer_pairs():
    assert layer_pairs(3, 6, [0, 2, 4]) == [(0, 0), (1, 1), (2, 3), (3, 5)]
    assert layer_pairs(2, 6, None) == [(0, 0), (1, 3), (2, 6)]


def test_cut_student_keeps_exactly_the_chosen_layers(tmp_path):
    from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=6, num_attention_heads=2,
                        intermediate_size=24, max_position_embeddings=32, num_labels=3)
    torch.manual_seed(0)
    teacher = BertForSequenceClassification(config)

    student = cut_student(teacher, [0, 2, 4])

    assert student.config.num_hidden_layers == 3
    assert teacher.config.num_hidden_layers == 6
    teacher_state, student_state = teacher.state_dict(), student.state_dict()
    for j, i in enumerate([0, 2, 4]):
        names = [key for key in student_state if key.startswith(f"bert.encoder.layer.{j}.")]
        assert names
        for name in names:
            source = name.replace(f"layer.{j}.", f"layer.{i}.", 1)
            assert torch.equal(student_state[name], teacher_state[source]), name
    for name in ("bert.embeddings.word_embeddings.weight", "bert.pooler.dense.weight", "classifier.weight"):
        assert torch.equal(student_state[name], teacher_state[name])
    # Layer 1 of the student is teacher layer 2, not teacher layer 1.
    assert not torch.equal(student_state["bert.encoder.layer.1.attention.self.query.weight"],
                           teacher_state["bert.encoder.layer.1.attention.self.query.weight"])

    # An ordinary model of the same architecture: it saves and loads with the auto class.
    student.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(loaded) is BertForSequenceClassification
    assert torch.equal(loaded.state_dict()["bert.encoder.layer.2.output.dense.weight"],
                       teacher_state["bert.encoder.layer.4.output.dense.weight"])


def test_cut_student_from_bf16_is_float32():
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=24, max_position_embeddings=32, num_labels=2)
    teacher = BertForSequenceClassification(config).to(torch.bfloat16)

    student = cut_student(teacher, [1, 3])

    assert {parameter.dtype for parameter in student.parameters()} == {torch.float32}
    assert torch.equal(student.state_dict()["bert.encoder.layer.1.output.dense.weight"],
                       teacher.state_dict()["bert.encoder.layer.3.output.dense.weight"].float())


def test_cut_student_of_distilbert():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=60, dim=16, n_layers=4, n_heads=2, hidden_dim=24, max_position_embeddings=32)
    teacher = DistilBertForSequenceClassification(config)

    student = cut_student(teacher, [1, 3])

    assert student.config.n_layers == 2
    assert torch.equal(student.state_dict()["distilbert.transformer.layer.0.ffn.lin1.weight"],
                       teacher.state_dict()["distilbert.transformer.layer.1.ffn.lin1.weight"])


# -- whole runs -----------------------------------------------------------------------------------


def distill_args(teacher: Path, data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return ["distill", "--task", "classification", "--teacher", str(teacher),
            "--train-file", str(data_dir / "train.csv"), "--validation-file", str(data_dir / "validation.csv"),
            "--epochs", "2", "--learning-rate", "5e-3", "--logging-steps", "2", "--output-dir", str(output_dir),
            *FAST_FLAGS, *extra]


@pytest.fixture(scope="module")
def teacher_dir(trained_classifier) -> Path:
    output_dir, result = trained_classifier
    assert result.exit_code == 0, result.stderr
    return output_dir


def test_distill_cut_student_end_to_end(tmp_path, run_cli, teacher_dir, data_dir):
    import taskforge
    from transformers import AutoModelForSequenceClassification

    output_dir = tmp_path / "student"
    result = run_cli(*distill_args(teacher_dir, data_dir, output_dir, "--student-layers", "1", "--alpha", "0.7"))

    assert result.exit_code == 0, result.stderr
    logged = [record for record in metric_lines(output_dir) if "loss" in record]
    assert logged
    for record in logged:
        # Each term is logged on its own, and the loss is their weighted sum.
        assert record["loss"] == pytest.approx(0.7 * record["loss_soft"] + 0.3 * record["loss_task"], abs=2e-6)
        assert record["loss_soft"] >= 0
    run = json.loads((output_dir / "taskforge_run.json").read_text())
    assert run["distillation"]["student_layers"] == [0]
    assert run["distillation"]["alpha"] == 0.7
    assert not (output_dir / "teacher_outputs").exists()

    model = AutoModelForSequenceClassification.from_pretrained(output_dir)
    assert model.config.num_hidden_layers == 1
    assert model.config.id2label == {0: "neg", 1: "pos"}
    predictions = taskforge.load(output_dir, precision="fp32").predict(["the car was great", "the car was awful"])
    assert {p["label"] for p in predictions} <= {"neg", "pos"}


def test_cached_teacher_gives_the_same_student(tmp_path, run_cli, teacher_dir, data_dir):
    live, cached = tmp_path / "live", tmp_path / "cached"
    assert run_cli(*distill_args(teacher_dir, data_dir, live, "--student-layers", "1")).exit_code == 0
    result = run_cli(*distill_args(teacher_dir, data_dir, cached, "--student-layers", "1", "--cache-teacher"))

    assert result.exit_code == 0, result.stderr
    assert "computing the teacher's outputs for 48 training features" in result.stderr
    # The first logged soft loss compares the targets themselves. Later steps drift apart only by float
    # rounding, because the cache pass batches the teacher's inputs with other padding.
    first_live = next(r for r in metric_lines(live) if "loss_soft" in r)
    first_cached = next(r for r in metric_lines(cached) if "loss_soft" in r)
    assert first_cached["loss_soft"] == pytest.approx(first_live["loss_soft"], rel=1e-4, abs=1e-6)
    assert max_difference(load_weights(live), load_weights(cached)) <= 1e-3
    assert not (cached / "teacher_outputs").exists()


def test_alpha_zero_without_soft_term(tmp_path, run_cli, teacher_dir, data_dir):
    output_dir = tmp_path / "hard"
    result = run_cli(*distill_args(teacher_dir, data_dir, output_dir, "--student-layers", "1", "--alpha", "0"))

    assert result.exit_code == 0, result.stderr
    logged = [record for record in metric_lines(output_dir) if "loss" in record]
    assert logged
    for record in logged:
        assert "loss_soft" not in record
        assert record["loss"] == record["loss_task"]


def test_hidden_loss_with_projection_for_another_width(tmp_path, run_cli, teacher_dir, data_dir, tokenizer):
    from transformers import BertConfig, BertModel

    student_dir = tmp_path / "narrow"
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128)
    BertModel(config).save_pretrained(student_dir)
    tokenizer.save_pretrained(student_dir)

    output_dir = tmp_path / "student"
    result = run_cli(*distill_args(teacher_dir, data_dir, output_dir, "--student", str(student_dir),
                                   "--hidden-weight", "0.5"))

    assert result.exit_code == 0, result.stderr
    for record in (r for r in metric_lines(output_dir) if "loss" in r):
        assert record["loss"] == pytest.approx(
            0.5 * record["loss_soft"] + 0.5 * record["loss_task"] + 0.5 * record["loss_hidden"], abs=2e-6)
    # The projection belongs to training only: the saved student is a plain 16-wide model.
    assert all("projection" not in key for key in load_weights(output_dir))


def test_teacher_with_another_tokenizer(tmp_path, run_cli, teacher_dir, data_dir):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({word for row in toy_rows(48) + toy_rows(16, ("car", "song", "game", "park"))
                    for word in f"{row['text']} {row['text_pair']}".split()})
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    student_dir = tmp_path / "small-vocab"
    own_tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    own_tokenizer.save_pretrained(student_dir)
    config = BertConfig(vocab_size=len(own_tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(student_dir)

    output_dir = tmp_path / "student"
    result = run_cli(*distill_args(teacher_dir, data_dir, output_dir, "--student", str(student_dir)))

    assert result.exit_code == 0, result.stderr
    assert "the teacher's tokenizer differs from the student's" in result.stderr
    assert any("loss_soft" in record for record in metric_lines(output_dir))

    refused = run_cli(*distill_args(teacher_dir, data_dir, tmp_path / "hidden", "--student", str(student_dir),
                                    "--hidden-weight", "1"))
    assert refused.exit_code == 1
    assert "needs the teacher's tokenizer" in error_lines(refused.stderr)[0]


def test_label_sets_must_match_by_name(tmp_path, run_cli, teacher_dir, data_dir):
    result = run_cli(*distill_args(teacher_dir, data_dir, tmp_path / "out", "--student-layers", "1",
                                   "--label-column", "sentiment"))

    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert "labels {neg, pos}" in line
    assert "has {0, 1}" in line
    assert "--label-names" in line
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out.partial").exists()

    # Named as the teacher names them, the 0/1 column lines up with the teacher's classes.
    named = run_cli(*distill_args(teacher_dir, data_dir, tmp_path / "named", "--student-layers", "1",
                                  "--label-column", "sentiment", "--label-names", "neg,pos"))
    assert named.exit_code == 0, named.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--student-layers", "1", "--student", "x"), "are both given; pass only one"),
        ((), "no student given"),
        (("--student-layers", "1", "--alpha", "1.5"), "--alpha must be between 0 and 1, got 1.5"),
        (("--student-layers", "1", "--temperature", "0"), "--temperature must be greater than 0, got 0.0"),
        (("--student-layers", "1", "--cache-teacher", "--hidden-weight", "1"), "--cache-teacher keeps only"),
        (("--student-layers", "0,x"), "not a number of layers"),
        (("--student-layers", "5"), "between 1 and the teacher's 2 layers"),
    ],
)
def test_bad_distill_options(tmp_path, run_cli, teacher_dir, data_dir, flags, message):
    result = run_cli(*distill_args(teacher_dir, data_dir, tmp_path / "out", *flags))

    assert result.exit_code == 1, result.stderr
    [line] = error_lines(result.stderr)
    assert message in line
    assert not (tmp_path / "out").exists()


def test_teacher_without_task_head_is_refused(tmp_path, run_cli, tiny_bert_dir, data_dir):
    result = run_cli(*distill_args(tiny_bert_dir, data_dir, tmp_path / "out", "--student-layers", "1"))

    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert "has no trained 'classification' head" in line
    assert "classifier.weight" in line


def test_python_api(tmp_path, teacher_dir, data_dir):
    import taskforge

    result = taskforge.distill(
        task="classification", teacher=teacher_dir, student_layers=[1], train_file=data_dir / "train.csv",
        validation_file=data_dir / "validation.csv", epochs=1, max_length=32, batch_size=8, precision="fp32",
        output_dir=tmp_path / "api",
    )

    assert result.metrics["train"]["steps"] == 6
    assert json.loads((tmp_path / "api" / "taskforge_run.json").read_text())["distillation"]["student_layers"] == [1]
    with pytest.raises(ConfigError, match="did you mean 'temperature'"):
        taskforge.distill(task="classification", teacher=teacher_dir, student_layers=1, temprature=3)


# -- processes: resume and two processes ----------------------------------------------------------


def distill_command(teacher: Path, data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    flags = list(FAST_FLAGS)
    flags[flags.index("--batch-size") + 1] = "4"
    return [sys.executable, "-m", "taskforge", "distill", "--task", "classification", "--teacher", str(teacher),
            "--student-layers", "1", "--train-file", str(data_dir / "train.csv"),
            "--validation-file", str(data_dir / "validation.csv"), "--output-dir", str(output_dir), *flags,
            "--epochs", "2", "--save-steps", "1", "--save-total-limit", "3", "--seed", "5", "--logging-steps", "5",
            "--no-load-best-model", *extra]


def run_process(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("cache", [False, True], ids=["live-teacher", "cached-teacher"])
def test_distill_resume_after_sigkill_matches(tmp_path, teacher_dir, data_dir, cache):
    extra = ("--cache-teacher",) if cache else ()
    straight = tmp_path / "straight"
    assert run_process(distill_command(teacher_dir, data_dir, straight, *extra)).returncode == 0

    output_dir, staging = tmp_path / "killed", tmp_path / "killed.partial"
    kill_step = random.Random().randint(3, 20)
    process = start_and_stop(distill_command(teacher_dir, data_dir, output_dir, *extra), staging, kill_step,
                             signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL, f"run ended before the kill at step {kill_step}"

    resumed = run_process(distill_command(teacher_dir, data_dir, output_dir, *extra, "--resume", "auto"))

    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    if cache:
        assert "reusing the teacher outputs" in resumed.stderr
    assert max_difference(load_weights(output_dir), load_weights(straight)) <= 1e-6
    assert metric_lines(output_dir) == metric_lines(straight)


@pytest.mark.skipif(not Path(sys.executable).with_name("torchrun").exists(), reason="torchrun is not installed")
def test_distill_under_two_processes(tmp_path, teacher_dir, data_dir):
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    output_dir = tmp_path / "ddp"
    command = distill_command(teacher_dir, data_dir, output_dir, "--hidden-weight", "0.5")
    launched = [torchrun, "--nproc_per_node", "2", "--master_port", "29533", "-m", *command[2:]]

    result = run_process(launched)

    assert result.returncode == 0, result.stderr
    run = json.loads((output_dir / "taskforge_run.json").read_text())
    assert run["processes"] == 2
    # 48 rows, 4 per process and step over 2 processes: 6 steps an epoch.
    assert json.loads((output_dir / "metrics.json").read_text())["train"]["steps"] == 12
    assert any("loss_hidden" in record for record in metric_lines(output_dir))


# -- more bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--temperature", "1e-8"), "--temperature must be between 0.1 and 100.0, got 1e-08"),
        (("--temperature", "1e200"), "--temperature must be between 0.1 and 100.0"),
        (("--max-length", "120"), "above the 64 positions the teacher supports"),
    ],
)
def test_bad_distill_values(tmp_path, run_cli, data_dir, tokenizer, flags, message):
    from transformers import BertConfig, BertForSequenceClassification

    teacher = tmp_path / "short-teacher"
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2,
                        id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1})
    BertForSequenceClassification(config).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    student = tmp_path / "student-model"
    config.max_position_embeddings = 128
    BertForSequenceClassification(config).bert.save_pretrained(student)
    tokenizer.save_pretrained(student)

    args = distill_args(teacher, data_dir, tmp_path / "out", "--student", str(student), *flags)
    result = run_cli(*args)

    assert result.exit_code == 1, result.stderr
    [line] = error_lines(result.stderr)
    assert message in line
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out.partial").exists()


def test_damaged_teacher_and_clashing_output(tmp_path, run_cli, teacher_dir, data_dir):
    damaged = tmp_path / "damaged"
    shutil.copytree(teacher_dir, damaged)
    (damaged / "model.safetensors").write_bytes(b"not a safetensors file")

    result = run_cli(*distill_args(damaged, data_dir, tmp_path / "out", "--student-layers", "1"))

    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert f"--teacher {str(damaged)!r} could not be loaded" in line

    clash = run_cli(*distill_args(teacher_dir, data_dir, teacher_dir, "--student-layers", "1", "--overwrite"))
    assert clash.exit_code == 1
    assert f"--teacher {str(teacher_dir)!r} is inside {str(teacher_dir.resolve())!r}, which the run replaces" in error_lines(clash.stderr)[0]
    assert (teacher_dir / "model.safetensors").is_file()


def test_teacher_with_nan_weights(tmp_path, run_cli, teacher_dir, data_dir):
    from safetensors.torch import load_file, save_file

    damaged = tmp_path / "nan-teacher"
    shutil.copytree(teacher_dir, damaged)
    weights = load_file(str(damaged / "model.safetensors"))
    weights["classifier.weight"][0, 0] = float("inf")
    save_file(weights, str(damaged / "model.safetensors"), metadata={"format": "pt"})

    result = run_cli(*distill_args(damaged, data_dir, tmp_path / "out", "--student-layers", "1"))

    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert line == f"Error: --teacher {str(damaged)!r} has NaN or infinite values in classifier.weight; pass an undamaged model"
    assert not (tmp_path / "out").exists()


def test_distill_options_on_finetune_are_pointed_out(run_cli, tmp_path, data_dir, tiny_bert_dir):
    result = run_cli("finetune", "--task", "classification", "--model", str(tiny_bert_dir),
                     "--train-file", str(data_dir / "train.csv"), "--teacher", "x", "--output-dir", str(tmp_path / "o"))

    assert result.exit_code == 1
    [line] = error_lines(result.stderr)
    assert "--teacher is an option of 'taskforge distill'" in line


def test_damaged_teacher_cache_is_recomputed(tmp_path):
    import datasets

    from taskforge.distillation import _read_cache

    key = {"teacher": "t", "features": "f"}
    folder = tmp_path / "teacher_outputs"
    datasets.Dataset.from_dict({"x": [1, 2, 3]}).save_to_disk(str(folder))
    (folder / "taskforge_teacher.json").write_text(json.dumps(key))

    assert len(_read_cache(folder, key, 3)) == 3
    assert _read_cache(folder, key, 4) is None
    assert _read_cache(folder, {**key, "teacher": "other"}, 3) is None
    for arrow in folder.glob("*.arrow"):
        arrow.write_bytes(b"truncated")
    assert _read_cache(folder, key, 3) is None
