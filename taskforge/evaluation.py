"""Forward passes over features without gradients, and evaluation through the task's metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    import datasets
    from accelerate import Accelerator

    from taskforge.task import LabelSet, Task

logger = logging.getLogger(__name__)

# Value that pads collected outputs of different lengths; positions holding it were never computed.
OUTPUT_PAD_VALUE = -10000.0


def model_input_columns(model: torch.nn.Module, features: datasets.Dataset) -> list[str]:
    """Return the feature columns that the model's ``forward`` accepts.

    Wrappers such as DistributedDataParallel take ``*args, **kwargs``, so the signature is read from
    the wrapped module.
    """
    import inspect

    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    accepted = set(inspect.signature(model.forward).parameters)
    return [column for column in features.column_names if column in accepted]


def predict_outputs(
    model: torch.nn.Module,
    features: datasets.Dataset,
    collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    output_names: Sequence[str],
    accelerator: Accelerator | None = None,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Run the model over every feature and return the named outputs, one row per feature.

    Features are batched longest first to cut padding, and the rows come back in feature order.
    Under several processes, each feature is computed once and ``gather_for_metrics`` drops the
    duplicates that even batches add. Outputs of different lengths are padded with
    ``OUTPUT_PAD_VALUE``.
    """
    import pyarrow.compute as pc
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    columns = model_input_columns(model, features)
    # Arrow counts the lengths without turning every row into a Python list first.
    lengths = pc.list_value_length(features.with_format("arrow")["input_ids"]).to_numpy(zero_copy_only=False)
    order = np.argsort(-lengths, kind="stable").tolist()
    ordered = features.select_columns(columns).select(order)
    loader = DataLoader(ordered, batch_size=batch_size, shuffle=False, collate_fn=collator)
    if accelerator is not None:
        loader = accelerator.prepare_data_loader(loader)
        device = accelerator.device
    else:
        device = next(model.parameters()).device

    is_main = accelerator is None or accelerator.is_main_process
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in output_names}
    model.eval()
    show_progress = progress and is_main and logger.isEnabledFor(logging.INFO)
    for batch in tqdm(loader, desc="evaluating", disable=not show_progress, leave=False):
        batch = {key: value.to(device) for key, value in batch.items()}
        autocast = (
            torch.autocast(device_type=device.type, dtype=autocast_dtype)
            if autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            outputs = model(**batch)
        for name in output_names:
            tensor = outputs[name]
            if accelerator is not None:
                tensor = accelerator.pad_across_processes(tensor, dim=1, pad_index=OUTPUT_PAD_VALUE)
                tensor = accelerator.gather_for_metrics(tensor)
            chunks[name].append(tensor.float().cpu().numpy())

    result = {}
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    for name, arrays in chunks.items():
        result[name] = _concatenate_padded(arrays)[inverse]
    return result


def evaluate_examples(
    task: Task,
    model: torch.nn.Module,
    examples: datasets.Dataset,
    features: datasets.Dataset,
    labels: LabelSet | None,
    collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    accelerator: Accelerator | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[dict[str, float], list[Any]]:
    """Return the task's metrics on ``examples`` and the predictions they were computed from."""
    outputs = predict_outputs(
        model, features, collator, batch_size, task.output_names, accelerator, autocast_dtype, progress=True
    )
    predictions = task.postprocess(examples, features, outputs)
    metrics = task.compute_metrics(predictions, examples, labels)
    return metrics, predictions


def _concatenate_padded(arrays: list[np.ndarray]) -> np.ndarray:
    if not arrays:
        return np.empty((0,), dtype=np.float32)
    if all(array.shape[1:] == arrays[0].shape[1:] for array in arrays):
        return np.concatenate(arrays)
    width = max(array.shape[1] for array in arrays)
    padded = []
    for array in arrays:
        pad = [(0, 0)] * array.ndim
        pad[1] = (0, width - array.shape[1])
        padded.append(np.pad(array, pad, constant_values=OUTPUT_PAD_VALUE))
    return np.concatenate(padded)
