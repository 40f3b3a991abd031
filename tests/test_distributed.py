"""Evaluation under two processes counts each example once and matches one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("distributed_eval.py")


def run_eval(command: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun is not installed")
def test_two_process_eval_matches(tiny_bert_dir):
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    single = run_eval([sys.executable, str(SCRIPT), str(tiny_bert_dir)])
    double = run_eval([torchrun, "--nproc_per_node", "2", "--master_port", "29531", str(SCRIPT), str(tiny_bert_dir)])

    assert single["processes"] == 1
    assert double["processes"] == 2
    assert single["count"] == 22
    assert double["count"] == 22
    assert double["accuracy"] == single["accuracy"]
