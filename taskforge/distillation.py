"""Task-specific knowledge distillation: a student learns from a teacher's outputs as well as labels.

The loss of a batch is ``alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * task loss``, plus
``hidden_weight`` times a hidden-state loss when that is on. The divergence is summed over the
choices of each distribution and averaged over the distributions in the batch (examples, tokens or
window positions, as the task's ``distillation_logits`` defines them). The factor ``T^2`` keeps the
gradients of the soft term at the scale of the task loss when the temperature changes.

The teacher runs in evaluation mode without gradients. It is not a submodule of the training
module, so it is neither optimised nor saved in checkpoints.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import json
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from taskforge.config import parse_student_layers
from taskforge.errors import ConfigError, PluginError

if TYPE_CHECKING:
    import datasets
    from accelerate import Accelerator
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from taskforge.config import DistillConfig
    from taskforge.task import LabelSet, Task

logger = logging.getLogger(__name__)

# Feature columns that carry the teacher's own inputs (another tokenizer) or its cached outputs.
TEACHER_INPUT_PREFIX = "teacher_input__"
TEACHER_OUTPUT_PREFIX = "teacher_output__"
CACHE_DIR = "teacher_outputs"
# Logit of positions that carry no probability, in both models.
MASKED_LOGIT = -10000.0


# -- losses --------------------------------------------------------------------------------------


def soft_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Return ``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` averaged over rows.

    Both tensors have shape ``[rows, choices]``. The divergence of each row is summed over its
    choices; the mean is over rows ("batchmean"), not over every element. Computed in float32.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits of shape {tuple(student_logits.shape)} and teacher logits of shape "
                         f"{tuple(teacher_logits.shape)} differ")
    if student_logits.shape[0] == 0:
        return student_logits.float().sum() * 0.0
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return F.kl_div(student, teacher, reduction="batchmean", log_target=True) * temperature**2


def hidden_loss(
    student_states: Sequence[torch.Tensor],
    teacher_states: Sequence[torch.Tensor],
    attention_mask: torch.Tensor,
    projection: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Return the mean distance between paired hidden states over the attended tokens.

    Without ``projection`` the distance is the cosine distance ``1 - cos(s, t)`` of each token.
    With it, the distance is the mean squared error between ``projection(s)`` and ``t`` over the hidden units.
    The result averages tokens first, then layer pairs.
    """
    mask = attention_mask.to(torch.float32)
    tokens = mask.sum().clamp(min=1.0)
    losses = []
    for student, teacher in zip(student_states, teacher_states):
        student, teacher = student.float(), teacher.float()
        if projection is None:
            distance = 1.0 - F.cosine_similarity(student, teacher, dim=-1)
        else:
            distance = (projection(student).float() - teacher).pow(2).mean(dim=-1)
        losses.append((distance * mask).sum() / tokens)
    return torch.stack(losses).mean()


# -- students cut from the teacher ---------------------------------------------------------------


def layer_list(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    """Return the name and the module list of the transformer layers of ``model``.

    That is the ``ModuleList`` with as many entries as ``config.num_hidden_layers``, the largest one
    if several match (``bert.encoder.layer``, ``distilbert.transformer.layer``, ...).
    """
    count = getattr(model.config, "num_hidden_layers", None)
    candidates = [
        (name, module) for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) == count
    ]
    if not candidates:
        raise ConfigError(f"cannot find the {count} transformer layers of {type(model).__name__}, so no student can be "
                          f"cut from it; pass --student with a smaller model instead of --student-layers")
    return max(candidates, key=lambda item: sum(p.numel() for p in item[1].parameters()))


def cut_student(
    teacher: PreTrainedModel, layers: Sequence[int], settings: Mapping[str, Any] | None = None
) -> PreTrainedModel:
    """Build a student of the teacher's class from its embeddings, head and the given layers.

    Student layer ``j`` is a copy of teacher layer ``layers[j]``; every other weight is copied as it
    is. The student is an ordinary model of the same architecture, with ``num_hidden_layers`` set
    to ``len(layers)`` and ``settings`` set on its configuration.
    """
    path, teacher_layers = layer_list(teacher)
    if getattr(teacher.config, "layer_types", None) is not None:
        raise ConfigError(f"{type(teacher).__name__} has per-layer types; cutting it is not supported, pass --student")
    wrong = [index for index in layers if not 0 <= index < len(teacher_layers)]
    if wrong:
        raise ConfigError(f"--student-layers names layer(s) {wrong}, but the teacher has layers 0 to {len(teacher_layers) - 1}")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)
    for key, value in (settings or {}).items():
        setattr(config, key, value)
    student = type(teacher)(config)
    teacher_state = teacher.state_dict()
    prefix = path + "."
    state = {}
    for key in student.state_dict():
        source = key
        if key.startswith(prefix):
            index, _, rest = key[len(prefix):].partition(".")
            source = f"{prefix}{layers[int(index)]}.{rest}"
        state[key] = teacher_state[source].detach().clone()
    student.load_state_dict(state, strict=True)
    # The student trains in float32 whatever the teacher was saved in: mixed precision keeps float32
    # weights, and bf16 weights would round most small updates away.
    return student.float()


# -- the teacher ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Teacher:
    """A loaded teacher: its model, tokenizer and where it came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    path: str
    labels: LabelSet | None


def load_teacher(task: Task, name: str, data_labels: LabelSet | None) -> Teacher:
    """Load the teacher with its trained head, and align its labels with those of the training data.

    The teacher's label names must equal the data's label names, or its saved raw values the data's
    raw values. The run then uses the teacher's label ids, so that the two models' classes line up.
    """
    import transformers
    from transformers import AutoTokenizer

    from taskforge.models import check_finite_weights, resolve_model, unloadable_model_error
    from taskforge.predictor import saved_label_set

    path = resolve_model(name, "--teacher")
    auto_class = getattr(transformers, task.model_class)
    try:
        model, info = auto_class.from_pretrained(path, output_loading_info=True)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as error:  # the loaders raise OSError, ValueError or safetensors errors for damaged folders
        raise unloadable_model_error("--teacher", name, task.model_class, error,
                                     "pass a complete model directory saved by 'taskforge finetune'") from error
    fresh = [key for key in info.get("missing_keys", []) if "position_ids" not in key]
    if fresh:
        raise ConfigError(
            f"--teacher {name!r} has no trained {task.name!r} head (newly initialised: {', '.join(sorted(fresh)[:4])}); "
            f"pass a model fine-tuned on this task, for example the output of 'taskforge finetune --task {task.name}'"
        )
    check_finite_weights(model, "--teacher", name)
    model.eval()
    model.requires_grad_(False)
    labels = _align_labels(name, saved_label_set(model.config), model.config, data_labels)
    return Teacher(model=model, tokenizer=tokenizer, path=path, labels=labels)


def _align_labels(name: str, saved: LabelSet | None, model_config: Any, data_labels: LabelSet | None) -> LabelSet | None:
    from taskforge.task import LabelSet

    if data_labels is None:
        return None
    if saved is None:
        id2label = getattr(model_config, "id2label", None) or {}
        names = tuple(str(id2label.get(i, id2label.get(str(i), i))) for i in range(len(id2label)))
        saved = LabelSet(names=names, values=names)
    if set(saved.names) == set(data_labels.names):
        by_name = dict(zip(data_labels.names, data_labels.values))
        return LabelSet(names=saved.names, values=tuple(by_name[label] for label in saved.names))
    if set(saved.values) == set(data_labels.values):
        return saved
    if len(saved.names) != len(data_labels.names):
        fix = (f"the teacher has {len(saved.names)} labels and the data {len(data_labels.names)}, so distil on data "
               f"with the teacher's labels or pass a teacher trained on these labels")
    else:
        fix = "the labels must match by name, so pass --label-names to name the data's labels as the teacher does"
    raise ConfigError(
        f"the teacher {name!r} has labels {{{', '.join(saved.names)}}} but the training data has "
        f"{{{', '.join(data_labels.names)}}}; {fix}"
    )


def warn_about_columns(teacher: Teacher, config: DistillConfig) -> None:
    """Warn when the teacher was trained on text pairs and this run gives it single texts, or the reverse."""
    run_file = Path(teacher.path) / "taskforge_run.json"
    try:
        teacher_config = json.loads(run_file.read_text(encoding="utf-8")).get("config", {})
    except (OSError, ValueError, AttributeError):
        return
    trained_on_pairs = teacher_config.get("text_pair_column") is not None
    if trained_on_pairs and config.text_pair_column is None:
        logger.warning("the teacher was trained on text pairs (--text-pair-column %s) but this run gives it single "
                       "texts; pass --text-pair-column too", teacher_config["text_pair_column"])
    elif not trained_on_pairs and config.text_pair_column is not None:
        logger.warning("the teacher was trained on single texts but this run gives it text pairs (--text-pair-column %s)",
                       config.text_pair_column)


def same_tokenizer(first: PreTrainedTokenizerBase, second: PreTrainedTokenizerBase) -> bool:
    """Check whether two tokenizers turn any text into the same ids: same class, vocabulary and pipeline."""
    if type(first) is not type(second) or first.get_vocab() != second.get_vocab():
        return False
    backends = [getattr(tokenizer, "backend_tokenizer", None) for tokenizer in (first, second)]
    if all(backend is not None for backend in backends):
        # Truncation and padding are settings of the last call, not of the tokenizer itself.
        pipelines = []
        for backend in backends:
            pipeline = json.loads(backend.to_str())
            pipeline.pop("truncation", None)
            pipeline.pop("padding", None)
            pipelines.append(pipeline)
        return pipelines[0] == pipelines[1]
    return first.init_kwargs.get("do_lower_case") == second.init_kwargs.get("do_lower_case")


def layer_pairs(student_layers: int, teacher_layers: int, cut_from: Sequence[int] | None) -> list[tuple[int, int]]:
    """Pair hidden-state indices (0 is the embeddings, ``i`` the output of layer ``i - 1``) of student and teacher.

    A student cut from the teacher pairs each layer with the one it was copied from. Another student
    pairs layer ``j`` with teacher layer ``round(j * teacher_layers / student_layers)``, so that the
    last layers meet.
    """
    pairs = [(0, 0)]
    for j in range(1, student_layers + 1):
        t = cut_from[j - 1] + 1 if cut_from is not None else round(j * teacher_layers / student_layers)
        pairs.append((j, t))
    return pairs


# -- the training module -------------------------------------------------------------------------


@dataclasses.dataclass
class DistillOutput:
    """Output of :class:`Distiller`: the loss to minimise and its named parts."""

    loss: torch.Tensor
    loss_terms: dict[str, torch.Tensor]


class Distiller(torch.nn.Module):
    """The module the engine trains when distilling: the student, plus a projection for the hidden loss.

    Batches carry the student's inputs and labels, and optionally the teacher's own inputs
    (``teacher_input__*``) or its cached outputs (``teacher_output__*``).
    """

    def __init__(self, task: Task, student: PreTrainedModel, teacher: PreTrainedModel | None,
                 config: DistillConfig, cut_from: Sequence[int] | None) -> None:
        super().__init__()
        self.task = task
        self.student = student
        # Kept out of the module tree: not optimised, not moved by prepare, not saved in checkpoints.
        self.__dict__["teacher"] = teacher
        self.temperature = config.temperature
        self.alpha = config.alpha
        self.hidden_weight = config.hidden_weight
        self.projection: torch.nn.Module | None = None
        self.pairs: list[tuple[int, int]] = []
        if self.hidden_weight > 0:
            assert teacher is not None
            s_config, t_config = student.config, teacher.config
            self.pairs = layer_pairs(s_config.num_hidden_layers, t_config.num_hidden_layers, cut_from)
            if s_config.hidden_size != t_config.hidden_size:
                self.projection = torch.nn.Linear(s_config.hidden_size, t_config.hidden_size)
        self._teacher_keys: list[str] | None = None

    def teacher_inputs(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Return the teacher's inputs: its own columns if present, else the student's inputs without labels."""
        own = {key[len(TEACHER_INPUT_PREFIX):]: value for key, value in batch.items()
               if key.startswith(TEACHER_INPUT_PREFIX)}
        if own:
            return own
        if self._teacher_keys is None:
            from transformers.utils import find_labels

            teacher = self.__dict__["teacher"]
            accepted = set(inspect.signature(teacher.forward).parameters)
            label_names = set(find_labels(type(teacher))) | {"labels"}
            self._teacher_keys = [key for key in batch if key in accepted and key not in label_names]
        return {key: batch[key] for key in self._teacher_keys}

    def forward(self, **batch: torch.Tensor) -> DistillOutput:
        cached = {key[len(TEACHER_OUTPUT_PREFIX):]: value for key, value in batch.items()
                  if key.startswith(TEACHER_OUTPUT_PREFIX)}
        student_batch = {key: value for key, value in batch.items()
                         if not key.startswith((TEACHER_INPUT_PREFIX, TEACHER_OUTPUT_PREFIX))}
        want_hidden = self.hidden_weight > 0
        student_out = self.student(**student_batch, output_hidden_states=want_hidden)
        terms: dict[str, torch.Tensor] = {}
        loss = torch.zeros((), device=student_batch["input_ids"].device)
        if student_out.loss is not None:
            terms["loss_task"] = student_out.loss.detach()
            if self.alpha < 1:
                loss = loss + (1 - self.alpha) * student_out.loss
        elif self.alpha < 1:
            raise PluginError("the student returned no task loss: the batch has no labels, so pass --alpha 1")

        if self.alpha > 0 or want_hidden:
            if cached:
                teacher_out: Mapping[str, torch.Tensor] = cached
            else:
                teacher = self.__dict__["teacher"]
                with torch.no_grad():
                    teacher_out = teacher(**self.teacher_inputs(batch), output_hidden_states=want_hidden)
            if self.alpha > 0:
                student_logits = self.task.distillation_logits(student_out, student_batch)
                teacher_logits = self.task.distillation_logits(teacher_out, student_batch)
                soft = torch.stack([
                    soft_loss(student_logits[name], teacher_logits[name].detach(), self.temperature)
                    for name in student_logits
                ]).mean()
                terms["loss_soft"] = soft.detach()
                loss = loss + self.alpha * soft
            if want_hidden:
                student_states = [student_out.hidden_states[s] for s, _ in self.pairs]
                teacher_states = [teacher_out.hidden_states[t].detach() for _, t in self.pairs]
                hidden = hidden_loss(student_states, teacher_states, student_batch["attention_mask"], self.projection)
                terms["loss_hidden"] = hidden.detach()
                loss = loss + self.hidden_weight * hidden
        return DistillOutput(loss=loss, loss_terms=terms)


class DistillCollator:
    """Batch student features with the task's collator, and teacher columns beside them.

    Teacher inputs are padded by the teacher's own collator; cached teacher outputs are stacked, and
    token-level ones padded to the student batch's length.
    """

    def __init__(self, student_collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
                 teacher_collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]] | None,
                 token_level: bool) -> None:
        self.student_collator = student_collator
        self.teacher_collator = teacher_collator
        self.token_level = token_level

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prefixes = (TEACHER_INPUT_PREFIX, TEACHER_OUTPUT_PREFIX)
        batch = self.student_collator([{k: v for k, v in f.items() if not k.startswith(prefixes)} for f in features])
        inputs = [{k[len(TEACHER_INPUT_PREFIX):]: v for k, v in f.items() if k.startswith(TEACHER_INPUT_PREFIX)}
                  for f in features]
        if inputs[0]:
            assert self.teacher_collator is not None
            batch.update({TEACHER_INPUT_PREFIX + k: v for k, v in self.teacher_collator(inputs).items()})
        length = batch["input_ids"].shape[1]
        for key in features[0]:
            if not key.startswith(TEACHER_OUTPUT_PREFIX):
                continue
            rows = [np.asarray(f[key], dtype=np.float32) for f in features]
            if not self.token_level:
                batch[key] = torch.from_numpy(np.stack(rows))
                continue
            # Token-level outputs: one row per token, padded to the batch's sequence length.
            padded = np.full((len(rows), length, *rows[0].shape[1:]), MASKED_LOGIT, dtype=np.float32)
            for i, row in enumerate(rows):
                padded[i, : len(row)] = row
            batch[key] = torch.from_numpy(padded)
        return batch


# -- setup ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Setup:
    """The training module, features, collator and extra columns that the engine needs to train with a teacher."""

    module: Distiller
    features: datasets.Dataset
    collator: DistillCollator
    extra_columns: list[str]


def prepare(
    task: Task,
    config: DistillConfig,
    teacher: Teacher,
    student: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train_examples: datasets.Dataset,
    train_features: datasets.Dataset,
    max_length: int,
    labels: LabelSet | None,
    accelerator: Accelerator,
    run_dir: Path,
    cut_from: Sequence[int] | None,
) -> Setup:
    """Wire the teacher into training: its inputs or cached outputs as feature columns, and the loss module."""
    from taskforge.evaluation import model_input_columns

    shared = same_tokenizer(tokenizer, teacher.tokenizer)
    if not shared:
        if task.distillation_level != "example":
            raise ConfigError(
                f"the teacher's tokenizer differs from the student's, and task {task.name!r} distils per token "
                f"(distillation_level {task.distillation_level!r}), which needs both models to see the same tokens; "
                f"pick a student with the teacher's tokenizer, or cut one with --student-layers"
            )
        if config.hidden_weight > 0:
            raise ConfigError("the hidden-state loss pairs tokens, so it needs the teacher's tokenizer; the student's "
                              "tokenizer differs. Pass --hidden-weight 0, or a student with the teacher's tokenizer")
        logger.info("the teacher's tokenizer differs from the student's: the teacher tokenizes the same texts itself")

    teacher_positions = _max_positions(teacher.model.config)
    if shared and config.teacher_needed and max_length > teacher_positions:
        raise ConfigError(f"--max-length {max_length} is above the {teacher_positions} positions the teacher supports; "
                          f"pass at most {teacher_positions}")
    teacher.model.to(accelerator.device)
    # With cached outputs the training loop never calls the teacher.
    runs_teacher = config.teacher_needed and not config.cache_teacher
    module = Distiller(task, student, teacher.model if runs_teacher else None, config, cut_from)
    teacher_collator = task.collator(teacher.tokenizer)
    features = train_features
    extra: list[str] = []

    teacher_features = None
    if config.teacher_needed and not shared:
        teacher_max = min(max_length, _max_positions(teacher.model.config), _tokenizer_limit(teacher.tokenizer))
        teacher_features = task.preprocess(train_examples, teacher.tokenizer, teacher_max, labels, training=True)
        if len(teacher_features) != len(train_features):
            raise PluginError(f"task {task.name!r} made {len(teacher_features)} teacher features from "
                              f"{len(train_examples)} examples but {len(train_features)} student features; "
                              f"distillation with two tokenizers needs one feature per example")
        columns = model_input_columns(teacher.model, teacher_features)
        columns = [c for c in columns if c not in ("labels", "label", "start_positions", "end_positions")]
        if not config.cache_teacher:
            for column in columns:
                features = features.add_column(TEACHER_INPUT_PREFIX + column, teacher_features[column])
                extra.append(TEACHER_INPUT_PREFIX + column)

    if config.cache_teacher:
        source = teacher_features if teacher_features is not None else train_features
        cache = _teacher_cache(task, teacher, source, teacher_collator, config, accelerator, run_dir)
        from datasets import concatenate_datasets

        features = concatenate_datasets([features, cache], axis=1)
        extra.extend(cache.column_names)

    collator = DistillCollator(task.collator(tokenizer), teacher_collator, task.distillation_level == "token")
    return Setup(module=module, features=features, collator=collator, extra_columns=extra)


def _teacher_cache(task: Task, teacher: Teacher, features: datasets.Dataset, collator: Any, config: DistillConfig,
                   accelerator: Accelerator, run_dir: Path) -> datasets.Dataset:
    """Return the teacher's outputs for every training feature, computed once and kept in the run directory.

    The main process computes them and the others read its file. A resumed run reads the saved
    outputs when they were made by the same teacher from the same features.
    """
    folder = run_dir / CACHE_DIR
    # Iterating a data loader draws a seed from the global RNG; restoring it keeps the dropout masks of
    # training the same with and without the cache. The logits themselves can differ in the last bits
    # under bf16 or fp16, as the cache computes them in batches of another size and padding.
    rng_state = torch.get_rng_state()
    try:
        return _load_or_compute_cache(task, teacher, features, collator, config, accelerator, folder)
    finally:
        torch.set_rng_state(rng_state)


def _load_or_compute_cache(task: Task, teacher: Teacher, features: datasets.Dataset, collator: Any,
                           config: DistillConfig, accelerator: Accelerator, folder: Path) -> datasets.Dataset:
    import datasets as hf_datasets

    from taskforge.evaluation import predict_outputs

    key = {"teacher": teacher.path, "teacher_weights": _weights_digest(teacher.path),
           "features": _fingerprint(features), "precision": accelerator.mixed_precision,
           "outputs": list(task.output_names)}
    with accelerator.main_process_first():
        cache = _read_cache(folder, key, len(features))
        if cache is None and accelerator.is_main_process:
            dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(accelerator.mixed_precision)
            logger.info("computing the teacher's outputs for %d training features (--cache-teacher)", len(features))
            outputs = predict_outputs(teacher.model, features, collator, config.eval_batch_size, task.output_names,
                                      autocast_dtype=dtype, progress=True)
            lengths = [len(ids) for ids in features["input_ids"]]
            columns = {}
            for name, array in outputs.items():
                if task.distillation_level == "token":
                    columns[TEACHER_OUTPUT_PREFIX + name] = [array[i, : lengths[i]] for i in range(len(lengths))]
                else:
                    columns[TEACHER_OUTPUT_PREFIX + name] = list(array)
            temporary = folder.with_name(folder.name + ".tmp")
            _remove(temporary)
            hf_datasets.Dataset.from_dict(columns).save_to_disk(str(temporary))
            (temporary / "taskforge_teacher.json").write_text(json.dumps(key), encoding="utf-8")
            _remove(folder)
            temporary.rename(folder)
            cache = _read_cache(folder, key, len(features))
        elif cache is not None:
            logger.info("reusing the teacher outputs in %s", folder)
        if cache is None:
            raise RuntimeError(f"the teacher outputs in {folder} could not be read after the main process wrote them")
    return cache


def _read_cache(folder: Path, key: dict[str, Any], rows: int) -> datasets.Dataset | None:
    """Return the stored teacher outputs when they match ``key`` and have ``rows`` rows, else None."""
    import datasets as hf_datasets

    if not folder.is_dir() or not _cache_matches(folder, key):
        return None
    try:
        cache = hf_datasets.load_from_disk(str(folder))
    except Exception as error:  # a damaged folder is recomputed, whatever the reader raises
        logger.warning("the stored teacher outputs in %s are unreadable (%s); computing them again", folder,
                       " ".join(str(error).split())[:200])
        return None
    if len(cache) != rows:
        logger.warning("the stored teacher outputs in %s have %d rows for %d features; computing them again",
                       folder, len(cache), rows)
        return None
    return cache


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _cache_matches(folder: Path, key: dict[str, Any]) -> bool:
    try:
        saved = json.loads((folder / "taskforge_teacher.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return saved == key


def _weights_digest(path: str) -> str:
    """Return a SHA-256 over the teacher's weight files, so that a teacher replaced in place is noticed."""
    digest = hashlib.sha256()
    folder = Path(path)
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) if folder.is_dir() else []
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _fingerprint(features: datasets.Dataset) -> str:
    digest = hashlib.sha256()
    for ids in features["input_ids"]:
        digest.update(np.asarray(ids, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def remove_cache(run_dir: Path) -> None:
    """Delete the cached teacher outputs, which a finished run no longer needs."""
    shutil.rmtree(run_dir / CACHE_DIR, ignore_errors=True)


def student_layers(config: DistillConfig, teacher: Teacher) -> list[int] | None:
    """Return the teacher layers to cut the student from, or None when the student is a model of its own."""
    if config.student_layers is None:
        return None
    return parse_student_layers(config.student_layers, teacher.model.config.num_hidden_layers)


def _max_positions(model_config: Any) -> int:
    positions = getattr(model_config, "max_position_embeddings", None)
    return positions if isinstance(positions, int) else 10**9


def _tokenizer_limit(tokenizer: Any) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10**9 else 10**9
