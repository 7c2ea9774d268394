"""Babble: several talkers at equal power, from a pool of recordings of talkers in no split.

The pool is the corpus's babble pool (`babble.jsonl` beside the manifest; the synthetic corpus generates
one), else its training split: never a test speaker, never the target's speaker or sentence. `talker_set`
splits the pool's talkers into two disjoint halves, so multi-condition training can babble with one half and
evaluation with voices it never heard: the halves a corpus declares (babble.jsonl records of split
`babble_train` and `babble_test`), else by sorted name (the first half `train`, the rest `test`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from avfusion.corpus.manifest import BABBLE_HALVES
from avfusion.corpus.types import Corpus, Utterance
from avfusion.errors import ConfigError
from avfusion.media import load_audio
from avfusion.noise.source import NoiseSource, random_segment
from avfusion.utils.stamp import file_stamp

log = logging.getLogger(__name__)
_SAID_NO_POOL: set[str] = set()


def babble_pool(corpus: Corpus) -> list[Utterance]:
    """What babble is mixed from: the corpus's pool of talkers in no split, else its training split (never
    a test speaker)."""
    if corpus.babble:
        return list(corpus.babble)
    if corpus.name not in _SAID_NO_POOL:  # once per corpus, however often the pool is asked for
        _SAID_NO_POOL.add(corpus.name)
        log.info("%s has no babble pool (babble.jsonl): babble is mixed from training speakers", corpus.name)
    return corpus.split("train")


TALKER_SETS = ("all", "train", "test")


def talker_half(pool: list[Utterance], talker_set: str) -> list[Utterance]:
    """The recordings of `talker_set`'s talkers: all, or the `train` or `test` half of the pool's talkers (as
    the corpus declares them, else the first and second half by sorted name); the halves never share one."""
    if talker_set == "all":
        return list(pool)
    if any(u.split in BABBLE_HALVES for u in pool):  # the corpus says which talkers are which
        return [u for u in pool if u.split == BABBLE_HALVES[TALKER_SETS.index(talker_set) - 1]]
    talkers = sorted({u.speaker for u in pool})
    half = set(talkers[:len(talkers) // 2] if talker_set == "train" else talkers[len(talkers) // 2:])
    return [u for u in pool if u.speaker in half]


@dataclass
class Babble(NoiseSource):
    """`talkers` recordings of different talkers from the pool (`talker_set` of its talkers), each scaled to
    unit power, summed."""

    talkers: int
    talker_set: str  # all | train | test (disjoint halves of the pool's talkers)

    def __post_init__(self) -> None:
        if isinstance(self.talkers, bool) or not isinstance(self.talkers, int) or self.talkers < 1:
            raise ConfigError(f"noise.babble.talkers={self.talkers!r}: must be a whole number >= 1")
        if self.talker_set not in TALKER_SETS:
            raise ConfigError(f"noise.babble.talker_set={self.talker_set!r}: choose from {list(TALKER_SETS)}")
        self.pool: list[Utterance] = []

    def prepare(self, corpus: Corpus) -> None:
        self.use_pool(talker_half(babble_pool(corpus), self.talker_set))

    def use_pool(self, pool: list[Utterance]) -> "Babble":
        """Mix from these recordings (in id order, so the draws do not depend on the order given)."""
        self.pool = sorted(pool, key=lambda u: u.id)
        return self

    def check(self, corpus: Corpus, key: str) -> None:
        available = {u.speaker for u in talker_half(babble_pool(corpus), self.talker_set)}
        if len(available) < self.talkers:
            which = "" if self.talker_set == "all" else f" ({self.talker_set} half, {key}.talker_set)"
            raise ConfigError(f"{key}.talkers={self.talkers}: the babble pool has only {len(available)} talkers"
                              f"{which} (babble.jsonl, or the training speakers without one): lower it, or leave "
                              "babble out")

    def data_identity(self) -> dict:
        # the pool's files by their stamps, so a regenerated pool is another pool
        return {"pool": [f"{u.id}|{u.speaker}|{u.text}|{file_stamp(u.audio)}" for u in self.pool]}

    def by_talker(self, utt: Utterance) -> dict[str, list[Utterance]]:
        """The pool's recordings by talker, without the target's speaker or sentence."""
        talkers: dict[str, list[Utterance]] = {}
        for u in self.pool:
            if u.speaker != utt.speaker and (not utt.text or u.text.strip().lower() != utt.text.strip().lower()):
                talkers.setdefault(u.speaker, []).append(u)
        return talkers

    def mix(self, utt: Utterance, n: int, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """n samples of babble for `utt` and the recordings it mixes (one per talker)."""
        by_talker = self.by_talker(utt)
        if len(by_talker) < self.talkers:
            raise ConfigError(f"babble for {utt.id} mixes noise.babble.talkers={self.talkers} talkers, but the babble "
                              f"pool has {len(by_talker)} other than the target's speaker: lower noise.babble.talkers "
                              "or add talkers to the pool (babble.jsonl)")
        names = sorted(by_talker)
        mix, used = np.zeros(n), []
        for i in rng.choice(len(names), size=self.talkers, replace=False):
            recordings = by_talker[names[i]]
            source = recordings[int(rng.integers(len(recordings)))]
            segment = random_segment(load_audio(source.audio, sample_rate).astype(np.float64), n, rng)
            mix += segment / max(np.sqrt(np.mean(segment**2)), 1e-9)  # equal power per talker
            used.append(source.id)
        return mix, used

    def draw(self, utt: Utterance, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        return self.mix(utt, n, sample_rate, rng)[0]
