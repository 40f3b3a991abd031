"""The conformance kit: it passes every built-in task and the NER example, and names the member at fault."""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from taskforge.testing import ConformanceError, check_task
from taskforge_classification import ClassificationTask

NER_PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "ner"


@pytest.fixture
def toy_data(data_dir) -> dict[str, Path]:
    return {"train": data_dir / "train.csv", "validation": data_dir / "validation.csv"}


@pytest.fixture
def ner_on_path(monkeypatch):
    """Make the NER example importable when it is not installed."""
    if importlib.util.find_spec("taskforge_ner") is None:
        monkeypatch.syspath_prepend(str(NER_PLUGIN))


# -- conforming tasks -------------------------------------------------------------------------------


def test_kit_passes_classification(tmp_path, tiny_bert_dir, toy_data):
    report = check_task("classification", model=tiny_bert_dir, tmp_dir=tmp_path, data=toy_data)

    assert report.reference == "classification"
    assert report.train_steps == 2
    assert report.labels.names == ("neg", "pos")
    assert report.reloaded_metrics["accuracy"] == pytest.approx(report.validation_metrics["accuracy"])
    assert len(report.predictions) == 2
    assert (report.output_dir / "config.json").is_file()


def test_kit_passes_sentiment_on_tiny_model(tmp_path):
    # Without model=, the kit builds its own tiny BERT with the MiniLM tokenizer.
    report = check_task("sentiment", tmp_dir=tmp_path)

    assert (tmp_path / "tiny-bert" / "config.json").is_file()
    assert report.labels.names == ("negative", "positive")
    assert report.train_steps == 2
    assert set(report.predictions[0]) == {"label", "score", "scores"}


def test_kit_passes_ner_example(tmp_path, tiny_bert_dir, ner_on_path):
    report = check_task("taskforge_ner:NerTask", model=tiny_bert_dir, tmp_dir=tmp_path)

    assert report.task == "ner"
    assert report.train_steps == 2
    assert 0.0 <= report.validation_metrics["f1"] <= 1.0
    assert set(report.predictions[0]) == {"entities", "tags"}


def test_kit_without_tmp_dir_cleans_up(tiny_bert_dir, toy_data):
    report = check_task(ClassificationTask(), model=tiny_bert_dir, data=toy_data)

    assert report.output_dir is None
    assert report.reference.startswith("_taskforge_conformance_")


# -- broken tasks -----------------------------------------------------------------------------------


class NoLabelsTask(ClassificationTask):
    """Drops the labels from the features, so the model cannot compute a loss."""

    name = "no-labels"

    def preprocess(self, examples, tokenizer, max_length, labels, training):
        features = super().preprocess(examples, tokenizer, max_length, labels, training)
        return features.remove_columns("labels")


class WrongMetricTask(ClassificationTask):
    """Ranks evaluations by a key that compute_metrics never returns."""

    name = "wrong-metric"
    metric_for_best_model = "f1"


class NumpyPredictionTask(ClassificationTask):
    """Returns numpy arrays, which the JSON written by predict cannot hold."""

    name = "numpy-prediction"

    def format_prediction(self, prediction, labels):
        return {"label": labels.names[prediction["label_id"]], "probabilities": prediction["probabilities"]}


class FloatUnitsTask(ClassificationTask):
    """Counts loss units as a float."""

    name = "float-units"

    def loss_units(self, batch):
        return float(batch["input_ids"].shape[0])


class ShortPostprocessTask(ClassificationTask):
    """Loses the last prediction."""

    name = "short-postprocess"

    def postprocess(self, examples, features, outputs):
        return super().postprocess(examples, features, outputs)[:-1]


class RaisingPreprocessTask(ClassificationTask):
    """Reads a column that the examples do not have, inside the function that datasets maps."""

    name = "raising-preprocess"

    def preprocess(self, examples, tokenizer, max_length, labels, training):
        def tokenize(batch):
            return tokenizer(batch["sentence"], truncation=True, max_length=max_length)

        return examples.map(tokenize, batched=True)


class PercentTask(ClassificationTask):
    """Reports accuracy in percent."""

    name = "percent"

    def compute_metrics(self, predictions, examples, labels):
        metrics = super().compute_metrics(predictions, examples, labels)
        metrics["accuracy"] *= 100
        return metrics


class UnstableLabelsTask(ClassificationTask):
    """Orders its labels differently on every call, so the saved model's label ids mean other labels."""

    name = "unstable-labels"
    calls = itertools.count()

    def label_set(self, train_examples, columns):
        labels = super().label_set(train_examples, columns)
        if next(UnstableLabelsTask.calls) % 2:
            return type(labels)(names=labels.names[::-1], values=labels.values[::-1])
        return labels


class UnknownModelClassTask(ClassificationTask):
    """Names a model class that transformers does not have."""

    name = "unknown-model-class"
    model_class = "AutoModelForGuessing"


BROKEN_TASKS = [
    (NoLabelsTask, "preprocess", "no 'labels' column"),
    (WrongMetricTask, "metric_for_best_model", "'f1' is not a key of compute_metrics' result"),
    (NumpyPredictionTask, "format_prediction", "not JSON-serialisable"),
    (FloatUnitsTask, "loss_units", "(float), not an int"),
    (ShortPostprocessTask, "postprocess", "returned 7 predictions for 8 examples"),
    (RaisingPreprocessTask, "preprocess", "KeyError"),
    (PercentTask, "compute_metrics", "outside [0.0, 1.0]"),
    (UnstableLabelsTask, "label_set", "reloads with labels"),
    (UnknownModelClassTask, "model_class", "'AutoModelForGuessing'"),
]


@pytest.mark.parametrize(("task_class", "member", "fragment"), BROKEN_TASKS, ids=[t[0].name for t in BROKEN_TASKS])
def test_kit_names_member_at_fault(task_class, member, fragment, tmp_path, tiny_bert_dir, toy_data):
    with pytest.raises(ConformanceError) as caught:
        check_task(task_class, model=tiny_bert_dir, tmp_dir=tmp_path, data=toy_data)

    assert caught.value.member == member
    assert str(caught.value).startswith(f"{member}: ")
    assert fragment in str(caught.value)


def test_kit_is_an_assertion_error(tiny_bert_dir, toy_data, tmp_path):
    with pytest.raises(AssertionError):
        check_task(WrongMetricTask, model=tiny_bert_dir, tmp_dir=tmp_path, data=toy_data)


def test_kit_names_unimplemented_method():
    from taskforge import Task

    class HalfTask(Task):
        name = "half"
        description = "Has no preprocess"
        metric_for_best_model = "accuracy"

        def load_examples(self, file, columns):
            raise NotImplementedError

        def compute_metrics(self, predictions, examples, labels):
            return {}

    with pytest.raises(ConformanceError) as caught:
        check_task(HalfTask)

    assert caught.value.member == "preprocess"
    assert "preprocess(self, examples, tokenizer, max_length, labels, training)" in str(caught.value)


def test_kit_needs_data_without_sample(tiny_bert_dir, tmp_path):
    with pytest.raises(ConformanceError) as caught:
        check_task("classification", model=tiny_bert_dir, tmp_dir=tmp_path)

    assert caught.value.member == "sample_data"
    assert "pass data=" in str(caught.value)


# -- plugins that fail to import --------------------------------------------------------------------


@pytest.fixture
def broken_plugin_dir(tmp_path) -> Path:
    """A folder holding an installed-looking distribution whose task module raises on import."""
    dist_info = tmp_path / "raising_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: raising-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[taskforge.tasks]\nraising = raising_mod:task\n")
    (tmp_path / "raising_mod.py").write_text('raise RuntimeError("raising_mod cannot start")\n')
    return tmp_path


def test_kit_names_import_failure(broken_plugin_dir, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_plugin_dir))

    with pytest.raises(ConformanceError) as caught:
        check_task("raising")

    assert caught.value.member == "import"
    assert "RuntimeError: raising_mod cannot start" in str(caught.value)


def test_cli_describes_task_beside_broken_plugin(broken_plugin_dir):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(broken_plugin_dir),
                                                                              os.environ.get("PYTHONPATH")]))}

    result = subprocess.run([sys.executable, "-m", "taskforge", "tasks", "sentiment"], capture_output=True,
                            text=True, env=environment, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sentiment: ")
    assert "Traceback" not in result.stderr


def test_numpy_probabilities_are_arrays():
    # The numpy-prediction case above depends on the classification task keeping arrays here.
    task = ClassificationTask()
    predictions = task.postprocess(None, None, {"logits": np.zeros((1, 2), dtype=np.float32)})

    assert isinstance(predictions[0]["probabilities"], np.ndarray)
