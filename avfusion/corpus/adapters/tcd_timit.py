"""TCD-TIMIT (Harte & Gillen 2015): TIMIT sentences read by 59 volunteers and 3 lipspeakers, filmed at
29.97 fps, with 48 kHz audio and HTK phone alignments.

    ROOT/volunteers/01M/Clips/straightcam/sa1.mp4  (+ sa1.wav beside it; else the mp4's own audio track)
    ROOT/lipspeakers/Lipspkr1/Clips/30degcam/...
    ROOT/volunteer_labelfiles.mlf, ROOT/lipspeaker_labelfiles.mlf   (38 phones + sil, already folded)

Speaker-independent split, a named choice (`test_split`):
- `authors` (default): the 17 test volunteers of the split shipped by the corpus authors' group at Trinity
  College Dublin (pyVSR, splits/speaker-independent), which also leaves the non-Irish volunteers out
  of testing;
- `legacy`: the 17 volunteers another public recipe tests on (what avfusion used before; it shares 6
  speakers with `authors`);
or list `test_speakers` yourself. Dev speakers are drawn (seeded) from the other volunteers; lipspeakers,
when included, train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avfusion.corpus.adapters.base import CorpusAdapter
from avfusion.corpus.adapters.layout import files_with_suffix, nothing_found, require_dir, sibling
from avfusion.corpus.splits import listed_speaker_splits
from avfusion.corpus.types import Corpus, CorpusError, Utterance

TEST_SPLITS = {
    "authors": ("08F", "09F", "15F", "18M", "25M", "28M", "33F", "34M", "36F", "41M", "44F", "45F", "49F", "54M",
                "55F", "56M", "58F"),
    "legacy": ("13F", "15F", "21M", "23M", "24M", "25M", "28M", "29M", "30F", "31F", "34M", "36F", "37F", "43F",
               "47M", "51F", "54M"),
}
GROUP_MLF = {"volunteers": "volunteer_labelfiles.mlf", "lipspeakers": "lipspeaker_labelfiles.mlf"}
LAYOUT = "ROOT/{volunteers,lipspeakers}/<speaker>/Clips/<camera>/<utt>.mp4 + <utt>.wav, ROOT/*_labelfiles.mlf"


@dataclass
class TcdTimitCorpus(CorpusAdapter):
    root: str
    groups: list[str]
    camera: str  # straightcam | 30degcam
    test_split: str  # authors | legacy (see above); ignored when test_speakers is given
    test_speakers: list[str] | None
    dev_speakers: list[str] | None  # None: n_dev_speakers drawn from the training volunteers
    n_dev_speakers: int
    seed: int

    def load(self, progress: bool = True) -> Corpus:
        root = require_dir(self.root, "TCD-TIMIT", LAYOUT)
        unknown = sorted(set(self.groups) - set(GROUP_MLF))
        if unknown:
            raise CorpusError(f"TCD-TIMIT: unknown speaker groups {unknown}; choose from {sorted(GROUP_MLF)}")
        found = []  # (group, speaker, video)
        for group in self.groups:
            for speaker_dir in sorted(p for p in (root / group).glob("*") if p.is_dir()):
                clips = speaker_dir / "Clips" / self.camera
                if clips.is_dir():
                    found += [(group, speaker_dir.name, v) for v in files_with_suffix(clips, {".mp4"})]
        if not found:
            raise nothing_found("TCD-TIMIT", root, LAYOUT)
        volunteers = sorted({s for g, s, _ in found if g == "volunteers"})
        split = listed_speaker_splits(volunteers, self.listed_test_speakers(), self.dev_speakers,
                                      self.n_dev_speakers, self.seed, source="TCD-TIMIT")
        utterances = [
            Utterance(id=f"{speaker}_{video.stem}", speaker=speaker, split=split.get(speaker, "train"),
                      audio=_audio_of(video), video=video, alignment=root / GROUP_MLF[group],
                      alignment_key=f"{speaker}/{video.stem}", alignment_format="mlf")
            for group, speaker, video in found
        ]
        return Corpus(utterances, root=root, name=f"tcd_timit:{root}")


    def listed_test_speakers(self) -> list[str]:
        if self.test_speakers is not None:
            return list(self.test_speakers)
        if self.test_split not in TEST_SPLITS:
            raise CorpusError(f"TCD-TIMIT: data.test_split={self.test_split!r}; choose from {sorted(TEST_SPLITS)} "
                              "or list data.test_speakers")
        return list(TEST_SPLITS[self.test_split])


def _audio_of(video: Path) -> Path:
    wav = sibling(video, ".wav")
    return wav if wav.is_file() else video
