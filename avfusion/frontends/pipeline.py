"""From a corpus to frame-synchronous feature matrices, with every fitted step learned on train only.

    raw features (cached per utterance) -> 100 frames/s -> steps (CMVN, splice, LDA, splice)
    -> FrameData: one (N, D) matrix per modality, labels (N,), utterance offsets

Each modality is a `ModalityFrontEnd` (an extractor and its steps, all from `conf/frontend/`); the
`FrontEnd` holds the modalities, builds their caches, fits their steps on the training split and
transforms any split. Steps share one interface: `fit(utterances)` and `transform(utterances)`
over lists of `UttFrames`.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avfusion.corpus.alignments import utterance_labels
from avfusion.corpus.labels import FRAME_RATE, LabelScheme, corpus_scheme
from avfusion.corpus.types import Corpus, Utterance
from avfusion.frontends.audio import load_audio
from avfusion.frontends.store import FeatureError, FeatureStore
from avfusion.frontends.video import to_frame_rate
from avfusion.utils.atomic import atomic_path

log = logging.getLogger(__name__)

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
class ModalityFrontEnd:
    """One modality: a raw-feature extractor and the steps applied at 100 frames/s."""

    name: str
    extractor: object
    steps: list = field(default_factory=list)

    def fit(self, utterances: list[UttFrames]) -> "ModalityFrontEnd":
        for step in self.steps:
            step.fit(utterances)
            utterances = step.transform(utterances)
        return self

    def transform(self, utterances: list[UttFrames]) -> list[UttFrames]:
        for step in self.steps:
            utterances = step.transform(utterances)
        return utterances


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


class AvMismatchError(ValueError):
    pass


@dataclass
class FrontEnd:
    """Audio (and video) front-ends over a feature cache (`conf/frontend/default.yaml`)."""

    audio: ModalityFrontEnd
    video: ModalityFrontEnd | None = None
    cache_dir: str = "data/features"
    fit_labels: str = "states"  # labels the LDAs are fitted with (more classes than LDA dims): phone_state/word_state
    max_av_mismatch_s: float = 0.12  # beyond this, audio and video durations are an error
    n_jobs: int = 2
    fitted_: bool = field(default=False, repr=False)

    @property
    def modalities(self) -> dict[str, ModalityFrontEnd]:
        return {m.name: m for m in (self.audio, self.video) if m is not None}

    def store(self, modality: ModalityFrontEnd) -> FeatureStore:
        return FeatureStore(self.cache_dir, modality.extractor)

    def prepare(self, utterances: list[Utterance], progress: bool = True) -> dict:
        """Extract and cache raw features of every modality; raise with every failure listed."""
        for name in self.modalities:
            lacking = [u.id for u in utterances if getattr(u, name) is None]
            if lacking:
                hint = " (an audio-only corpus: frontend=audio_only fusion=audio_only)" if name == "video" else ""
                raise ValueError(f"{len(lacking)} of {len(utterances)} utterances have no {name} (e.g. "
                                 f"{lacking[:3]}), but the front-end has a {name} modality{hint}")
        reports = {}
        for name, modality in self.modalities.items():
            report = self.store(modality).build(utterances, n_jobs=self.n_jobs, progress=progress)
            log.info("%s features: %d extracted, %d cached, %d failed", name, len(report.extracted),
                     len(report.cached), len(report.failed))
            reports[name] = report
        failures = [f"  {u} ({name}): {why}" for name, r in reports.items() for u, why in r.failed.items()]
        if failures:
            raise FeatureError(f"feature extraction failed for {len(failures)} item(s):\n" + "\n".join(failures))
        return reports

    def detection_summary(self, utterances: list[Utterance]) -> tuple[int, int]:
        """Video frames without a mouth detection, and all video frames, over the cached utterances."""
        store = self.store(self.video)
        metas = [store.read(u)[1] for u in utterances]
        return sum(m["n_missed"] for m in metas), sum(m["n_frames"] for m in metas)

    def raw_frames(self, utterances: list[Utterance], scheme: LabelScheme | None,
                   audio_waveform: WaveformTransform | None = None,
                   modalities: list[str] | None = None) -> dict[str, list[UttFrames]]:
        """Raw features at 100 frames/s (of `modalities`, default all), with frame labels of
        `scheme` (None: no labels).

        Cached features are used, except for the audio when `audio_waveform` is given: then the
        audio features are computed from `audio_waveform(utt, clean_waveform)` (e.g. with noise added).
        """
        names = list(modalities or self.modalities)
        stores = {name: self.store(self.modalities[name]) for name in {"audio", *names}}
        out: dict[str, list[UttFrames]] = {name: [] for name in names}
        extractor = self.audio.extractor
        for utt in utterances:
            if audio_waveform is None:
                audio, _ = stores["audio"].read(utt)
            else:
                clean = load_audio(extractor.source(utt), extractor.sample_rate)
                audio = extractor.from_waveform(audio_waveform(utt, clean))
            n_frames = len(audio)
            labels = None
            if scheme is not None:
                labels = scheme.frame_labels(utterance_labels(utt), n_frames)
            for name in names:
                x, meta = (audio, {}) if name == "audio" else stores[name].read(utt)
                if "fps" in meta:
                    self._check_durations(utt, meta, n_frames)
                    x = to_frame_rate(np.asarray(x), meta["fps"], n_frames)
                out[name].append(UttFrames(utt.id, utt.speaker, np.asarray(x, dtype=np.float32), labels))
        return out

    def _check_durations(self, utt: Utterance, meta: dict, n_frames: int) -> None:
        """Policy: up to `max_av_mismatch_s` apart, video is interpolated/held to the audio frames."""
        video_s = meta["n_frames"] / meta["fps"]
        audio_s = n_frames / FRAME_RATE
        if abs(video_s - audio_s) > self.max_av_mismatch_s:
            raise AvMismatchError(
                f"{utt.video}: video lasts {video_s:.3f} s but its audio {audio_s:.3f} s "
                f"(tolerance {self.max_av_mismatch_s} s, frontend.max_av_mismatch_s)"
            )

    def fit(self, corpus: Corpus) -> "FrontEnd":
        """Fit every modality's steps on the training split only."""
        train = corpus.split("train")
        if not train:
            raise ValueError(f"{corpus.name}: no training utterances to fit the front-end on")
        raw = self.raw_frames(train, corpus_scheme(self.fit_labels, corpus))
        for name, modality in self.modalities.items():
            modality.fit(raw[name])
        self.fitted_ = True
        return self

    def transform(self, utterances: list[Utterance], scheme: LabelScheme,
                  audio_waveform: WaveformTransform | None = None) -> FrameData:
        if not self.fitted_:
            raise RuntimeError("front-end used before fit (fit it on the training split)")
        raw = self.raw_frames(utterances, scheme, audio_waveform)
        features = {name: m.transform(raw[name]) for name, m in self.modalities.items()}
        first = next(iter(features.values()))
        lengths = np.array([len(u.x) for u in first])
        return FrameData(
            features={name: np.concatenate([u.x for u in us]) for name, us in features.items()},
            labels=np.concatenate([u.labels for u in first]),
            offsets=np.concatenate([[0], np.cumsum(lengths)]),
            ids=[u.id for u in first], speakers=[u.speaker for u in first],
        )

    def with_audio(self, data: FrameData, utterances: list[Utterance],
                   audio_waveform: WaveformTransform) -> FrameData:
        """`data` (a transform of `utterances`) with only the audio recomputed from transformed waveforms,
        e.g. noisy ones: the other modalities do not depend on the audio and are reused."""
        raw = self.raw_frames(utterances, None, audio_waveform, modalities=["audio"])["audio"]
        audio = np.concatenate([u.x for u in self.audio.transform(raw)])
        return dataclasses.replace(data, features={**data.features, "audio": audio})

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_bytes(pickle.dumps(self))

    @staticmethod
    def load(path: str | Path) -> "FrontEnd":
        return pickle.loads(Path(path).read_bytes())
