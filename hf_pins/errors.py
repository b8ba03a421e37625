"""Errors that mean "the user asked for something we cannot do".

The command line prints them as one line `error: ...` and exits with code 2; every other exception is a bug and keeps
its traceback.
"""


class UserError(ValueError):
    """A mistake in the user's input (recipe, files, data, paths). The message names the culprit and what is accepted."""


class RecipeError(UserError):
    """A recipe key is unknown, has the wrong type or an impossible value."""


class DataError(UserError):
    """A data file is missing or one of its rows cannot be read."""


class ModelError(UserError):
    """A model path or id cannot be resolved or loaded."""


class OutputError(UserError):
    """A destination cannot be written (missing permission, read-only or full file system, a file in the way)."""


class RunStopped(Exception):
    """SIGINT or SIGTERM stopped a command cleanly: training after saving a checkpoint (`--resume` continues it), an
    export or a write before anything was moved into place. The exit code is the shell's for that signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum
