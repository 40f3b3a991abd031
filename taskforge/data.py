"""Reading data files, and row checks that task plugins share.

Plugins call :func:`read_table` from ``Task.load_examples`` and then rename and validate columns
with the helpers below, so that every task reports bad data the same way: the value, the file, the
row, and the flag that fixes it. Rows are numbered from 1, not counting a header row.
"""

from __future__ import annotations

import csv
import io
import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from taskforge.errors import DataError
from taskforge.task import DataFile

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)


def read_table(file: DataFile) -> datasets.Dataset:
    """Read a CSV, TSV, JSON, JSON Lines or Parquet file, or a hub dataset split, into a Dataset.

    Empty CSV/TSV cells become None; strings such as ``NA`` or ``null`` stay text. TSV files are
    read without quote handling, as GLUE-style TSV files contain bare quote characters.
    """
    import datasets

    datasets.disable_progress_bars()
    if file.format == "hub":
        try:
            return datasets.load_dataset(file.path, file.dataset_config, split=file.split)
        except Exception as error:
            raise DataError(
                f"hub dataset {file.path!r} (split {file.split!r}) could not be loaded: {error}; "
                f"check the name and the network, or pass local files with --train-file"
            ) from error

    kwargs: dict[str, Any] = {}
    builder = file.format
    if file.format in ("csv", "tsv"):
        builder = "csv"
        kwargs = {"keep_default_na": False, "na_values": [""]}
        if file.format == "tsv":
            kwargs.update(sep="\t", quoting=csv.QUOTE_NONE)
        if not file.header:
            kwargs.update(header=None, column_names=[str(i) for i in range(_count_columns(file))])
    elif file.format == "jsonl":
        builder = "json"
    if _is_blank(file.path):
        raise DataError(f"{file.display_name} is empty; pass a file with data")
    try:
        if file.split == "predict" and builder == "csv":
            dataset = _read_csv_in_memory(file, kwargs)
        else:
            dataset = datasets.load_dataset(builder, data_files=file.path, split="train", **kwargs)
    except DataError:
        raise
    except Exception as error:
        # datasets wraps the reader's error; the innermost one names the actual problem.
        innermost: BaseException = error
        while innermost.__cause__ is not None or innermost.__context__ is not None:
            innermost = innermost.__cause__ or innermost.__context__  # type: ignore[assignment]
        reason = str(innermost).splitlines()[0] if str(innermost) else type(innermost).__name__
        if isinstance(innermost, UnicodeDecodeError):
            reason = f"not valid UTF-8 ({innermost.reason} at byte {innermost.start}); save the file as UTF-8"
        if "corresponds to no data" in str(error):
            # datasets raises this for a file with a header row and no data rows.
            raise DataError(f"{file.display_name} contains no rows; pass a file with data") from error
        raise DataError(f"{file.display_name} could not be read as {file.format}: {reason}") from error
    if len(dataset) == 0:
        raise DataError(f"{file.display_name} contains no rows; pass a file with data")
    return dataset


def require_column(dataset: datasets.Dataset, column: str, file: DataFile, flag: str) -> None:
    """Raise :class:`DataError` naming the columns found when ``column`` is missing."""
    if column in dataset.column_names:
        return
    found = ", ".join(dataset.column_names)
    hint = ""
    if file.header and file.format in ("csv", "tsv"):
        hint = " If the file has no header row, pass --no-header and name columns by position (0, 1, ...)."
    raise DataError(
        f"column {column!r} not found in {file.display_name}; columns are: {found}. "
        f"Pass {flag} with one of them.{hint}"
    )


def invalid_text_rows(dataset: datasets.Dataset, column: str) -> list[int]:
    """Return the indices of rows whose ``column`` is missing, not a string, or only whitespace."""
    return [i for i, value in enumerate(dataset[column]) if not isinstance(value, str) or not value.strip()]


def drop_or_raise(
    dataset: datasets.Dataset, bad_rows: Sequence[int], problem: str, file: DataFile, drop_invalid: bool
) -> datasets.Dataset:
    """Raise for the first bad row, or drop all of them and log how many, when ``drop_invalid``.

    ``problem`` describes what is wrong with the rows, for example ``"empty text in column 'text'"``.
    """
    if not bad_rows:
        return dataset
    if not drop_invalid:
        more = f" ({len(bad_rows)} rows in all)" if len(bad_rows) > 1 else ""
        # Prediction keeps one output line per input row, so it offers no way to skip rows.
        fix = "fix the data" if file.split == "predict" else "fix the data or pass --drop-invalid to skip such rows"
        raise DataError(f"{problem} in {file.display_name} row {bad_rows[0] + 1}{more}; {fix}")
    bad = set(bad_rows)
    kept = dataset.select(i for i in range(len(dataset)) if i not in bad)
    logger.warning("dropped %d of %d rows of %s: %s (--drop-invalid)", len(bad), len(dataset), file.display_name, problem)
    if len(kept) == 0:
        raise DataError(f"no valid rows left in {file.display_name} after dropping {len(bad)} with {problem}")
    return kept


def stratified_split(
    examples: datasets.Dataset, ratio: float, seed: int, stratify_column: str | None
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Split off ``ratio`` of the examples, in the same proportion from each value of ``stratify_column``.

    Each group gives ``round(ratio * size)`` examples, at least one when the group has two or more.
    The result depends only on the data and ``seed``.
    """
    rng = random.Random(seed)
    groups: dict[Any, list[int]] = defaultdict(list)
    keys = examples[stratify_column] if stratify_column else [None] * len(examples)
    for index, key in enumerate(keys):
        groups[key].append(index)

    held_out: list[int] = []
    for key in sorted(groups, key=str):
        indices = groups[key]
        rng.shuffle(indices)
        count = round(ratio * len(indices))
        if count == 0 and len(indices) >= 2:
            count = 1
        held_out.extend(indices[:count])
    held_out_set = set(held_out)
    kept = [i for i in range(len(examples)) if i not in held_out_set]
    if not kept or not held_out:
        raise DataError(
            f"cannot hold out {ratio:.0%} of {len(examples)} training examples for validation; "
            f"pass --validation-file or change --validation-split"
        )
    return examples.select(kept), examples.select(sorted(held_out))


def _read_csv_in_memory(file: DataFile, options: dict[str, Any]) -> datasets.Dataset:
    """Read a CSV or TSV file with pandas into an in-memory Dataset.

    Used for files to predict, which are read once: ``load_dataset`` would first copy them into an
    Arrow file in the datasets cache, which took about 0.2 s for 872 rows. The options are those
    of ``load_dataset``'s CSV builder, which passes them on to pandas as well.
    """
    import datasets
    import pandas

    with open(file.path, "rb") as handle:
        raw = handle.read()
    # pandas' C parser lets invalid UTF-8 through, to fail later in Arrow with no byte position.
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{file.display_name} is not valid UTF-8 ({error.reason} at byte {error.start}); "
                        f"save the file as UTF-8") from error
    options = dict(options)
    if "column_names" in options:
        options["names"] = options.pop("column_names")
    try:
        frame = pandas.read_csv(io.BytesIO(raw), encoding="utf-8", **options)
    except pandas.errors.EmptyDataError as error:
        raise DataError(f"{file.display_name} contains no rows; pass a file with data") from error
    return datasets.Dataset.from_pandas(frame, preserve_index=False)


def _is_blank(path: str) -> bool:
    """Return True when the file contains only whitespace, which datasets fails to read without saying why."""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 16):
            if chunk.strip():
                return False
    return True


def _count_columns(file: DataFile) -> int:
    delimiter = "\t" if file.format == "tsv" else ","
    quoting = csv.QUOTE_NONE if file.format == "tsv" else csv.QUOTE_MINIMAL
    try:
        with open(file.path, newline="", encoding="utf-8") as handle:
            first_row = next(csv.reader(handle, delimiter=delimiter, quoting=quoting), None)
    except UnicodeDecodeError as error:
        raise DataError(f"{file.display_name} is not valid UTF-8 ({error.reason} at byte {error.start}); "
                        f"save the file as UTF-8") from error
    if not first_row:
        raise DataError(f"{file.display_name} is empty; pass a file with data")
    return len(first_row)


def map_fingerprint(examples: datasets.Dataset, tokenizer: Any, function: Any, *settings: Any) -> str | None:
    """Return a fingerprint for ``examples.map(function)``, or None to let datasets compute its own.

    datasets fingerprints a transform by pickling the function with everything it refers to, which
    for a fast tokenizer takes about a third of a second per call. This digest covers the same
    inputs at a fraction of the cost: the examples' fingerprint, the function's code, the
    tokenizer's serialised pipeline and vocabulary, and ``settings``, which must be
    JSON-serialisable. Tokenizers without a serialised pipeline (slow tokenizers) return None.
    """
    import hashlib
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    code = function.__code__
    digest = hashlib.sha256()
    digest.update(examples._fingerprint.encode())
    digest.update(code.co_code)
    digest.update(repr(code.co_consts).encode())
    digest.update(type(tokenizer).__name__.encode())
    digest.update(backend.to_str().encode())
    digest.update(json.dumps([tokenizer.padding_side, tokenizer.truncation_side, *settings], default=str).encode())
    return digest.hexdigest()[:16]
