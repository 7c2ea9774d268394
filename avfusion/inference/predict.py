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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avfusion.corpus.alignments import MULTI_READERS, WORD_ONLY, alignment_format, utterance_labels
from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.phones import SIL
from avfusion.corpus.types import Segment, Utterance
from avfusion.decoding.framewise import DecodedUnit, FramewiseDecoder
from avfusion.decoding.hybrid import scored
from avfusion.errors import UserError
from avfusion.frames.labelling import reference
from avfusion.inference.agreement import av_mismatch, clip_agreement
from avfusion.inference.posteriors import model_pieces
from avfusion.inference.recording import ClipMedia, Recording, read_recording
from avfusion.inference.store import Scratch
from avfusion.inference.checks import degenerate_output, out_of_domain
from avfusion.inference.units import TimedUnit, timed_units
from avfusion.metrics.per import EditCounts, edit_counts
from avfusion.models.encoders import EncoderOutputs
from avfusion.runs import Run, load_run

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    """What `predict` returns: the decoding and its posteriors, scored when a reference is given; the clip's
    own material (waveform, mouth crops) is `media`."""

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
    media: ClipMedia  # what the clip sounded and looked like: waveform, mouth crops, video facts (the figure's)
    decoded: list[DecodedUnit] = dataclasses.field(default_factory=list)  # the decoder's units (frames)
    reference: list[Segment] | None = None  # normalised segments of the given alignment
    edits: EditCounts | None = None  # the decoding against the reference (silence left out)
    warnings: list[str] = dataclasses.field(default_factory=list)  # what looks wrong with it (`checks`), logged too
    stream_weights: np.ndarray | None = None  # (T, K) the head's per-frame stream weights (reliability heads)
    weight_labels: list[str] = dataclasses.field(default_factory=list)  # what each of their columns is

    def unit_weights(self) -> list[list[float]]:
        """Each decoded unit's mean stream weights over its frames (empty without stream weights)."""
        if self.stream_weights is None:
            return []
        return [self.stream_weights[u.first_frame:max(u.end_frame, u.first_frame + 1)].mean(axis=0, dtype=np.float64)
                .round(4).tolist() for u in self.units]

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

    def summary(self) -> dict:
        """The JSON-able facts of this prediction (written beside the outputs)."""
        return {
            "run": str(self.run), "model": self.name, "video": str(self.video) if self.video else None,
            "audio": str(self.audio) if self.audio else None, "modalities": self.modalities,
            "duration_s": round(self.duration, 4), "frames": int(len(self.posteriors)), "decoder": self.decoder,
            "detector": self.media.detector, "video_frames": self.media.video_frames, "fps": self.media.fps,
            "missed_detections": self.media.missed_detections,
            "units": [u.label for u in self.units],
            "error_rate": None if self.edits is None else self.edits.rate,
            "edits": None if self.edits is None else dataclasses.asdict(self.edits),
            "warnings": self.warnings,
            **({} if self.stream_weights is None else {"stream_weights": {
                "labels": self.weight_labels, "mean": self.stream_weights.mean(axis=0, dtype=np.float64).round(4).tolist(),
                "per_unit": [[u.label, w] for u, w in zip(self.units, self.unit_weights())]}}),
        }


def reads_video(run: Run) -> bool:
    """Whether the run's model reads the video (its own stream, or one the front-end derives from it)."""
    needs = run.model.modalities
    return "video" in needs or any(s.name in needs for s in run.frontend.streams)


def predict(run: Run | str | Path, video: str | Path | None = None, audio: str | Path | None = None,
            alignment: str | Path | None = None, *, alignment_key: str | None = None,
            reference_format: str | None = None, text: str | None = None, lexicon=None, detector=None,
            chunk_seconds: float | None = 30.0, rois: int = 240, progress: bool = False,
            scratch_dir: str | Path | None = None) -> Prediction:
    """Run a finished run (or its folder) on one recording.

    `video`: a video file; its audio track is used unless `audio` (a wav, flac, ... or another container)
    is given. `text`: the clip's transcript, scored against as its words (a word model) or their phones by
    `lexicon` (an `avfusion.corpus.lexicon.Lexicon`; default: CMUdict, then espeak-ng), with no times.
    `alignment`: a reference (TextGrid, CTM, MLF, .phn, ...; `alignment_key`: its entry in a
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
    if text is not None and alignment is not None:
        raise UserError("text= and alignment= both given: score against one reference (the alignment has times)")
    words = None
    if alignment is not None and run.scheme.unit == "phone" and \
            alignment_format(alignment, reference_format) in WORD_ONLY:  # word timings (GRID, LRS): their phones
        words = reference_segments(alignment, reference_format, alignment_key, Path(video or audio), "words")
        text, alignment = " ".join(s.label for s in words if s.label != SIL), None
    expected = None if text is None else text_reference(run.scheme, text, lexicon)  # a bad word fails before work
    needs = run.model.modalities
    if getattr(run.model.head, "needs_segments", False):
        raise UserError(f"{run.directory}: its head ({type(run.model.head).__name__}, pooling=segment) classifies "
                        "the segments of a reference alignment; it cannot transcribe a new recording")
    video = Path(video) if video is not None else None
    if video is not None and not video.is_file():
        raise UserError(f"video={video}: no such file")
    if audio is not None and not Path(audio).is_file():
        raise UserError(f"audio={audio}: no such file")
    if video is None and reads_video(run):
        raise UserError(f"{run.directory}: the model reads video ({', '.join(needs)}): give video=<clip>")
    if scratch_dir is not None and not Path(scratch_dir).is_dir():
        raise UserError(f"scratch_dir={scratch_dir}: no such folder (give an existing one, or null for the "
                        "system's temporary folder)")
    scratch = Scratch(scratch_dir)
    try:
        recording = read_recording(run, video, audio, needs, detector, rois, progress, scratch)
        result = _predicted(run, recording, video, chunk_seconds, progress, scratch)
        agreement = clip_agreement(run, recording.raw, recording.streams, recording.n_frames, chunk_seconds)
    except BaseException:
        scratch.remove()
        raise
    scratch.keep_for(result)  # its posteriors and waveform are maps of files in the scratch folder
    decoded, n_frames = result.decoded, len(result.posteriors)
    clip = str(video or audio)
    result.warnings = degenerate_output(result, clip) + out_of_domain(result, run.dev_statistics, clip) \
        + av_mismatch(agreement, run.dev_statistics, clip)
    for warning in result.warnings:
        log.warning(warning)
    if alignment is not None:
        result.reference = reference_segments(alignment, reference_format, alignment_key, video or Path(audio),
                                              run.scheme.unit_kind)
        tolerance = float(run.config.get("max_duration_mismatch_s", 0.12))
        if result.reference[-1].end > result.duration + tolerance:  # as the corpus validator judges it
            raise UserError(f"alignment={alignment}: ends at {result.reference[-1].end:.3f} s, after the clip "
                            f"({result.duration:.3f} s; tolerance {tolerance} s): not this recording's reference")
        ref = reference(run.scheme, result.reference, n_frames)
        result.edits = edit_counts(ref.units, scored(run.scheme, decoded))
    elif expected is not None:
        result.reference = words  # a word reference is drawn as it is; its words' phones are scored
        result.edits = edit_counts(expected, scored(run.scheme, decoded))
    return result


def reference_segments(alignment: str | Path, reference_format: str | None, alignment_key: str | None,
                       recording: Path, labels: str) -> list[Segment]:
    """A reference's segments (`labels`: phones or words), its entry in a file of many by `alignment_key` or the
    recording's file stem."""
    fmt = alignment_format(alignment, reference_format)
    key = (alignment_key or recording.stem) if fmt in MULTI_READERS else None
    return utterance_labels(Utterance(recording.stem, "clip", "test", None, None, Path(alignment), alignment_key=key,
                                      labels=labels, alignment_format=fmt))


def text_reference(scheme, text: str, lexicon=None) -> list[str]:
    """The units a transcript says: its words for a word model, else their phones (silence left out, as
    scoring leaves it out); a unit the model does not know is an error naming it."""
    from avfusion.corpus.lexicon import Lexicon, words_of

    words = words_of(text)
    if not words:
        raise UserError(f"text={text!r}: no words to score against")
    if scheme.unit == "word":
        units = words
    else:
        lexicon = lexicon or Lexicon()
        units = [p for _, phones in lexicon.transcribe(text, "text=") for p in phones]
    unknown = sorted(set(units) - set(scheme.units))
    if unknown:
        raise UserError(f"text={text!r}: {unknown} are not units of the run's model ({scheme.unit}s: "
                        f"{', '.join(scheme.units[:8])}, ...)")
    return units


def _predicted(run: Run, recording: Recording, video: Path | None, chunk_seconds: float | None, progress: bool,
               scratch: Scratch) -> Prediction:
    """The run's model over the recording, decoded a block at a time by the run's own decoder."""
    decoder = run.decoder
    if decoder is None:
        log.warning("%s has no saved decoder (decoder.json; runs made before every run saved one): decoding "
                    "frame-wise, not with the decoder it was evaluated with", run.directory)
        decoder = FramewiseDecoder(run.scheme)
    decoding = decoder.stream(spill=scratch.path / "backpointers.bin")
    post = scratch.rows("posteriors", (run.scheme.num_classes,))
    weights = []  # a few numbers a frame: kept in memory
    for data, kept in model_pieces(run, recording.raw, chunk_seconds, progress, recording.streams, recording.n_frames):
        outputs = EncoderOutputs()  # the encoders run once a piece, for the posteriors and the stream weights
        block = run.model.posteriors(data, kept=outputs)[kept]
        post.append(block)
        decoding.push(block)
        if (w := run.model.stream_weights(data, kept=outputs)) is not None:
            weights.append(w[kept])
    decoded = decoding.finish()
    units = timed_units(run.scheme, decoded, post, recording.duration)
    return Prediction(run.directory, run.name, video, recording.audio_source, run.scheme, post.array(), units,
                      decoder.name, recording.duration, recording.modalities, recording.media, decoded=decoded,
                      stream_weights=np.concatenate(weights) if weights else None,
                      weight_labels=list(getattr(run.model.head, "weight_labels", [])))
