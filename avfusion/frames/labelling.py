"""Frame labels and scoring references, from each utterance's alignment read once.

A frame takes the class of the segment its centre falls in (frames outside every segment, and
frames of words outside a closed vocabulary without <unk>, are errors or sil as the scheme says);
state schemes split each segment into begin/middle/end thirds, and context-dependent schemes also
look at its neighbours. A `Reference` is what an utterance's decoding is scored against: its unit
sequence as aligned (not collapsed) and the frame spans of its speech segments.
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


def frame_segments(segments: Sequence[Segment], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the index of the segment its centre falls in (-1: outside every segment) and which third
    of that segment (0 begin, 1 middle, 2 end)."""
    t = frame_times(n_frames)
    if not segments:
        return np.full(n_frames, -1, dtype=np.int64), np.zeros(n_frames, dtype=np.int64)
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    # a frame centred within half a frame past the last boundary (the utterance's end) keeps the last label
    t = np.where((t >= ends[-1]) & (t <= ends[-1] + 0.5 / FRAME_RATE), np.nextafter(ends[-1], 0), t)
    seg = np.searchsorted(ends, t, side="right")  # first segment ending after t
    clipped = np.minimum(seg, len(segments) - 1)
    inside = (seg < len(segments)) & (starts[clipped] <= t)
    rel = (t - starts[clipped]) / np.maximum(ends[clipped] - starts[clipped], 1e-9)
    third = np.clip((rel * len(STATES)).astype(np.int64), 0, len(STATES) - 1)
    return np.where(inside, seg, -1), np.where(inside, third, 0)


def frame_labels(scheme: LabelScheme, segments: Sequence[Segment], n_frames: int) -> np.ndarray:
    """Class index of `scheme` per frame from normalised segments; frames outside every segment are sil."""
    seg, third = frame_segments(segments, n_frames)
    labels = np.full(n_frames, scheme.classes.index(SIL), dtype=np.int64)
    inside = seg >= 0
    if inside.any():
        labels[inside] = scheme.segment_classes([s.label for s in segments])[seg[inside], third[inside]]
    return labels


@dataclass(frozen=True)
class Reference:
    """What an utterance is scored against, from its alignment as aligned: the unit of every segment
    (silences included, for language models) and the frame spans of the speech segments."""

    sequence: list[str]  # the unit of each segment in order, sil included (<unk> for new words)
    spans: np.ndarray  # (S, 2) first and end frame of each non-silence segment
    span_units: np.ndarray  # (S,) the unit index of each

    @property
    def units(self) -> list[str]:
        """The scored sequence (TIMIT convention): every speech segment, adjacent identical units kept,
        silence left out."""
        return [u for u in self.sequence if u != SIL]


def reference(scheme: LabelScheme, segments: Sequence[Segment], n_frames: int) -> Reference:
    ids = [scheme.unit_id(s.label) for s in segments]
    speech = [(s, i) for s, i in zip(segments, ids) if scheme.units[i] != SIL]
    spans = np.array([frame_span(s.start, s.end, n_frames) for s, _ in speech], dtype=np.int64).reshape(-1, 2)
    return Reference([scheme.units[i] for i in ids], spans, np.array([i for _, i in speech], dtype=np.int64))


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


def split_references(labeller: FrameLabeller, utterances: Sequence[Utterance], data) -> list[Reference]:
    """The references of the utterances of `data` (a split's FrameData: its ids and lengths), in its order."""
    by_id = {u.id: u for u in utterances}
    return [labeller.reference(by_id[i], int(n)) for i, n in zip(data.ids, data.lengths)]
