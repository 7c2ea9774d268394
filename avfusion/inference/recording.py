"""A new recording read through a run's front-ends, a block at a time: where its audio came from, its
waveform and raw features (files of rows in the scratch folder), its video facts and mouth crops, and the
streams a CNN encoder reads at the video rate."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avfusion.corpus.types import Utterance
from avfusion.errors import UserError
from avfusion.frames.clock import num_frames
from avfusion.frames.data import VideoStream
from avfusion.frontends.video import AtFrameRate, missed_detections
from avfusion.inference.store import Scratch
from avfusion.media import AudioError, iter_audio

log = logging.getLogger(__name__)


@dataclass
class ClipMedia:
    """What the clip looked and sounded like (the figure's material): the waveform, the mouth crops kept
    and the video's facts."""

    waveform: np.ndarray | None = None  # the audio at `sample_rate` (a memory map); None: no audio
    sample_rate: int = 16000
    fps: float | None = None
    video_frames: int = 0
    missed_detections: int = 0
    detector: str | None = None
    roi_frames: np.ndarray | None = None  # video frame index of each kept ROI
    mouth_box_px: float | None = None  # the median side of the mouth box cut from the frames
    rois: np.ndarray | None = None  # (K, S, S) grey mouth crops, evenly spread

    @property
    def roi_times(self) -> np.ndarray:
        return np.zeros(0) if self.roi_frames is None else self.roi_frames / self.fps


@dataclass(frozen=True)
class Columns:
    """Rows of two row-aligned arrays (or files of rows) side by side, read as asked (`len`, `[a:b]`)."""

    left: object
    right: np.ndarray

    def __len__(self) -> int:
        return len(self.left)

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.hstack([np.asarray(self.left[rows]), self.right[rows]])


@dataclass
class Recording:
    audio_source: Path | None  # the file the audio came from (the video itself for its own track)
    modalities: list[str]  # what the model reads
    raw: dict  # raw features at 100 frames/s per modality the model reads (files of rows, or AtFrameRate)
    n_frames: int  # label frames of the recording
    duration: float  # seconds
    media: ClipMedia
    streams: dict[str, VideoStream] = field(default_factory=dict)  # modalities kept at the video rate


def read_recording(run, video: Path | None, audio, needs: list[str], detector, rois: int, progress: bool,
                   scratch: Scratch) -> Recording:
    """The recording as the run's front-ends give it, for the modalities the model `needs`."""
    frontend = run.frontend
    sample_rate = frontend.audio.extractor.sample_rate
    audio_source, waveform, raw = _audio(frontend, video, audio, needs, run.directory, scratch, progress)
    media = ClipMedia(sample_rate=sample_rate)
    if video is not None and frontend.video is not None:
        vx = frontend.video.extractor
        if detector is not None:
            vx = dataclasses.replace(vx, detector=detector)
        features, meta, kept, crops = vx.read(video, keep_rois=rois, progress=progress,
                                              sink=scratch.rows("video_features", (vx.n_coefficients,)))
        n_frames = len(raw["audio"]) if "audio" in raw else num_frames(meta["n_frames"] / meta["fps"])
        if "audio" in raw:
            frontend.check_durations(video, meta, n_frames)
        raw["video"] = AtFrameRate(features, meta["fps"], n_frames)
        media = ClipMedia(sample_rate=sample_rate, fps=meta["fps"], video_frames=meta["n_frames"],
                          missed_detections=meta["n_missed"], detector=vx.detector.name, roi_frames=kept, rois=crops,
                          mouth_box_px=meta.get("mouth_box_px"))
    for name in needs:  # a derived modality (reliability measures) starts from its source's raw features
        source = frontend.source_of(name) if name in frontend.modalities else name
        if source == name or source not in raw:
            continue
        given = raw[source]  # the video's, at its rate: + its missed detections
        raw[name] = given if not isinstance(given, AtFrameRate) else AtFrameRate(
            Columns(given.x, missed_detections(meta, video)), given.fps, given.n_frames)
    media.waveform = None if waveform is None else waveform.array()
    duration = len(waveform) / sample_rate if waveform is not None else media.video_frames / media.fps
    n_frames = len(raw["audio"]) if "audio" in raw else num_frames(media.video_frames / media.fps)
    return Recording(audio_source, list(needs), {m: raw[m] for m in needs if m in raw}, n_frames, duration, media,
                     _streams(frontend, video, needs, detector))


def _audio(frontend, video: Path | None, audio, needs: list[str], run_dir: Path, scratch: Scratch, progress: bool):
    """The file the audio comes from, its waveform at the front-end's rate and its raw MFCCs ({"audio": ...}),
    both as files of rows written a block at a time (None, None, {}: no audio)."""
    source = Path(audio) if audio is not None else video
    extractor = frontend.audio.extractor
    waveform, mfcc = scratch.rows("waveform"), scratch.rows("audio_features", (extractor.n_mfcc,))

    def samples():
        for block in iter_audio(source, extractor.sample_rate):
            waveform.append(block)
            yield block

    try:
        blocks = extractor.stream(samples())
        if progress:
            from tqdm.auto import tqdm

            blocks = tqdm(blocks, desc="audio features", unit="block")
        for block in blocks:
            mfcc.append(block)
    except AudioError as err:
        if audio is None and "audio" not in needs:  # a silent clip for a video-only model
            log.info("%s: no audio (%s); the model reads video only", source, err)
            return None, None, {}
        if audio is None:
            raise UserError(f"{run_dir}: the model reads audio, but {err}; give audio=<file> "
                            "(or use a video-only run)") from None
        raise
    return source, waveform, {"audio": mfcc}


def _streams(frontend, video: Path | None, needs: list[str], detector) -> dict[str, VideoStream]:
    """The recording's frames of each front-end stream the model reads (mouth ROIs at the video rate)."""
    out = {}
    for stream in frontend.streams:
        if stream.name in needs:
            extractor = stream.extractor if detector is None else dataclasses.replace(stream.extractor, detector=detector)
            frames, meta = extractor.extract(Utterance(video.stem, "clip", "test", None, video, None))
            out[stream.name] = VideoStream(frames, np.array([0, len(frames)]), np.array([float(meta["fps"])]))
    return out
