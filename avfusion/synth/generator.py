"""The embedded synthetic audio-visual corpus.

Writes the same layout a real corpus has (DESIGN §8): `manifest.jsonl`, 16 kHz wav, 25 fps mp4 and
a TextGrid with `words` and `phones` tiers per utterance, so it is read by the same code as a real
corpus. Audio is speech with exact phone timings from a backend (`data/tts`: espeak-ng, or Festival);
video is a mouth animated from the same timed phones through viseme targets (`articulation`), drawn by a
renderer (`data/renderer`: the mouth region, `roi`, or composited onto real faces, `face`). Settings come
in groups (`audio`, `video`, `realism`: `avfusion.synth.settings`); building is `avfusion.synth.builder`.

Generation is deterministic for a seed, parallel across utterances, and resumable: every file is
written atomically, an utterance whose three files exist is not generated again, and the manifest
is written last.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from avfusion.corpus.adapters.base import CorpusAdapter
from avfusion.corpus.manifest import read_manifest
from avfusion.corpus.types import Corpus
from avfusion.synth.builder import CorpusBuilder, check_test_texts_unseen
from avfusion.synth.espeak import EspeakSpeech
from avfusion.synth.face import FaceRenderer
from avfusion.synth.festival import FestivalSpeech
from avfusion.synth.mouth import RoiRenderer
from avfusion.synth.settings import AudioSettings, RealismSettings, VideoSettings
from avfusion.synth.speakers import Speaker, make_speakers
from avfusion.synth.text import speaker_sentences
from avfusion.utils.rules import check_fields, integer

log = logging.getLogger(__name__)

__all__ = ["SyntheticCorpus", "UtteranceSpec", "check_test_texts_unseen"]

BABBLE_STREAM = 7919  # the babble pool's seeds: SeedSequence([seed, BABBLE_STREAM]), apart from the corpus's
ASYNC_STREAM = 7927  # each speaker's audio-visual lead
BACKENDS = {cls.name: cls for cls in (EspeakSpeech, FestivalSpeech)}
RENDERERS = {cls.name: cls for cls in (RoiRenderer, FaceRenderer)}


@dataclass(frozen=True)
class UtteranceSpec:
    id: str
    speaker: Speaker
    text: str
    seed: int
    babble: bool = False  # a babble talker's: audio only, in no split


@dataclass
class SyntheticCorpus(CorpusAdapter):
    NOT_SHAPING: ClassVar[tuple[str, ...]] = ("n_jobs",)  # how fast it is built, not what it holds

    root: str
    n_speakers: int
    n_dev_speakers: int
    n_test_speakers: int
    utterances_per_speaker: int
    seed: int
    n_jobs: int
    n_babble_talkers: int  # talkers in no split whose speech babble noise is mixed from
    babble_utterances: int  # sentences each babble talker reads
    audio: AudioSettings
    video: VideoSettings
    realism: RealismSettings
    tts: EspeakSpeech | FestivalSpeech  # data/tts
    renderer: RoiRenderer | FaceRenderer  # data/renderer

    def __post_init__(self) -> None:
        # n_dev_speakers and n_test_speakers: checked for every adapter (avfusion.config_check)
        check_fields(self, "data", {"n_speakers": integer(3), "utterances_per_speaker": integer(1),
                                    "seed": integer(), "n_jobs": integer(1), "n_babble_talkers": integer(0),
                                    "babble_utterances": integer(1)})

    @classmethod
    def from_settings(cls, root: str, settings: dict, **others) -> "SyntheticCorpus":
        """The corpus whose `settings()` these are (a stored synth_config.json)."""
        s = settings
        return cls(root=root, **{k: s[k] for k in ("n_speakers", "n_dev_speakers", "n_test_speakers",
                                                   "utterances_per_speaker", "seed", "n_babble_talkers",
                                                   "babble_utterances")},
                   audio=AudioSettings(s["sample_rate"], s["room_snr_db"], tuple(s["pad_range_s"])),
                   video=VideoSettings(s["roi_size"], s["fps"], s["video_motion"], s["video_lighting"],
                                       s["video_noise_std"]),
                   realism=RealismSettings(tuple(s["av_lead_ms"]), s["av_jitter_ms"], tuple(s["onset_lead_ms"]),
                                           s["coupling"], s["articulation_sd"], s["formant_sd"], s["nuisance_share"],
                                           # corpora made before the positive control existed: without it
                                           s.get("interaction_pairs", []), s.get("interaction_sd", 1.0)),
                   tts=BACKENDS[s["tts"]](), renderer=RENDERERS[s["video_mode"]](), **others)

    @property
    def manifest_path(self) -> Path:
        return Path(self.root) / "manifest.jsonl"

    def settings(self) -> dict:
        """Everything that changes the generated data (n_jobs does not), as stored in JSON (synth_config.json;
        flat, by the names corpora generated before the settings were grouped carry)."""
        a, v, r = self.audio, self.video, self.realism
        flat = {"n_speakers": self.n_speakers, "n_dev_speakers": self.n_dev_speakers,
                "n_test_speakers": self.n_test_speakers, "utterances_per_speaker": self.utterances_per_speaker,
                "video_mode": self.renderer.name, "tts": self.tts.name, "roi_size": v.roi_size, "fps": v.fps,
                "sample_rate": a.sample_rate, "seed": self.seed, "room_snr_db": a.room_snr_db,
                "video_motion": v.motion, "video_lighting": v.lighting, "video_noise_std": v.noise_std,
                "pad_range_s": a.pad_range_s, "av_lead_ms": r.av_lead_ms, "av_jitter_ms": r.av_jitter_ms,
                "onset_lead_ms": r.onset_lead_ms, "nuisance_share": r.nuisance_share, "coupling": r.coupling,
                "articulation_sd": r.articulation_sd, "formant_sd": r.formant_sd,
                "n_babble_talkers": self.n_babble_talkers, "babble_utterances": self.babble_utterances}
        if r.interaction_pairs:  # the positive control; a corpus without it keeps the settings it always had
            flat.update(interaction_pairs=r.interaction_pairs, interaction_sd=r.interaction_sd)
        return json.loads(json.dumps(flat))

    def load(self, progress: bool = True) -> Corpus:
        """The corpus, generated first if it is not complete on disk."""
        if not self.is_built():
            where = Path(self.root).resolve()
            relative = "" if Path(self.root).is_absolute() else \
                f" (data.root={self.root} is relative to the working folder {Path.cwd()}: run from the project " \
                "folder to use its corpus, or give an absolute data.root)"
            log.info("generating the synthetic corpus in %s%s", where, relative)
            self.build(progress=progress)
        return read_manifest(self.manifest_path, name=f"synthetic:{self.root}")

    def build(self, progress: bool = True) -> Path:
        return CorpusBuilder(self).build(progress)

    def is_built(self) -> bool:
        return self.manifest_path.is_file() and self.stored_settings() == self.settings()

    def stored_settings(self) -> dict | None:
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
        return float(rng.uniform(*self.realism.av_lead_ms)) / 1000.0

    def _seeds(self) -> list[np.random.SeedSequence]:
        """Independent streams: speakers, the split, then one per speaker."""
        return np.random.SeedSequence(self.seed).spawn(2 + self.n_speakers)

    def split_seed(self) -> np.random.SeedSequence:
        """The stream the speaker-independent split is drawn from."""
        return self._seeds()[1]

    def paths(self, spec: UtteranceSpec) -> dict[str, Path]:
        root, spk, name = Path(self.root), spec.speaker.id, spec.id.split("_", 1)[1]
        if spec.babble:  # audio only
            return {"audio": root / "babble" / spk / f"{name}.wav"}
        return {
            "audio": root / "audio" / spk / f"{name}.wav",
            "video": root / "video" / spk / f"{name}.mp4",
            "alignment": root / "align" / spk / f"{name}.TextGrid",
        }
