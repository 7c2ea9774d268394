"""Synthetic speakers: an espeak voice (accent + variant, pitch, rate) and a mouth appearance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACCENTS = ("en-us", "en", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")


@dataclass(frozen=True)
class MouthAppearance:
    """Per-speaker look of the mouth; lengths are fractions of the ROI size."""

    scale: float  # overall mouth size
    upper_lip: float  # lip thickness at rest
    lower_lip: float
    lip_bgr: tuple[float, float, float]
    skin_bgr: tuple[float, float, float]
    teeth_bgr: tuple[float, float, float]
    offset: tuple[float, float]  # mouth centre offset from the ROI centre
    extent: float  # how far this speaker moves the articulators towards their targets


@dataclass(frozen=True)
class Speaker:
    id: str
    sex: str
    voice: str  # espeak voice name, e.g. "en-us+f2"
    rate_wpm: int
    pitch: int  # espeak 0..99
    pitch_range: int
    mouth: MouthAppearance
    face: int  # which face background (face mode)


def make_speakers(n: int, rng: np.random.Generator, first: int = 0, prefix: str = "s") -> list[Speaker]:
    """n speakers `<prefix>01`...; `first`: where in the rotation of voices (accent x variant) they start, so
    that a second group (the babble talkers) continues it instead of repeating the first group's voices."""
    speakers = []
    for k in range(n):
        i = first + k
        sex = "f" if i % 2 else "m"
        variants = FEMALE_VARIANTS if sex == "f" else MALE_VARIANTS
        variant = variants[(i // 2) % len(variants)]
        skin = np.array([120, 150, 200]) * rng.uniform(0.55, 1.1) + rng.normal(0, 8, 3)
        # lips are darker and redder than the skin around them, whatever the skin tone
        lip = skin * rng.uniform(0.62, 0.82) * np.array([0.8, 0.75, 1.0]) + rng.normal(0, 5, 3)
        mouth = MouthAppearance(
            scale=float(rng.uniform(0.95, 1.05)),
            upper_lip=float(rng.uniform(0.045, 0.075)),
            lower_lip=float(rng.uniform(0.06, 0.095)),
            lip_bgr=tuple(float(c) for c in np.clip(lip, 20, 250)),
            skin_bgr=tuple(float(c) for c in np.clip(skin, 30, 250)),
            teeth_bgr=tuple(float(c) for c in np.clip(rng.uniform(185, 235) - np.array([25, 8, 0]), 0, 255)),
            offset=(float(rng.uniform(-0.02, 0.02)), float(rng.uniform(-0.02, 0.02))),
            extent=float(rng.uniform(0.8, 1.1)),
        )
        speakers.append(
            Speaker(
                id=f"{prefix}{k + 1:02d}",
                sex=sex,
                voice=f"{ACCENTS[i % len(ACCENTS)]}+{variant}",
                rate_wpm=int(rng.integers(140, 200)),
                pitch=int(rng.integers(25, 55) if sex == "m" else rng.integers(50, 85)),
                pitch_range=int(rng.integers(30, 80)),
                mouth=mouth,
                face=i,
            )
        )
    return speakers
