"""Single-label text classification of single texts or text pairs, as a taskforge task plugin."""

from taskforge_classification.task import ClassificationTask

__all__ = ["ClassificationTask"]
