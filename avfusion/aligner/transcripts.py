"""Each utterance's transcript as the positions of its linear HMM, through the lexicon; the utterances that
cannot be aligned, with why (no text, no words in it). A word the lexicon cannot pronounce stops the
aligner with a one-line error naming the word and the utterance: leaving it out would misplace every
boundary after it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from avfusion.corpus.labels import LabelScheme
from avfusion.corpus.types import Segment
from avfusion.corpus.lexicon import Lexicon, words_of
from avfusion.corpus.types import Utterance
from avfusion.decoding.align import Transcript
from avfusion.decoding.framewise import DecodedUnit
from avfusion.frames.clock import FRAME_RATE


@dataclass(frozen=True)
class Planned:
    """An utterance's transcript and its words (as the lexicon looked them up)."""

    transcript: Transcript
    words: tuple[str, ...]

    def tiers(self, scheme: LabelScheme, positions: Sequence[DecodedUnit], n_frames: int) -> dict[str, list[Segment]]:
        """The `words` and `phones` tiers of an alignment over this transcript's positions, in seconds on the
        frame clock (the recording taken to end with its last frame)."""
        return self.transcript.tiers(self.words, scheme.units, positions, n_frames, n_frames / FRAME_RATE)


def transcripts_of(utterances: Sequence[Utterance], scheme: LabelScheme, lexicon: Lexicon
                   ) -> tuple[dict[str, Planned], dict[str, str]]:
    """{utterance id: its transcript} for the utterances with words to align, and {id: why not} for the rest."""
    planned, unaligned = {}, {}
    for utt in utterances:
        if not utt.text.strip():
            unaligned[utt.id] = "no text to align"
            continue
        if not words_of(utt.text, lexicon.spell_letters):
            unaligned[utt.id] = f"no words in its text {utt.text!r}"
            continue
        transcript, words = Transcript.of_text(utt.text, scheme, lexicon, utt.id)
        planned[utt.id] = Planned(transcript, tuple(words))
    return planned, unaligned
