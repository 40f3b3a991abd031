"""Exceptions raised by taskforge.

Every error the library raises on purpose derives from :class:`TaskforgeError`, and each subclass
also derives from the builtin exception a caller would catch without knowing taskforge::

    TaskforgeError
    ├── ConfigError        (ValueError)         invalid options, flags or config file
    ├── DataError          (ValueError)         a data file that cannot be read or validated
    ├── TaskNotFoundError  (LookupError)        no installed task has the requested name
    ├── PluginError        (ImportError)        a task plugin that fails to load or breaks the contract
    ├── ModelNotFoundError (FileNotFoundError)  a model that is neither local nor downloadable
    └── OutputExistsError  (FileExistsError)    an output directory that already exists

The CLI prints these as one ``Error: ...`` line and exits with code 1.
"""

from __future__ import annotations


class TaskforgeError(Exception):
    """Root of all errors raised by taskforge."""


class ConfigError(TaskforgeError, ValueError):
    """Invalid configuration: a flag, a config-file key or an argument of the Python API."""


class DataError(TaskforgeError, ValueError):
    """A data file or data row that cannot be read or does not fit the task."""


class TaskNotFoundError(TaskforgeError, LookupError):
    """No installed task plugin has the requested name."""


class PluginError(TaskforgeError, ImportError):
    """A task plugin that fails to import or does not satisfy the task contract."""


class ModelNotFoundError(TaskforgeError, FileNotFoundError):
    """A model that is not a local directory and cannot be downloaded."""


class OutputExistsError(TaskforgeError, FileExistsError):
    """An output directory that already exists and would be overwritten."""
