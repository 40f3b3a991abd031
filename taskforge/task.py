"""The task contract: what a task plugin provides and when the engine calls it.

A task plugin is a package that registers one object in the entry-point group ``taskforge.tasks``::

    [project.entry-points."taskforge.tasks"]
    sentiment = "taskforge_sentiment:SentimentTask"

The object is a subclass of :class:`Task` (or an instance of one). The engine drives every task the
same way, and calls the members below in this order:

1. ``load_examples`` reads each data file into raw, validated examples.
2. ``label_set`` fixes the label set from the training examples, and ``check_labels`` rejects
   evaluation examples whose labels training never saw.
3. ``build_model`` loads the model with the task's head.
4. ``preprocess`` tokenizes examples into features. One example may become several features (a long
   context cut into windows); such a task adds an ``example_index`` column to the features.
5. ``collator`` batches features; ``loss_units`` counts what the loss of a batch averages over.
6. In ``taskforge distill``, ``distillation_logits`` picks the distributions the student learns from
   the teacher, from the outputs of both models on the same batch.
7. After a forward pass over evaluation features, ``postprocess`` turns the model outputs named in
   ``output_names`` into one prediction per example, ``compute_metrics`` scores them, and
   ``format_prediction`` turns a prediction into the JSON object that ``taskforge predict`` writes.
   ``write_predictions`` may save the predictions of the final evaluation as files of the task's
   own format, such as SQuAD's ``predictions.json``.

Module-level imports of a plugin must stay light: listing tasks imports every plugin, and must not
import torch, transformers or datasets. Import them inside the methods that need them.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import datasets
    import numpy as np
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: Version of this contract. A plugin built for another version is rejected at load time.
TASK_API_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TaskDefaults:
    """Hyper-parameters a task recommends; explicit flags and config files override them."""

    learning_rate: float = 5e-5
    epochs: float = 3.0
    batch_size: int = 32
    max_length: int = 128
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    attention_dropout: float | None = None
    """None keeps the dropout of the model's configuration."""


@dataclasses.dataclass(frozen=True)
class DataFile:
    """One data file to read: its path, format and the split it serves."""

    path: str
    """File path, or the dataset name when ``format`` is ``hub``."""
    format: str
    """One of ``csv``, ``tsv``, ``json``, ``jsonl``, ``parquet``, or ``hub`` for a hub dataset."""
    split: str
    """``train``, ``validation``, ``test`` or ``predict``."""
    header: bool = True
    """Whether the first row of a CSV or TSV file names the columns."""
    dataset_config: str | None = None
    """Configuration name of a hub dataset."""

    @property
    def display_name(self) -> str:
        """Short name for messages: the file name, or the hub dataset and split."""
        if self.format == "hub":
            return f"{self.path} ({self.split} split)"
        return self.path


@dataclasses.dataclass(frozen=True)
class ColumnOptions:
    """Column names and label options given by the user, before the task applies its defaults."""

    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str | None = None
    label_names: tuple[str, ...] | None = None
    """Names for the labels, in the sorted order of the label values in the data."""
    drop_invalid: bool = False
    """Skip and count invalid rows instead of raising."""


@dataclasses.dataclass(frozen=True)
class LabelSet:
    """The labels of a trained model: names in id order, and the raw values they stand for in the data.

    ``values[i]`` is the label as written in the data files (``"0"``, ``"1"``, or the name itself) and
    ``names[i]`` is what the model predicts. Both are saved with the model, so a new process maps the
    same raw values to the same ids.
    """

    names: tuple[str, ...]
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.values):
            raise ValueError(f"{len(self.names)} label names for {len(self.values)} label values")

    def __len__(self) -> int:
        return len(self.names)

    def id_of(self, label: str) -> int | None:
        """Return the id of a raw label value or a label name, or None when it is unknown."""
        return self.lookup().get(label)

    def lookup(self) -> dict[str, int]:
        """Return a dict from every raw value and name to its id; raw values win where they clash."""
        return {**{name: i for i, name in enumerate(self.names)}, **{value: i for i, value in enumerate(self.values)}}


class Task(abc.ABC):
    """Base class of every task plugin.

    Class attributes describe the task; methods do its work. Abstract methods must be implemented,
    the others have defaults that suit tasks with one feature per example and a ``logits`` output.
    """

    api_version: ClassVar[int] = TASK_API_VERSION
    """Version of the task contract the plugin implements."""

    name: ClassVar[str]
    """Name users type after ``--task``; lower case, digits and hyphens."""

    description: ClassVar[str]
    """One line shown by ``taskforge tasks``."""

    model_class: ClassVar[str] = "AutoModelForSequenceClassification"
    """Name of the ``transformers`` auto class that builds the model with this task's head."""

    metric_for_best_model: ClassVar[str]
    """Key of ``compute_metrics``'s result that ranks evaluations."""

    greater_is_better: ClassVar[bool] = True
    """Direction of ``metric_for_best_model``."""

    output_names: ClassVar[tuple[str, ...]] = ("logits",)
    """Model outputs that evaluation collects and passes to ``postprocess``."""

    defaults: ClassVar[TaskDefaults] = TaskDefaults()
    """Recommended hyper-parameters."""

    example_input: ClassVar[Any] = "an example input"
    """One input of ``Predictor.predict``, shown in the model card's usage example."""

    distillation_level: ClassVar[str] = "example"
    """Unit of the distributions ``distillation_logits`` returns: ``"example"`` for one distribution
    per feature over the classes, ``"token"`` for one per token or position. A teacher whose
    tokenizer differs from the student's can only teach ``"example"`` tasks, where both models see
    the same raw text and give one distribution per example."""

    file_formats: ClassVar[Mapping[str, str]] = {}
    """Extra file extensions the task reads itself, mapped to a format name, such as
    ``{".txt": "conll"}``. ``load_examples`` receives that name in ``DataFile.format``."""

    options_class: ClassVar[type | None] = None
    """Dataclass of the task's own options, or None. Each field becomes a CLI flag (``doc_stride`` is
    ``--doc-stride``) and a key of ``task_options``; ``metadata={"help": ...}`` gives its help text."""

    options: Any = None
    """The options of this run: an instance of ``options_class``, set by :meth:`configure`."""

    def __init__(self) -> None:
        if self.options_class is not None and self.options is None:
            self.options = self.options_class()

    def configure(self, values: Mapping[str, Any]) -> Task:
        """Return a copy of this task with its options set from ``values``; unknown keys raise.

        String values, as they come from the command line, are converted to the field types.
        """
        import copy

        from taskforge.config import coerce_fields

        if not values:
            return self
        if self.options_class is None:
            names = ", ".join(f"--{key.replace('_', '-')}" for key in values)
            raise _config_error(
                f"task {self.name!r} has no options of its own, but got {names}; "
                f"run the command with --help to list its flags"
            )
        configured = copy.copy(self)
        configured.options = dataclasses.replace(
            self.options or self.options_class(), **coerce_fields(self.options_class, values, f"task {self.name!r}")
        )
        return configured

    def validate_config(self, config: Any) -> list[str]:
        """Return problems of a :class:`~taskforge.config.FinetuneConfig` specific to this task.

        Called with the whole configuration before any data or model is loaded, so that a task can
        reject option combinations (a window stride longer than the window) early.
        """
        return []

    # -- data ------------------------------------------------------------------------------------

    def sample_data(self) -> Mapping[str, DataFile] | None:
        """Return data files shipped with the plugin, keyed by split, used when no data is given."""
        return None

    @abc.abstractmethod
    def load_examples(self, file: DataFile, columns: ColumnOptions) -> datasets.Dataset:
        """Read ``file`` into raw examples with the task's own column names, validating each row.

        Raise :class:`taskforge.DataError` naming the file, the row and the fix for invalid rows,
        unless ``columns.drop_invalid`` is set; then drop them and log how many.
        """

    def examples_from_inputs(self, inputs: Sequence[Any]) -> datasets.Dataset:
        """Turn the inputs of ``Predictor.predict`` (strings, or dicts) into raw examples."""
        raise NotImplementedError(f"task {self.name!r} does not take direct inputs")

    # -- labels ----------------------------------------------------------------------------------

    def label_set(self, train_examples: datasets.Dataset, columns: ColumnOptions) -> LabelSet | None:
        """Return the labels taken from the training examples, or None for a task without labels."""
        return None

    def check_labels(self, examples: datasets.Dataset, labels: LabelSet | None, file: DataFile) -> None:
        """Raise :class:`taskforge.DataError` when ``examples`` carry a label outside ``labels``."""

    # -- model -----------------------------------------------------------------------------------

    def build_model(self, model_name_or_path: str, labels: LabelSet | None, **kwargs: Any) -> PreTrainedModel:
        """Load the model with this task's head; ``kwargs`` go to ``from_pretrained``."""
        import transformers

        auto_class = getattr(transformers, self.model_class)
        if labels is not None:
            kwargs.setdefault("num_labels", len(labels))
            kwargs.setdefault("id2label", dict(enumerate(labels.names)))
            kwargs.setdefault("label2id", {name: i for i, name in enumerate(labels.names)})
        return auto_class.from_pretrained(model_name_or_path, **kwargs)

    # -- features --------------------------------------------------------------------------------

    @abc.abstractmethod
    def preprocess(
        self,
        examples: datasets.Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        labels: LabelSet | None,
        training: bool,
    ) -> datasets.Dataset:
        """Tokenize examples into model features.

        Features hold the model's inputs, ``labels`` when the examples have labels, and an
        ``example_index`` column when one example may give several features. ``training`` is True
        for the features the model is trained on.
        """

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
        """Return the function that pads a list of features into a batch of tensors."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def loss_units(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Count what the model's loss on ``batch`` is a mean over: examples by default.

        A task whose loss is a mean over label tokens returns the number of labelled tokens, so
        that gradient accumulation weights each micro-batch by its share of the window.
        """
        return int(batch["input_ids"].shape[0])

    def distillation_logits(
        self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Return the logits to distil, by output name, each of shape ``[rows, choices]``.

        Called with the teacher's outputs and with the student's outputs on the same batch; row ``i``
        of both must describe the same distribution. The default takes each output in
        ``output_names``: a ``[batch, classes]`` tensor as it is, and a ``[batch, tokens, classes]``
        tensor flattened to its labelled tokens (``labels`` other than -100), or to its attended
        tokens when the batch has no labels.
        """
        result = {}
        for name in self.output_names:
            logits = outputs[name]
            if logits.dim() == 3:
                labels = batch.get("labels")
                if labels is not None and labels.dim() == 2:
                    keep = labels != -100
                else:
                    keep = batch["attention_mask"].bool()
                logits = logits[keep]
            result[name] = logits
        return result

    # -- outputs ---------------------------------------------------------------------------------

    def postprocess(
        self, examples: datasets.Dataset, features: datasets.Dataset, outputs: Mapping[str, np.ndarray]
    ) -> list[Any]:
        """Turn model outputs, one row per feature, into one prediction per example.

        The default takes the arg-max of ``logits`` and suits one feature per example.
        """
        return [int(i) for i in outputs["logits"].argmax(axis=-1)]

    @abc.abstractmethod
    def compute_metrics(
        self, predictions: Sequence[Any], examples: datasets.Dataset, labels: LabelSet | None
    ) -> dict[str, Any]:
        """Score predictions against the references in ``examples``.

        Keys are metric names; values are floats, or nested dicts for detail such as per-class scores.
        """

    def format_prediction(self, prediction: Any, labels: LabelSet | None) -> dict[str, Any]:
        """Return the JSON-serialisable object that stands for one prediction."""
        return {"prediction": prediction}

    def write_predictions(
        self, directory: Path, predictions: Sequence[Any], examples: datasets.Dataset, labels: LabelSet | None
    ) -> list[Path]:
        """Write the predictions of an evaluation into ``directory`` in the task's own file format.

        Called after the final evaluation of a run (``directory`` is the output directory for the
        validation set, its ``test`` folder for the test set) and by ``taskforge evaluate
        --predictions-dir``. Returns the paths written; the default writes nothing.
        """
        return []


def _config_error(message: str) -> Exception:
    from taskforge.errors import ConfigError

    return ConfigError(message)


#: Members every task must provide, with the signature shown when one is missing.
REQUIRED_MEMBERS: dict[str, str] = {
    "name": "name: str",
    "description": "description: str",
    "metric_for_best_model": "metric_for_best_model: str",
    "load_examples": "load_examples(self, file: DataFile, columns: ColumnOptions) -> datasets.Dataset",
    "preprocess": "preprocess(self, examples, tokenizer, max_length, labels, training) -> datasets.Dataset",
    "compute_metrics": "compute_metrics(self, predictions, examples, labels) -> dict[str, float]",
}
