"""TIMIT (audio only): 630 speakers, hand-labelled 61-phone alignments folded to 39.

    ROOT/{TRAIN,TEST}/DR<n>/<speaker>/<utt>.WAV + <utt>.PHN    (any case; NIST SPHERE or RIFF wav)

The standard split: TRAIN trains; TEST's 24-speaker core test set tests; the 50-speaker dev set of the
Kaldi recipe (conf/dev_spk.list) is dev. The SA sentences, read by every speaker, are left out by
default (they would reward learning two sentences).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from avfusion.corpus.adapters.base import CorpusAdapter
from avfusion.corpus.adapters.layout import files_with_suffix, nothing_found, require_dir, sibling
from avfusion.corpus.types import Corpus, Utterance

CORE_TEST = ("mdab0", "mwbt0", "felc0", "mtas1", "mwew0", "fpas0", "mjmp0", "mlnt0", "fpkt0", "mlll0", "mtls0",
             "fjlm0", "mbpm0", "mklt0", "fnlp0", "mcmj0", "mjdh0", "fmgd0", "mgrt0", "mnjm0", "fdhc0", "mjln0",
             "mpam0", "fmld0")
DEV = ("faks0", "fdac1", "fjem0", "mgwt0", "mjar0", "mmdb1", "mmdm2", "mpdf0", "fcmh0", "fkms0", "mbdg0", "mbwm0",
       "mcsh0", "fadg0", "fdms0", "fedw0", "mgjf0", "mglb0", "mrtk0", "mtaa0", "mtdt0", "mthc0", "mwjg0", "fnmr0",
       "frew0", "fsem0", "mbns0", "mmjr0", "mdls0", "mdlf0", "mdvc0", "mers0", "fmah0", "fdrw0", "mrcs0", "mrjm4",
       "fcal1", "mmwh0", "fjsj0", "majc0", "mjsw0", "mreb0", "fgjd0", "fjmg0", "mroa0", "mteb0", "mjfc0", "mrjr0",
       "fmml0", "mrws1")
LAYOUT = "ROOT/{TRAIN,TEST}/DR<n>/<speaker>/<utt>.WAV + <utt>.PHN"


@dataclass
class TimitCorpus(CorpusAdapter):
    root: str
    include_sa: bool
    test_speakers: list[str] = field(default_factory=lambda: list(CORE_TEST))  # too long to list in the YAML
    dev_speakers: list[str] = field(default_factory=lambda: list(DEV))

    def load(self, progress: bool = True) -> Corpus:
        root = require_dir(self.root, "TIMIT", LAYOUT)
        test, dev = {s.lower() for s in self.test_speakers}, {s.lower() for s in self.dev_speakers}
        utterances = []
        for part in sorted(p for p in root.iterdir() if p.is_dir() and p.name.lower() in ("train", "test")):
            for speaker_dir in sorted(part.glob("*/*")):
                if not speaker_dir.is_dir():
                    continue
                speaker = speaker_dir.name.lower()
                if part.name.lower() == "train":
                    split = "train"
                else:
                    split = "test" if speaker in test else "dev" if speaker in dev else None
                for wav in files_with_suffix(speaker_dir, {".wav"}):
                    if split is None or (not self.include_sa and wav.stem.lower().startswith("sa")):
                        continue
                    utterances.append(Utterance(id=f"{speaker}_{wav.stem.lower()}", speaker=speaker, split=split,
                                                audio=wav, video=None, alignment=sibling(wav, ".phn"),
                                                alignment_format="phn"))
        if not utterances:
            raise nothing_found("TIMIT", root, LAYOUT)
        return Corpus(utterances, root=root, name=f"timit:{root}")
