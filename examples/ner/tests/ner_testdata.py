"""Fixtures of the ner plugin tests; importing this module makes ``taskforge_ner`` importable.

Test modules import this module before ``taskforge_ner``, and the fixtures they use from it. The
plugin has no ``conftest.py``, because pytest imports every ``conftest.py`` as the module
``conftest``, which the core tests import helpers from.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PLUGIN_ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("taskforge_ner") is None:
    sys.path.insert(0, str(PLUGIN_ROOT))


@pytest.fixture(scope="session")
def tokenizer():
    """The MiniLM tokenizer packaged in taskforge[minilm-l6]: uncased WordPiece."""
    from transformers import AutoTokenizer

    from taskforge.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))


@pytest.fixture
def run_cli():
    """Return a function that runs ``taskforge ARGS`` in this process and returns the click result."""
    import logging

    from typer.testing import CliRunner

    from taskforge.cli import app

    def invoke(*args: object):
        root = logging.getLogger("taskforge")
        saved = (list(root.handlers), root.level, root.propagate)
        try:
            return CliRunner().invoke(app, [str(arg) for arg in args])
        finally:
            root.handlers[:], root.level, root.propagate = saved

    return invoke
