"""The contract of a corpus adapter (`conf/data/<name>.yaml`): a corpus's own layout read into a `Corpus`."""

from __future__ import annotations

from abc import ABC, abstractmethod

from avfusion.corpus.types import Corpus


class CorpusAdapter(ABC):
    """`load(progress)` returns the corpus with speaker-independent splits. An adapter owns its formats: it
    names the alignment format of each utterance (`Utterance.alignment_format`), so no file suffix decides
    how a corpus's alignments are read."""

    @abstractmethod
    def load(self, progress: bool = True) -> Corpus:
        """The corpus's utterances (absolute paths) with their splits."""
