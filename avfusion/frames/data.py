"""Frame containers: `UttFrames` (one utterance, as front-end steps see it) and `FrameData` (one split,
as models see it), and their assembly from a fitted front-end and a frame labeller."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avfusion.corpus.types import Utterance
from avfusion.frames.labelling import FrameLabeller
from avfusion.utils.atomic import atomic_path

WaveformTransform = Callable[[Utterance, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class UttFrames:
    id: str
    speaker: str
    x: np.ndarray  # (T, D) at 100 frames/s
    labels: np.ndarray | None = None  # (T,) class indices, for steps that need them (LDA)

    def replace(self, x: np.ndarray) -> "UttFrames":
        return dataclasses.replace(self, x=x)


@dataclass
class FrameData:
    """Frame matrices of one split: row r of every matrix is the same 10 ms frame."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    offsets: np.ndarray  # utterance u has rows offsets[u]:offsets[u + 1]
    ids: list[str]
    speakers: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def utterance(self, u: int) -> slice:
        return slice(int(self.offsets[u]), int(self.offsets[u + 1]))

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, x in {**{f"x_{m}": x for m, x in self.features.items()}, "labels": self.labels,
                        "offsets": self.offsets}.items():
            with atomic_path(directory / f"{name}.npy") as tmp:
                np.save(tmp, x)
        with atomic_path(directory / "utterances.tsv") as tmp:
            tmp.write_text("".join(f"{i}\t{s}\n" for i, s in zip(self.ids, self.speakers)))

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> "FrameData":
        directory = Path(directory)
        mode = "r" if mmap else None
        features = {p.stem[2:]: np.load(p, mmap_mode=mode) for p in sorted(directory.glob("x_*.npy"))}
        rows = [line.split("\t") for line in (directory / "utterances.tsv").read_text().splitlines()]
        return cls(features, np.load(directory / "labels.npy", mmap_mode=mode),
                   np.load(directory / "offsets.npy"), [r[0] for r in rows], [r[1] for r in rows])


def frames_of(frontend, utterances: list[Utterance], labeller: FrameLabeller,
              audio_waveform: WaveformTransform | None = None) -> FrameData:
    """The FrameData of `utterances` through a fitted front-end (its `transform`), labelled by `labeller`.
    `audio_waveform(utt, clean_waveform)`, if given, changes the audio before features (e.g. adds noise)."""
    features = frontend.transform(utterances, audio_waveform)
    first = next(iter(features.values()))
    lengths = np.array([len(x) for x in first])
    return FrameData(
        features={name: np.concatenate(xs) for name, xs in features.items()},
        labels=np.concatenate([labeller.labels(u, len(x)) for u, x in zip(utterances, first)]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        ids=[u.id for u in utterances], speakers=[u.speaker for u in utterances],
    )


def concatenated(parts: list[FrameData]) -> FrameData:
    """One FrameData holding the utterances of `parts` in order (in memory)."""
    lengths = np.concatenate([p.lengths for p in parts])
    return FrameData(features={m: np.concatenate([np.asarray(p.features[m]) for p in parts]) for m in parts[0].features},
                     labels=np.concatenate([np.asarray(p.labels) for p in parts]),
                     offsets=np.concatenate([[0], np.cumsum(lengths)]),
                     ids=[i for p in parts for i in p.ids], speakers=[s for p in parts for s in p.speakers])


def with_audio(frontend, data: FrameData, utterances: list[Utterance],
               audio_waveform: WaveformTransform) -> FrameData:
    """`data` (the FrameData of `utterances`) with only the audio recomputed from transformed waveforms,
    e.g. noisy ones: the other modalities do not depend on the audio and are reused."""
    audio = frontend.transform(utterances, audio_waveform, modalities=["audio"])["audio"]
    return dataclasses.replace(data, features={**data.features, "audio": np.concatenate(audio)})
