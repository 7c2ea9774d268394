"""A run's model over a long recording: posteriors a block at a time, in pieces with the context each
front-end step and the model need (`avfusion.inference.chunks`), equal to one pass over all of it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from avfusion.frames.clock import FRAME_RATE
from avfusion.frames.data import FrameData, VideoStream
from avfusion.inference.chunks import for_clip, piece, spans, steps_context

log = logging.getLogger(__name__)


def posterior_blocks(run, raw: dict, chunk_seconds: float | None, progress: bool = False,
                     streams: dict[str, VideoStream] | None = None, n_frames: int | None = None) -> Iterator[np.ndarray]:
    """(t, C) posteriors of the run's model, consecutive blocks of the recording (see `model_pieces`)."""
    for data, kept in model_pieces(run, raw, chunk_seconds, progress, streams, n_frames):
        yield run.model.posteriors(data)[kept]


def model_pieces(run, raw: dict, chunk_seconds: float | None, progress: bool = False,
                 streams: dict[str, VideoStream] | None = None, n_frames: int | None = None
                 ) -> Iterator[tuple[FrameData, slice]]:
    """The model's input for consecutive pieces of the recording, each with the context the model needs, and the
    rows of it the piece keeps: from raw features at 100 frames/s (T, D) per modality (arrays or files of rows),
    through the run's fitted front-end steps, in pieces of `chunk_seconds` with the context they need. `streams`:
    modalities at their own rate, which the model (a CNN over the whole sequence) reads in one piece;
    `n_frames`: the recording's label frames (default: the raw features' length)."""
    steps = {m: run.frontend.modalities[m].steps for m in raw}
    contexts = {m: steps_context(s) for m, s in steps.items()}
    model_context = run.model.frame_context
    n_frames = len(next(iter(raw.values()))) if n_frames is None else n_frames
    chunk = None if chunk_seconds is None else max(1, int(round(chunk_seconds * FRAME_RATE)))
    if None in contexts.values() or model_context is None:
        if chunk is not None and chunk < n_frames:
            log.info("the model or a front-end step looks at the whole sequence: one piece of %d frames", n_frames)
        chunk = model_context = None
        contexts = dict.fromkeys(contexts, 0)
    resolved = {m: for_clip(s, raw[m], chunk) for m, s in steps.items()}
    pieces = list(spans(n_frames, chunk))
    if progress and len(pieces) > 1:
        from tqdm.auto import tqdm

        pieces = tqdm(pieces, desc="front-end and model", unit="piece")
    for lo, hi in pieces:
        a, b = (0, n_frames) if model_context is None else (max(0, lo - model_context), min(n_frames, hi + model_context))
        features = {m: piece(resolved[m], raw[m], a, b, contexts[m]) for m in raw}
        data = FrameData(features, np.zeros(b - a, np.int64), np.array([0, b - a]), ["clip"], ["clip"], streams or {})
        yield data, slice(lo - a, hi - a)


def posteriors(run, raw: dict, chunk_seconds: float | None, progress: bool = False) -> np.ndarray:
    """All of `posterior_blocks` as one (T, C) array."""
    return np.concatenate(list(posterior_blocks(run, raw, chunk_seconds, progress)))
