"""Noisy utterances: a condition's source draws the noise, the mixer seeds it and scales it to the SNR.

Every noisy utterance is reproducible on its own: its noise is drawn once per (seed, noise name, utterance
id, draw), whatever order utterances are processed in, and scaled to each SNR, so an SNR curve moves only
with the SNR (the SNR columns share one draw: they are not independent confirmations). Draw 0 is the draw
of every report made before draws could be several (`evaluation.noise_draws`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from avfusion.corpus.types import Corpus, Utterance
from avfusion.errors import ConfigError
from avfusion.noise.conditions import CLEAN, NoiseCondition
from avfusion.noise.level import mix_at_snr, speech_activity
from avfusion.noise.source import NoiseSource


def check_sources(names: Sequence[str], sources: Mapping[str, NoiseSource], key: str,
                  corpus: Corpus | None = None) -> dict[str, NoiseSource]:
    """The sources `names` asks for (`key`: the setting that names them): an unknown name is refused with
    the known ones and each source validates its settings, before any work; with the corpus, each is also
    checked against it and prepared from it."""
    unknown = [n for n in names if n not in sources]
    if unknown:
        raise ConfigError(f"{key}: unknown noise {unknown[0]!r}; the noise sources are {sorted(sources)} "
                          "(conf/noise/<name>.yaml; add your own with +noise=<name>)")
    used = {n: sources[n] for n in dict.fromkeys(names)}
    for name, source in used.items():
        source.validate(f"noise.{name}")
        if corpus is not None:
            source.check(corpus, f"noise.{name}")
            source.prepare(corpus)
    return used


class NoiseMixer:
    """Makes the noisy version of an utterance in a condition, from the named sources."""

    def __init__(self, sources: Mapping[str, NoiseSource], sample_rate: int = 16000, seed: int = 1234) -> None:
        self.sources = dict(sources)
        self.sample_rate = sample_rate
        self.seed = seed

    def identity(self, kind: str) -> dict:
        """Everything the noise of `kind` for an utterance depends on besides the utterance (cache keys)."""
        return {"seed": self.seed, "sample_rate": self.sample_rate, "source": self.sources[kind].identity()}

    def rng(self, kind: str, utt: Utterance, draw: int = 0) -> np.random.Generator:
        digest = hashlib.sha1(f"{self.seed}|{kind}|{utt.id}{f'|{draw}' if draw else ''}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def noise(self, utt: Utterance, n: int, kind: str, draw: int = 0) -> np.ndarray:
        """The utterance's noise of `kind` (draw `draw`, whatever the SNR)."""
        return self.sources[kind].draw(utt, n, self.sample_rate, self.rng(kind, utt, draw))

    def __call__(self, utt: Utterance, speech: np.ndarray, condition: NoiseCondition) -> np.ndarray:
        if condition.kind == CLEAN:
            return speech
        if condition.kind not in self.sources:
            raise ValueError(f"no noise source {condition.kind!r} (have {sorted(self.sources)})")
        return mix_at_snr(speech, self.noise(utt, len(speech), condition.kind, condition.draw), condition.snr_db,
                          speech_activity(utt, speech, self.sample_rate))
