"""Additive noise at a given SNR: white, pink, and babble built from other test speakers.

Every noisy utterance is reproducible on its own: its noise is drawn from a generator seeded by
(seed, condition, utterance id), whatever order utterances are processed in. The SNR is the ratio
of the whole utterance's power to the noise's power.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from avfusion.errors import ConfigError
from avfusion.corpus.types import Utterance
from avfusion.media import load_audio

KINDS = ("clean", "white", "pink", "babble")


@dataclass(frozen=True)
class NoiseCondition:
    kind: str = "clean"
    snr_db: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"evaluation.noises: unknown noise {self.kind!r}; known: {KINDS}")
        if (self.kind == "clean") != (self.snr_db is None):
            raise ValueError("clean takes no SNR; every noise needs one")

    @property
    def name(self) -> str:
        return "clean" if self.kind == "clean" else f"{self.kind} {self.snr_db:g} dB"


def conditions(kinds: list[str], snrs_db: list[float]) -> list[NoiseCondition]:
    """clean first, then every noise at every SNR."""
    return [NoiseCondition()] + [NoiseCondition(k, float(s)) for k in kinds for s in snrs_db]


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that 10 log10(P_speech / P_noise) = snr_db."""
    p_speech = np.mean(speech.astype(np.float64) ** 2)
    p_noise = np.mean(noise.astype(np.float64) ** 2)
    if p_noise <= 0:
        raise ValueError("noise has no power")
    scale = np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    return (speech + scale * noise).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f power spectrum by shaping white noise in the frequency domain."""
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)


class NoiseMaker:
    """Makes the noisy version of a test utterance; babble talkers are other speakers of the same set."""

    def __init__(self, utterances: list[Utterance], sample_rate: int = 16000, babble_talkers: int = 4,
                 seed: int = 1234) -> None:
        self.pool = list(utterances)
        self.sample_rate = sample_rate
        self.babble_talkers = babble_talkers
        self.seed = seed

    def _rng(self, condition: NoiseCondition, utt: Utterance) -> np.random.Generator:
        digest = hashlib.sha1(f"{self.seed}|{condition.name}|{utt.id}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def babble(self, utt: Utterance, n: int, rng: np.random.Generator) -> np.ndarray:
        others = sorted((u for u in self.pool if u.speaker != utt.speaker), key=lambda u: u.id)
        if not others:
            raise ValueError(f"babble for {utt.id} needs utterances of other speakers in the evaluation set")
        picks = rng.choice(len(others), size=min(self.babble_talkers, len(others)), replace=False)
        mix = np.zeros(n)
        for i in picks:
            talker = load_audio(others[i].audio, self.sample_rate).astype(np.float64)
            talker = np.tile(talker, int(np.ceil(n / len(talker))))  # loop short talkers
            start = int(rng.integers(0, len(talker) - n + 1))
            segment = talker[start:start + n]
            mix += segment / max(np.sqrt(np.mean(segment**2)), 1e-9)  # equal power per talker
        return mix

    def __call__(self, utt: Utterance, speech: np.ndarray, condition: NoiseCondition) -> np.ndarray:
        if condition.kind == "clean":
            return speech
        rng = self._rng(condition, utt)
        n = len(speech)
        if condition.kind == "white":
            noise = rng.normal(size=n)
        elif condition.kind == "pink":
            noise = pink_noise(n, rng)
        else:
            noise = self.babble(utt, n, rng)
        return mix_at_snr(speech, noise, condition.snr_db)
