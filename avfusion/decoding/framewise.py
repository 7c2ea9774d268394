"""Frame-wise decoding: argmax per frame, states folded to their unit, runs shorter than `min_frames`
dropped, repeats merged. No duration model and no language model: in noise it inserts short units."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from avfusion.corpus.labels import LabelScheme
from avfusion.decoding.base import Decoding
from avfusion.utils.atomic import write_text_atomic
from avfusion.utils.rules import check_fields, integer


class DecodedUnit(NamedTuple):
    unit: int  # index into the scheme's units
    start: int  # first frame
    end: int  # one past the last frame


def unit_runs(frame_units: Sequence[int], min_frames: int = 1) -> list[DecodedUnit]:
    """Runs of equal labels; runs shorter than `min_frames` are dropped, then equal neighbours merged."""
    labels = np.asarray(frame_units)
    if labels.size == 0:
        return []
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.size]])
    runs: list[DecodedUnit] = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        if e - s < min_frames:
            continue
        if runs and runs[-1].unit == labels[s]:
            runs[-1] = runs[-1]._replace(end=e)
        else:
            runs.append(DecodedUnit(int(labels[s]), s, e))
    return runs


def collapse(frames: Sequence, min_frames: int = 1) -> list:
    """Merge runs of equal labels; runs shorter than `min_frames` are dropped before merging."""
    frames = list(frames)
    index = {label: i for i, label in enumerate(dict.fromkeys(frames))}
    names = list(index)
    return [names[r.unit] for r in unit_runs([index[f] for f in frames], min_frames)]


@dataclass
class FramewiseDecoder:
    scheme: LabelScheme
    min_frames: int = 2
    name = "framewise"

    def decode(self, posteriors: np.ndarray) -> list[DecodedUnit]:
        """(T, C) posteriors of one utterance -> its units."""
        return unit_runs(self.scheme.unit_of_class[np.asarray(posteriors).argmax(axis=1)], self.min_frames)

    def stream(self, spill=None) -> "FramewiseStream":
        """A decoding fed the posteriors a block at a time: the same units (it keeps one label a frame)."""
        return FramewiseStream(self)

    def describe(self) -> dict:
        return {"decoder": self.name, "min_frames": self.min_frames}

    def summary(self) -> str:
        return f"framewise (runs under {self.min_frames} frames dropped)"

    def save(self, directory: str | Path) -> None:
        write_text_atomic(Path(directory) / "decoder.json", json.dumps(self.describe(), indent=1))

    @classmethod
    def load(cls, directory: str | Path, scheme: LabelScheme) -> "FramewiseDecoder":
        meta = json.loads((Path(directory) / "decoder.json").read_text())
        return cls(scheme, int(meta["min_frames"]))


@dataclass
class FramewiseStream:
    decoder: FramewiseDecoder
    labels: list[np.ndarray] = field(default_factory=list)

    def push(self, posteriors: np.ndarray) -> None:
        self.labels.append(self.decoder.scheme.unit_of_class[np.asarray(posteriors).argmax(axis=1)].astype(np.int32))

    def finish(self) -> list[DecodedUnit]:
        return unit_runs(np.concatenate(self.labels) if self.labels else np.zeros(0, np.int32), self.decoder.min_frames)


@dataclass
class FramewiseDecoding(Decoding):
    """`decoding=framewise`: nothing to fit or tune."""

    min_frames: int  # runs shorter than this many frames are dropped

    def __post_init__(self) -> None:
        check_fields(self, "decoding", {"min_frames": integer(1)})

    def fit(self, scheme: LabelScheme, train_utterances, train) -> FramewiseDecoder:
        return FramewiseDecoder(scheme, self.min_frames)

    def tuned_for(self, fitted: FramewiseDecoder, dev_posteriors, dev, dev_utterances, conditions):
        return fitted

    def restored(self, decoder, conditions):
        return decoder if isinstance(decoder, FramewiseDecoder) and decoder.min_frames == self.min_frames else None
