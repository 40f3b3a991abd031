"""The ``qa`` task: extractive question answering, in the SQuAD v1.1 and v2.0 formats."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taskforge import ConfigError, DataError, Task, TaskDefaults
from taskforge.task import ColumnOptions, DataFile, LabelSet

if TYPE_CHECKING:
    import datasets
    import numpy as np
    import torch
    from transformers import PreTrainedTokenizerBase

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_DIR = PACKAGE_DIR / "sample"
METRICS_DIR = PACKAGE_DIR / "metrics"


def _option(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class QuestionAnsweringOptions:
    """Options of the ``qa`` task; each field is a flag of finetune and predict (``--doc-stride``)."""

    doc_stride: int = _option(128, "Tokens shared by consecutive windows when a context does not fit in one window.")
    max_question_length: int = _option(64, "Maximum number of tokens of a question; longer questions are truncated.")
    n_best_size: int = _option(
        20, "Start and end tokens considered in each window, and the length of each question's n-best list.")
    max_answer_length: int = _option(30, "Maximum number of tokens of a predicted answer.")
    version_2_with_negative: bool = _option(
        False, "Allow unanswerable questions (SQuAD v2.0): the model learns to predict an empty answer, and "
               "evaluation uses the SQuAD v2.0 metric. Without it, data with unanswerable questions is rejected.")
    null_score_diff_threshold: float = _option(
        0.0, "With --version-2-with-negative, predict the empty answer when the null score exceeds the best "
             "span's score by more than this.")

    def __post_init__(self) -> None:
        problems = []
        for name, minimum in (("doc_stride", 0), ("max_question_length", 1), ("n_best_size", 1), ("max_answer_length", 1)):
            value = getattr(self, name)
            if value < minimum:
                problems.append(f"--{name.replace('_', '-')} must be at least {minimum}, got {value}")
        if not math.isfinite(self.null_score_diff_threshold):
            problems.append(f"--null-score-diff-threshold must be a finite number, got {self.null_score_diff_threshold}")
        if problems:
            raise ConfigError("invalid options of task 'qa': " + "; ".join(problems))


class QuestionAnsweringTask(Task):
    """Extractive question answering: the answer is a span of the context, found from start and end logits."""

    name: ClassVar[str] = "qa"
    description: ClassVar[str] = "Extractive question answering on SQuAD-style data (v1.1, or v2.0 with unanswerable questions)"
    model_class: ClassVar[str] = "AutoModelForQuestionAnswering"
    metric_for_best_model: ClassVar[str] = "f1"
    greater_is_better: ClassVar[bool] = True
    output_names: ClassVar[tuple[str, ...]] = ("start_logits", "end_logits")
    # MiniLM-size models under-train at 5e-5 within one or two epochs. NOTE: 1.5e-4 extrapolates
    # from one epoch of the Hugging Face Trainer on 9k SQuAD v1.1 questions, which gave F1 57.3 at
    # 5e-5 and 66.3 at 1e-4; it is not a measured optimum.
    # Attention dropout 0: with dropout, PyTorch's CPU attention takes its unfused path and keeps
    # every 384x384 attention matrix for the backward pass, about 2 GB per batch of 16 windows in
    # bf16. Fused attention keeps none: one epoch on 8,981 SQuAD questions took 691 s instead of
    # 1,023 s, and peaked at 4.9 GB instead of 8.4 GB.
    defaults: ClassVar[TaskDefaults] = TaskDefaults(
        learning_rate=1.5e-4, epochs=2, batch_size=16, max_length=384, warmup_ratio=0.1, weight_decay=0.01,
        attention_dropout=0.0,
    )
    options_class: ClassVar[type | None] = QuestionAnsweringOptions
    example_input: ClassVar[Any] = {"question": "Who won?", "context": "Denver beat Carolina 24-10."}
    options: QuestionAnsweringOptions
    # Start and end positions are distilled per window position, which needs the teacher's tokens.
    distillation_level: ClassVar[str] = "token"

    def validate_config(self, config: Any) -> list[str]:
        from taskforge_qa.windows import BERT_PAIR_SPECIAL_TOKENS, window_room_problem

        problems = [_column_flag_problem(flag) for flag in _column_flags(config)]
        options = self.options
        if config.max_length is not None:
            # The tokenizer is not loaded yet, so the room assumes BERT's three special tokens;
            # preprocess checks again with the real tokenizer.
            room = window_room_problem(config.max_length, options.max_question_length, options.doc_stride,
                                       BERT_PAIR_SPECIAL_TOKENS)
            if room is not None:
                problems.append(room)
        if options.null_score_diff_threshold != 0.0 and not options.version_2_with_negative:
            problems.append(
                f"--null-score-diff-threshold {options.null_score_diff_threshold} applies only with "
                f"--version-2-with-negative; pass both or neither"
            )
        return problems

    # -- data ------------------------------------------------------------------------------------

    def sample_data(self) -> Mapping[str, DataFile]:
        return {
            "train": DataFile(str(SAMPLE_DIR / "train.json"), "json", "train"),
            "validation": DataFile(str(SAMPLE_DIR / "validation.json"), "json", "validation"),
        }

    def load_examples(self, file: DataFile, columns: ColumnOptions) -> datasets.Dataset:
        from taskforge_qa.examples import load_examples

        flags = _column_flags(columns)
        if flags:
            raise DataError(_column_flag_problem(flags[0]))
        return load_examples(file, columns.drop_invalid, self.options.version_2_with_negative)

    def examples_from_inputs(self, inputs: Sequence[Any]) -> datasets.Dataset:
        from taskforge_qa.examples import examples_from_inputs

        return examples_from_inputs(inputs)

    # -- features --------------------------------------------------------------------------------

    def preprocess(
        self,
        examples: datasets.Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        labels: LabelSet | None,
        training: bool,
    ) -> datasets.Dataset:
        from taskforge_qa.windows import tokenize_windows

        return tokenize_windows(examples, tokenizer, max_length, self.options.doc_stride,
                                self.options.max_question_length, training)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        from taskforge_qa.windows import WindowCollator

        # Window lengths rounded up to a multiple of 32 give at most 12 batch shapes at max length
        # 384, instead of one per window length. On CPU each new shape costs memory that is not
        # returned (oneDNN kernels, heap fragments): 150 steps on SQuAD peaked at 2.2 GB padded and
        # 3.6 GB unpadded, at equal speed.
        return WindowCollator(tokenizer, pad_to_multiple_of=32)

    def distillation_logits(
        self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Return the start and end logits of each window over its positions, padding masked out.

        Padding positions get a logit of -10000 in both models, so that they carry no probability
        and add nothing to the divergence.
        """
        padding = batch["attention_mask"] == 0
        return {name: outputs[name].float().masked_fill(padding, -10000.0) for name in self.output_names}

    # -- outputs ---------------------------------------------------------------------------------

    def postprocess(
        self, examples: datasets.Dataset, features: datasets.Dataset, outputs: Mapping[str, np.ndarray]
    ) -> list[dict[str, Any]]:
        from taskforge_qa.postprocess import postprocess_predictions

        return postprocess_predictions(examples, features, outputs, self.decode_options())

    def compute_metrics(
        self, predictions: Sequence[dict[str, Any]], examples: datasets.Dataset, labels: LabelSet | None
    ) -> dict[str, Any]:
        from taskforge.metrics import load_metric_from

        if "answers" not in examples.column_names:
            raise DataError("the examples have no answers to score predictions against; evaluate on labelled data")
        references = [{"id": i, "answers": answers} for i, answers in zip(examples["id"], examples["answers"])]
        if not self.options.version_2_with_negative:
            scored = [{"id": p["id"], "prediction_text": p["answer"]} for p in predictions]
            return load_metric_from(METRICS_DIR / "squad").compute(predictions=scored, references=references)

        # The v2.0 metric applies the threshold itself, from the best span and the null score difference,
        # so that it can also report the best threshold.
        scored = [
            {
                "id": p["id"],
                "prediction_text": p["best_span"]["text"] if p["best_span"] is not None else "",
                "no_answer_probability": p["null_score_diff"] if p["null_score_diff"] is not None else math.inf,
            }
            for p in predictions
        ]
        return load_metric_from(METRICS_DIR / "squad_v2").compute(
            predictions=scored, references=references, no_answer_threshold=self.options.null_score_diff_threshold
        )

    def format_prediction(self, prediction: dict[str, Any], labels: LabelSet | None) -> dict[str, Any]:
        return {
            "answer": prediction["answer"],
            "start": prediction["start"],
            "end": prediction["end"],
            "score": round(float(prediction["score"]), 6),
        }

    def write_predictions(
        self, directory: Path, predictions: Sequence[dict[str, Any]], examples: datasets.Dataset,
        labels: LabelSet | None,
    ) -> list[Path]:
        """Write ``predictions.json`` and ``nbest_predictions.json`` (and ``null_odds.json`` for SQuAD v2.0)."""
        from taskforge_qa.postprocess import write_predictions

        return write_predictions(directory, predictions, self.options.version_2_with_negative)

    def decode_options(self) -> Any:
        """Return the span-search settings of the current options."""
        from taskforge_qa.postprocess import DecodeOptions

        return DecodeOptions(
            n_best_size=self.options.n_best_size,
            max_answer_length=self.options.max_answer_length,
            version_2_with_negative=self.options.version_2_with_negative,
            null_score_diff_threshold=self.options.null_score_diff_threshold,
        )


def _column_flags(values: Any) -> list[str]:
    """Return the column flags set in a configuration or ColumnOptions; task 'qa' has fixed column names."""
    names = ("text_column", "text_pair_column", "label_column", "label_names")
    return ["--" + name.replace("_", "-") for name in names if getattr(values, name, None)]


def _column_flag_problem(flag: str) -> str:
    return (
        f"{flag} does not apply to task 'qa', which reads the columns id, title, question, context and answers "
        f"(or answer_text and answer_start); rename the columns of the file instead"
    )
