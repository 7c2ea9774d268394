"""Speaker-independent split assignment."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from avfusion.corpus.types import CorpusError

log = logging.getLogger(__name__)


def assign_speaker_splits(
    speakers: Sequence[str], n_dev: int, n_test: int, rng: np.random.Generator
) -> dict[str, str]:
    """Map each speaker to train/dev/test at random so that no speaker is in two splits."""
    if n_dev + n_test >= len(speakers):
        raise CorpusError(f"{len(speakers)} speakers cannot give {n_dev} dev and {n_test} test speakers and still "
                          "leave train speakers: lower data.n_dev_speakers / data.n_test_speakers")
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


def listed_speaker_splits(speakers: Sequence[str], test_speakers: Sequence[str],
                          dev_speakers: Sequence[str] | None = None, n_dev: int = 0, seed: int = 0,
                          source: str = "corpus") -> dict[str, str]:
    """A corpus's standard test speakers to test; dev listed, or `n_dev` drawn (seeded) from the rest.

    Listed speakers absent from the corpus are logged (a partial copy of a corpus is still usable)."""
    present = sorted(set(speakers))
    absent = sorted(set(test_speakers) - set(present))
    if absent:
        log.warning("%s: %d of the listed test speakers are not in the corpus: %s", source, len(absent), absent)
    split = {s: "test" for s in present if s in set(test_speakers)}
    rest = [s for s in present if s not in split]
    if dev_speakers is not None:
        dev = [s for s in rest if s in set(dev_speakers)]
    else:
        if n_dev >= len(rest):  # a corpus fact (a partial copy, too few volunteers): the user's to fix
            raise CorpusError(f"{source}: the corpus has {len(present)} speakers ({', '.join(present[:12])}"
                              f"{', ...' if len(present) > 12 else ''}), {len(split)} of them listed for test; the "
                              f"{len(rest)} others cannot give data.n_dev_speakers={n_dev} dev speakers and still "
                              "leave train speakers: lower it, or list data.dev_speakers")
        dev = [rest[i] for i in np.random.default_rng(seed).permutation(len(rest))[:n_dev]]
    split.update({s: "dev" for s in dev})
    split.update({s: "train" for s in rest if s not in split})
    return split
