"""A decoding's frame runs as timed units, with the confidence of each."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avfusion.decoding.framewise import DecodedUnit
from avfusion.frames.clock import run_times


@dataclass(frozen=True)
class TimedUnit:
    label: str
    start: float  # seconds
    end: float
    confidence: float  # mean posterior of the unit over its frames
    first_frame: int
    end_frame: int  # one past the last


def timed_units(scheme, decoded: list[DecodedUnit], posteriors, duration: float, block: int = 6000) -> list[TimedUnit]:
    """Decoded frame runs as times: a boundary between frames k - 1 and k at (k - 0.5) / 100 s, which the
    project's frame labelling maps back to the same frames; the first starts at 0, the last ends at the end.
    The confidence is the unit's mean posterior over its frames (`posteriors` read `block` frames at a time)."""
    n_frames = len(posteriors)
    sums = np.zeros(len(decoded))
    starts = np.array([d.start for d in decoded], np.int64)
    ends = np.array([d.end for d in decoded], np.int64)
    units = np.array([d.unit for d in decoded], np.int64)
    for lo in range(0, n_frames, block):
        hi = min(lo + block, n_frames)
        unit_post = scheme.unit_posteriors(np.asarray(posteriors[lo:hi]))
        for i in range(np.searchsorted(ends, lo, side="right"), np.searchsorted(starts, hi)):
            a, b = max(starts[i], lo), min(ends[i], hi)
            sums[i] += unit_post[a - lo:b - lo, units[i]].sum()
    out = []
    for d, total in zip(decoded, sums):
        start, end = run_times(d.start, d.end, n_frames, duration)
        out.append(TimedUnit(scheme.units[d.unit], start, end, float(total / max(d.end - d.start, 1)), d.start, d.end))
    return out
