"""Stationary synthetic noises: white and pink."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avfusion.corpus.types import Utterance
from avfusion.noise.source import NoiseSource


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f power spectrum by shaping white noise in the frequency domain."""
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)


@dataclass
class WhiteNoise(NoiseSource):
    """Gaussian white noise (flat spectrum)."""

    def draw(self, utt: Utterance, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(size=n)


@dataclass
class PinkNoise(NoiseSource):
    """Gaussian noise with a 1/f power spectrum (3 dB less power per octave)."""

    def draw(self, utt: Utterance, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        return pink_noise(n, rng)
