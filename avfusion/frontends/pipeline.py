"""From recordings to frame-synchronous features, with every fitted step learned on train only.

    raw features (cached per utterance) -> 100 frames/s -> steps (CMVN, splice, LDA, splice)

Each modality is a `ModalityFrontEnd` (an extractor and its steps, all from `conf/frontend/`); the
`FrontEnd` holds the modalities, builds their caches, fits their steps on the training utterances with
the frame labels it is handed, and transforms any utterances into unlabelled features. Steps share one
interface: `fit(utterances)` and `transform(utterances)` over lists of `UttFrames`, and
`state_dict()` / `load_state_dict(arrays)` for what fitting learned (plain arrays, saved as .npz).
Labelling and assembling the frames of a split is `avfusion.frames`' job. A `StreamFrontEnd` is a modality
kept at its own rate with no fitted steps (the mouth pixels for a CNN encoder): `streams_of` gives its
cached frames per utterance as a `VideoStream`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from avfusion.errors import ConfigError, UserError
from avfusion.corpus.types import Utterance
from avfusion.frames.cache import NOT_IN_KEY, NOT_IN_KEY_WHEN_NULL
from avfusion.frames.clock import FRAME_RATE
from avfusion.frames.data import UttFrames, VideoStream, WaveformTransform
from avfusion.frontends.step import FrontEndStep, gather_all, through
from avfusion.frontends.store import FeatureError, FeatureStore
from avfusion.frontends.video import missed_detections, to_frame_rate
from avfusion.media import load_audio

log = logging.getLogger(__name__)

STORE_DTYPES = (None, "float16", "float32")  # what the prepared frame matrices may be kept as
LabelsOf = Callable[[Utterance, int], np.ndarray]  # (utterance, its frame count) -> frame labels


@dataclass
class ModalityFrontEnd:
    """One modality: a raw-feature extractor and the steps applied at 100 frames/s. A derived modality (the
    reliability measures) has no extractor of its own: its steps start from the raw features of the modality
    it `reads`, so whatever changes those (noise, a degraded video) changes it too."""

    name: str
    extractor: object | None
    steps: list[FrontEndStep]
    # a derived modality: the other modality whose raw features it starts from (the video's with one more
    # column, 1 on the video frames whose mouth box was interpolated: no detection)
    reads: str | None = None

    def __post_init__(self) -> None:
        for i, step in enumerate(self.steps):
            if not isinstance(step, FrontEndStep):
                raise ConfigError(f"frontend.{self.name}.steps.{i}: {type(step).__name__} is not a front-end step; "
                                  "derive it from avfusion.frontends.step.FrontEndStep")

    def fit(self, utterances: list[UttFrames]) -> "ModalityFrontEnd":
        for step in self.steps:
            step.fit(utterances)
            utterances = step.transform(utterances)
        return self

    def fit_in_parts(self, parts: Callable[[], Iterator[list[UttFrames]]], gathered=None) -> "ModalityFrontEnd":
        """`fit` on the raw training utterances that `parts()` gives a batch at a time: each step that learns
        makes its own pass, each batch through the steps before it. `gathered`: the first learning step's
        statistics over those utterances (`gather`, e.g. merged from shards), fitted from without a pass."""
        first = self.first_gathering()
        for i, step in enumerate(self.steps):
            if gathered is not None and i == first:
                step.fit_moments(gathered)
            elif step.learns:
                step.fit_in_parts(lambda before=self.steps[:i]: (through(before, part) for part in parts()))
        return self

    def first_gathering(self) -> int | None:
        """The index of the first step that learns, when it fits from statistics (`FrontEndStep.gathers`): the
        steps before it learn nothing, so its statistics can be gathered before anything is fitted."""
        first = next((i for i, step in enumerate(self.steps) if step.learns), None)
        return first if first is not None and self.steps[first].gathers else None

    def gather(self, utterances: list[UttFrames], into=None):
        """`into` (None: new) with the first learning step's statistics (see `first_gathering`) over raw training
        utterances added."""
        first = self.first_gathering()
        return self.steps[first].gather(through(self.steps[:first], utterances), into)

    def transform(self, utterances: list[UttFrames]) -> list[UttFrames]:
        return through(self.steps, utterances)

    def state_dict(self) -> dict[str, np.ndarray]:
        """What the steps learned, keyed `steps.<i>.<name>`."""
        return {f"steps.{i}.{k}": v for i, step in enumerate(self.steps) for k, v in step.state_dict().items()}

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        for i, step in enumerate(self.steps):
            prefix = f"steps.{i}."
            try:
                step.load_state_dict({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
            except ValueError as err:
                raise ValueError(f"{self.name} step {i} ({type(step).__name__}): {err}: the front-end was "
                                 "saved with another configuration") from None


@dataclass
class StreamFrontEnd:
    """A modality kept at its own rate (mouth ROIs for `VideoCnnEncoder`): an extractor and no fitted
    steps; the model brings it to the label frames itself (`avfusion.frames.data.VideoStream`)."""

    name: str
    extractor: object
    source: str  # the recording it is extracted from


class AvMismatchError(UserError):
    pass


@dataclass
class FrontEnd:
    """Audio (and video) front-ends over a feature cache (`conf/frontend/default.yaml`)."""

    NOT_SHAPING: ClassVar[tuple[str, ...]] = NOT_IN_KEY  # where the cache is and how fast it fills
    NOT_SHAPING_WHEN_NULL: ClassVar[tuple[str, ...]] = NOT_IN_KEY_WHEN_NULL

    audio: ModalityFrontEnd
    video: ModalityFrontEnd | None  # None: audio only
    cache_dir: str
    fit_labels: str  # labels the LDAs are fitted with (more classes than LDA dims): phone_state/word_state
    max_av_mismatch_s: float  # beyond this, audio and video durations are an error
    n_jobs: int
    streams: list[StreamFrontEnd] = field(default_factory=list)  # modalities kept at their own rate
    measures: list[ModalityFrontEnd] = field(default_factory=list)  # derived modalities (reliability measures)
    # None (runs saved before it existed have none): fit on all training frames at once; N: in batches of N utterances
    fit_batch_utterances: int | None = None
    # None (float32): what the prepared frame matrices are kept as; float16 halves their disk and page cache
    store_dtype: str | None = None
    # None: each split's frame matrices one set of arrays; N: stored in shards of N utterances (avfusion.frames.writer)
    frame_shard_utterances: int | None = None
    fitted_: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.store_dtype not in STORE_DTYPES:
            raise ConfigError(f"frontend.store_dtype={self.store_dtype!r}: choose {STORE_DTYPES[1:]} or null (float32)")
        recorded = [m.name for m in (self.audio, self.video) if m is not None]
        for i, measure in enumerate(self.measures):
            if measure.reads not in recorded:
                raise ConfigError(f"frontend.measures.{i}.reads={measure.reads!r}: a measure reads the raw features "
                                  f"of one of the front-end's modalities {recorded}")
        names = [m.name for m in self.measures] + [s.name for s in self.streams]
        clash = sorted({n for n in names if names.count(n) > 1 or n in recorded})
        if clash:
            raise ConfigError(f"frontend.streams/measures: {clash} is already a modality of the front-end; name it otherwise")

    @property
    def modalities(self) -> dict[str, ModalityFrontEnd]:
        return {m.name: m for m in (self.audio, self.video, *self.measures) if m is not None}

    def source_of(self, name: str) -> str:
        """The modality whose raw features modality `name` starts from (its own, unless derived)."""
        return self.modalities[name].reads or name

    def computed_from(self, source: str) -> list[str]:
        """The modalities whose features change with `source`'s (audio: the audio and its measures)."""
        return [name for name in self.modalities if self.source_of(name) == source]

    @property
    def extracted(self) -> dict[str, tuple[str, object]]:
        """Every modality and stream with its cached extractor: {name: (recording it reads, extractor)}."""
        return {**{name: (name, m.extractor) for name, m in self.modalities.items() if m.reads is None},
                **{s.name: (s.source, s.extractor) for s in self.streams}}

    def store(self, modality: ModalityFrontEnd | StreamFrontEnd) -> FeatureStore:
        return FeatureStore(self.cache_dir, modality.extractor)

    def prepare(self, utterances: list[Utterance], progress: bool = True) -> dict:
        """Extract and cache raw features of every modality and stream; raise with every failure listed."""
        for name, (source, _) in self.extracted.items():
            lacking = [u.id for u in utterances if getattr(u, source) is None]
            if lacking:
                hint = " (an audio-only corpus: frontend=audio_only fusion=audio_only)" if source == "video" else ""
                raise ValueError(f"{len(lacking)} of {len(utterances)} utterances have no {source} (e.g. "
                                 f"{lacking[:3]}), but the front-end has a {name} modality{hint}")
        reports = {}
        for name, (_, extractor) in self.extracted.items():
            report = FeatureStore(self.cache_dir, extractor).build(utterances, n_jobs=self.n_jobs, progress=progress)
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

    def raw_frames(self, utterances: list[Utterance], audio_waveform: WaveformTransform | None = None,
                   modalities: list[str] | None = None, video=None) -> dict[str, list[UttFrames]]:
        """Raw features at 100 frames/s (of `modalities`, default all), unlabelled.

        Cached features are used, except for the audio when `audio_waveform` is given: then the
        audio features are computed from `audio_waveform(utt, clean_waveform)` (e.g. with noise added);
        and for the video when `video` (a `DegradedVideo`) is given: from the degraded frames.
        """
        names = list(modalities or self.modalities)
        sources = list(dict.fromkeys(self.source_of(name) for name in names))
        stores = {name: self.store(self.modalities[name]) for name in {"audio", *sources}}
        out: dict[str, list[UttFrames]] = {name: [] for name in names}
        extractor = self.audio.extractor
        for utt in utterances:
            if audio_waveform is None:
                audio, _ = stores["audio"].read(utt)
            else:
                clean = load_audio(extractor.source(utt), extractor.sample_rate)
                audio = extractor.from_waveform(audio_waveform(utt, clean))
            n_frames = len(audio)
            raw, measured = {}, {}  # each recording's raw features once, for it and the measures derived from it
            for source in sources:
                x, meta = (audio, {}) if source == "audio" else self.read(source, stores[source], utt, video)
                if "fps" not in meta:
                    raw[source] = x
                    continue
                self.check_durations(utt.video, meta, n_frames)
                if source in names:
                    raw[source] = to_frame_rate(np.asarray(x), meta["fps"], n_frames)
                if any(n != source and self.source_of(n) == source for n in names):  # its measures: + missed detections
                    measured[source] = to_frame_rate(np.hstack([np.asarray(x), missed_detections(meta, utt.video)]),
                                                     meta["fps"], n_frames)
            for name in names:
                source = self.source_of(name)
                x = measured[source] if name != source and source in measured else raw[source]
                out[name].append(UttFrames(utt.id, utt.speaker, np.asarray(x, dtype=np.float32)))
        return out

    def read(self, name: str, store: FeatureStore, utt: Utterance, video=None) -> tuple[np.ndarray, dict]:
        """Modality or stream `name`'s raw features of `utt`: cached, or from its video degraded by `video`."""
        source, extractor = self.extracted[name]
        return extractor.extract_degraded(utt, video) if video is not None and source == "video" else store.read(utt)

    def check_durations(self, video: object, meta: dict, n_frames: int) -> None:
        """Policy: up to `max_av_mismatch_s` apart, video is interpolated/held to the audio frames."""
        video_s = meta["n_frames"] / meta["fps"]
        audio_s = n_frames / FRAME_RATE
        if abs(video_s - audio_s) > self.max_av_mismatch_s:
            raise AvMismatchError(
                f"{video}: video lasts {video_s:.3f} s but its audio {audio_s:.3f} s "
                f"(tolerance {self.max_av_mismatch_s} s, frontend.max_av_mismatch_s)"
            )

    def streams_of(self, utterances: list[Utterance], n_frames: np.ndarray, video=None) -> dict[str, VideoStream]:
        """Each stream's cached frames of `utterances` (whose label frames number `n_frames`), at their rate;
        with `video` (a `DegradedVideo`), the streams cut from the video, from its degraded frames."""
        out = {}
        for stream in self.streams:
            store = self.store(stream)
            frames, fps = [], []
            for utt, n in zip(utterances, n_frames):
                x, meta = self.read(stream.name, store, utt, video)
                self.check_durations(getattr(utt, stream.source), meta, int(n))
                frames.append(np.asarray(x))
                fps.append(float(meta["fps"]))
            offsets = np.concatenate([[0], np.cumsum([len(x) for x in frames])]).astype(np.int64)
            shape = frames[0].shape[1:] if frames else (0,)
            out[stream.name] = VideoStream(np.concatenate(frames) if frames else np.zeros((0, *shape), np.uint8),
                                           offsets, np.array(fps))
        return out

    def labelled(self, utterances: list[Utterance], labels_of: LabelsOf, names: list[str]) -> dict[str, list[UttFrames]]:
        """The raw frames of `utterances` in modalities `names`, labelled by `labels_of`."""
        raw = self.raw_frames(utterances, modalities=names)
        labels = [labels_of(utt, len(u.x)) for utt, u in zip(utterances, next(iter(raw.values())))]
        return {name: [dataclasses.replace(u, labels=y) for u, y in zip(frames, labels)] for name, frames in raw.items()}

    def labelled_batches(self, utterances: list[Utterance], labels_of: LabelsOf, name: str) -> Iterator[list[UttFrames]]:
        """Modality `name`'s labelled raw frames of `utterances`, `fit_batch_utterances` utterances at a time."""
        size = self.fit_batch_utterances or max(len(utterances), 1)
        for first in range(0, len(utterances), size):
            yield self.labelled(utterances[first:first + size], labels_of, [name])[name]

    def gather(self, utterances: list[Utterance], labels_of: LabelsOf) -> dict[str, object]:
        """Per modality whose first learning step fits from statistics (`ModalityFrontEnd.first_gathering`), those
        statistics over training `utterances` (a batch at a time): what `fit(..., gathered=)` takes, summed over
        parts of the training split (shards gathered on different machines)."""
        return {name: gather_all(modality, self.labelled_batches(utterances, labels_of, name))
                for name, modality in self.modalities.items() if utterances and modality.first_gathering() is not None}

    def fit(self, utterances: list[Utterance], labels_of: LabelsOf, gathered: dict[str, object] | None = None
            ) -> "FrontEnd":
        """Fit every modality's steps on `utterances` (the training split: never dev or test) whose frame
        labels `labels_of(utterance, n_frames)` gives (the LDAs need them). `gathered`: `gather`'s statistics over
        these utterances, by modality: their first learning steps fitted from them, without a pass (fitted in
        batches: `fit_batch_utterances` must be set)."""
        if not utterances:
            raise ValueError("no training utterances to fit the front-end on")
        gathered = gathered or {}
        if gathered and not self.fit_batch_utterances:
            raise ValueError("a front-end fitted at once (fit_batch_utterances null) fits from every frame, "
                             "not from gathered statistics")
        if not gathered and (not self.fit_batch_utterances or self.fit_batch_utterances >= len(utterances)):
            # all at once, as before fitting in parts existed: the steps' own `fit`
            for name, frames in self.labelled(utterances, labels_of, list(self.modalities)).items():
                self.modalities[name].fit(frames)
        else:  # one batch in memory at a time, a pass per step that learns (the cached raw features read again)
            for name, modality in self.modalities.items():
                modality.fit_in_parts(lambda name=name: self.labelled_batches(utterances, labels_of, name),
                                      gathered.get(name))
        self.fitted_ = True
        return self

    def transform(self, utterances: list[Utterance], audio_waveform: WaveformTransform | None = None,
                  modalities: list[str] | None = None, video=None) -> dict[str, list[np.ndarray]]:
        """Per modality, each utterance's (T, D) features; T is the same for every modality. `audio_waveform`,
        `video`: see `raw_frames`."""
        if not self.fitted_:
            raise RuntimeError("front-end used before fit (fit it on the training split)")
        raw = self.raw_frames(utterances, audio_waveform, modalities, video)
        return {name: [u.x for u in self.modalities[name].transform(us)] for name, us in raw.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """What fitting learned, as plain arrays keyed `<modality>.steps.<i>.<name>` (for np.savez)."""
        if not self.fitted_:
            raise RuntimeError("front-end saved before fit")
        return {f"{name}.{k}": v for name, m in self.modalities.items() for k, v in m.state_dict().items()}

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> "FrontEnd":
        """The fitted state saved by `state_dict`, into a front-end built from the same configuration."""
        unknown = {k.split(".", 1)[0] for k in arrays} - set(self.modalities)
        if unknown:
            raise ValueError(f"the saved front-end has modalities {sorted(unknown)} that this configuration "
                             f"lacks (it has {sorted(self.modalities)})")
        for name, modality in self.modalities.items():
            prefix = f"{name}."
            modality.load_state_dict({k[len(prefix):]: np.asarray(v) for k, v in arrays.items() if k.startswith(prefix)})
        self.fitted_ = True
        return self
