"""Forced alignment: the best path of an utterance's frames through the linear HMM of its own unit sequence,
some positions optional (silence between words and at the ends), with the decoder's left-to-right unit HMMs
and durations. It runs the loop Viterbi kernel (`avfusion.decoding.viterbi`) over the positions of the
sequence instead of the units of the inventory: position p may be followed by p + 1, or by later positions
when every one between is optional, and no other arc exists. Cost O(T (P S + P^2)) for P positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avfusion.decoding.framewise import DecodedUnit
from avfusion.decoding.viterbi import viterbi


def linear_arcs(optional: Sequence[bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P, P) arc weights between positions (0 allowed, -inf not), and the positions a path may start and end
    in (0 or -inf): a path visits every position that is not optional, in order."""
    optional = np.asarray(optional, bool)
    n = len(optional)
    cross = np.full((n, n), -np.inf)
    for p in range(n):
        for q in range(p + 1, n):
            cross[p, q] = 0.0
            if not optional[q]:
                break
    required = np.flatnonzero(~optional)
    first, last = (required[0], required[-1]) if len(required) else (n - 1, 0)
    start = np.where(np.arange(n) <= first, 0.0, -np.inf)
    end = np.where(np.arange(n) >= last, 0.0, -np.inf)
    return cross, start, end


def force_align(loglik: np.ndarray, units: Sequence[int], optional: Sequence[bool], log_stay: np.ndarray,
                log_move: np.ndarray) -> tuple[list[DecodedUnit], float]:
    """The segments (unit, first frame, end frame) of the best path of (T, U, S) state log-likelihoods
    through `units` in order (unit ids, `optional` per position), and its score. A ValueError when no path
    fits: fewer frames than the states of the required units."""
    units = np.asarray(units, np.int64)
    n_states = loglik.shape[2]
    needed = int((~np.asarray(optional, bool)).sum()) * n_states
    if len(loglik) < max(needed, 1):
        raise ValueError(f"{len(loglik)} frames cannot hold the {needed} states of the transcript's units")
    cross, start, end = linear_arcs(optional)
    path, segments, score = viterbi(loglik[:, units], log_stay[units], log_move[units], cross, start, end)
    if not np.isfinite(score):
        raise ValueError("no path through the transcript's units fits these frames")
    return [DecodedUnit(int(units[s.unit]), s.start, s.end) for s in segments], score
