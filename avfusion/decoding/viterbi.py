"""Viterbi search over a loop of left-to-right unit HMMs (log domain).

Each of U units is a chain of S states; a state either stays (log_stay) or moves on (log_move; from the
last state, log_move is the unit's exit). The last state of unit u enters the first state of unit v
with the arc weight cross[u, v] (LM weight x log P(v | u) - insertion penalty), an utterance starts in
the first state of v with start[v] and ends after the last state of u with end[u]. A (1, U) `cross`
is the same for every u (a unigram or flat loop): then each frame costs O(U S), so word loops of a
large vocabulary stay fast.

librosa.sequence.viterbi needs a dense, row-stochastic transition matrix: it cannot express an LM
weight or an insertion penalty, and costs O(T (U S)^2). This kernel costs O(T (U S + U^2)): the only
dense part is between unit ends and unit starts. It equals librosa's path on the same model when the
weights are probabilities (tests) and an exhaustive search on tiny problems.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from avfusion.decoding.framewise import DecodedUnit


@njit(cache=True)
def _viterbi(loglik, log_stay, log_move, cross, start, end):  # pragma: no cover - compiled
    n_frames, n_units, n_states = loglik.shape
    n_flat = n_units * n_states
    neg = -np.inf
    delta = np.full((n_units, n_states), neg)
    new = np.empty((n_units, n_states))
    # predecessor of each (frame, state): flat index of a state of the same unit, n_flat + u for an entry
    # from unit u's last state, -1 at the start
    back = np.empty((n_frames, n_units, n_states), dtype=np.int32)
    for v in range(n_units):
        delta[v, 0] = start[v] + loglik[0, v, 0]
        back[0, v, 0] = -1
        for k in range(1, n_states):
            back[0, v, k] = -1
    last = n_states - 1
    separable = cross.shape[0] == 1  # cross[u, v] = cross[0, v]: one best exit serves every entry
    for t in range(1, n_frames):
        best_exit = neg
        exit_unit = 0
        if separable:
            for u in range(n_units):
                score = delta[u, last] + log_move[u, last]
                if score > best_exit:
                    best_exit = score
                    exit_unit = u
        for v in range(n_units):
            best = delta[v, 0] + log_stay[v, 0]
            arg = v * n_states
            if separable:
                score = best_exit + cross[0, v]
                if score > best:
                    best = score
                    arg = n_flat + exit_unit
            else:
                for u in range(n_units):
                    score = delta[u, last] + log_move[u, last] + cross[u, v]
                    if score > best:
                        best = score
                        arg = n_flat + u
            new[v, 0] = best + loglik[t, v, 0]
            back[t, v, 0] = arg
            for k in range(1, n_states):
                stay = delta[v, k] + log_stay[v, k]
                move = delta[v, k - 1] + log_move[v, k - 1]
                if stay >= move:
                    new[v, k] = stay + loglik[t, v, k]
                    back[t, v, k] = v * n_states + k
                else:
                    new[v, k] = move + loglik[t, v, k]
                    back[t, v, k] = v * n_states + k - 1
        delta, new = new, delta
    best = neg
    state = -1
    for u in range(n_units):
        score = delta[u, last] + log_move[u, last] + end[u]
        if score > best:
            best = score
            state = u * n_states + last
    path = np.empty(n_frames, dtype=np.int64)
    entered = np.zeros(n_frames, dtype=np.bool_)
    entered[0] = True
    for t in range(n_frames - 1, -1, -1):
        path[t] = state
        if t > 0:
            previous = back[t, state // n_states, state % n_states]
            if previous >= n_flat:
                entered[t] = True
                state = (previous - n_flat) * n_states + last
            else:
                state = previous
    return path, entered, best


def viterbi(loglik: np.ndarray, log_stay: np.ndarray, log_move: np.ndarray, cross: np.ndarray, start: np.ndarray,
            end: np.ndarray) -> tuple[np.ndarray, list[DecodedUnit], float]:
    """Best path of (T, U, S) state log-likelihoods: the flat state (u * S + k) of each frame, the units it
    traverses with their frames, and its score. An utterance shorter than S frames has no complete path:
    it gets its most likely unit."""
    loglik = np.ascontiguousarray(loglik, dtype=np.float64)
    n_frames, n_units, n_states = loglik.shape
    if n_frames == 0:
        return np.zeros(0, np.int64), [], 0.0
    if n_frames < n_states:
        u = int(loglik.sum(axis=(0, 2)).argmax())
        return np.full(n_frames, u * n_states), [DecodedUnit(u, 0, n_frames)], float("-inf")
    args = [np.ascontiguousarray(a, dtype=np.float64) for a in (log_stay, log_move, cross, start, end)]
    path, entered, score = _viterbi(loglik, *args)
    starts = np.flatnonzero(entered)
    ends = np.concatenate([starts[1:], [n_frames]])
    units = [DecodedUnit(int(path[s] // n_states), int(s), int(e)) for s, e in zip(starts, ends)]
    return path, units, float(score)


def dense_loop(log_stay: np.ndarray, log_move: np.ndarray, log_next: np.ndarray, log_start: np.ndarray,
               log_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same loop (at unit weights) as one (U S + 1) square row-stochastic matrix and an initial
    distribution, for a dense Viterbi such as librosa's: it has no final probabilities, so an absorbing
    last state takes each unit's exit times P(</s> | u), and observing only it after the last frame
    makes a path end in a unit's last state."""
    n_units, n_states = log_stay.shape
    n = n_units * n_states
    firsts = np.arange(n_units) * n_states
    trans = np.zeros((n + 1, n + 1))
    for u in range(n_units):
        for k in range(n_states):
            i = u * n_states + k
            trans[i, i] = np.exp(log_stay[u, k])
            if k < n_states - 1:
                trans[i, i + 1] = np.exp(log_move[u, k])
            else:
                trans[i, firsts] = np.exp(log_move[u, k] + log_next[u])
                trans[i, n] = np.exp(log_move[u, k] + log_end[u])
    trans[n, n] = 1.0
    init = np.zeros(n + 1)
    init[firsts] = np.exp(log_start)
    return trans, init
