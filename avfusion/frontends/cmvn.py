"""Cepstral mean (and variance) normalisation, per utterance, per speaker, or with train statistics."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from avfusion.frontends.statistics import Moments
from avfusion.frontends.step import FrontEndStep

SCOPES = ("utterance", "speaker", "global")


@dataclass
class Cmvn(FrontEndStep):
    """`utterance`: each utterance by its own statistics (Kaldi's default CMN; nothing is fitted).
    `speaker`: by the statistics of all that speaker's utterances being transformed together
    (unlabelled, the speaker's own audio, as Kaldi's spk2utt CMVN). `global`: by statistics
    fitted on the training frames."""

    scope: str
    variance: bool
    floor: float = 1e-5
    mean_: np.ndarray | None = field(default=None, repr=False)
    std_: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"cmvn scope must be one of {SCOPES}, got {self.scope!r}")

    frame_context = 0  # given its statistics, frame by frame (see avfusion.inference.chunks)

    def for_clip(self, blocks: Iterable[np.ndarray]) -> "Cmvn":
        """This step for one recording (its frames as consecutive (t, D) blocks) processed in pieces: its
        utterance (or speaker: the recording is all we have of its speaker) statistics computed once over
        all of it."""
        if self.scope == "global":
            return self
        mean, std = self._stats(blocks)
        return Cmvn("global", self.variance, self.floor, mean, std)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {} if self.mean_ is None else {"mean": self.mean_, "std": self.std_}

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        if self.scope == "global" and not {"mean", "std"} <= set(arrays):
            raise ValueError("the saved global CMVN has no statistics")
        self.mean_, self.std_ = arrays.get("mean"), arrays.get("std")

    def fit(self, utterances) -> "Cmvn":
        if self.scope == "global":
            self.mean_, self.std_ = self._stats([u.x for u in utterances])
        return self

    def _stats(self, arrays: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        moments = Moments()
        for a in arrays:  # one pass: `arrays` may be a stream of blocks
            moments.add(a)
        return moments.mean_std(self.floor)

    @property
    def learns(self) -> bool:
        return self.scope == "global"

    gathers = learns

    def gather(self, utterances, into: Moments | None = None) -> Moments:
        """`into` (None: new moments) with a batch of training utterances' frames added (`fit_moments` fits from them)."""
        moments = into if into is not None else Moments()
        for u in utterances:
            moments.add(u.x)
        return moments

    def fit_moments(self, moments: Moments) -> "Cmvn":
        """Global statistics from moments gathered in parts (`avfusion.frontends.statistics`): `fit`'s numbers."""
        if self.scope == "global":
            self.mean_, self.std_ = moments.mean_std(self.floor)
        return self

    def _apply(self, x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        y = x - mean
        if self.variance:
            y = y / std
        return y.astype(np.float32)

    def transform(self, utterances):
        if self.scope == "global":
            if self.mean_ is None:
                raise RuntimeError("global CMVN used before fit (fit it on the training split)")
            return [u.replace(self._apply(u.x, self.mean_, self.std_)) for u in utterances]
        if self.scope == "utterance":
            return [u.replace(self._apply(u.x, *self._stats([u.x]))) for u in utterances]
        by_speaker = defaultdict(list)
        for u in utterances:
            by_speaker[u.speaker].append(u.x)
        stats = {s: self._stats(xs) for s, xs in by_speaker.items()}
        return [u.replace(self._apply(u.x, *stats[u.speaker])) for u in utterances]
