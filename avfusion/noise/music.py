"""Music-like noise: a synthesized melody with chords, non-stationary and harmonic, unlike any noise the
models are trained in (white, pink, babble), to test generalisation to an unseen kind."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avfusion.corpus.types import Utterance
from avfusion.errors import ConfigError
from avfusion.noise.source import NoiseSource


@dataclass
class Music(NoiseSource):
    """Notes of `voices` simultaneous voices, each a harmonic tone (`harmonics` partials, amplitudes 1/k)
    with an attack-decay envelope, pitches drawn from a major scale over three octaves, note lengths
    uniform in `note_s` ([shortest, longest])."""

    voices: int
    harmonics: int
    note_s: list[float]

    def validate(self, key: str) -> None:
        if self.voices < 1 or self.harmonics < 1:
            raise ConfigError(f"{key}: voices={self.voices} and harmonics={self.harmonics} must be >= 1")
        if len(self.note_s) != 2 or not 0 < self.note_s[0] <= self.note_s[1]:
            raise ConfigError(f"{key}.note_s={list(self.note_s)}: give [shortest, longest] in seconds, 0 < shortest")

    def draw(self, utt: Utterance, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        scale = np.array([0, 2, 4, 5, 7, 9, 11])
        pitches = 48 + (scale[None, :] + 12 * np.arange(3)[:, None]).ravel()  # C3 to B5, MIDI numbers
        out = np.zeros(n)
        for _ in range(self.voices):
            start = 0
            while start < n:
                length = int(rng.uniform(*self.note_s) * sample_rate)
                f0 = 440.0 * 2 ** ((rng.choice(pitches) - 69) / 12)
                t = np.arange(min(length, n - start)) / sample_rate
                partials = [k for k in range(1, self.harmonics + 1) if k * f0 < sample_rate / 2]
                tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in partials)
                envelope = np.minimum(t / 0.01, 1.0) * np.exp(-3.0 * t / max(length / sample_rate, 1e-3))
                out[start:start + len(t)] += tone * envelope
                start += length
        return out
