"""The contract of a front-end step (`frontend.<modality>.steps` in conf/frontend/): frames in, frames out
at 100 frames/s, fitted on the training utterances only."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np


class FrontEndStep:
    """`fit(utterances)` learns from the training utterances' `UttFrames` (`x`: (T, D), `speaker`, and
    `labels` while fitting) and returns the step; `transform(utterances)` maps `UttFrames` to `UttFrames`.
    What fitting learned is `state_dict()` (plain arrays, saved in the run) and `load_state_dict(arrays)`.
    `frame_context`: how many frames each side an output frame depends on (0: frame by frame); None, the
    default, means the whole recording, and `avfusion-predict` then runs a long recording in one piece."""

    frame_context: int | None = None
    learns = True  # False: `fit` learns nothing (splicing, per-utterance CMVN), so fitting in parts skips it
    # True: the step fits from sufficient statistics: `gather(utterances, into)` adds a batch's to a running total
    # (None: a new one), totals of parts add up (`+=`), and `fit_moments(total)` fits from it, as `fit` on all those
    # utterances would (global CMVN, LDA)
    gathers = False

    def fit(self, utterances) -> "FrontEndStep":
        return self

    def gather(self, utterances, into=None):
        raise NotImplementedError(f"{type(self).__name__} fits from the frames themselves, not from statistics")

    def fit_moments(self, statistics) -> "FrontEndStep":
        raise NotImplementedError(f"{type(self).__name__} fits from the frames themselves, not from statistics")

    def fit_in_parts(self, parts: Callable[[], Iterable[list]]) -> "FrontEndStep":
        """`fit` on the training utterances that `parts()` gives a batch at a time (called once per pass). A step
        that `gathers` holds one batch at a time; any other joins the batches and calls `fit`, every frame in
        memory at once."""
        if self.gathers:
            return self.fit_moments(gather_all(self, parts()))
        return self.fit([u for part in parts() for u in part])

    def transform(self, utterances):
        raise NotImplementedError(f"{type(self).__name__} must define transform(utterances)")

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays:
            raise ValueError(f"{type(self).__name__} learns nothing, but was given arrays {sorted(arrays)}")


def gather_all(step, parts: Iterable[list]):
    """The statistics `step` (one that `gathers`) adds up over batches of utterances."""
    total = None
    for part in parts:
        total = step.gather(part, total)
    if total is None:
        raise ValueError("no training utterances to fit the front-end on")
    return total


def through(steps, utterances):
    """`utterances` (`UttFrames`) transformed by each fitted step in turn."""
    for step in steps:
        utterances = step.transform(utterances)
    return utterances
