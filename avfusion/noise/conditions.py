"""Evaluation conditions: clean, or a named noise source at an SNR."""

from __future__ import annotations

from dataclasses import dataclass

CLEAN = "clean"


@dataclass(frozen=True)
class NoiseCondition:
    kind: str = CLEAN  # the noise source's name (conf/noise/<name>.yaml), or clean
    snr_db: float | None = None
    draw: int = 0  # which independent noise draw (evaluation.noise_draws); the name leaves it out: draws pool

    def __post_init__(self) -> None:
        if (self.kind == CLEAN) != (self.snr_db is None):
            raise ValueError("clean takes no SNR; every noise needs one")
        if self.draw < 0 or (self.kind == CLEAN and self.draw):
            raise ValueError(f"draw={self.draw}: noise draws count from 0, and clean has only one")

    @property
    def name(self) -> str:
        return CLEAN if self.kind == CLEAN else f"{self.kind} {self.snr_db:g} dB"


def conditions(kinds: list[str], snrs_db: list[float]) -> list[NoiseCondition]:
    """clean first, then every noise at every SNR."""
    return [NoiseCondition()] + [NoiseCondition(k, float(s)) for k in kinds for s in snrs_db]
