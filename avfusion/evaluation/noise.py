"""Additive noise at a given SNR: white, pink, and babble from a pool of talkers in no split.

The SNR is that of the active speech: the speech power is measured over the utterance's non-silence
segments (its alignment; ITU-T P.56's active speech level when it has none), not over the whole file,
whose silent padding would make the nominal SNR optimistic by the padding's share. Babble mixes
`babble_talkers` talkers at equal power from the corpus's babble pool (`babble.jsonl` beside the
manifest; the synthetic corpus generates one), never the target's speaker or sentence; without a pool
it falls back to the training speakers, never a test speaker.

Every noisy utterance is reproducible on its own: its noise is drawn once per (seed, noise kind,
utterance id), whatever order utterances are processed in, and scaled to each SNR, so an SNR curve
moves only with the SNR.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment, Utterance
from avfusion.errors import ConfigError
from avfusion.media import load_audio
from avfusion.utils.stamp import file_stamp

log = logging.getLogger(__name__)

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


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f power spectrum by shaping white noise in the frequency domain."""
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)


def babble_pool(corpus) -> list[Utterance]:
    """What babble is mixed from: the corpus's pool of talkers in no split, else its training split (never
    a test speaker)."""
    if corpus.babble:
        return list(corpus.babble)
    log.info("%s has no babble pool (babble.jsonl): babble is mixed from training speakers", corpus.name)
    return corpus.split("train")


def check_babble_talkers(corpus, talkers: int, key: str) -> None:
    """Refuse, before any work, babble of more talkers than the corpus's babble pool has (`key`: the setting)."""
    if talkers < 1:
        raise ConfigError(f"{key}={talkers}: must be at least 1")
    available = {u.speaker for u in babble_pool(corpus)}
    if len(available) < talkers:
        raise ConfigError(f"{key}={talkers}: the babble pool has only {len(available)} talkers (babble.jsonl, or "
                          "the training speakers without one): lower it, or leave babble out")


class NoiseMaker:
    """Makes the noisy version of a test utterance. `babble_pool`: recordings of talkers who are not the
    test speakers (the corpus's babble pool, or its training split)."""

    def __init__(self, babble_pool: list[Utterance], sample_rate: int = 16000, babble_talkers: int = 8,
                 seed: int = 1234) -> None:
        self.pool = sorted(babble_pool, key=lambda u: u.id)
        self.sample_rate = sample_rate
        self.babble_talkers = babble_talkers
        self.seed = seed

    def identity(self) -> dict:
        """Everything the noise of an utterance depends on besides the utterance (for cache keys); the
        pool's files by their stamps, so a regenerated pool is another pool."""
        return {"seed": self.seed, "sample_rate": self.sample_rate, "babble_talkers": self.babble_talkers,
                "pool": [f"{u.id}|{u.speaker}|{u.text}|{file_stamp(u.audio)}" for u in self.pool]}

    def _rng(self, kind: str, utt: Utterance) -> np.random.Generator:
        digest = hashlib.sha1(f"{self.seed}|{kind}|{utt.id}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def talkers(self, utt: Utterance) -> dict[str, list[Utterance]]:
        """The pool's recordings by talker, without the target's speaker or sentence."""
        by_talker: dict[str, list[Utterance]] = {}
        for u in self.pool:
            if u.speaker != utt.speaker and (not utt.text or u.text.strip().lower() != utt.text.strip().lower()):
                by_talker.setdefault(u.speaker, []).append(u)
        return by_talker

    def babble(self, utt: Utterance, n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """n samples of babble for `utt` and the recordings it mixes (one per talker)."""
        by_talker = self.talkers(utt)
        if len(by_talker) < self.babble_talkers:
            raise ConfigError(f"babble for {utt.id} mixes evaluation.babble_talkers={self.babble_talkers} talkers, "
                              f"but the babble pool has {len(by_talker)} other than the target's speaker: lower "
                              "evaluation.babble_talkers or add talkers to the pool (babble.jsonl)")
        names = sorted(by_talker)
        mix, used = np.zeros(n), []
        for i in rng.choice(len(names), size=self.babble_talkers, replace=False):
            recordings = by_talker[names[i]]
            source = recordings[int(rng.integers(len(recordings)))]
            talker = load_audio(source.audio, self.sample_rate).astype(np.float64)
            talker = np.tile(talker, int(np.ceil(n / len(talker))) + 1)  # loop short talkers
            start = int(rng.integers(0, len(talker) - n + 1))
            segment = talker[start:start + n]
            mix += segment / max(np.sqrt(np.mean(segment**2)), 1e-9)  # equal power per talker
            used.append(source.id)
        return mix, used

    def noise(self, utt: Utterance, n: int, kind: str) -> np.ndarray:
        """The utterance's noise of `kind` (one draw, whatever the SNR)."""
        rng = self._rng(kind, utt)
        if kind == "white":
            return rng.normal(size=n)
        if kind == "pink":
            return pink_noise(n, rng)
        return self.babble(utt, n, rng)[0]

    def active(self, utt: Utterance, speech: np.ndarray) -> np.ndarray:
        """The speech samples the SNR is measured over: the alignment's non-silence, else P.56's."""
        if utt.alignment is not None:
            active = active_samples(utterance_labels(utt), len(speech), self.sample_rate)
            if active.any():
                return active
        return p56_active(speech, self.sample_rate)

    def __call__(self, utt: Utterance, speech: np.ndarray, condition: NoiseCondition) -> np.ndarray:
        if condition.kind == "clean":
            return speech
        return mix_at_snr(speech, self.noise(utt, len(speech), condition.kind), condition.snr_db,
                          self.active(utt, speech))
