"""The corpus model shared by the manifest reader, the corpus adapters and the synthetic generator."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from avfusion.errors import UserError

SPLITS = ("train", "dev", "test")
LABEL_KINDS = ("phones", "words")  # what an alignment labels: phones (folded to 39) or words


@dataclass(frozen=True)
class Segment:
    """A labelled time interval in seconds (a phone, a word, or a segment to classify)."""

    label: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Utterance:
    """One recording: paths are absolute (resolved against the manifest's folder when read)."""

    id: str
    speaker: str
    split: str
    audio: Path | None
    video: Path | None
    alignment: Path | None
    text: str = ""
    alignment_key: str | None = None  # the utterance's entry in a multi-utterance file (MLF, CTM)
    labels: str = "phones"  # phones | words: what the alignment's labels are
    alignment_tier: str | None = None  # a TextGrid's tier, when it holds several speakers' tiers
    alignment_format: str | None = None  # the reader (alignments.FORMATS); None: by the file's suffix


class CorpusError(UserError):
    pass


@dataclass
class Corpus:
    """Utterances with speaker-independent splits."""

    utterances: list[Utterance]
    root: Path = field(default_factory=Path.cwd)
    name: str = "corpus"
    vocabulary: tuple[str, ...] | None = None  # a closed word vocabulary (GRID); None: the training words
    babble: list[Utterance] = field(default_factory=list)  # recordings of talkers in no split (babble noise)

    def __post_init__(self) -> None:
        ids = Counter(u.id for u in self.utterances)
        repeated = sorted(i for i, n in ids.items() if n > 1)
        if repeated:
            raise CorpusError(f"{self.name}: utterance ids occur more than once: {repeated[:10]}")
        bad = sorted({u.split for u in self.utterances} - set(SPLITS))
        if bad:
            raise CorpusError(f"{self.name}: unknown split names {bad}; expected one of {SPLITS}")
        shared = sorted({u.speaker for u in self.babble} & {u.speaker for u in self.utterances})
        if shared:
            raise CorpusError(f"{self.name}: babble talkers {shared[:5]} also speak in a split; the babble pool "
                              "must be talkers in no split")

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self):
        return iter(self.utterances)

    def split(self, name: str) -> list[Utterance]:
        if name not in SPLITS:
            raise CorpusError(f"unknown split {name!r}; expected one of {SPLITS}")
        return [u for u in self.utterances if u.split == name]

    def speakers(self, split: str | None = None) -> list[str]:
        utts = self.utterances if split is None else self.split(split)
        return sorted({u.speaker for u in utts})

    def shared_speakers(self) -> dict[str, list[str]]:
        """Speakers that occur in more than one split (empty for a speaker-independent corpus)."""
        splits_of: dict[str, set[str]] = {}
        for u in self.utterances:
            splits_of.setdefault(u.speaker, set()).add(u.split)
        return {s: sorted(v) for s, v in sorted(splits_of.items()) if len(v) > 1}

    def check_speaker_independent(self) -> None:
        shared = self.shared_speakers()
        if shared:
            listing = ", ".join(f"{s} in {'/'.join(v)}" for s, v in shared.items())
            raise CorpusError(f"{self.name}: splits are not speaker-independent: {listing}")
