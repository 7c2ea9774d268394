"""The contract of a noise kind: draw n samples for an utterance, reproducibly, from a given generator."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod

import numpy as np

from avfusion.corpus.types import Corpus, Utterance


class NoiseSource(ABC):
    """One kind of additive noise. Subclasses are dataclasses of their settings (what `conf/noise/` sets);
    `draw` must depend only on the utterance, n, the rate and `rng`, so that the mixer's per-utterance seed
    makes every noisy utterance reproducible on its own."""

    def prepare(self, corpus: Corpus) -> None:
        """Take what the source needs from the corpus (e.g. babble's pool of talkers); called before use."""

    def validate(self, key: str) -> None:
        """Refuse, before any work, settings that cannot work (`key`: where the source is configured)."""

    def check(self, corpus: Corpus, key: str) -> None:
        """Refuse, before training, a setting this corpus cannot serve."""

    @abstractmethod
    def draw(self, utt: Utterance, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """n samples of noise for `utt` at `sample_rate` (any level: the mixer scales it to the SNR)."""

    def describe(self) -> dict:
        """The class and its settings (what a report records)."""
        settings = dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", **settings}

    def identity(self) -> dict:
        """Everything the drawn noise depends on besides the utterance and the generator: `describe()`, and
        for sources that read files, those files by their stamps (`data_identity`)."""
        return {**self.describe(), **self.data_identity()}

    def data_identity(self) -> dict:
        return {}


def random_segment(audio: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n consecutive samples from a random start in `audio`, looped when it is shorter than n."""
    looped = np.tile(audio, int(np.ceil(n / len(audio))) + 1)
    start = int(rng.integers(0, len(looped) - n + 1))
    return looped[start:start + n]
