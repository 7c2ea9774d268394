"""Label schemes and frame labels at 100 frames/s.

Frame i is centred at t_i = i / FRAME_RATE (librosa's `center=True` convention), so an utterance of
n samples at 16 kHz has 1 + n // 160 frames; the audio front-end produces exactly this many.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avfusion.corpus.phones import PHONE_INDEX, PHONE_TO_VISEME, PHONES, SIL, VISEME_CLASSES
from avfusion.corpus.types import Segment

FRAME_RATE = 100  # frames per second
STATES = ("b", "m", "e")  # begin / middle / end thirds of a phone


def num_frames(duration: float) -> int:
    """Frames for an utterance of `duration` seconds (centres at 0, 10 ms, ..., <= duration)."""
    return int(np.floor(duration * FRAME_RATE + 1e-6)) + 1


def frame_times(n_frames: int) -> np.ndarray:
    return np.arange(n_frames) / FRAME_RATE


@dataclass(frozen=True)
class LabelScheme:
    """Classes to predict, with the groups used for class sharing (e.g. state -> phone -> viseme)."""

    name: str
    classes: tuple[str, ...]
    groups: dict[str, np.ndarray]  # group level -> group index of each class
    group_names: dict[str, tuple[str, ...]]
    phone_of_class: np.ndarray  # index into PHONES of each class (for folding states to phones)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def group_index(self, level: str) -> np.ndarray:
        if level not in self.groups:
            raise KeyError(f"label scheme {self.name!r} has no group level {level!r}; it has {sorted(self.groups)}")
        return self.groups[level]

    def frame_labels(self, phones: Sequence[Segment], n_frames: int) -> np.ndarray:
        """Class index per frame from folded phone segments; frames outside every segment are sil."""
        return _frame_labels(self, phones, n_frames)


def _viseme_index(phones: Sequence[str]) -> np.ndarray:
    return np.array([VISEME_CLASSES.index(PHONE_TO_VISEME[p]) for p in phones], dtype=np.int64)


def phone_scheme() -> LabelScheme:
    phone_idx = np.arange(len(PHONES), dtype=np.int64)
    return LabelScheme(
        name="phone",
        classes=PHONES,
        groups={"viseme": _viseme_index(PHONES)},
        group_names={"viseme": VISEME_CLASSES},
        phone_of_class=phone_idx,
    )


def phone_state_scheme() -> LabelScheme:
    """3 states per phone (begin/middle/end thirds) and a single sil class: 3 x 38 + 1 = 115."""
    speech = [p for p in PHONES if p != SIL]
    classes = tuple(f"{p}_{s}" for p in speech for s in STATES) + (SIL,)
    phones = [p for p in speech for _ in STATES] + [SIL]
    phone_idx = np.array([PHONE_INDEX[p] for p in phones], dtype=np.int64)
    return LabelScheme(
        name="phone_state",
        classes=classes,
        groups={"phone": phone_idx, "viseme": _viseme_index(phones)},
        group_names={"phone": PHONES, "viseme": VISEME_CLASSES},
        phone_of_class=phone_idx,
    )


SCHEMES = {"phone": phone_scheme, "phone_state": phone_state_scheme}


def get_scheme(name: str) -> LabelScheme:
    if name not in SCHEMES:
        raise KeyError(f"unknown label scheme {name!r}; known: {sorted(SCHEMES)}")
    return SCHEMES[name]()


def _frame_labels(scheme: LabelScheme, phones: Sequence[Segment], n_frames: int) -> np.ndarray:
    t = frame_times(n_frames)
    sil = scheme.classes.index(SIL)
    labels = np.full(n_frames, sil, dtype=np.int64)
    if not phones:
        return labels
    starts = np.array([s.start for s in phones])
    ends = np.array([s.end for s in phones])
    # a frame centred within half a frame past the last boundary (the utterance's end) keeps the last label
    t = np.where((t >= ends[-1]) & (t <= ends[-1] + 0.5 / FRAME_RATE), np.nextafter(ends[-1], 0), t)
    seg = np.searchsorted(ends, t, side="right")  # first segment ending after t
    inside = (seg < len(phones)) & (starts[np.minimum(seg, len(phones) - 1)] <= t)
    seg = np.where(inside, seg, -1)
    phone_ids = np.array([PHONE_INDEX[s.label] for s in phones])
    if scheme.name == "phone":
        labels[inside] = phone_ids[seg[inside]]
        return labels
    # phone_state: which third of its segment each frame falls in
    s = seg[inside]
    rel = (t[inside] - starts[s]) / np.maximum(ends[s] - starts[s], 1e-9)
    state = np.minimum((rel * len(STATES)).astype(np.int64), len(STATES) - 1)
    base = phone_ids[s] * len(STATES) + state  # speech phones precede sil in PHONES
    labels[inside] = np.where(np.array(PHONES)[phone_ids[s]] == SIL, sil, base)
    return labels
