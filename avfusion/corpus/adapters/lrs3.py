"""LRS3-TED (Afouras et al. 2018): TED(x) talk clips with word timings; labels are words (open
vocabulary: training words plus <unk>). Phone labels need a forced aligner (see the README).

    ROOT/{pretrain,trainval,test}/<video id>/<n>.mp4   (video with its audio track)
    ROOT/.../<n>.txt                                   (Text:, Conf:, then WORD START END ASDSCORE lines)

The speaker is the video id (one talk, one speaker). `test` is LRS3's own test set, speaker-disjoint
from trainval; dev speakers are drawn (seeded) from the training video ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from avfusion.corpus.adapters.base import CorpusAdapter
from avfusion.corpus.adapters.layout import files_with_suffix, nothing_found, require_dir
from avfusion.corpus.splits import listed_speaker_splits
from avfusion.corpus.types import Corpus, CorpusError, Utterance

LAYOUT = "ROOT/{pretrain,trainval,test}/<video id>/<n>.mp4 + <n>.txt"


@dataclass
class Lrs3Corpus(CorpusAdapter):
    root: str
    train_sets: list[str]  # add "pretrain" for 400 h more
    test_set: str
    n_dev_speakers: int
    max_utterances_per_speaker: int | None
    seed: int

    def load(self, progress: bool = True) -> Corpus:
        root = require_dir(self.root, "LRS3", LAYOUT)
        found = []  # (subset, speaker, video)
        for subset in [*self.train_sets, self.test_set]:
            if not (root / subset).is_dir():
                raise CorpusError(f"LRS3: {root / subset} is not a folder (expected layout: {LAYOUT})")
            for talk in sorted(p for p in (root / subset).iterdir() if p.is_dir()):
                videos = files_with_suffix(talk, {".mp4"})[:self.max_utterances_per_speaker]
                found += [(subset, talk.name, v) for v in videos]
        if not found:
            raise nothing_found("LRS3", root, LAYOUT)
        test = sorted({s for subset, s, _ in found if subset == self.test_set})
        split = listed_speaker_splits([s for _, s, _ in found], test, n_dev=self.n_dev_speakers, seed=self.seed,
                                      source="LRS3")
        utterances = [
            Utterance(id=f"{subset}_{speaker}_{video.stem}", speaker=speaker, split=split[speaker], audio=video,
                      video=video, alignment=video.with_suffix(".txt"), labels="words",
                      alignment_format="lrs3")
            for subset, speaker, video in found
        ]
        return Corpus(utterances, root=root, name=f"lrs3:{root}")
