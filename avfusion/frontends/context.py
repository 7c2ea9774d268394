"""Frame splicing: stack each frame with its +-k neighbours (edges repeat the first/last frame)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avfusion.frontends.step import FrontEndStep


def splice(x: np.ndarray, context: int) -> np.ndarray:
    """(T, D) -> (T, (2k+1) D), ordered from frame t-k to t+k."""
    if context == 0:
        return x
    padded = np.concatenate([np.repeat(x[:1], context, 0), x, np.repeat(x[-1:], context, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * context + 1, axis=0)
    return np.ascontiguousarray(windows.transpose(0, 2, 1).reshape(len(x), -1))


@dataclass
class Splice(FrontEndStep):
    """A pipeline step with nothing to fit."""

    context: int
    learns = False

    @property
    def frame_context(self) -> int:
        """Frames each side an output frame depends on (see avfusion.inference.chunks)."""
        return self.context

    def fit(self, utterances) -> "Splice":
        return self

    def transform(self, utterances):
        return [u.replace(splice(u.x, self.context)) for u in utterances]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {}

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays:
            raise ValueError(f"splicing learns nothing, but the saved front-end has {sorted(arrays)} for it")
