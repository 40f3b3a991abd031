"""Checkpoints and resume: a killed run continued with --resume auto ends where an uninterrupted one does.

The runs are real ``python -m taskforge finetune`` processes on the tiny BERT, killed with SIGKILL
or stopped with SIGTERM while they write a checkpoint every step.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FAST_FLAGS

# 48 rows at batch size 4: 12 steps an epoch, 36 in all, with a checkpoint after every step. The loss
# is logged every 5 steps, so most kills fall between two logged steps.
RUN_FLAGS = ("--epochs", "3", "--save-steps", "1", "--save-total-limit", "3", "--seed", "3",
             "--logging-steps", "5", "--no-load-best-model")


def finetune_command(model_dir: Path, data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    """Return the command of the test run. An option in ``extra`` replaces the same option of RUN_FLAGS."""
    flags = list(FAST_FLAGS)
    flags[flags.index("--batch-size") + 1] = "4"
    run_flags = list(RUN_FLAGS)
    for option in extra:
        # Every option of RUN_FLAGS but the last takes a value.
        if option.startswith("--") and option in run_flags[:-1]:
            index = run_flags.index(option)
            del run_flags[index:index + 2]
    return [
        sys.executable, "-m", "taskforge", "finetune", "--task", "classification", "--model", str(model_dir),
        "--train-file", str(data_dir / "train.csv"), "--validation-file", str(data_dir / "validation.csv"),
        "--output-dir", str(output_dir), *flags, *run_flags, *extra,
    ]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def start_and_stop(command: list[str], staging: Path, min_step: int, stop_signal: int) -> subprocess.Popen:
    """Start ``command`` and send ``stop_signal`` once a checkpoint of step ``min_step`` or later exists."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    checkpoints = staging / "checkpoints"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        steps = [int(p.name.split("-")[1]) for p in checkpoints.glob("step-*") if "." not in p.name]
        if steps and max(steps) >= min_step:
            process.send_signal(stop_signal)
            break
        time.sleep(0.02)
    process.wait(timeout=300)
    return process


def load_weights(output_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(output_dir / "model.safetensors"))


def max_difference(first: dict, second: dict) -> float:
    assert first.keys() == second.keys()
    return max(float((first[key].float() - second[key].float()).abs().max()) for key in first)


def metric_lines(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_bert_dir, data_dir) -> Path:
    output_dir = tmp_path_factory.mktemp("resume") / "straight"
    result = run(finetune_command(tiny_bert_dir, data_dir, output_dir))
    assert result.returncode == 0, result.stderr
    return output_dir


def test_resume_after_sigkill_matches(tmp_path, tiny_bert_dir, data_dir, uninterrupted):
    output_dir = tmp_path / "killed"
    staging = tmp_path / "killed.partial"
    kill_step = random.Random().randint(3, 30)
    process = start_and_stop(finetune_command(tiny_bert_dir, data_dir, output_dir), staging, kill_step, signal.SIGKILL)

    assert process.returncode == -signal.SIGKILL, f"run ended before the kill at step {kill_step}"
    assert not output_dir.exists()
    assert any((staging / "checkpoints").glob("step-*"))

    resumed = run(finetune_command(tiny_bert_dir, data_dir, output_dir, "--resume", "auto"))

    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    assert max_difference(load_weights(output_dir), load_weights(uninterrupted)) <= 1e-6
    assert metric_lines(output_dir) == metric_lines(uninterrupted)
    assert not staging.exists()


def test_truncated_checkpoint_falls_back(tmp_path, tiny_bert_dir, data_dir, uninterrupted):
    output_dir = tmp_path / "truncated"
    staging = tmp_path / "truncated.partial"
    process = start_and_stop(finetune_command(tiny_bert_dir, data_dir, output_dir), staging, 6, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL

    # A checkpoint being written when the process was killed is left as step-N.tmp; skip it.
    finished = [p for p in (staging / "checkpoints").glob("step-*") if "." not in p.name]
    checkpoints = sorted(finished, key=lambda p: int(p.name.split("-")[1]))
    newest, previous = checkpoints[-1], checkpoints[-2]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

    resumed = run(finetune_command(tiny_bert_dir, data_dir, output_dir, "--resume", "auto"))

    assert resumed.returncode == 0, resumed.stderr
    assert f"checkpoint {newest} is unusable" in resumed.stderr
    assert f"resuming from the previous one, {previous}" in resumed.stderr
    assert max_difference(load_weights(output_dir), load_weights(uninterrupted)) <= 1e-6


def test_sigterm_saves_and_resumes(tmp_path, tiny_bert_dir, data_dir, uninterrupted):
    output_dir = tmp_path / "terminated"
    staging = tmp_path / "terminated.partial"
    process = start_and_stop(finetune_command(tiny_bert_dir, data_dir, output_dir), staging, 4, signal.SIGTERM)
    stderr = process.stderr.read() if process.stderr else ""

    assert process.returncode == 130, stderr
    assert "interrupted by SIGTERM" in stderr
    assert "--resume auto" in stderr
    assert "Traceback" not in stderr

    resumed = run(finetune_command(tiny_bert_dir, data_dir, output_dir, "--resume", "auto"))

    assert resumed.returncode == 0, resumed.stderr
    assert max_difference(load_weights(output_dir), load_weights(uninterrupted)) <= 1e-6


def test_changed_config_rejects_resume(tmp_path, tiny_bert_dir, data_dir):
    output_dir = tmp_path / "changed"
    staging = tmp_path / "changed.partial"
    process = start_and_stop(finetune_command(tiny_bert_dir, data_dir, output_dir), staging, 2, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL

    refused = run(finetune_command(tiny_bert_dir, data_dir, output_dir, "--resume", "auto", "--seed", "4"))

    assert refused.returncode == 1
    assert "configuration changed (seed: 3 -> 4)" in refused.stderr
    assert "--force-resume" in refused.stderr
    assert staging.exists()

    forced = run(finetune_command(tiny_bert_dir, data_dir, output_dir, "--resume", "auto", "--seed", "4",
                                  "--force-resume"))

    assert forced.returncode == 0, forced.stderr
    assert output_dir.is_dir()


def test_forced_resume_other_model_shape(tmp_path, tiny_bert_dir, tiny_distilbert_dir, data_dir):
    output_dir = tmp_path / "reshaped"
    staging = tmp_path / "reshaped.partial"
    process = start_and_stop(finetune_command(tiny_bert_dir, data_dir, output_dir), staging, 2, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL

    forced = run(finetune_command(tiny_distilbert_dir, data_dir, output_dir, "--resume", "auto", "--force-resume"))
    errors = [line for line in forced.stderr.splitlines() if line.startswith("Error:")]

    assert forced.returncode == 1
    assert len(errors) == 1, forced.stderr
    assert "does not match the model (Error(s) in loading state_dict" in errors[0]
    assert "Traceback" not in forced.stderr
    assert staging.exists()


def test_leftover_checkpoints_need_choice(tmp_path, tiny_bert_dir, data_dir):
    output_dir = tmp_path / "leftover"
    staging = tmp_path / "leftover.partial"
    process = start_and_stop(finetune_command(tiny_bert_dir, data_dir, output_dir), staging, 2, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL

    again = run(finetune_command(tiny_bert_dir, data_dir, output_dir))

    assert again.returncode == 1
    assert "contains checkpoints of an unfinished run; pass --resume auto" in again.stderr
    assert staging.exists()
