"""Parallel map over work items with a progress bar (joblib processes, tqdm)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")


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

        for result in Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(item) for item in items):
            results.append(result)
            bar.update()
    bar.close()
    return results
