"""The ``taskforge`` command line: a thin shell over the Python API.

Domain errors print one ``Error: ...`` line on stderr and exit with code 1; usage errors exit with
code 2. ``--debug`` shows the traceback. Importing this module imports neither torch nor
transformers, so ``taskforge --help`` and ``taskforge tasks`` start fast.
"""


import contextlib
import dataclasses
import functools
import inspect
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Callable, Optional, Union, get_args, get_origin, get_type_hints

import typer

from taskforge.config import DistillConfig, FinetuneConfig, Precision, field_help, flag_name
from taskforge.errors import ConfigError, TaskforgeError

logger = logging.getLogger("taskforge.cli")

app = typer.Typer(
    name="taskforge",
    help="Fine-tune small distilled transformers on NLP tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}


@app.callback()
def _main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks, taskforge debug logs, and the warnings and progress bars of transformers and datasets.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings and errors only.")] = False,
) -> None:
    _state["debug"] = debug
    level = logging.INFO
    if quiet:
        level = logging.WARNING
    if debug:
        level = logging.DEBUG
    _configure_logging(level)


def _handle_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn taskforge errors into one ``Error:`` line and exit code 1."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except TaskforgeError as error:
            if _state["debug"]:
                raise
            typer.echo(f"Error: {error}", err=True)
            raise typer.Exit(getattr(error, "exit_code", 1)) from None
        except KeyboardInterrupt:
            typer.echo("Error: interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


# -- tasks ---------------------------------------------------------------------------------------


@app.command("tasks")
@_handle_errors
def tasks_command(
    name: Annotated[Optional[str], typer.Argument(help="Show this task's defaults and options.", show_default=False)] = None,
) -> None:
    """List the installed tasks, with their packages and versions, or describe one task."""
    from taskforge.registry import get_task, list_tasks

    if name is not None:
        _describe_task(get_task(name))
        return
    infos = list_tasks()
    if not infos:
        typer.echo("No tasks installed. Install a task plugin, for example: pip install -e plugins/classification")
        return
    width = max(len(info.name) for info in infos)
    for info in infos:
        package = f"{info.distribution} {info.version}" if info.distribution else info.entry_point
        if info.task is not None:
            typer.echo(f"{info.name:<{width}}  {package:<32}  {info.task.description}")
        else:
            typer.echo(f"{info.name:<{width}}  {package:<32}  failed to load: {info.error}")


def _describe_task(task: Any) -> None:
    typer.echo(f"{task.name}: {task.description}")
    typer.echo(f"  model class: {task.model_class}")
    direction = "higher" if task.greater_is_better else "lower"
    typer.echo(f"  best model by: {task.metric_for_best_model} ({direction} is better)")
    defaults = ", ".join(f"{field.name}={getattr(task.defaults, field.name)}" for field in dataclasses.fields(task.defaults))
    typer.echo(f"  defaults: {defaults}")
    if task.options_class is None:
        typer.echo("  options: none")
        return
    typer.echo("  options (flags of finetune, evaluate and predict):")
    for field in dataclasses.fields(task.options_class):
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata.get("help", "")
        typer.echo(f"    {flag:<28} {help_text} (default: {getattr(task.options, field.name)})")


def parse_extra_flags(arguments: list[str]) -> dict[str, Any]:
    """Parse ``--name value``, ``--name=value`` and bare ``--flag`` arguments into a dict.

    A bare flag, one followed by another flag or by nothing, is True; ``--no-flag`` is False.
    """
    values: dict[str, Any] = {}
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("--") or argument == "--":
            raise typer.BadParameter(f"unexpected argument {argument!r}")
        name, has_value, value = argument[2:].partition("=")
        if has_value:
            key, parsed = name, value
        elif index + 1 < len(arguments) and not arguments[index + 1].startswith("--"):
            key, parsed = name, arguments[index + 1]
            index += 1
        elif name.startswith("no-"):
            key, parsed = name[3:], False
        else:
            key, parsed = name, True
        key = key.replace("-", "_")
        if key in values:
            raise typer.BadParameter(f"--{key.replace('_', '-')} is given twice; pass it once")
        values[key] = parsed
        index += 1
    return values


def _reject_misspelled_flags(extra: dict[str, Any], cls: type[FinetuneConfig] = FinetuneConfig) -> None:
    """Raise for an extra flag that is one typo away from a flag of the command itself."""
    names = [flag_name(field).replace("-", "_") for field in dataclasses.fields(cls)] + ["config"]
    if cls is FinetuneConfig:
        distill_only = {flag_name(field).replace("-", "_") for field in dataclasses.fields(DistillConfig)} - set(names)
        for key in extra:
            if key in distill_only:
                raise ConfigError(f"--{key.replace('_', '-')} is an option of 'taskforge distill', not of 'finetune'")
    _reject_misspelled_options(extra, names)


def _reject_misspelled_options(extra: dict[str, Any], names: list[str]) -> None:
    """Raise for an extra flag that is one typo away from one of ``names``, the command's own options."""
    import difflib

    for key in extra:
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.85)
        if close:
            raise ConfigError(f"unknown option --{key.replace('_', '-')}; did you mean --{close[0].replace('_', '-')}?")


# -- finetune ------------------------------------------------------------------------------------


def _finetune(ctx: typer.Context, config_file: Optional[Path], cls: type[FinetuneConfig], **flags: Any) -> None:
    from taskforge.api import _run_finetune
    from taskforge.config import read_config_file

    file_values = read_config_file(config_file, cls) if config_file is not None else {}
    explicit = {name: value for name, value in flags.items() if value is not None}
    # Flags the command does not define are the task's own options, checked by Task.configure.
    extra = parse_extra_flags(list(ctx.args))
    _reject_misspelled_flags(extra, cls)
    explicit["task_options"] = extra
    result = _run_finetune(explicit, file_values, source="flag", cls=cls, config_file=config_file)
    typer.echo(json.dumps({"output_dir": str(result.output_dir), **_scalar_metrics(result.metrics)}, indent=2))


def _build_finetune_command(cls: type[FinetuneConfig], docstring: str) -> Callable[..., None]:
    """Build a command whose options are the fields of ``cls``: ``finetune`` or ``distill``."""
    hints = get_type_hints(cls)
    helps = field_help(cls)
    parameters = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        inspect.Parameter(
            "config_file", inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[Optional[Path], typer.Option(
                "--config", help="YAML or JSON file of options; flags override it.", rich_help_panel="Task")],
        )
    ]
    annotations: dict[str, Any] = {"ctx": typer.Context, "config_file": parameters[1].annotation}
    for field in dataclasses.fields(cls):
        if field.name == "task_options":
            continue
        help_text, group = helps[field.name]
        flag = "--" + flag_name(field)
        hint = hints[field.name]
        optional_args = get_args(hint) if get_origin(hint) in (Union, UnionType) else ()
        base = next((arg for arg in optional_args if arg is not type(None)), hint)
        option_kwargs: dict[str, Any] = {"help": help_text, "rich_help_panel": group, "show_default": False}
        if hint is bool:
            annotation_type = bool
            names = [f"{flag}/--no-{flag_name(field)}"]
        elif getattr(base, "__origin__", None) is list:
            annotation_type = str
            names = [flag]
        else:
            annotation_type: Any = base
            names = [flag]
        if field.default is not None and field.default is not dataclasses.MISSING:
            option_kwargs["help"] = f"{help_text} (default: {field.default})"
        annotation = Annotated[Optional[annotation_type], typer.Option(*names, **option_kwargs)]
        parameters.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=annotation))
        annotations[field.name] = annotation

    def finetune_command(ctx: typer.Context, **kwargs: Any) -> None:
        _finetune(ctx, cls=cls, **kwargs)

    finetune_command.__doc__ = docstring
    finetune_command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    finetune_command.__annotations__ = annotations
    return finetune_command


_EXTRA_FLAGS = {"allow_extra_args": True, "ignore_unknown_options": True}
app.command("finetune", context_settings=_EXTRA_FLAGS)(_handle_errors(_build_finetune_command(FinetuneConfig, (
    "Fine-tune a model on a task, evaluate it and save it.\n\n"
    "Options resolve in this order: flag, --config file, the task's defaults, the defaults shown. "
    "A task's own options (see 'taskforge tasks NAME') are passed as flags too."
))))
app.command("distill", context_settings=_EXTRA_FLAGS)(_handle_errors(_build_finetune_command(DistillConfig, (
    "Train a smaller student on a task from a teacher's outputs and the labels, and save it.\n\n"
    "The teacher is usually a model written by 'taskforge finetune'. The student is a model of its own "
    "(--student), or cut from the teacher's embeddings, head and some of its layers (--student-layers 3, "
    "or --student-layers 0,2,4). The loss is alpha * T^2 * KL(teacher || student) + (1 - alpha) * task "
    "loss, plus --hidden-weight times a hidden-state loss. Other options are those of 'finetune'."
))))


# -- evaluate ------------------------------------------------------------------------------------


@app.command("evaluate", context_settings=_EXTRA_FLAGS)
@_handle_errors
def evaluate_command(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Option("--model-dir", help="Directory written by taskforge finetune.")],
    data_file: Annotated[Path, typer.Option("--data-file", "--test-file", "--validation-file",
                                            help="Labelled data: CSV, TSV, JSON, JSONL or Parquet.")],
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Examples per batch.")] = 64,
    text_column: Annotated[Optional[str], typer.Option(help="Text column (default: as in training).")] = None,
    text_pair_column: Annotated[Optional[str], typer.Option(help="Second text column (default: as in training).")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="Label column (default: as in training).")] = None,
    header: Annotated[Optional[bool], typer.Option("--header/--no-header",
                                                   help="Whether CSV/TSV files start with a header row.")] = None,
    max_samples: Annotated[Optional[int], typer.Option(min=1, help="Evaluate only the first N examples.")] = None,
    drop_invalid: Annotated[bool, typer.Option("--drop-invalid", help="Skip invalid rows and count them, instead of failing.")] = False,
    precision: Annotated[Precision, typer.Option(help="Numeric precision.")] = "auto",
    output_file: Annotated[Optional[Path], typer.Option(help="Also write the metrics to this JSON file.")] = None,
    predictions_dir: Annotated[Optional[Path], typer.Option(
        help="Also write the task's prediction files here, such as predictions.json for qa.")] = None,
) -> None:
    """Evaluate a fine-tuned model on a labelled data file and print its metrics as JSON.

    Other flags set the task's own options, such as --n-best-size 5 for qa.
    """
    from taskforge.api import load

    _reject_same_file(output_file, "--output-file", data_file, "--data-file")
    if predictions_dir is not None and predictions_dir.exists() and not predictions_dir.is_dir():
        raise ConfigError(f"--predictions-dir {str(predictions_dir)!r} is a file; pass a directory path")
    if predictions_dir is not None:
        # The folder is created before the evaluation, so that an unusable path fails before the work.
        try:
            predictions_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"--predictions-dir {str(predictions_dir)!r} could not be created ({error.strerror}); "
                              f"pass a writable directory path") from error
        if not os.access(predictions_dir, os.W_OK):
            raise ConfigError(f"--predictions-dir {str(predictions_dir)!r} is not writable; pass a writable directory path")
    task_options = parse_extra_flags(list(ctx.args))
    predictor = load(model_dir, precision=precision, task_options=task_options)
    metrics = predictor.evaluate(data_file, batch_size=batch_size, header=header, max_samples=max_samples,
                                 drop_invalid=drop_invalid, predictions_dir=predictions_dir,
                                 text_column=text_column, text_pair_column=text_pair_column, label_column=label_column)
    text = json.dumps(metrics, indent=2, default=_json_default)
    if output_file is not None:
        _write_atomic(output_file, text + "\n")
    typer.echo(text)


# -- predict -------------------------------------------------------------------------------------


@app.command("predict", context_settings=_EXTRA_FLAGS)
@_handle_errors
def predict_command(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Option("--model-dir", help="Directory written by taskforge finetune.")],
    texts: Annotated[Optional[list[str]], typer.Argument(help="Texts to classify.", show_default=False)] = None,
    input_file: Annotated[Optional[Path], typer.Option(help="CSV, TSV, JSON, JSONL or Parquet file of inputs.")] = None,
    output_file: Annotated[Optional[Path], typer.Option(help="JSONL file for the predictions (default: stdout).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Inputs per batch.")] = 32,
    text_column: Annotated[Optional[str], typer.Option(help="Text column of --input-file (default: as in training).")] = None,
    text_pair_column: Annotated[Optional[str], typer.Option(help="Second text column of --input-file.")] = None,
    header: Annotated[Optional[bool], typer.Option("--header/--no-header",
                                                   help="Whether CSV/TSV files start with a header row.")] = None,
    precision: Annotated[Precision, typer.Option(help="Numeric precision.")] = "auto",
) -> None:
    """Predict with a fine-tuned model: texts as arguments, or --input-file to --output-file as JSONL.

    Tasks whose inputs have several fields take one input as flags, such as --question Q --context C.
    Other flags set the task's own options, such as --n-best-size 5.
    """
    from taskforge.api import load

    # Typer passes unknown flags on as texts, so flags among the texts are the input's fields.
    arguments = list(ctx.args)
    if texts and any(text.startswith("--") for text in texts):
        arguments, texts = arguments + list(texts), None
    _reject_same_file(output_file, "--output-file", input_file, "--input-file")
    extra = parse_extra_flags(arguments)
    _reject_misspelled_options(extra, [param.name for param in ctx.command.params
                                       if param.param_type_name == "option" and param.name])
    predictor = load(model_dir, precision=precision)
    option_names = {field.name for field in dataclasses.fields(predictor.task.options_class)} if predictor.task.options_class else set()
    task_options = {key: value for key, value in extra.items() if key in option_names}
    fields = {key: value for key, value in extra.items() if key not in option_names}
    if task_options:
        predictor.task = predictor.task.configure(task_options)
    given = sum(bool(source) for source in (texts, input_file, fields))
    if given == 0:
        raise typer.BadParameter("pass texts as arguments, --input-file, or the input's fields as flags", param_hint="TEXTS")
    if given > 1:
        raise typer.BadParameter("pass only one of: texts as arguments, --input-file, input fields as flags", param_hint="TEXTS")
    started = time.perf_counter()
    if fields:
        records = [{**fields, **prediction} for prediction in predictor.predict([fields], batch_size)]
    elif input_file is not None:
        records = predictor.predict_file(input_file, batch_size=batch_size, header=header,
                                         text_column=text_column, text_pair_column=text_pair_column)
    else:
        assert texts is not None
        records = [{"text": text, **prediction} for text, prediction in zip(texts, predictor.predict(texts, batch_size))]
    seconds = time.perf_counter() - started
    logger.info("predicted %d inputs in %.2f s (%.1f inputs/s)", len(records), seconds,
                len(records) / seconds if seconds > 0 else 0.0)
    lines = "".join(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n" for record in records)
    if output_file is not None:
        _write_atomic(output_file, lines)
        logger.info("wrote %d predictions to %s", len(records), output_file)
    else:
        sys.stdout.write(lines)


# -- new-task ------------------------------------------------------------------------------------


@app.command("new-task")
@_handle_errors
def new_task_command(
    name: Annotated[str, typer.Argument(help="Name of the new task, such as 'topic' or 'intent-detection'.",
                                        show_default=False)],
    directory: Annotated[Path, typer.Option("--dir", help="Folder to create the plugin folder taskforge-NAME in.")] = Path("."),
) -> None:
    """Create a task plugin package: a working task class, sample data and a conformance test."""
    from taskforge.scaffold import create_plugin

    root = create_plugin(name, directory)
    typer.echo(f"Created {root}. Next steps:\n"
               f"  pip install -e '{root}[test]'\n"
               f"  pytest {root / 'tests'}\n"
               f"  taskforge finetune --task {name}")


# -- helpers -------------------------------------------------------------------------------------


def _scalar_metrics(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Keep each split's numbers, and reduce per-class detail to each class's F1, for the summary."""
    summary: dict[str, Any] = {}
    for split, values in metrics.items():
        kept: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, float):
                kept[key] = round(value, 4)
            elif isinstance(value, int):
                kept[key] = value
            elif key == "per_class" and isinstance(value, dict):
                kept["f1_per_class"] = {name: round(scores["f1"], 4) for name, scores in value.items()}
        summary[split] = kept
    return summary


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _reject_same_file(output: Path | None, output_flag: str, source: Path | None, source_flag: str) -> None:
    """Raise when the file to write is the file the command reads."""
    if output is None or source is None or not source.exists():
        return
    if output.resolve() == source.resolve():
        raise ConfigError(f"{output_flag} {str(output)!r} is the same file as {source_flag}, so writing it would "
                          f"overwrite the input; choose another {output_flag}")


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (an --output-file) through a temporary file, so no half-written file remains."""
    path = Path(path)
    temporary = path.with_name(path.name + ".partial")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise ConfigError(f"--output-file {str(path)!r} could not be written ({error.strerror}); "
                          f"pass a path in a writable folder") from error


def _configure_logging(level: int) -> None:
    # Under a multi-process launcher, only rank 0 logs at the requested level.
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("taskforge")
    root.handlers[:] = [handler]
    root.setLevel(level if rank == 0 else logging.ERROR)
    root.propagate = False
    if level > logging.DEBUG:
        # transformers and datasets report expected events, such as a new classification head, as
        # warnings and draw progress bars while loading. taskforge logs these steps itself.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DATASETS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


def main() -> None:
    """Entry point of the ``taskforge`` console script."""
    # SIGTERM unwinds like Ctrl-C, so that an unfinished output folder is removed. The training loop
    # replaces this handler with its own, which saves a checkpoint first.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    # NOTE: the check reads sys.argv, so app() invoked in-process (typer's CliRunner) skips it; there
    # only parse_extra_flags catches a repeated task flag.
    repeated = _repeated_option(sys.argv[1:], _option_names(sys.argv[1:]))
    if repeated is not None:
        # Click keeps the last value of a repeated option, and no taskforge option takes several values.
        spelling, first = repeated
        if spelling == first:
            message = f"{spelling} is given twice; pass it once"
        else:
            message = f"{spelling} and {first} set the same option; pass one of them"
        typer.echo(f"Error: {message}", err=True)
        raise SystemExit(2)
    app()


def _option_names(arguments: list[str]) -> dict[str, str]:
    """Map each spelling of the options of the command in ``arguments`` (and the global ones) to its name."""
    group = typer.main.get_command(app)
    commands = [group]
    name = next((argument for argument in arguments if not argument.startswith("-")), None)
    subcommands = getattr(group, "commands", {})
    if name in subcommands:
        commands.append(subcommands[name])
    names = {}
    for command in commands:
        for param in command.params:
            for spelling in [*param.opts, *param.secondary_opts]:
                names[spelling] = f"{command.name}.{param.name}"
    return names


def _repeated_option(arguments: list[str], names: dict[str, str]) -> tuple[str, str] | None:
    """Return the first option in ``arguments`` that repeats an earlier one, with the earlier spelling.

    ``names`` maps the spellings of one option, such as --header and --no-header, to one name. A
    task's own flags count as repeated when spelled the same. Scanning stops at a bare ``--``.
    """
    seen: dict[str, str] = {}
    for argument in arguments:
        if argument == "--":
            break
        spelling = argument.partition("=")[0]
        # A value such as -1 is not an option, and short spellings such as -q are known by name.
        if not spelling.startswith("--") and spelling not in names:
            continue
        name = names.get(spelling, spelling)
        if name in seen:
            return spelling, seen[name]
        seen[name] = spelling
    return None


def _raise_keyboard_interrupt(number: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
