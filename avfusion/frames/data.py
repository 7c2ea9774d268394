"""Frame containers: `UttFrames` (one utterance, as front-end steps see it) and `FrameData` (one split,
as models see it), and their assembly from a fitted front-end and a frame labeller."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from avfusion.corpus.types import Utterance
from avfusion.frames.clock import video_positions
from avfusion.frames.labelling import FrameLabeller
from avfusion.frames.parts import RowParts
from avfusion.utils.atomic import atomic_path

WaveformTransform = Callable[[Utterance, np.ndarray], np.ndarray]
SHARD_INDEX = "shards.tsv"  # a split saved in shards: each shard's folder, utterances and frames, in order


@dataclass(frozen=True)
class UttFrames:
    id: str
    speaker: str
    x: np.ndarray  # (T, D) at 100 frames/s
    labels: np.ndarray | None = None  # (T,) class indices, for steps that need them (LDA)

    def replace(self, x: np.ndarray) -> "UttFrames":
        return dataclasses.replace(self, x=x)


@dataclass
class VideoStream:
    """A modality kept at its own rate over a split (mouth ROIs for a CNN): utterance u's frames are
    frames[offsets[u]:offsets[u + 1]], at fps[u] frames per second; the model converts them to the
    label frames itself."""

    frames: np.ndarray  # (Nv, ...) e.g. (Nv, S, S) uint8
    offsets: np.ndarray  # (U + 1,)
    fps: np.ndarray  # (U,)

    def utterance(self, u: int) -> slice:
        return slice(int(self.offsets[u]), int(self.offsets[u + 1]))

    def window(self, u: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """For label frames start:stop of utterance u (counted from its first frame): the video frames
        they need and each label frame's fractional position in them (`video_positions`)."""
        rows = self.utterance(u)
        first, positions = video_positions(float(self.fps[u]), rows.stop - rows.start, start, stop)
        last = first + (int(np.floor(positions[-1])) + 2 if len(positions) else 1)  # the frame after, interpolated to
        return self.frames[rows.start + first:min(rows.start + last, rows.stop)], positions.astype(np.float32)

    @staticmethod
    def concatenated(parts: list["VideoStream"]) -> "VideoStream":
        """The streams of `parts` one after another, their frames read where they are (`RowParts`)."""
        return VideoStream(RowParts([p.frames for p in parts]), joined_offsets([p.offsets for p in parts]),
                           np.concatenate([p.fps for p in parts]))


class VideoBatch(NamedTuple):
    """A batch of `VideoStream` windows, as a stream encoder takes them (tensors; Lightning moves them)."""

    frames: object  # (B, Tv, ...) video frames, zero past each item's length
    positions: object  # (B, T) each label frame's fractional index into its item's frames (0 on padding)
    lengths: object  # (B,) real video frames per item


@dataclass
class FrameData:
    """Frame matrices of one split: row r of every matrix is the same 10 ms frame. `streams`: modalities
    kept at their own rate (`VideoStream`), utterance for utterance with the matrices."""

    features: dict[str, np.ndarray]
    labels: np.ndarray
    offsets: np.ndarray  # utterance u has rows offsets[u]:offsets[u + 1]
    ids: list[str]
    speakers: list[str]
    streams: dict[str, VideoStream] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def input_dims(self) -> dict[str, int]:
        """What an encoder of each modality is built for: feature dimensions, and a stream's frame side."""
        return {**{m: int(x.shape[1]) for m, x in self.features.items()},
                **{m: int(v.frames.shape[1]) for m, v in self.streams.items()}}

    def utterance(self, u: int) -> slice:
        return slice(int(self.offsets[u]), int(self.offsets[u + 1]))

    def utterances_between(self, first: int, stop: int) -> "FrameData":
        """Utterances first..stop-1 as a FrameData of their own: views of the matrices, offsets from 0."""
        rows = slice(int(self.offsets[first]), int(self.offsets[stop]))
        streams = {m: VideoStream(v.frames[int(v.offsets[first]):int(v.offsets[stop])],
                                  v.offsets[first:stop + 1] - v.offsets[first], v.fps[first:stop])
                   for m, v in self.streams.items()}
        return FrameData({m: x[rows] for m, x in self.features.items()}, self.labels[rows],
                         self.offsets[first:stop + 1] - self.offsets[first], self.ids[first:stop],
                         self.speakers[first:stop], streams)

    def save(self, directory: str | Path, dtype: str | None = None) -> None:
        """Every array as .npy in `directory`; `dtype` (e.g. float16): what the feature matrices are kept as
        (default: as they are; models read them as float32 whatever they are kept as)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        streams = {f"{kind}_{m}": x for m, v in self.streams.items()
                   for kind, x in (("v", v.frames), ("voffsets", v.offsets), ("vfps", v.fps))}
        features = {f"x_{m}": x if dtype is None else np.asarray(x).astype(dtype) for m, x in self.features.items()}
        for name, x in {**features, "labels": self.labels,
                        "offsets": self.offsets, **streams}.items():
            with atomic_path(directory / f"{name}.npy") as tmp:
                np.save(tmp, x)
        with atomic_path(directory / "utterances.tsv") as tmp:
            tmp.write_text("".join(f"{i}\t{s}\n" for i, s in zip(self.ids, self.speakers)))

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> "FrameData":
        """A split saved by `save`, or saved in shards (`avfusion.frames.writer`: a `shards.tsv` index naming
        the shards' folders, each saved by `save`), read as one FrameData."""
        directory = Path(directory)
        index = directory / SHARD_INDEX
        if index.is_file():
            return concatenated([cls.load(directory / line.split("\t")[0], mmap)
                                 for line in index.read_text().splitlines()])
        mode = "r" if mmap else None
        features = {p.stem[2:]: np.load(p, mmap_mode=mode) for p in sorted(directory.glob("x_*.npy"))}
        streams = {p.stem[2:]: VideoStream(np.load(p, mmap_mode=mode), np.load(directory / f"voffsets_{p.stem[2:]}.npy"),
                                           np.load(directory / f"vfps_{p.stem[2:]}.npy"))
                   for p in sorted(directory.glob("v_*.npy"))}
        rows = [line.split("\t") for line in (directory / "utterances.tsv").read_text().splitlines()]
        return cls(features, np.load(directory / "labels.npy", mmap_mode=mode),
                   np.load(directory / "offsets.npy"), [r[0] for r in rows], [r[1] for r in rows], streams)


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
        streams=frontend.streams_of(utterances, lengths),
    )


def joined_offsets(offsets: list[np.ndarray]) -> np.ndarray:
    """The (U + 1,) utterance offsets of parts one after another, from each part's own."""
    lengths = np.concatenate([np.diff(o) for o in offsets])
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def concatenated(parts: list[FrameData]) -> FrameData:
    """One FrameData holding the utterances of `parts` in order: the feature matrices and streams read where they
    are (`RowParts`: memory-mapped parts stay on disk), the labels (small) joined in memory."""
    if len(parts) == 1:
        return parts[0]
    return FrameData(features={m: RowParts([p.features[m] for p in parts]) for m in parts[0].features},
                     labels=np.concatenate([np.asarray(p.labels) for p in parts]),
                     offsets=joined_offsets([p.offsets for p in parts]),
                     ids=[i for p in parts for i in p.ids], speakers=[s for p in parts for s in p.speakers],
                     streams={m: VideoStream.concatenated([p.streams[m] for p in parts]) for m in parts[0].streams})


def with_audio(frontend, data: FrameData, utterances: list[Utterance],
               audio_waveform: WaveformTransform) -> FrameData:
    """`data` (the FrameData of `utterances`) with only the audio (and the measures derived from it) recomputed
    from transformed waveforms, e.g. noisy ones: the other modalities do not depend on the audio and are reused."""
    names = [m for m in frontend.computed_from("audio") if m in data.features]
    audio = frontend.transform(utterances, audio_waveform, modalities=names)
    return dataclasses.replace(data, features={**data.features, **{m: np.concatenate(x) for m, x in audio.items()}})


def with_video(frontend, data: FrameData, utterances: list[Utterance], video, only: set[str] | None = None) -> FrameData:
    """`data` (the FrameData of `utterances`) with what the front-end cuts from the video (the video modality and
    its measures, the mouth-pixel streams) recomputed from frames degraded by `video` (a `DegradedVideo`); the
    audio is reused. `only`: the ids of the utterances whose video features change (default: all)."""
    features = dict(data.features)
    names = [m for m in (frontend.computed_from("video") if frontend.video is not None else []) if m in features]
    rows = [u for u, utt in enumerate(utterances) if only is None or utt.id in only]
    if names and rows:
        changed = frontend.transform([utterances[u] for u in rows], modalities=names, video=video)
        for m, xs in changed.items():
            if len(rows) == len(utterances):
                features[m] = np.concatenate(xs)
                continue
            features[m] = np.array(features[m])  # a copy (the prepared frames are read-only memory maps)
            for u, x in zip(rows, xs):
                features[m][data.utterance(u)] = x
    streams = frontend.streams_of(utterances, data.lengths, video) if data.streams else {}
    return dataclasses.replace(data, features=features, streams=streams)
