"""The contract of a front-end step (`frontend.<modality>.steps` in conf/frontend/): frames in, frames out
at 100 frames/s, fitted on the training utterances only."""

from __future__ import annotations

import numpy as np


class FrontEndStep:
    """`fit(utterances)` learns from the training utterances' `UttFrames` (`x`: (T, D), `speaker`, and
    `labels` while fitting) and returns the step; `transform(utterances)` maps `UttFrames` to `UttFrames`.
    What fitting learned is `state_dict()` (plain arrays, saved in the run) and `load_state_dict(arrays)`.
    `frame_context`: how many frames each side an output frame depends on (0: frame by frame); None, the
    default, means the whole recording, and `avfusion-predict` then runs a long recording in one piece."""

    frame_context: int | None = None

    def fit(self, utterances) -> "FrontEndStep":
        return self

    def transform(self, utterances):
        raise NotImplementedError(f"{type(self).__name__} must define transform(utterances)")

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays:
            raise ValueError(f"{type(self).__name__} learns nothing, but was given arrays {sorted(arrays)}")
