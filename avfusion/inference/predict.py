"""A trained run on a new recording: phones with times, per-frame posteriors, and what went in.

    video (+ its audio track, or a separate audio file) -> the run's front-ends, fitted on its training
    split -> its model -> its decoder -> units with start, end and confidence

Any length in bounded memory: the audio is decoded, resampled and turned into MFCCs a block at a time,
the video is streamed (decoded twice: mouth boxes, then crops), and the waveform, the raw features and
the posteriors go to files in a scratch folder (`avfusion.inference.store`) as they are made. The
front-end steps and the model run over pieces of `chunk_seconds` with the context they need on either
side (`avfusion.inference.chunks`), so the posteriors equal those of one pass; the decoder takes them a
piece at a time (the Viterbi search's backpointers go to the scratch folder too). What grows with the
recording in memory is the decoding itself (a unit list and a label per frame) and the mouth boxes.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avfusion.corpus.alignments import MULTI_READERS, alignment_format, utterance_labels
from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Segment, Utterance
from avfusion.decoding.framewise import DecodedUnit, FramewiseDecoder
from avfusion.decoding.hybrid import scored
from avfusion.errors import UserError
from avfusion.frames.clock import FRAME_RATE, num_frames
from avfusion.frames.data import FrameData, VideoStream
from avfusion.frames.labelling import reference
from avfusion.frontends.video import AtFrameRate
from avfusion.inference.chunks import for_clip, piece, spans, steps_context
from avfusion.inference.store import Scratch
from avfusion.media import AudioError, iter_audio
from avfusion.metrics.per import EditCounts, edit_counts
from avfusion.runs import Run, load_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimedUnit:
    label: str
    start: float  # seconds
    end: float
    confidence: float  # mean posterior of the unit over its frames
    first_frame: int
    end_frame: int  # one past the last


@dataclass
class Prediction:
    """What `predict` returns: everything the output files and the figure are made of."""

    run: Path
    name: str  # the run's report name
    video: Path | None
    audio: Path | None  # the file the audio came from (the video itself for its own track)
    scheme: LabelScheme  # the run's classes and units
    posteriors: np.ndarray  # (T, C) class posteriors at 100 frames/s (a read-only memory map)
    units: list[TimedUnit]  # the decoding, silence included
    decoder: str  # viterbi | framewise
    duration: float  # seconds
    modalities: list[str]  # what the model read
    decoded: list[DecodedUnit] = dataclasses.field(default_factory=list)  # the decoder's units (frames)
    waveform: np.ndarray | None = None  # the audio at `sample_rate`, for the spectrogram (a memory map)
    sample_rate: int = 16000
    fps: float | None = None
    video_frames: int = 0
    missed_detections: int = 0
    detector: str | None = None
    roi_frames: np.ndarray | None = None  # video frame index of each kept ROI
    rois: np.ndarray | None = None  # (K, S, S) grey mouth crops, evenly spread
    reference: list[Segment] | None = None  # normalised segments of the given alignment
    edits: EditCounts | None = None  # the decoding against the reference (silence left out)

    @property
    def classes(self) -> list[str]:
        return list(self.scheme.classes)

    @property
    def unit_names(self) -> list[str]:
        return list(self.scheme.units)

    @property
    def unit_kind(self) -> str:
        """phones | words"""
        return self.scheme.unit_kind

    @property
    def unit_posteriors(self) -> np.ndarray:
        """(T, U): class posteriors summed into their units (states into phones)."""
        return self.scheme.unit_posteriors(self.posteriors)

    @property
    def roi_times(self) -> np.ndarray:
        return np.zeros(0) if self.roi_frames is None else self.roi_frames / self.fps

    def summary(self) -> dict:
        """The JSON-able facts of this prediction (written beside the outputs)."""
        return {
            "run": str(self.run), "model": self.name, "video": str(self.video) if self.video else None,
            "audio": str(self.audio) if self.audio else None, "modalities": self.modalities,
            "duration_s": round(self.duration, 4), "frames": int(len(self.posteriors)), "decoder": self.decoder,
            "detector": self.detector, "video_frames": self.video_frames, "fps": self.fps,
            "missed_detections": self.missed_detections,
            "units": [u.label for u in self.units],
            "error_rate": None if self.edits is None else self.edits.rate,
            "edits": None if self.edits is None else dataclasses.asdict(self.edits),
        }


def predict(run: Run | str | Path, video: str | Path | None = None, audio: str | Path | None = None,
            alignment: str | Path | None = None, *, alignment_key: str | None = None,
            reference_format: str | None = None, detector=None,
            chunk_seconds: float | None = 30.0, rois: int = 240, progress: bool = False,
            scratch_dir: str | Path | None = None) -> Prediction:
    """Run a finished run (or its folder) on one recording.

    `video`: a video file; its audio track is used unless `audio` (a wav, flac, ... or another container)
    is given. `alignment`: a reference (TextGrid, CTM, MLF, .phn, ...; `alignment_key`: its entry in a
    file of many, default the recording's file stem; `reference_format`: its reader when the suffix does not
    say, e.g. lrs3 for a .txt) to score the decoding against and to draw.
    `detector`: a mouth detector to use instead of the run's (e.g. MediapipeMouthDetector() for a face
    video when the run was trained on mouth crops). `chunk_seconds`: the length of the pieces the
    front-ends and the model run over (None: one piece). `rois`: how many mouth crops to keep, evenly
    spread (for the figure; every frame of a short clip). `scratch_dir`: where the per-frame arrays of the
    recording are kept while it is processed (default: the system's temporary folder); the returned
    posteriors and waveform are read-only maps of them, removed with the prediction.
    """
    run = run if isinstance(run, Run) else load_run(run)
    if video is None and audio is None:
        raise UserError("nothing to predict: give video=<clip> and/or audio=<file>")
    needs = run.model.modalities
    if getattr(run.model.head, "needs_segments", False):
        raise UserError(f"{run.directory}: its head ({type(run.model.head).__name__}, pooling=segment) classifies "
                        "the segments of a reference alignment; it cannot transcribe a new recording")
    video = Path(video) if video is not None else None
    if video is not None and not video.is_file():
        raise UserError(f"video={video}: no such file")
    if audio is not None and not Path(audio).is_file():
        raise UserError(f"audio={audio}: no such file")
    if video is None and ("video" in needs or any(s.name in needs for s in run.frontend.streams)):
        raise UserError(f"{run.directory}: the model reads video ({', '.join(needs)}): give video=<clip>")
    if scratch_dir is not None and not Path(scratch_dir).is_dir():
        raise UserError(f"scratch_dir={scratch_dir}: no such folder (give an existing one, or null for the "
                        "system's temporary folder)")
    scratch = Scratch(scratch_dir)
    try:
        result = _run(run, video, audio, needs, detector, chunk_seconds, rois, progress, scratch)
    except BaseException:
        scratch.remove()
        raise
    scratch.keep_for(result)  # its posteriors and waveform are maps of files in the scratch folder
    decoded, n_frames = result.decoded, len(result.posteriors)
    if alignment is not None:
        stem, alignment = (video or Path(audio)).stem, Path(alignment)
        fmt = alignment_format(alignment, reference_format)
        key = (alignment_key or stem) if fmt in MULTI_READERS else None  # an entry of many
        result.reference = utterance_labels(Utterance(stem, "clip", "test", result.audio, video, alignment,
                                                      alignment_key=key, labels=run.scheme.unit_kind,
                                                      alignment_format=fmt))
        ref = reference(run.scheme, result.reference, n_frames)
        result.edits = edit_counts(ref.units, scored(run.scheme, decoded))
    return result


def _run(run: Run, video: Path | None, audio, needs: list[str], detector, chunk_seconds: float | None, rois: int,
         progress: bool, scratch: Scratch) -> Prediction:
    frontend = run.frontend
    extractor = frontend.audio.extractor
    audio_source, waveform, raw = _audio(frontend, video, audio, needs, run.directory, scratch, progress)
    video_part: dict = {}
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
        video_part = {"fps": meta["fps"], "video_frames": meta["n_frames"], "missed_detections": meta["n_missed"],
                      "detector": vx.detector.name, "roi_frames": kept, "rois": crops}
    duration = len(waveform) / extractor.sample_rate if waveform is not None else \
        video_part["video_frames"] / video_part["fps"]

    streams = _streams(frontend, video, needs, detector)
    decoder = run.decoder
    if decoder is None:
        log.warning("%s has no saved decoder (decoder.json; runs made before every run saved one): decoding "
                    "frame-wise, not with the decoder it was evaluated with", run.directory)
        decoder = FramewiseDecoder(run.scheme)
    decoding = decoder.stream(spill=scratch.path / "backpointers.bin")
    post = scratch.rows("posteriors", (run.scheme.num_classes,))
    n_frames = len(raw["audio"]) if "audio" in raw else num_frames(video_part["video_frames"] / video_part["fps"])
    for block in posterior_blocks(run, {m: raw[m] for m in needs if m in raw}, chunk_seconds, progress,
                                  streams, n_frames):
        post.append(block)
        decoding.push(block)
    decoded = decoding.finish()
    units = timed_units(run.scheme, decoded, post, duration)
    return Prediction(run.directory, run.name, video, audio_source, run.scheme, post.array(), units,
                      decoder.name, duration, needs, decoded=decoded,
                      waveform=None if waveform is None else waveform.array(), sample_rate=extractor.sample_rate,
                      **video_part)


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


def posterior_blocks(run: Run, raw: dict, chunk_seconds: float | None, progress: bool = False,
                     streams: dict[str, VideoStream] | None = None, n_frames: int | None = None) -> Iterator[np.ndarray]:
    """(t, C) posteriors of the run's model, consecutive blocks of the recording, from raw features at 100
    frames/s (T, D) per modality (arrays or files of rows), through the run's fitted front-end steps, in
    pieces of `chunk_seconds` with the context they need. `streams`: modalities at their own rate, which
    the model (a CNN over the whole sequence) reads in one piece; `n_frames`: the recording's label frames
    (default: the raw features' length)."""
    steps = {m: run.frontend.modalities[m].steps for m in raw}
    contexts = {m: steps_context(s) for m, s in steps.items()}
    model_context = run.model.frame_context
    n_frames = len(next(iter(raw.values()))) if n_frames is None else n_frames
    chunk = None if chunk_seconds is None else max(1, int(round(chunk_seconds * FRAME_RATE)))
    if None in contexts.values() or model_context is None:
        if chunk is not None and chunk < n_frames:
            log.info("the model or a front-end step looks at the whole sequence: one piece of %d frames", n_frames)
        chunk = model_context = None
        contexts = dict.fromkeys(contexts, 0)
    resolved = {m: for_clip(s, raw[m], chunk) for m, s in steps.items()}
    pieces = list(spans(n_frames, chunk))
    if progress and len(pieces) > 1:
        from tqdm.auto import tqdm

        pieces = tqdm(pieces, desc="front-end and model", unit="piece")
    for lo, hi in pieces:
        a, b = (0, n_frames) if model_context is None else (max(0, lo - model_context), min(n_frames, hi + model_context))
        features = {m: piece(resolved[m], raw[m], a, b, contexts[m]) for m in raw}
        data = FrameData(features, np.zeros(b - a, np.int64), np.array([0, b - a]), ["clip"], ["clip"], streams or {})
        yield run.model.posteriors(data)[lo - a:hi - a]


def posteriors(run: Run, raw: dict, chunk_seconds: float | None, progress: bool = False) -> np.ndarray:
    """All of `posterior_blocks` as one (T, C) array."""
    return np.concatenate(list(posterior_blocks(run, raw, chunk_seconds, progress)))


def timed_units(scheme, decoded: list[DecodedUnit], posteriors, duration: float, block: int = 6000) -> list[TimedUnit]:
    """Decoded frame runs as times: a boundary between frames k - 1 and k at (k - 0.5) / 100 s, which the
    project's frame labelling maps back to the same frames; the first starts at 0, the last ends at the end.
    The confidence is the unit's mean posterior over its frames (`posteriors` read `block` frames at a time)."""
    n_frames = len(posteriors)
    sums = np.zeros(len(decoded))
    starts = np.array([d.start for d in decoded], np.int64)
    ends = np.array([d.end for d in decoded], np.int64)
    units = np.array([d.unit for d in decoded], np.int64)
    for lo in range(0, n_frames, block):
        hi = min(lo + block, n_frames)
        unit_post = scheme.unit_posteriors(np.asarray(posteriors[lo:hi]))
        for i in range(np.searchsorted(ends, lo, side="right"), np.searchsorted(starts, hi)):
            a, b = max(starts[i], lo), min(ends[i], hi)
            sums[i] += unit_post[a - lo:b - lo, units[i]].sum()
    out = []
    for d, total in zip(decoded, sums):
        start = 0.0 if d.start == 0 else min((d.start - 0.5) / FRAME_RATE, duration)
        end = duration if d.end >= n_frames else min((d.end - 0.5) / FRAME_RATE, duration)
        out.append(TimedUnit(scheme.units[d.unit], start, end, float(total / max(d.end - d.start, 1)), d.start, d.end))
    return out
