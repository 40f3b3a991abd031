"""Distillation acceptance runs: a teacher, a student cut from it and distilled, and the same student without a teacher.

    python benchmarks/distill.py sst2 --n-train 8000
    python benchmarks/distill.py squad --teacher DIR      # DIR: a qa model trained on the v1.1 split

Steps, each a separate ``taskforge`` process on the same training rows, with the task's defaults
unless listed:

1. Teacher: ``taskforge finetune`` of the packaged all-MiniLM-L6-v2 (skipped with ``--teacher``).
2. Distilled student: ``taskforge distill --student-layers 3`` (teacher layers 0, 2, 5), alpha 0.5,
   temperature 2.
3. Baseline student: the same command with ``--alpha 0``: the same cut student, rows, epochs and
   learning rate, trained on the labels alone.
   Steps 2 and 3 run once for each seed of ``--seeds`` (data order and dropout; the teacher keeps
   its own), and the result pairs them by seed: distilled minus baseline for each seed, their mean,
   and the smallest.
4. Prediction speed (sst2): ``taskforge predict --input-file dev.tsv`` with the teacher and with the
   distilled student of the first seed, in turns, ``--repeats`` times each, so that a change in the
   machine's speed during the run touches both alike. The CLI logs the time of the predict call
   itself, and the script also times the whole process. ``--speed-only STUDENT`` runs this step
   alone, for ``--teacher`` and STUDENT.

Suites:

- ``sst2``: SST-2 ``train.tsv`` (first ``--n-train`` rows) and ``dev.tsv`` (872 sentences), task
  ``sentiment``, batch 32, max length 128, bf16.
- ``squad``: the SQuAD v1.1 article split of ``squad_v1.1/`` (8,981 training and 1,589 evaluation
  questions), task ``qa``, batch 16, max length 384, stride 128, bf16, seed 0, one epoch.

The result goes to ``benchmarks/results/distill_SUITE.json``.
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
PREDICT_LINE = re.compile(r"predicted (\d+) inputs in ([\d.]+) s")


def run_measured(command: list[str]) -> tuple[str, float, float]:
    """Run ``command``; return its stderr, wall seconds and peak resident memory in MB."""
    print("+", shlex.join(command), file=sys.stderr, flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        sys.stderr.write(line)
        lines.append(line)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"command failed with exit code {code}: {shlex.join(command)}")
    return "".join(lines), seconds, usage.ru_maxrss / 1024


def suite_flags(args: argparse.Namespace) -> tuple[list[str], dict[str, Any], str]:
    """Return the data and training flags of the suite, its settings, and the metric to report."""
    data = args.data_dir
    if args.suite == "sst2":
        flags = ["--task", "sentiment", "--train-file", str(data / "sst2" / "train.tsv"),
                 "--validation-file", str(data / "sst2" / "dev.tsv"), "--text-column", "sentence",
                 "--batch-size", "32", "--max-length", "128", "--precision", "bf16", "--epochs", str(args.epochs)]
        if args.n_train:
            flags += ["--max-train-samples", str(args.n_train)]
        settings = {"task": "sentiment", "train_rows": args.n_train or "all", "batch_size": 32, "max_length": 128,
                    "precision": "bf16", "epochs": args.epochs}
        return flags, settings, "accuracy"
    squad = data / "squad_v1.1"
    flags = ["--task", "qa", "--train-file", str(squad / "split-train-40-articles.json"),
             "--validation-file", str(squad / "split-eval-8-articles.json"), "--batch-size", "16",
             "--max-length", "384", "--doc-stride", "128", "--precision", "bf16", "--epochs", str(args.epochs)]
    if args.n_train:
        flags += ["--max-train-samples", str(args.n_train)]
    settings = {"task": "qa", "train_questions": args.n_train or 8981, "batch_size": 16, "max_length": 384,
                "doc_stride": 128, "precision": "bf16", "epochs": args.epochs}
    return flags, settings, "f1"


def train(kind: str, command: list[str], output_dir: Path, metric: str) -> dict[str, Any]:
    """Run a training command, or reuse its finished output when ``output_dir`` contains one."""
    saved = output_dir / "benchmark_run.json"
    if saved.is_file():
        print(f"{kind}: reusing {output_dir}", file=sys.stderr)
        return json.loads(saved.read_text(encoding="utf-8"))
    stderr, seconds, peak_mb = run_measured(command)
    metrics = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
    run_record = json.loads((output_dir / "taskforge_run.json").read_text(encoding="utf-8"))
    validation = metrics["validation"]
    result = {
        "output_dir": str(output_dir),
        "layers": json.loads((output_dir / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"],
        metric: round(validation[metric], 4),
        "train_s": metrics["train"]["seconds"],
        "learning_rate": run_record["config"]["learning_rate"],
        "wall_s": round(seconds, 1),
        "peak_rss_mb": round(peak_mb),
    }
    if metric == "f1":
        result["exact_match"] = round(validation["exact_match"], 4)
    if "distillation" in run_record:
        result["distillation"] = {key: run_record["distillation"][key]
                                  for key in ("student_layers", "alpha", "temperature", "hidden_weight")}
    print(f"{kind}: {metric} {result[metric]}", file=sys.stderr, flush=True)
    saved.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def predict_once(model_dir: str, input_file: Path, precision: str) -> tuple[int, float, float]:
    """Run ``taskforge predict`` on ``input_file`` and return the number of inputs, the predict call's
    seconds as logged, and the whole process's seconds."""
    stderr, seconds, _ = run_measured([
        sys.executable, "-m", "taskforge", "predict", "--model-dir", model_dir, "--input-file", str(input_file),
        "--text-column", "sentence", "--output-file", os.devnull, "--precision", precision,
    ])
    match = PREDICT_LINE.search(stderr)
    if match is None:
        raise SystemExit("taskforge predict did not log its prediction time")
    return int(match.group(1)), float(match.group(2)), seconds


def predict_speed(models: dict[str, str], input_file: Path, repeats: int, precision: str) -> dict[str, Any]:
    """Time ``taskforge predict`` with each model in turns; the fastest of ``repeats`` runs counts."""
    runs: dict[str, list[tuple[int, float, float]]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model_dir in models.items():
            runs[name].append(predict_once(model_dir, input_file, precision))
    return {
        name: {"model_dir": models[name], "inputs": timings[0][0], "predict_s": min(t[1] for t in timings),
               "process_s": round(min(t[2] for t in timings), 2), "all_predict_s": [t[1] for t in timings]}
        for name, timings in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=("sst2", "squad"))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the shared data folder")
    parser.add_argument("--n-train", type=int, default=None, help="train on the first N rows only")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--teacher", default=None, help="a trained teacher; skips step 1")
    parser.add_argument("--student-layers", default="3")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds of the two students (default: 42 for sst2, 0 for squad)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each predict timing; the fastest counts")
    parser.add_argument("--predict-precision", choices=("auto", "bf16", "fp32"), default="bf16",
                        help="--precision of the timed predict runs (default: bf16, as the suite trains)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep the trained models here; finished ones found there are reused, not retrained")
    parser.add_argument("--speed-only", metavar="STUDENT", default=None,
                        help="sst2: train nothing; time predict with --teacher and this student only")
    parser.add_argument("--out", type=Path, default=None, help="result file (default: benchmarks/results/distill_SUITE.json)")
    args = parser.parse_args()
    if args.speed_only is not None and (args.suite != "sst2" or args.teacher is None):
        parser.error("--speed-only needs the sst2 suite and --teacher")
    default_seed = "42" if args.suite == "sst2" else "0"
    try:
        seeds = [int(seed) for seed in (args.seeds or default_seed).split(",")]
    except ValueError:
        parser.error(f"--seeds takes comma-separated whole numbers, got {args.seeds!r}")

    flags, settings, metric = suite_flags(args)
    result: dict[str, Any] = {"suite": args.suite, "settings": settings,
                              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    out = args.out or REPO / "benchmarks" / "results" / f"distill_{args.suite}.json"
    dev = args.data_dir / "sst2" / "dev.tsv"
    if args.speed_only is not None:
        result["predict"] = predict_speed({"teacher": args.teacher, "student": args.speed_only}, dev, args.repeats,
                                          args.predict_precision)
        result["settings"]["predict_precision"] = args.predict_precision
        result["ratios"] = speed_ratios(result["predict"])
        write_result(out, result)
        return
    with tempfile.TemporaryDirectory(prefix="taskforge_distill_") as scratch:
        work = args.work_dir or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        teacher = args.teacher
        taskforge = [sys.executable, "-m", "taskforge"]
        if teacher is None:
            teacher = str(work / "teacher")
            result["teacher"] = train("teacher", [*taskforge, "finetune", "--model", "minilm-l6", *flags,
                                                  "--seed", default_seed, "--output-dir", teacher, "--overwrite"],
                                      Path(teacher), metric)
        else:
            metrics = json.loads((Path(teacher) / "metrics.json").read_text(encoding="utf-8"))
            result["teacher"] = {"output_dir": teacher, metric: round(metrics["validation"][metric], 4)}
        result["students"] = []
        for seed in seeds:
            pair: dict[str, Any] = {"seed": seed}
            for kind, extra in (("distilled", []), ("baseline", ["--alpha", "0"])):
                output_dir = work / f"{kind}-seed{seed}"
                pair[kind] = train(f"{kind} (seed {seed})",
                                   [*taskforge, "distill", "--teacher", teacher, "--student-layers",
                                    args.student_layers, *flags, *extra, "--seed", str(seed),
                                    "--output-dir", str(output_dir), "--overwrite"],
                                   output_dir, metric)
            pair["difference"] = round(pair["distilled"][metric] - pair["baseline"][metric], 4)
            result["students"].append(pair)
        if args.suite == "sst2":
            student = result["students"][0]["distilled"]["output_dir"]
            result["predict"] = predict_speed({"teacher": teacher, "student": student}, dev, args.repeats,
                                              args.predict_precision)
            result["settings"]["predict_precision"] = args.predict_precision

    teacher_score = result["teacher"][metric]
    distilled = [pair["distilled"][metric] for pair in result["students"]]
    differences = [pair["difference"] for pair in result["students"]]
    result["ratios"] = {
        f"{metric} (student / teacher), mean over seeds": round(sum(distilled) / len(distilled) / teacher_score, 4),
        f"{metric} (student / teacher), lowest seed": round(min(distilled) / teacher_score, 4),
        f"{metric} (distilled - baseline), mean over seeds": round(sum(differences) / len(differences), 4),
        f"{metric} (distilled - baseline), lowest seed": min(differences),
        "seeds where distilled beats baseline": f"{sum(d > 0 for d in differences)} of {len(differences)}",
    }
    if "predict" in result:
        result["ratios"].update(speed_ratios(result["predict"]))
    write_result(out, result)


def speed_ratios(speed: dict[str, Any]) -> dict[str, float]:
    """Return the student-over-teacher speed of the predict call and of the whole predict process."""
    return {
        "predict call speed (student / teacher)": round(speed["teacher"]["predict_s"] / speed["student"]["predict_s"], 3),
        "predict process speed (student / teacher)": round(speed["teacher"]["process_s"] / speed["student"]["process_s"], 3),
    }


def write_result(out: Path, result: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["ratios"], indent=2))


if __name__ == "__main__":
    main()
