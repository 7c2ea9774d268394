"""The frame clock: frame i is centred at t_i = i / FRAME_RATE (librosa's `center=True` convention),
so an utterance of n samples at 16 kHz has 1 + n // 160 frames; the audio front-end produces exactly
this many, and every other stream is brought to it."""

from __future__ import annotations

import numpy as np

FRAME_RATE = 100  # frames per second


def num_frames(duration: float) -> int:
    """Frames for an utterance of `duration` seconds (centres at 0, 10 ms, ..., <= duration)."""
    return int(np.floor(duration * FRAME_RATE + 1e-6)) + 1


def frame_times(n_frames: int) -> np.ndarray:
    return np.arange(n_frames) / FRAME_RATE


def frame_span(start: float, end: float, n_frames: int) -> tuple[int, int]:
    """Frames whose centres lie in [start, end) (as frame labels assign them); the nearest one for a
    segment shorter than a frame step."""
    first = int(np.ceil(start * FRAME_RATE - 1e-6))
    stop = min(int(np.ceil(end * FRAME_RATE - 1e-6)), n_frames)
    if stop > first:
        return first, stop
    nearest = min(int(round((start + end) / 2 * FRAME_RATE)), n_frames - 1)
    return nearest, nearest + 1


def video_positions(fps: float, n_video: int, start: int, stop: int, rate: float = FRAME_RATE) -> tuple[int, np.ndarray]:
    """Where label frames start:stop fall in a video of `n_video` frames at `fps` (video frame k at k / fps):
    the first video frame they need and each one's fractional position counted from it, held at the last
    video frame past the end. Linear interpolation at these positions is the rate conversion of every
    video stream (DCT features before their LDA, a CNN's hidden sequence inside the model)."""
    pos = np.minimum(np.arange(start, stop) * (fps / rate), max(n_video - 1, 0))
    first = int(np.floor(pos[0])) if len(pos) else 0
    return first, pos - first


def run_times(start: int, end: int, n_frames: int, duration: float) -> tuple[float, float]:
    """Seconds of the run of frames start:end: a boundary between frames k - 1 and k at (k - 0.5) / FRAME_RATE,
    which `frame_span` maps back to the same frames; the first run starts at 0, the last ends at `duration`."""
    first = 0.0 if start == 0 else min((start - 0.5) / FRAME_RATE, duration)
    last = duration if end >= n_frames else min((end - 0.5) / FRAME_RATE, duration)
    return first, last
