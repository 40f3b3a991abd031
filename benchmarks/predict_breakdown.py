"""Where the time of one ``taskforge predict`` call goes, stage by stage, for one or more models.

    python benchmarks/predict_breakdown.py TEACHER_DIR STUDENT_DIR \
        --input-file ../shared/data/sst2/dev.tsv --text-column sentence

Each model is loaded once, in this process. Its predict call is taken apart into the stages that
``Predictor.predict_file`` runs: reading the file into examples, tokenizing them into features,
sorting and batching the features with the task's collator, the model's forward passes, and
post-processing. The models take turns, ``--repeats`` times each. The first run of each stage is
reported apart, because it includes one-time work, and the others by their fastest. The whole call
is timed too.
The stages that do not depend on the model's depth are the ones that keep a shallower student from
predicting as much faster as its layer count suggests.

The result goes to ``--out`` (default ``benchmarks/results/predict_breakdown.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]


class StageTimer:
    """One loaded model and the times of the stages of its predict calls, in milliseconds."""

    def __init__(self, model_dir: str, text_column: str, batch_size: int, precision: str) -> None:
        import torch

        from taskforge.api import load

        self.predictor = load(model_dir, precision=precision)
        self.config = {**self.predictor.run_config.get("config", {}), "text_column": text_column, "drop_invalid": False}
        self.text_column = text_column
        self.batch_size = batch_size
        self.collator = self.predictor.task.collator(self.predictor.tokenizer)
        self.autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.times: dict[str, list[float]] = {}

    def _timed(self, stage: str, function: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = function()
        self.times.setdefault(stage, []).append((time.perf_counter() - started) * 1000)
        return result

    def _batches(self, features: Any) -> list[Any]:
        import numpy as np
        import pyarrow.compute as pc
        from torch.utils.data import DataLoader

        from taskforge.evaluation import model_input_columns

        # Sorted by length, longest first, as predict_outputs batches them.
        lengths = pc.list_value_length(features.with_format("arrow")["input_ids"]).to_numpy(zero_copy_only=False)
        order = np.argsort(-lengths, kind="stable").tolist()
        ordered = features.select_columns(model_input_columns(self.predictor.model, features)).select(order)
        return list(DataLoader(ordered, batch_size=self.batch_size, shuffle=False, collate_fn=self.collator))

    def _forward(self, batches: list[Any]) -> None:
        import torch

        enabled = self.autocast is not None
        with torch.inference_mode(), torch.autocast("cpu", dtype=self.autocast or torch.bfloat16, enabled=enabled):
            for batch in batches:
                self.predictor.model(**batch)

    def run(self, input_file: str) -> None:
        """Time each stage of one predict call on ``input_file``, then the whole call."""
        from taskforge.api import column_options, data_file
        from taskforge.evaluation import predict_outputs

        predictor, task = self.predictor, self.predictor.task
        file = data_file(input_file, "predict", True, "--input-file", task)
        examples = self._timed("read", lambda: task.load_examples(file, column_options(self.config)))
        features = self._timed("tokenize", lambda: task.preprocess(examples, predictor.tokenizer, predictor.max_length,
                                                                   predictor.labels, training=False))
        batches = self._timed("batch", lambda: self._batches(features))
        self._timed("forward", lambda: self._forward(batches))
        outputs = predict_outputs(predictor.model, features, self.collator, self.batch_size, task.output_names,
                                  autocast_dtype=self.autocast)
        self._timed("postprocess", lambda: [task.format_prediction(prediction, predictor.labels)
                                            for prediction in task.postprocess(examples, features, outputs)])
        self._timed("whole call", lambda: predictor.predict_file(input_file, self.batch_size,
                                                                 text_column=self.text_column))

    def summary(self) -> dict[str, dict[str, float]]:
        """Return the first time of each stage and the fastest of the later ones."""
        return {stage: {"first_ms": round(values[0], 1), "fastest_later_ms": round(min(values[1:]), 1)}
                for stage, values in self.times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dirs", nargs="+", help="models saved by taskforge finetune or distill")
    parser.add_argument("--input-file", required=True)
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--repeats", type=int, default=6, help="runs of each stage; the first is reported apart")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "predict_breakdown.json")
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error(f"--repeats must be at least 2, got {args.repeats}")

    result = {
        "input_file": args.input_file, "batch_size": args.batch_size, "precision": args.precision,
        "repeats": args.repeats, "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    timers = {model_dir: StageTimer(model_dir, args.text_column, args.batch_size, args.precision)
              for model_dir in args.model_dirs}
    # The models take turns, so that a change in the machine's speed during the run touches all alike.
    for _ in range(args.repeats):
        for timer in timers.values():
            timer.run(args.input_file)
    result["models"] = {model_dir: timer.summary() for model_dir, timer in timers.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["models"], indent=2))


if __name__ == "__main__":
    main()
