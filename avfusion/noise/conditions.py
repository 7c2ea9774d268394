"""Evaluation conditions: clean, a named noise source at an SNR, a video degradation at a severity, or a
noise paired with a degradation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CLEAN = "clean"


@dataclass(frozen=True)
class NoiseCondition:
    kind: str = CLEAN  # the noise source's name (conf/noise/<name>.yaml), or clean
    snr_db: float | None = None
    draw: int = 0  # which independent noise draw (evaluation.noise_draws); the name leaves it out: draws pool
    video: str | None = None  # a video degradation's name (conf/video_degradation/<name>.yaml), or none
    severity: float | None = None  # the degradation's severity, in (0, 1]
    missing: str | None = None  # a stream scored as absent (an encoder's name: its hidden layer zeros)

    def __post_init__(self) -> None:
        if (self.kind == CLEAN) != (self.snr_db is None):
            raise ValueError("clean takes no SNR; every noise needs one")
        if self.draw < 0 or (self.kind == CLEAN and self.draw):
            raise ValueError(f"draw={self.draw}: noise draws count from 0, and clean has only one")
        if (self.video is None) != (self.severity is None) or not (self.severity is None or 0 < self.severity <= 1):
            raise ValueError(f"a video degradation takes a severity in (0, 1] (got {self.video!r} at {self.severity!r})")

    @property
    def is_clean(self) -> bool:
        """Neither stream changed."""
        return self.kind == CLEAN and self.video is None and self.missing is None

    @property
    def name(self) -> str:
        parts = ([] if self.kind == CLEAN else [f"{self.kind} {self.snr_db:g} dB"]) + \
            ([] if self.video is None else [f"{self.video} {self.severity:g}"]) + \
            ([] if self.missing is None else [f"no {self.missing}"])
        return " + ".join(parts) or CLEAN


def conditions(kinds: list[str], snrs_db: list[float], videos: Sequence[str] = (), severities: Sequence[float] = (),
               pairs: Sequence[Sequence] = (), missing: Sequence[str] = ()) -> list[NoiseCondition]:
    """clean first, then every noise at every SNR, every video degradation at every severity, the listed
    `pairs` (noise, SNR, degradation, severity), and each stream of `missing` left out."""
    return [NoiseCondition()] + [NoiseCondition(k, float(s)) for k in kinds for s in snrs_db] + \
        [NoiseCondition(video=v, severity=float(s)) for v in videos for s in severities] + \
        [NoiseCondition(k, float(snr), video=v, severity=float(s)) for k, snr, v, s in pairs] + \
        [NoiseCondition(missing=m) for m in missing]
