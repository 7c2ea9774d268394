"""Parallel map over work items with a progress bar (joblib processes, tqdm)."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")


_DIES_WITH_PARENT = False


def _die_with_parent(parent_pid: int) -> None:
    """In a worker process: be killed when the process that started the map dies (Linux prctl), so a
    killed command does not leave workers running on, writing cache entries nobody asked for."""
    global _DIES_WITH_PARENT
    if _DIES_WITH_PARENT or os.getpid() == parent_pid or not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _DIES_WITH_PARENT = True
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def _in_worker(fn: Callable[[T], R], parent_pid: int, item: T) -> R:
    _die_with_parent(parent_pid)
    return fn(item)


def parallel_map(fn: Callable[[T], R], items: Sequence[T], n_jobs: int = 1, desc: str = "",
                 progress: bool = True) -> list[R]:
    """fn over items, in order; n_jobs=1 runs in this process (easier to debug and profile)."""
    bar = tqdm(total=len(items), desc=desc, disable=not progress or not items, unit="utt")
    results: list[R] = []
    if n_jobs == 1 or len(items) <= 1:
        for item in items:
            results.append(fn(item))
            bar.update()
    else:
        from joblib import Parallel, delayed

        work = functools.partial(_in_worker, fn, os.getpid())
        for result in Parallel(n_jobs=n_jobs, return_as="generator")(delayed(work)(item) for item in items):
            results.append(result)
            bar.update()
    bar.close()
    return results
