"""Parallel map over work items with a progress bar (joblib processes, tqdm); without a terminal (a batch
job, output redirected) log lines at a bounded rate instead."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)
EVERY_S = 10.0  # at most one progress line per this many seconds without a terminal
_clock = time.monotonic


class ProgressLines:
    """tqdm's update/close as log lines (`extracting mfcc: 120/528 utt, 45 s, about 2.5 min more`), one per
    `every_s` at most; work shorter than that logs nothing."""

    def __init__(self, total: int, desc: str, every_s: float = EVERY_S) -> None:
        self.total, self.desc, self.every_s = total, desc or "working", every_s
        self.done, self.started = 0, _clock()
        self.logged = self.started

    def update(self, n: int = 1) -> None:
        self.done += n
        now = _clock()
        if now - self.logged >= self.every_s and self.done < self.total:
            self.logged = now
            elapsed = now - self.started
            log.info("%s: %d/%d utt, %.0f s, about %.1f min more", self.desc, self.done, self.total, elapsed,
                     elapsed / self.done * (self.total - self.done) / 60)

    def close(self) -> None:
        if self.logged > self.started:  # it said how far it was: say that it finished
            log.info("%s: %d/%d utt in %.0f s", self.desc, self.done, self.total, _clock() - self.started)


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
    """fn over items, in order; n_jobs=1 runs in this process (easier to debug and profile). `progress`: a bar
    on a terminal; without one (or without `progress`), log lines at a bounded rate."""
    if progress and items and sys.stderr.isatty():
        bar = tqdm(total=len(items), desc=desc, unit="utt")
    else:
        bar = ProgressLines(len(items), desc)
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
