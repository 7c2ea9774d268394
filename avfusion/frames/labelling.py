"""Frame labels and scoring references, from each utterance's alignment read once.

A frame takes the class of the segment its centre falls in (frames outside every segment, and
frames of words outside a closed vocabulary without <unk>, are errors or sil as the scheme says);
state schemes split each segment into begin/middle/end thirds. A `Reference` is what an utterance's
decoding is scored against: its unit sequence and the frame spans of its speech segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.labels import STATES, LabelScheme
from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment, Utterance
from avfusion.frames.clock import FRAME_RATE, frame_span, frame_times
from avfusion.metrics.per import collapse


def frame_labels(scheme: LabelScheme, segments: Sequence[Segment], n_frames: int) -> np.ndarray:
    """Class index of `scheme` per frame from normalised segments; frames outside every segment are sil."""
    t = frame_times(n_frames)
    sil = scheme.classes.index(SIL)
    labels = np.full(n_frames, sil, dtype=np.int64)
    if not segments:
        return labels
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    # a frame centred within half a frame past the last boundary (the utterance's end) keeps the last label
    t = np.where((t >= ends[-1]) & (t <= ends[-1] + 0.5 / FRAME_RATE), np.nextafter(ends[-1], 0), t)
    seg = np.searchsorted(ends, t, side="right")  # first segment ending after t
    inside = (seg < len(segments)) & (starts[np.minimum(seg, len(segments) - 1)] <= t)
    seg = np.where(inside, seg, -1)
    unit_ids = np.array([scheme.unit_id(s.label) for s in segments])
    if len(scheme.classes) == len(scheme.units):  # one class per unit
        labels[inside] = unit_ids[seg[inside]]
        return labels
    # state schemes: which third of its segment each frame falls in
    s = seg[inside]
    rel = (t[inside] - starts[s]) / np.maximum(ends[s] - starts[s], 1e-9)
    state = np.minimum((rel * len(STATES)).astype(np.int64), len(STATES) - 1)
    state_class = np.full(len(scheme.units), -1, dtype=np.int64)  # first state class of each unit
    speech_units = scheme.unit_of_class[:-1:len(STATES)]
    state_class[speech_units] = np.arange(len(speech_units)) * len(STATES)
    first = state_class[unit_ids[s]]
    labels[inside] = np.where(first < 0, sil, first + state)
    return labels


@dataclass(frozen=True)
class Reference:
    """What an utterance is scored against: its unit sequence and its speech segments' frame spans."""

    units: list[str]  # the reference phone (or word) sequence, repeats merged (<unk> for new words)
    spans: np.ndarray  # (S, 2) first and end frame of each non-silence segment
    span_units: np.ndarray  # (S,) the unit index of each


def reference(scheme: LabelScheme, segments: Sequence[Segment], n_frames: int) -> Reference:
    ids = [scheme.unit_id(s.label) for s in segments]
    speech = [(s, i) for s, i in zip(segments, ids) if scheme.units[i] != SIL]
    spans = np.array([frame_span(s.start, s.end, n_frames) for s, _ in speech], dtype=np.int64).reshape(-1, 2)
    return Reference(collapse([scheme.units[i] for i in ids]), spans, np.array([i for _, i in speech], dtype=np.int64))


@dataclass
class Alignments:
    """Each utterance's normalised segments, read from its alignment file once and kept."""

    _segments: dict[str, list[Segment]] = field(default_factory=dict, repr=False)

    def __call__(self, utt: Utterance) -> list[Segment]:
        if utt.id not in self._segments:
            self._segments[utt.id] = utterance_labels(utt)
        return self._segments[utt.id]


@dataclass
class FrameLabeller:
    """Frame labels and references of one label scheme, over a shared alignment reader."""

    scheme: LabelScheme
    alignments: Alignments = field(default_factory=Alignments)

    def labels(self, utt: Utterance, n_frames: int) -> np.ndarray:
        return frame_labels(self.scheme, self.alignments(utt), n_frames)

    def reference(self, utt: Utterance, n_frames: int) -> Reference:
        return reference(self.scheme, self.alignments(utt), n_frames)
