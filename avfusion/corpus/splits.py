"""Speaker-independent split assignment."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)


def assign_speaker_splits(
    speakers: Sequence[str], n_dev: int, n_test: int, rng: np.random.Generator
) -> dict[str, str]:
    """Map each speaker to train/dev/test at random so that no speaker is in two splits."""
    if n_dev + n_test >= len(speakers):
        raise ValueError(
            f"{len(speakers)} speakers cannot give {n_dev} dev and {n_test} test speakers and still leave train speakers"
        )
    order = rng.permutation(len(speakers))
    split = {}
    for rank, i in enumerate(order):
        split[speakers[i]] = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "train"
    return split


def covering_speaker_splits(
    inventory: Mapping[str, set[str]], n_dev: int, n_test: int, rng: np.random.Generator, tries: int = 2000
) -> dict[str, str]:
    """A random speaker split in which every split contains every label that occurs in the corpus.

    Like TIMIT's core test set, chosen for coverage; speakers stay disjoint. If no such split turns
    up in `tries` draws (e.g. a label spoken by a single speaker), the split missing the fewest labels
    is kept and the missing labels are logged.
    """
    speakers = sorted(inventory)
    everything = set().union(*inventory.values())
    best, best_missing = None, None
    for _ in range(tries):
        split = assign_speaker_splits(speakers, n_dev, n_test, rng)
        missing = {
            name: everything - set().union(*(inventory[s] for s in speakers if split[s] == name))
            for name in ("train", "dev", "test")
        }
        n_missing = sum(len(m) for m in missing.values())
        if best is None or n_missing < sum(len(m) for m in best_missing.values()):
            best, best_missing = split, missing
        if n_missing == 0:
            break
    for name, labels in best_missing.items():
        if labels:
            log.warning("no speaker split covers every label: %s lacks %s", name, sorted(labels))
    return best
