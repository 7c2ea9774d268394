"""Building the embedded corpus on disk: every utterance's speech, mouth video and alignment written
atomically (in parallel, resumable: what is on disk is kept), the speaker-independent splits chosen so
each split covers every phone spoken, and the manifest written last."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avfusion.corpus.alignments import normalise_phones, read_phones, write_textgrid
from avfusion.corpus.manifest import BABBLE, write_manifest
from avfusion.corpus.phones import SIL
from avfusion.corpus.splits import covering_speaker_splits
from avfusion.corpus.types import Corpus, CorpusError, Segment, Utterance
from avfusion.synth import articulation, interaction, vocal_tract
from avfusion.utils.atomic import atomic_path, write_text_atomic
from avfusion.utils.progress import parallel_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthesizedAudio:
    audio: np.ndarray  # float32 in [-1, 1] at the corpus rate
    phones: list[Segment]  # ARPAbet labels with stress, gaps filled with sil
    words: list[Segment]


@dataclass
class CorpusBuilder:
    """Writes `corpus` (a SyntheticCorpus: its settings, utterance specs and paths) to its root."""

    corpus: object

    def build(self, progress: bool = True) -> Path:
        """Generate what is not on disk yet, then the manifest; refuse a root holding another corpus."""
        corpus = self.corpus
        root = Path(corpus.root)
        stored, wanted = corpus.stored_settings(), corpus.settings()
        if stored is not None and stored != wanted:
            differ = [f"{k}: {stored.get(k, '(absent)')} there, {wanted.get(k, '(absent)')} asked"
                      for k in sorted(set(stored) | set(wanted)) if stored.get(k) != wanted.get(k)]
            raise CorpusError(f"{root} holds a synthetic corpus generated with other settings "
                              f"({root / 'synth_config.json'}: {'; '.join(differ[:4])}); choose another "
                              "data.root or delete that folder")
        root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(root / "synth_config.json", json.dumps(wanted, indent=2))
        specs = corpus.specs()
        todo = [s for s in specs if not all(p.is_file() for p in corpus.paths(s).values())]
        if len(todo) < len(specs):
            log.info("resuming: %d of %d utterances already on disk", len(specs) - len(todo), len(specs))
        babble = corpus.babble_specs()
        todo += [s for s in babble if not corpus.paths(s)["audio"].is_file()]
        parallel_map(self.write_utterance, todo, n_jobs=corpus.n_jobs, desc="synthesising", progress=progress)
        splits = self.split_speakers(specs)
        utterances = [Utterance(s.id, s.speaker.id, splits[s.speaker.id], text=s.text, **corpus.paths(s)) for s in specs]
        pool = [Utterance(s.id, s.speaker.id, BABBLE, video=None, alignment=None, text=s.text, **corpus.paths(s))
                for s in babble]
        built = Corpus(utterances, root=root, babble=pool)
        check_test_texts_unseen(built)
        write_manifest(built, corpus.manifest_path)
        return corpus.manifest_path

    def split_speakers(self, specs) -> dict[str, str]:
        """Speaker-independent splits chosen so that every split covers every phone spoken.

        Accents differ in inventory (en-029 has no dh/th, British voices do not flap t to dx), so a
        purely random split can leave a held-out split without some phones.
        """
        inventory: dict[str, set[str]] = {}
        for spec in specs:
            phones = normalise_phones(read_phones(self.corpus.paths(spec)["alignment"]), source=spec.id)
            inventory.setdefault(spec.speaker.id, set()).update(p.label for p in phones)
        rng = np.random.default_rng(self.corpus.split_seed())
        return covering_speaker_splits(inventory, self.corpus.n_dev_speakers, self.corpus.n_test_speakers, rng)

    def write_utterance(self, spec) -> None:
        """One utterance's audio (and for a corpus speaker its video and alignment), atomically."""
        import soundfile

        corpus, realism = self.corpus, self.corpus.realism
        rate = corpus.audio.sample_rate
        rng = np.random.default_rng(spec.seed)
        speech = synthesize_audio(spec, corpus.tts, corpus.audio, rng)
        paths = corpus.paths(spec)
        if spec.babble:
            with atomic_path(paths["audio"]) as tmp:
                soundfile.write(tmp, speech.audio, rate, subtype="PCM_16")
            return
        duration = len(speech.audio) / rate
        folded = normalise_phones(speech.phones, source=spec.id)
        labelled, coupling, scale = interaction.relabelled(folded, realism.interaction_pairs, realism.coupling,
                                                           realism.interaction_sd, spec.seed)
        seen, heard = vocal_tract.token_articulation(len(folded), rng, coupling)
        if scale is not None:  # the pairs' tokens: deviations `interaction_sd` times the usual
            seen, heard = seen * scale[:, None], heard * scale[:, None]
        audio = speech.audio if realism.formant_sd == 0 else \
            np.clip(vocal_tract.reshape_formants(speech.audio, rate, folded, heard, realism.formant_sd), -1, 1)
        frames = self.render_video(spec, folded, realism.articulation_sd * seen, duration, rng)
        with atomic_path(paths["alignment"]) as tmp:
            # the phones as spoken, or (positive control) as relabelled, folded
            write_textgrid(tmp, {"words": speech.words, "phones": labelled if realism.interaction_pairs else speech.phones},
                           duration)
        write_video(paths["video"], frames, corpus.video.fps)
        with atomic_path(paths["audio"]) as tmp:
            soundfile.write(tmp, audio, rate, subtype="PCM_16")

    def render_video(self, spec, folded: list[Segment], token: np.ndarray, duration: float,
                     rng: np.random.Generator) -> np.ndarray:
        """Frames of the mouth articulating the folded phones with the token deviations `token` (S, 3)."""
        corpus, video, realism = self.corpus, self.corpus.video, self.corpus.realism
        n_frames = int(round(duration * video.fps))
        times = np.arange(n_frames) / video.fps
        targets = articulation.targets_for(folded, rng, token=token)
        onset = rng.uniform(*realism.onset_lead_ms) / 1000.0
        seen = articulation.visual_segments(folded, corpus.av_lead_s(spec.speaker), realism.av_jitter_ms / 1000.0,
                                            onset, duration, rng)
        trajectory = articulation.trajectory(seen, times, targets)
        transient = rng.random() < realism.nuisance_share  # drawn for every utterance: the share moves no other draw
        return corpus.renderer.frames(trajectory, spec.speaker, n_frames, transient, video, rng)


def check_test_texts_unseen(corpus: Corpus) -> None:
    """No sentence of the test (or dev) split is read in training: a recognizer is not scored on text it
    was trained on (TIMIT's recipes leave out the dialect sentences every speaker reads, for this)."""
    train = {u.text.strip().lower() for u in corpus.split("train")}
    for split in ("dev", "test"):
        seen = sorted({u.id for u in corpus.split(split) if u.text.strip().lower() in train})
        if seen:
            raise CorpusError(f"{corpus.name}: {len(seen)} {split} utterance(s) read a training sentence "
                              f"({', '.join(seen[:5])})")


def synthesize_audio(spec, tts, audio, rng: np.random.Generator) -> SynthesizedAudio:
    """Speech from the `tts` backend resampled to `audio.sample_rate`, padded with room-noise silence, with
    its alignment."""
    import soxr

    sample_rate = audio.sample_rate
    raw, raw_rate, phones, words = tts.speak(spec.text, spec.speaker)
    speech = soxr.resample(raw, raw_rate, sample_rate) if raw_rate != sample_rate else raw
    lead, tail = (int(rng.uniform(*audio.pad_range_s) * sample_rate) for _ in range(2))
    out = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
    out *= 0.7 * rng.uniform(0.6, 1.0) / max(np.abs(out).max(), 1e-6)
    speech_rms = np.sqrt(np.mean(out[lead:lead + len(speech)] ** 2))
    out += rng.normal(0.0, speech_rms * 10 ** (-audio.room_snr_db / 20), len(out)).astype(np.float32)
    phones, words = place(phones, words, lead / sample_rate, len(out) / sample_rate)
    return SynthesizedAudio(np.clip(out, -1.0, 1.0), phones, words)


def place(phones: list[Segment], words: list[Segment], offset: float, duration: float
          ) -> tuple[list[Segment], list[Segment]]:
    """Shift labels by the leading silence; silence tiles the start and the end up to `duration`."""
    shifted = [Segment(SIL, 0.0, offset)] + [Segment(p.label, p.start + offset, p.end + offset) for p in phones]
    shifted.append(Segment(SIL, shifted[-1].end, duration))
    out: list[Segment] = []
    for seg in shifted:
        if seg.end - seg.start <= 1e-9:
            continue
        if out and seg.label == SIL and out[-1].label == SIL:
            out[-1] = Segment(SIL, out[-1].start, seg.end)
        else:
            out.append(seg)
    return out, [Segment(w.label, w.start + offset, w.end + offset) for w in words]


def write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    """Write BGR frames to an mp4 (MPEG-4 part 2 through OpenCV), atomically."""
    height, width = frames.shape[1:3]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise IOError(f"{path}: OpenCV cannot open an mp4v video writer")
        for frame in frames:
            writer.write(frame)
        writer.release()
