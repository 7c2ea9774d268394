"""GRID (Cooke et al. 2006): 34 talkers x 1000 six-word commands ("bin blue at f two now"), 25 fps video
with word alignments; the task is word (not phone) recognition over a closed 51-word vocabulary.

    ROOT/s1/bbaf2n.mpg                       (video with its audio track)
    ROOT/alignments/s1/bbaf2n.align          (start end word, 1/25000 s; sil and sp are silences)
    ROOT/<audio_dir>/s1/bbaf2n.wav           (optional: the separate 25 kHz audio, `audio_dir: audio_25k`)

Speaker-independent split: the unseen-speaker test set of LipNet (s1, s2, s20, s22); dev drawn (seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

from avfusion.corpus.adapters.base import CorpusAdapter
from avfusion.corpus.adapters.layout import files_with_suffix, nothing_found, require_dir
from avfusion.corpus.splits import listed_speaker_splits
from avfusion.corpus.types import Corpus, Utterance

# command, colour, preposition, letter (no w), digit, adverb
VOCABULARY = (
    ("bin", "lay", "place", "set") + ("blue", "green", "red", "white") + ("at", "by", "in", "with")
    + tuple("abcdefghijklmnopqrstuvxyz")
    + ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    + ("again", "now", "please", "soon")
)
LAYOUT = "ROOT/s<N>/<utt>.mpg + ROOT/alignments/s<N>/<utt>.align"


@dataclass
class GridCorpus(CorpusAdapter):
    root: str
    test_speakers: list[str]
    dev_speakers: list[str] | None  # None: n_dev_speakers drawn (seeded) from the training speakers
    n_dev_speakers: int
    audio_dir: str | None  # None: the audio track of each video
    video_suffix: str
    seed: int

    def load(self, progress: bool = True) -> Corpus:
        root = require_dir(self.root, "GRID", LAYOUT)
        found = [(d.name, v) for d in sorted(root.glob("s*")) if d.is_dir()
                 for v in files_with_suffix(d, {self.video_suffix.lower()})]
        if not found:
            raise nothing_found("GRID", root, LAYOUT)
        split = listed_speaker_splits([s for s, _ in found], self.test_speakers, self.dev_speakers,
                                      self.n_dev_speakers, self.seed, source="GRID")
        utterances = [
            Utterance(id=f"{speaker}_{video.stem}", speaker=speaker, split=split[speaker],
                      audio=root / self.audio_dir / speaker / f"{video.stem}.wav" if self.audio_dir else video,
                      video=video, alignment=root / "alignments" / speaker / f"{video.stem}.align", labels="words",
                      alignment_format="grid")
            for speaker, video in found
        ]
        return Corpus(utterances, root=root, name=f"grid:{root}", vocabulary=VOCABULARY)
