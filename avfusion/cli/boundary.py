"""One error boundary for every command: a user's mistake is one line on stderr, a bug a traceback.

    @hydra.main(...)
    @user_errors("train")
    def main(cfg): ...

A `UserError` (or one that Hydra wrapped while instantiating a config) prints
`avfusion-<command>: error: <message>` and exits with status 2 (`exit_status` may pick another, e.g. 1
for "the corpus has problems"). Anything else propagates with its traceback. With HYDRA_FULL_ERROR=1
or AVFUSION_DEBUG=1 user errors keep their traceback too.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from avfusion.errors import ConfigError, UserError


def user_error_in(err: BaseException) -> UserError | None:
    """The UserError `err` is or was raised from (Hydra wraps errors of instantiated classes); a config
    value left `???` counts as one."""
    from omegaconf.errors import MissingMandatoryValue

    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        if isinstance(err, MissingMandatoryValue):
            return ConfigError(f"{err.full_key} has no value: give it on the command line ({err.full_key}=...)")
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def debugging() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("AVFUSION_DEBUG") == "1"


def refuse(command: str, err: UserError, status: int = 2) -> None:
    """A user's mistake as one line on stderr, and the exit status."""
    print(f"avfusion-{command}: error: {err}", file=sys.stderr)
    sys.exit(status)


def user_errors(command: str, exit_status: Callable[[UserError], int] = lambda err: 2):
    def wrap(function):
        @functools.wraps(function)
        def run(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except Exception as err:
                user = user_error_in(err)
                if user is None or debugging():
                    raise
                refuse(command, user, exit_status(user))
        return run
    return wrap


class WritableOutputs(Callback):
    """`hydra.callbacks.writable_outputs`: the run (or sweep) folder is checked writable before Hydra makes
    it, so an unwritable one is a line naming it, not Hydra's traceback."""

    def __init__(self, command: str) -> None:
        self.command = command

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")

    def _check(self, folder: str, key: str) -> None:
        from avfusion.utils.atomic import ensure_writable

        try:
            ensure_writable(folder, key)
        except UserError as err:
            if debugging():
                raise
            refuse(self.command, err)
