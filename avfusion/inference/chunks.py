"""A long recording in pieces, with the result of one pass over all of it.

Front-end steps and models declare `frame_context`: how many frames each side an output frame depends
on (a splice of +-4: 4; an LDA, a frame MLP: 0; a window-pooling head: its half width; None: the whole
sequence). A piece of frames [lo, hi) is then computed from [lo - context, hi + context) and trimmed,
which gives the frames a single pass gives: the padding a step adds at a piece's edge (splicing repeats
the edge frame) only reaches the context that is cut off. Steps with per-recording statistics
(utterance CMVN: `for_clip`) get them from the whole recording first. With a None anywhere the
recording is done in one piece.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from avfusion.frames.data import UttFrames
from avfusion.frontends.step import through


def steps_context(steps: Sequence) -> int | None:
    """Frames each side the output of `steps` (applied in order) depends on; None: the whole sequence."""
    contexts = [getattr(step, "frame_context", None) for step in steps]
    return None if None in contexts else sum(contexts)


def apply_steps(steps: Sequence, x: np.ndarray) -> np.ndarray:
    """`steps` over one recording's (T, D) frames."""
    return through(steps, [UttFrames("clip", "clip", x)])[0].x


def piece(steps: Sequence, x: np.ndarray, lo: int, hi: int, context: int) -> np.ndarray:
    """Rows lo:hi of `apply_steps(steps, x)`, computed from the rows within `context` of them only."""
    a, b = max(0, lo - context), min(len(x), hi + context)
    return apply_steps(steps, x[a:b])[lo - a:hi - a]


def spans(n_frames: int, chunk: int | None) -> Iterator[tuple[int, int]]:
    """[lo, hi) pieces of at most `chunk` frames covering n_frames (one piece if chunk is None)."""
    step = n_frames if chunk is None else max(1, chunk)
    for lo in range(0, n_frames, step):
        yield lo, min(lo + step, n_frames)


def transformed_blocks(steps: Sequence, x, chunk: int | None) -> Iterator[np.ndarray]:
    """`apply_steps(steps, x)` as consecutive blocks, a piece at a time when the steps allow it. `x`: an
    array, or anything that gives `len` and contiguous rows `x[a:b]` (a file of rows)."""
    context = steps_context(steps) if steps else 0
    if context is None:
        yield apply_steps(steps, x[0:len(x)])
        return
    for lo, hi in spans(len(x), chunk):
        yield piece(steps, x, lo, hi, context) if steps else x[lo:hi]


def transformed(steps: Sequence, x, chunk: int | None) -> np.ndarray:
    """`apply_steps(steps, x)`, a piece at a time when the steps allow it."""
    return np.concatenate(list(transformed_blocks(steps, x, chunk)))


def for_clip(steps: Sequence, x, chunk: int | None) -> list:
    """`steps` for the recording `x` (T, D): each step with per-recording statistics (`for_clip`) replaced
    by one holding the statistics of its whole input (streamed to it in pieces), so that pieces are
    normalised alike."""
    resolved: list = []
    for step in steps:
        if hasattr(step, "for_clip"):
            step = step.for_clip(transformed_blocks(resolved, x, chunk))
        resolved.append(step)
    return resolved
