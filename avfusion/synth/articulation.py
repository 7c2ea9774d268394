"""Mouth articulation from a timed phone sequence.

Each viseme class has one articulatory target (so phones of a class look alike, as in real lip
reading) over five parameters. Coarticulation follows Cohen & Massaro (1993): every segment exerts a
dominance that decays exponentially away from its centre, faster after it (carry-over) than before it
(anticipation), and each parameter is the dominance-weighted mean of the segments' targets. Segments
that must reach their target (lip closure for p/b/m, teeth on lip for f/v) dominate strongly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avfusion.corpus.phones import PHONE_TO_VISEME, SIL
from avfusion.corpus.types import Segment

PARAMETERS = ("open", "width", "round", "teeth", "tongue")

# viseme -> (open, width, round, teeth, tongue), each in [0, 1]
TARGETS: dict[str, tuple[float, float, float, float, float]] = {
    "V1": (0.85, 0.55, 0.10, 0.30, 0.15),  # open back vowels
    "V2": (0.35, 0.15, 0.95, 0.10, 0.00),  # rounded vowels
    "V3": (0.65, 0.80, 0.00, 0.60, 0.30),  # open front spread vowels
    "V4": (0.30, 0.95, 0.00, 0.90, 0.10),  # close front spread vowels
    "A": (0.35, 0.50, 0.35, 0.40, 0.60),  # l r y
    "B": (0.10, 0.75, 0.00, 1.00, 0.00),  # s z: teeth together
    "C": (0.25, 0.60, 0.05, 0.60, 0.85),  # t d n: tongue tip behind the teeth
    "D": (0.20, 0.30, 0.75, 0.90, 0.00),  # sh ch jh: protruded lips
    "E": (0.00, 0.50, 0.10, 0.00, 0.00),  # p b m: lips closed
    "F": (0.20, 0.55, 0.00, 0.70, 1.00),  # th dh: tongue between the teeth
    "G": (0.08, 0.55, 0.00, 1.00, 0.00),  # f v: upper teeth on the lower lip
    "H": (0.40, 0.40, 0.45, 0.30, 0.00),  # ng g k w
    "S": (0.04, 0.50, 0.10, 0.00, 0.00),  # rest
}

# phones drawn unlike their viseme class's target: the schwa (ah/ax, the commonest phone; V1 with the
# open back vowels in the viseme map) is a neutral mid-central mouth, not a wide-open one
PHONE_TARGETS: dict[str, tuple[float, float, float, float, float]] = {
    "ah": (0.42, 0.52, 0.12, 0.40, 0.20),
}

# viseme -> dominance per parameter (1 = ordinary)
DOMINANCE: dict[str, tuple[float, float, float, float, float]] = {
    "E": (12.0, 1.0, 1.0, 12.0, 12.0),
    "G": (6.0, 1.0, 1.0, 6.0, 4.0),
    "B": (3.0, 1.0, 1.0, 3.0, 2.0),
    "F": (2.0, 1.0, 1.0, 2.0, 4.0),
    "D": (2.0, 2.0, 3.0, 2.0, 1.0),
    "V2": (1.0, 3.0, 3.0, 1.0, 1.0),
    "S": (0.6, 0.6, 0.6, 0.6, 0.6),
}

ANTICIPATION_S = 0.070  # decay constant before a segment's centre
CARRY_OVER_S = 0.045  # decay constant after it


def targets_for(phones: Sequence[Segment], rng: np.random.Generator | None = None, jitter: float = 0.04,
                token: np.ndarray | None = None) -> np.ndarray:
    """(S, P) targets of each segment, with a per-token variation (no two tokens are identical): `jitter`
    (s.d.) on every parameter, or, given `token` (S, 3) deviations of (open, width, round) already scaled
    (`avfusion.synth.vocal_tract`: the sound shares them), those on the first three and `jitter` on the rest."""
    t = np.array([PHONE_TARGETS.get(s.label, TARGETS[PHONE_TO_VISEME[s.label]]) for s in phones], dtype=np.float64)
    first = 0 if token is None else 3  # the parameters the jitter varies
    if rng is not None and jitter > 0:
        t[:, first:] += rng.normal(0.0, jitter, (len(t), len(PARAMETERS) - first))
    if token is not None:
        t[:, :3] += token
    return np.clip(t, 0.0, 1.0)


def visual_segments(phones: Sequence[Segment], lead_s: float, jitter_s: float, onset_lead_s: float,
                    duration: float, rng: np.random.Generator | None = None) -> list[Segment]:
    """The segments as the lips show them, from the acoustic ones: every boundary `lead_s` earlier (the
    visible articulation ahead of the sound; negative: behind it) plus a per-boundary jitter of
    `jitter_s` (s.d.), and the first speech segment after a leading silence begins `onset_lead_s` earlier
    still (the lips part before voicing starts). Boundaries stay ordered, within [0, duration]."""
    if len(phones) < 2:
        return list(phones)
    inner = np.array([p.start for p in phones[1:]], dtype=np.float64) - lead_s
    if rng is not None and jitter_s > 0:
        inner -= rng.normal(0.0, jitter_s, len(inner))
    if phones[0].label == SIL:
        inner[0] -= onset_lead_s
    inner = np.maximum.accumulate(np.clip(inner, 0.0, duration))
    edges = np.concatenate([[phones[0].start], inner, [phones[-1].end]])
    return [Segment(p.label, float(a), float(b)) for p, a, b in zip(phones, edges[:-1], edges[1:])]


def trajectory(phones: Sequence[Segment], times: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(T, P) articulator parameters at `times` (seconds) from folded phone segments and their targets."""
    centres = np.array([(s.start + s.end) / 2 for s in phones])
    half = np.array([(s.end - s.start) / 2 for s in phones])
    dom = np.array([DOMINANCE.get(PHONE_TO_VISEME[s.label], (1.0,) * len(PARAMETERS)) for s in phones])
    dt = times[:, None] - centres[None, :]  # (T, S)
    # Full dominance inside the segment's own span, exponential decay outside it.
    outside = np.maximum(np.abs(dt) - half[None, :], 0.0)
    tau = np.where(dt < 0, ANTICIPATION_S, CARRY_OVER_S)
    weight = np.exp(-outside / tau)[:, :, None] * dom[None, :, :]  # (T, S, P)
    weight = weight + 1e-12
    return (weight * targets[None, :, :]).sum(axis=1) / weight.sum(axis=1)
