"""The level of speech and the scaling of noise to an SNR.

The SNR is that of the active speech: the speech power is measured over the utterance's non-silence
segments (its alignment; ITU-T P.56's active speech level when it has none), not over the whole file,
whose silent padding would make the nominal SNR optimistic by the padding's share.
"""

from __future__ import annotations

import numpy as np

from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment, Utterance


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, active: np.ndarray | None = None) -> np.ndarray:
    """speech + noise scaled so that 10 log10(P_speech / P_noise) = snr_db; P_speech over the samples
    where `active` is true (all when None), P_noise over the whole noise."""
    speech64 = speech.astype(np.float64)
    p_speech = np.mean((speech64 if active is None else speech64[active]) ** 2)
    p_noise = np.mean(noise.astype(np.float64) ** 2)
    if p_noise <= 0:
        raise ValueError("noise has no power")
    scale = np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    return (speech + scale * noise).astype(np.float32)


def active_samples(segments: list[Segment], n: int, sample_rate: int) -> np.ndarray:
    """(n,) bool: the samples inside the alignment's non-silence segments."""
    active = np.zeros(n, bool)
    for seg in segments:
        if seg.label != SIL:
            active[int(round(seg.start * sample_rate)):int(round(seg.end * sample_rate))] = True
    return active


def p56_active(x: np.ndarray, sample_rate: int, margin_db: float = 15.9, time_constant_s: float = 0.03,
               hangover_s: float = 0.2) -> np.ndarray:
    """(n,) bool: the samples ITU-T P.56 (method B) counts as active speech. The envelope is |x| through
    two one-pole smoothers (0.03 s); for each threshold c_j (1 dB apart) a sample is active while the
    envelope is at least c_j or was within the last 0.2 s (hangover); the active samples are those of
    the first threshold at which their level is no more than `margin_db` (15.9 dB) above it."""
    from scipy.signal import lfilter

    x = np.asarray(x, np.float64)
    g = np.exp(-1.0 / (sample_rate * time_constant_s))
    envelope = lfilter([1 - g], [1, -g], lfilter([1 - g], [1, -g], np.abs(x)))
    hang = int(round(hangover_s * sample_rate))
    energy = float(np.sum(x**2))
    index = np.arange(len(x))
    for c in 10 ** (np.arange(-100.0, 1.0, 1.0) / 20):  # -100 .. 0 dBFS
        last_above = np.maximum.accumulate(np.where(envelope >= c, index, -hang - 1))
        mask = index - last_above <= hang
        count = int(mask.sum())
        if count and 10 * np.log10(energy / count) - 20 * np.log10(c) <= margin_db:
            return mask
    return np.ones(len(x), bool)


def speech_activity(utt: Utterance, speech: np.ndarray, sample_rate: int) -> np.ndarray:
    """The speech samples the SNR is measured over: the alignment's non-silence, else P.56's."""
    if utt.alignment is not None:
        active = active_samples(utterance_labels(utt), len(speech), sample_rate)
        if active.any():
            return active
    return p56_active(speech, sample_rate)
