"""The embedded synthetic audio-visual corpus.

Writes the same layout a real corpus has (DESIGN §8): `manifest.jsonl`, 16 kHz wav, 25 fps mp4 and
a TextGrid with `words` and `phones` tiers per utterance, so it is read by the same code as a real
corpus. Audio is espeak-ng speech with exact phone timings; video is a mouth animated from the same
timed phones through viseme targets (`articulation`), drawn either as the mouth region (`roi`) or
composited onto real faces (`face`).

Generation is deterministic for a seed, parallel across utterances, and resumable: every file is
written atomically, an utterance whose three files exist is not generated again, and the manifest
is written last.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from avfusion.corpus.adapters.base import CorpusAdapter
from avfusion.corpus.alignments import normalise_phones, read_phones, write_textgrid
from avfusion.corpus.manifest import BABBLE, read_manifest, write_manifest
from avfusion.corpus.phones import SIL
from avfusion.corpus.splits import covering_speaker_splits
from avfusion.synth import articulation, mouth, vocal_tract
from avfusion.synth.arpabet import PAUSE, split_interval, to_arpabet
from avfusion.synth.espeak import Espeak, Synthesis
from avfusion.synth.speakers import Speaker, make_speakers
from avfusion.synth.text import speaker_sentences
from avfusion.corpus.types import Corpus, CorpusError, Segment, Utterance
from avfusion.errors import ConfigError
from avfusion.utils.atomic import atomic_path, write_text_atomic
from avfusion.utils.progress import parallel_map

log = logging.getLogger(__name__)

VIDEO_MODES = ("roi", "face")
BABBLE_STREAM = 7919  # the babble pool's seeds: SeedSequence([seed, BABBLE_STREAM]), apart from the corpus's
ASYNC_STREAM = 7927  # each speaker's audio-visual lead


def check_test_texts_unseen(corpus: Corpus) -> None:
    """No sentence of the test (or dev) split is read in training: a recognizer is not scored on text it
    was trained on (TIMIT's recipes leave out the dialect sentences every speaker reads, for this)."""
    train = {u.text.strip().lower() for u in corpus.split("train")}
    for split in ("dev", "test"):
        seen = sorted({u.id for u in corpus.split(split) if u.text.strip().lower() in train})
        if seen:
            raise CorpusError(f"{corpus.name}: {len(seen)} {split} utterance(s) read a training sentence "
                              f"({', '.join(seen[:5])})")


@dataclass(frozen=True)
class UtteranceSpec:
    id: str
    speaker: Speaker
    text: str
    seed: int
    babble: bool = False  # a babble talker's: audio only, in no split


@dataclass(frozen=True)
class SynthesizedAudio:
    audio: np.ndarray  # float32 in [-1, 1] at the corpus rate
    phones: list[Segment]  # ARPAbet labels with stress, gaps filled with sil
    words: list[Segment]


@dataclass
class SyntheticCorpus(CorpusAdapter):
    NOT_SHAPING: ClassVar[tuple[str, ...]] = ("n_jobs",)  # how fast it is built, not what it holds
    """Config and builder of the embedded corpus (`conf/data/synthetic.yaml`)."""

    root: str = "data/synthetic/default"
    n_speakers: int = 24
    n_dev_speakers: int = 4
    n_test_speakers: int = 4
    utterances_per_speaker: int = 20
    video_mode: str = "roi"
    tts: str = "espeak"  # espeak (bundled) | festival (optional, when installed)
    roi_size: int = 96
    fps: float = 25.0
    sample_rate: int = 16000
    seed: int = 0
    n_jobs: int = 2
    room_snr_db: float = 40.0  # microphone/room noise floor of the "clean" recordings
    video_motion: float = 0.02  # head/ROI motion, fraction of the ROI
    video_lighting: float = 0.05  # slow lighting drift amplitude
    video_noise_std: float = 3.0  # sensor noise, grey levels
    pad_range_s: tuple[float, float] = (0.10, 0.30)  # silence before and after the speech
    av_lead_ms: tuple[float, float] = (-20.0, 70.0)  # per speaker: the lips ahead of the sound (negative: behind)
    av_jitter_ms: float = 15.0  # per boundary, s.d. of the lips' timing around that lead
    onset_lead_ms: tuple[float, float] = (100.0, 250.0)  # at an utterance onset the lips part this much before voicing
    nuisance_share: float = 0.25  # utterances whose video has a transient occlusion, motion blur or dropped frames
    coupling: float = 1.0  # correlation of a token's articulation seen on the lips and heard (0: independent)
    articulation_sd: float = 0.12  # per token, s.d. of the lips' opening, width and rounding around the target
    formant_sd: float = 1.0  # per token, s.d. of the matching formant and level change (vocal_tract units; 0: none)
    n_babble_talkers: int = 12  # talkers in no split whose speech babble noise is mixed from
    babble_utterances: int = 4  # sentences each babble talker reads

    def __post_init__(self) -> None:
        if self.tts not in ("espeak", "festival"):
            raise ValueError(f"tts must be espeak or festival, got {self.tts!r}")
        if self.video_mode not in VIDEO_MODES:
            raise ValueError(f"video_mode must be one of {VIDEO_MODES}, got {self.video_mode!r}")
        self.pad_range_s = tuple(self.pad_range_s)
        self.av_lead_ms, self.onset_lead_ms = tuple(self.av_lead_ms), tuple(self.onset_lead_ms)
        for name in ("pad_range_s", "av_lead_ms", "onset_lead_ms"):
            low, high = getattr(self, name)
            if low > high:
                raise ConfigError(f"data.{name}=[{low}, {high}]: give [low, high] with low <= high")
        for name in ("av_jitter_ms", "articulation_sd", "formant_sd"):
            if getattr(self, name) < 0:
                raise ConfigError(f"data.{name}={getattr(self, name)}: must be >= 0")
        if not 0.0 <= self.nuisance_share <= 1.0:
            raise ConfigError(f"data.nuisance_share={self.nuisance_share}: must be in [0, 1]")
        if not 0.0 <= self.coupling <= 1.0:
            raise ConfigError(f"data.coupling={self.coupling}: must be in [0, 1] (0: independent streams)")

    @property
    def manifest_path(self) -> Path:
        return Path(self.root) / "manifest.jsonl"

    def settings(self) -> dict:
        """Everything that changes the generated data (n_jobs does not), as stored in JSON."""
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("root", "n_jobs")}
        return json.loads(json.dumps(settings))

    def load(self, progress: bool = True) -> Corpus:
        """The corpus, generated first if it is not complete on disk."""
        if not self.is_built():
            self.build(progress=progress)
        return read_manifest(self.manifest_path, name=f"synthetic:{self.root}")

    def is_built(self) -> bool:
        return self.manifest_path.is_file() and self._stored_settings() == self.settings()

    def _stored_settings(self) -> dict | None:
        path = Path(self.root) / "synth_config.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def specs(self) -> list[UtteranceSpec]:
        speaker_seq, _, *utt_seqs = self._seeds()
        speakers = make_speakers(self.n_speakers, np.random.default_rng(speaker_seq))
        return self._read_by(speakers, utt_seqs, self.utterances_per_speaker, set())

    def babble_specs(self) -> list[UtteranceSpec]:
        """The babble pool's talkers (in no split; voices continue the speakers' rotation) and sentences
        no corpus speaker reads."""
        speaker_seq, *utt_seqs = np.random.SeedSequence([self.seed, BABBLE_STREAM]).spawn(1 + self.n_babble_talkers)
        talkers = make_speakers(self.n_babble_talkers, np.random.default_rng(speaker_seq), first=self.n_speakers,
                                prefix="b")
        return self._read_by(talkers, utt_seqs, self.babble_utterances, {s.text for s in self.specs()}, True)

    @staticmethod
    def _read_by(speakers: list[Speaker], seqs: list[np.random.SeedSequence], n: int, taken: set[str],
                 babble: bool = False) -> list[UtteranceSpec]:
        """n sentences per speaker, none read twice nor in `taken`."""
        specs = []
        for speaker, seq in zip(speakers, seqs):
            text_seq, noise_seq = seq.spawn(2)
            sentences = speaker_sentences(n, np.random.default_rng(text_seq), taken)
            seeds = noise_seq.generate_state(len(sentences))
            for i, (text, seed) in enumerate(zip(sentences, seeds)):
                specs.append(UtteranceSpec(f"{speaker.id}_u{i:03d}", speaker, text, int(seed), babble))
        return specs

    def av_lead_s(self, speaker: Speaker) -> float:
        """The speaker's audio-visual lead (s): how far the lips run ahead of the sound, drawn once per speaker
        from `av_lead_ms` (its own stream: the other speaker settings do not move with it)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, ASYNC_STREAM, int(speaker.id[1:])]))
        return float(rng.uniform(*self.av_lead_ms)) / 1000.0

    def _seeds(self) -> list[np.random.SeedSequence]:
        """Independent streams: speakers, the split, then one per speaker."""
        return np.random.SeedSequence(self.seed).spawn(2 + self.n_speakers)

    def paths(self, spec: UtteranceSpec) -> dict[str, Path]:
        root, spk, name = Path(self.root), spec.speaker.id, spec.id.split("_", 1)[1]
        if spec.babble:  # audio only
            return {"audio": root / "babble" / spk / f"{name}.wav"}
        return {
            "audio": root / "audio" / spk / f"{name}.wav",
            "video": root / "video" / spk / f"{name}.mp4",
            "alignment": root / "align" / spk / f"{name}.TextGrid",
        }

    def build(self, progress: bool = True) -> Path:
        root = Path(self.root)
        stored = self._stored_settings()
        if stored is not None and stored != self.settings():
            wanted = self.settings()
            differ = [f"{k}: {stored.get(k, '(absent)')} there, {wanted.get(k, '(absent)')} asked"
                      for k in sorted(set(stored) | set(wanted)) if stored.get(k) != wanted.get(k)]
            raise CorpusError(f"{root} holds a synthetic corpus generated with other settings "
                              f"({root / 'synth_config.json'}: {'; '.join(differ[:4])}); choose another "
                              "data.root or delete that folder")
        root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(root / "synth_config.json", json.dumps(self.settings(), indent=2))
        specs = self.specs()
        todo = [s for s in specs if not all(p.is_file() for p in self.paths(s).values())]
        if len(todo) < len(specs):
            log.info("resuming: %d of %d utterances already on disk", len(specs) - len(todo), len(specs))
        babble = self.babble_specs()
        todo += [s for s in babble if not self.paths(s)["audio"].is_file()]
        parallel_map(self._write_utterance, todo, n_jobs=self.n_jobs, desc="synthesising", progress=progress)
        splits = self._split_speakers(specs)
        utterances = [Utterance(s.id, s.speaker.id, splits[s.speaker.id], text=s.text, **self.paths(s)) for s in specs]
        pool = [Utterance(s.id, s.speaker.id, BABBLE, video=None, alignment=None, text=s.text, **self.paths(s))
                for s in babble]
        corpus = Corpus(utterances, root=root, babble=pool)
        check_test_texts_unseen(corpus)
        write_manifest(corpus, self.manifest_path)
        return self.manifest_path

    def _split_speakers(self, specs: list[UtteranceSpec]) -> dict[str, str]:
        """Speaker-independent splits chosen so that every split covers every phone spoken.

        Accents differ in inventory (en-029 has no dh/th, British voices do not flap t to dx), so a
        purely random split can leave a held-out split without some phones.
        """
        inventory: dict[str, set[str]] = {}
        for spec in specs:
            phones = normalise_phones(read_phones(self.paths(spec)["alignment"]), source=spec.id)
            inventory.setdefault(spec.speaker.id, set()).update(p.label for p in phones)
        rng = np.random.default_rng(self._seeds()[1])
        return covering_speaker_splits(inventory, self.n_dev_speakers, self.n_test_speakers, rng)

    # -- one utterance ---------------------------------------------------------------------------

    def _write_utterance(self, spec: UtteranceSpec) -> None:
        import soundfile

        rng = np.random.default_rng(spec.seed)
        speech = synthesize_audio(spec, self.sample_rate, self.pad_range_s, self.room_snr_db, rng, self.tts)
        paths = self.paths(spec)
        if spec.babble:
            with atomic_path(paths["audio"]) as tmp:
                soundfile.write(tmp, speech.audio, self.sample_rate, subtype="PCM_16")
            return
        duration = len(speech.audio) / self.sample_rate
        folded = normalise_phones(speech.phones, source=spec.id)
        seen, heard = vocal_tract.token_articulation(len(folded), rng, self.coupling)
        audio = speech.audio if self.formant_sd == 0 else \
            np.clip(vocal_tract.reshape_formants(speech.audio, self.sample_rate, folded, heard, self.formant_sd), -1, 1)
        frames = self._render_video(spec, folded, self.articulation_sd * seen, duration, rng)
        with atomic_path(paths["alignment"]) as tmp:
            write_textgrid(tmp, {"words": speech.words, "phones": speech.phones}, duration)
        write_video(paths["video"], frames, self.fps)
        with atomic_path(paths["audio"]) as tmp:
            soundfile.write(tmp, audio, self.sample_rate, subtype="PCM_16")

    def _render_video(self, spec: UtteranceSpec, folded: list[Segment], token: np.ndarray, duration: float,
                      rng: np.random.Generator) -> np.ndarray:
        """Frames of the mouth articulating the folded phones with the token deviations `token` (S, 3)."""
        n_frames = int(round(duration * self.fps))
        times = np.arange(n_frames) / self.fps
        targets = articulation.targets_for(folded, rng, token=token)
        onset = rng.uniform(*self.onset_lead_ms) / 1000.0
        seen = articulation.visual_segments(folded, self.av_lead_s(spec.speaker), self.av_jitter_ms / 1000.0, onset,
                                            duration, rng)
        traj = articulation.trajectory(seen, times, targets)
        look = spec.speaker.mouth
        nuisance = dict(motion=self.video_motion, lighting=self.video_lighting, noise_std=self.video_noise_std)
        transient = rng.random() < self.nuisance_share  # drawn for every utterance: the share moves no other draw
        if self.video_mode == "roi":
            roi = mouth.render_sequence(traj, look, self.roi_size, self.fps, rng, **nuisance)
            return mouth.transient_nuisances(roi, self.fps, rng, skin_bgr=look.skin_bgr)[0] if transient else roi
        from avfusion.synth import face

        plate = face.face_plates()[spec.speaker.face % len(face.face_plates())]
        skin = np.median([face.local_skin(plate, k) for k in range(len(plate.frames))], axis=0)
        roi = mouth.render_sequence(traj, look, self.roi_size, self.fps, rng, skin=skin, **nuisance)
        if transient:
            roi = mouth.transient_nuisances(roi, self.fps, rng, skin_bgr=tuple(skin.reshape(-1, 3).mean(axis=0)))[0]
        start = int(rng.integers(0, len(plate.frames)))
        return np.stack([face.composite(plate, start + k, roi[k]) for k in range(n_frames)])


def synthesize_audio(spec: UtteranceSpec, sample_rate: int, pad_range_s: tuple[float, float],
                     room_snr_db: float, rng: np.random.Generator, tts: str = "espeak") -> SynthesizedAudio:
    """Speech resampled to `sample_rate`, padded with room-noise silence, with its alignment."""
    import soxr

    sp = spec.speaker
    if tts == "festival":
        from avfusion.synth.festival import festival_speak

        raw, raw_rate, phones, words = festival_speak(spec.text, sp.rate_wpm)
    else:
        syn = Espeak.get().synthesize(spec.text, sp.voice, sp.rate_wpm, sp.pitch, sp.pitch_range)
        raw, raw_rate = syn.audio.astype(np.float32) / 32768.0, syn.sample_rate
        phones, words = timed_labels(syn, spec.text)
    speech = soxr.resample(raw, raw_rate, sample_rate) if raw_rate != sample_rate else raw
    lead, tail = (int(rng.uniform(*pad_range_s) * sample_rate) for _ in range(2))
    audio = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
    audio *= 0.7 * rng.uniform(0.6, 1.0) / max(np.abs(audio).max(), 1e-6)
    speech_rms = np.sqrt(np.mean(audio[lead:lead + len(speech)] ** 2))
    audio += rng.normal(0.0, speech_rms * 10 ** (-room_snr_db / 20), len(audio)).astype(np.float32)
    phones, words = place(phones, words, lead / sample_rate, len(audio) / sample_rate)
    return SynthesizedAudio(np.clip(audio, -1.0, 1.0), phones, words)


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


def timed_labels(syn: Synthesis, text: str) -> tuple[list[Segment], list[Segment]]:
    """Phone and word intervals in seconds from espeak's phoneme events.

    A phoneme lasts until the next one starts (the last until the synthesised audio ends); a
    mnemonic that maps to several ARPAbet phones has its interval split by their typical durations
    (`arpabet.split_interval`: the schwa of a syllabic l is shorter than the l); time before the
    first phoneme is silence, so the phones tile the synthesised audio exactly.
    """
    sr = syn.sample_rate
    bounds = [p.start for p in syn.phonemes] + [len(syn.audio)]
    phones: list[Segment] = []
    word_spans: dict[int, list[float]] = {}

    def add(label: str, start: float, end: float) -> None:
        if end - start <= 1e-9:
            return
        if phones and label == SIL and phones[-1].label == SIL:
            phones[-1] = Segment(SIL, phones[-1].start, end)
        else:
            phones.append(Segment(label, start, end))

    add(SIL, 0.0, bounds[0] / sr)
    for ph, b0, b1 in zip(syn.phonemes, bounds[:-1], bounds[1:]):
        t0, t1 = b0 / sr, b1 / sr
        arpa = to_arpabet(ph.symbol)
        if not arpa:  # absorbed into the previous phone
            if phones:
                phones[-1] = Segment(phones[-1].label, phones[-1].start, t1)
            continue
        edges = split_interval(arpa, t0, t1)
        for label, a, b in zip(arpa, edges[:-1], edges[1:]):
            add(SIL if label == PAUSE else label, float(a), float(b))
        if arpa != (PAUSE,) and ph.word >= 0:
            span = word_spans.setdefault(ph.word, [t0, t1])
            span[1] = t1
    words = []
    for w, (t0, t1) in sorted(word_spans.items()):
        pos, _ = syn.words[w]
        token = text[pos - 1:].split(maxsplit=1)[0]  # the whole written word ("Don't", not "Don")
        words.append(Segment(token.strip(".,;:!?\"").lower(), t0, t1))
    return phones, words


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
