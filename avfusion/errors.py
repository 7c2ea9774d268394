"""The line between a user's mistake and a bug.

A `UserError` is something wrong with what the user gave: a file (unreadable, malformed, missing), a
corpus, a config value, a run folder. Its message says what is wrong, with the file or the config key
and, where there are some, the valid choices. The command-line tools print it as one line, without a
traceback (`avfusion.cli.boundary`); any other exception is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """A mistake in the user's input; its message names the file or key at fault."""


class ConfigError(UserError):
    """A config value of the wrong type, out of range, or not among the valid choices."""
