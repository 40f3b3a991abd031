"""The ``sentiment`` task: binary sentiment with named labels and a sample dataset."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from taskforge import TaskDefaults
from taskforge.task import DataFile
from taskforge_classification import ClassificationTask

SAMPLE_DIR = Path(__file__).resolve().parent / "data"


class SentimentTask(ClassificationTask):
    """Sentiment analysis: classification whose labels 0 and 1 mean negative and positive."""

    name: ClassVar[str] = "sentiment"
    description: ClassVar[str] = "Sentiment analysis (negative/positive) with an embedded sample of reviews"
    # MiniLM-size models under-train at 5e-5 within one epoch on a few thousand sentences.
    defaults: ClassVar[TaskDefaults] = TaskDefaults(learning_rate=1e-4, epochs=3, batch_size=32, max_length=128)
    default_label_names: ClassVar[Mapping[tuple[str, ...], tuple[str, ...]]] = {
        ("0", "1"): ("negative", "positive"),
    }

    def sample_data(self) -> dict[str, DataFile]:
        return {
            "train": DataFile(str(SAMPLE_DIR / "train.jsonl"), "jsonl", "train"),
            "validation": DataFile(str(SAMPLE_DIR / "validation.jsonl"), "jsonl", "validation"),
        }
