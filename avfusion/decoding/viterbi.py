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

`ViterbiSearch` takes the frames a block at a time (the state scores carry over from block to block):
memory for a recording of any length is its backpointers, which can go to a file (`spill`) and are read
back a block at a time when the best path is traced from the end. `viterbi` is one block. `search_many`
decodes a whole set of utterances in one call, in parallel: a decoder's dev tuning runs it once per grid point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit, prange

from avfusion.decoding.framewise import DecodedUnit


@njit(cache=True)
def _forward(loglik, scale, log_stay, log_move, cross, start, delta, back, first):  # pragma: no cover - compiled
    """Advance the state scores `delta` (U, S) through the block `scale` x `loglik` (L, U, S), in place,
    writing each frame's predecessors into `back` (L, U, S): the flat index of a state of the same unit,
    n_flat + u for an entry from unit u's last state, -1 at the start (`first`: the block begins the
    utterance). Ties go to staying, then to the lowest exiting unit."""
    n_frames, n_units, n_states = loglik.shape
    n_flat = n_units * n_states
    neg = -np.inf
    t0 = 0
    if first:
        for v in range(n_units):
            delta[v, 0] = start[v] + scale * loglik[0, v, 0]
            back[0, v, 0] = -1
            for k in range(1, n_states):
                delta[v, k] = neg
                back[0, v, k] = -1
        t0 = 1
    out = delta
    new = np.empty_like(delta)
    swaps = 0
    last = n_states - 1
    separable = cross.shape[0] == 1  # cross[u, v] = cross[0, v]: one best exit serves every entry
    exits = np.empty(n_units)
    entry = np.empty(n_units)  # per unit v: the best way into its first state
    entry_from = np.empty(n_units, np.int64)
    cross_max = np.empty(cross.shape[0])
    cross_min = np.empty(cross.shape[0])
    for u in range(cross.shape[0]):
        cross_max[u], cross_min[u] = cross[u].max(), cross[u].min()
    for t in range(t0, n_frames):
        exit_unit = 0
        for u in range(n_units):
            exits[u] = delta[u, last] + log_move[u, last]
            if exits[u] > exits[exit_unit]:
                exit_unit = u
        for v in range(n_units):
            entry[v] = delta[v, 0] + log_stay[v, 0]
            entry_from[v] = v * n_states
        if separable:
            for v in range(n_units):
                score = exits[exit_unit] + cross[0, v]
                if score > entry[v]:
                    entry[v] = score
                    entry_from[v] = n_flat + exit_unit
        else:
            # the best exit offers every unit at least `floor`: a unit whose best arc stays below it cannot
            # win any entry (exact; about 2 in 3 units skipped on a trained model's posteriors)
            floor = exits[exit_unit] + cross_min[exit_unit]
            # u outside, v inside, branch-free: the O(U^2) part vectorises (twice as fast as v outside)
            for u in range(n_units):
                if exits[u] + cross_max[u] < floor:
                    continue
                score_u = exits[u]
                code = n_flat + u
                for v in range(n_units):
                    score = score_u + cross[u, v]
                    better = score > entry[v]
                    entry[v] = score if better else entry[v]
                    entry_from[v] = code if better else entry_from[v]
        for v in range(n_units):
            new[v, 0] = entry[v] + scale * loglik[t, v, 0]
            back[t, v, 0] = entry_from[v]
            for k in range(1, n_states):
                stay = delta[v, k] + log_stay[v, k]
                move = delta[v, k - 1] + log_move[v, k - 1]
                if stay >= move:
                    new[v, k] = stay + scale * loglik[t, v, k]
                    back[t, v, k] = v * n_states + k
                else:
                    new[v, k] = move + scale * loglik[t, v, k]
                    back[t, v, k] = v * n_states + k - 1
        delta, new = new, delta
        swaps += 1
    if swaps % 2 == 1:  # the scores are in the scratch buffer
        out[:, :] = delta


@njit(cache=True)
def _traceback(back, state, path, entered):  # pragma: no cover - compiled
    """Follow `back` (L, U, S) from the flat `state` at the block's last frame to its first, filling `path`
    and `entered` (a unit begins at the frame); return the flat state of the frame before the block."""
    n_frames, n_units, n_states = back.shape
    n_flat = n_units * n_states
    for t in range(n_frames - 1, -1, -1):
        path[t] = state
        previous = back[t, state // n_states, state % n_states]
        if previous < 0:
            entered[t] = True
            state = -1
        elif previous >= n_flat:
            entered[t] = True
            state = (previous - n_flat) * n_states + n_states - 1
        else:
            entered[t] = False
            state = previous
    return state


@njit(cache=True, parallel=True)
def _search_many(loglik, offsets, scale, log_stay, log_move, cross, start, end, path, entered):  # pragma: no cover
    """`viterbi` of each utterance offsets[i]:offsets[i + 1] of `scale` x `loglik` (N, U, S), in parallel over
    utterances, writing its best path and unit entries into `path` and `entered` (N,) at the same frames."""
    n_units, n_states = log_stay.shape
    last = n_states - 1
    for i in prange(len(offsets) - 1):
        a, b = offsets[i], offsets[i + 1]
        if b - a < n_states:  # no complete path: the most likely unit (as ViterbiSearch.finish)
            sums = np.zeros(n_units)
            for t in range(a, b):
                for u in range(n_units):
                    for k in range(n_states):
                        sums[u] += loglik[t, u, k]
            for t in range(a, b):
                path[t] = np.argmax(sums) * n_states
                entered[t] = t == a
            continue
        delta = np.empty((n_units, n_states))
        back = np.empty((b - a, n_units, n_states), np.int32)
        _forward(loglik[a:b], scale, log_stay, log_move, cross, start, delta, back, True)
        best = np.argmax(delta[:, last] + log_move[:, last] + end)
        _traceback(back, best * n_states + last, path[a:b], entered[a:b])


def search_many(loglik: np.ndarray, offsets: np.ndarray, scale: float, log_stay: np.ndarray, log_move: np.ndarray,
                cross: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best paths of many utterances at once (the frames of utterance i are offsets[i]:offsets[i + 1] of
    the (N, U, S) `loglik`, times `scale`): the flat state of each frame, and whether a unit begins there.
    The same paths as `viterbi` of each, on every core numba has: what a grid search over decoder
    settings runs once per setting."""
    loglik = np.ascontiguousarray(loglik, dtype=np.float64)
    path, entered = np.zeros(len(loglik), np.int64), np.zeros(len(loglik), np.bool_)
    _search_many(loglik, np.asarray(offsets, np.int64), float(scale),
                 *(np.ascontiguousarray(a, dtype=np.float64) for a in (log_stay, log_move, cross, start, end)),
                 path, entered)
    return path, entered


def decoded_units(path: np.ndarray, entered: np.ndarray, n_states: int) -> list[DecodedUnit]:
    """The units a best path traverses, with their frames."""
    starts = np.flatnonzero(entered)
    ends = np.concatenate([starts[1:], [len(path)]])
    return [DecodedUnit(int(path[s] // n_states), int(s), int(e)) for s, e in zip(starts, ends)]


class ViterbiSearch:
    """`viterbi` over frames given a block at a time (`push`), the best path at the end (`finish`).
    `spill`: a file for the backpointers (written as they come, read back a block at a time), so memory
    stays that of one block however long the recording; without it they stay in memory."""

    def __init__(self, log_stay: np.ndarray, log_move: np.ndarray, cross: np.ndarray, start: np.ndarray,
                 end: np.ndarray, spill: str | Path | None = None):
        self.log_stay, self.log_move, self.cross, self.start, self.end = (
            np.ascontiguousarray(a, dtype=np.float64) for a in (log_stay, log_move, cross, start, end))
        self.n_units, self.n_states = self.log_stay.shape
        self.delta = np.empty((self.n_units, self.n_states))
        self.unit_loglik = np.zeros(self.n_units)  # for an utterance too short for any complete path
        n_codes = self.n_units * self.n_states + self.n_units
        self.back_dtype = np.int16 if n_codes < np.iinfo(np.int16).max else np.int32
        self.blocks: list[np.ndarray] = []
        self.lengths: list[int] = []
        self.spill = Path(spill) if spill is not None else None
        self._file = open(self.spill, "wb") if self.spill is not None else None
        self.n_frames = 0

    def push(self, loglik: np.ndarray) -> None:
        """The next (L, U, S) frames' state log-likelihoods."""
        loglik = np.ascontiguousarray(loglik, dtype=np.float64)
        if len(loglik) == 0:
            return
        back = np.empty(loglik.shape, self.back_dtype)
        _forward(loglik, 1.0, self.log_stay, self.log_move, self.cross, self.start, self.delta, back, self.n_frames == 0)
        self.unit_loglik += loglik.sum(axis=(0, 2))
        self.n_frames += len(loglik)
        self.lengths.append(len(loglik))
        if self._file is not None:
            self._file.write(back.tobytes())
        else:
            self.blocks.append(back)

    def _back_blocks(self):
        """The backpointer blocks, last first."""
        if self._file is None:
            yield from reversed(self.blocks)
            return
        self._file.close()
        frame_bytes = self.n_units * self.n_states * np.dtype(self.back_dtype).itemsize
        offset = self.n_frames * frame_bytes
        for length in reversed(self.lengths):
            offset -= length * frame_bytes
            yield np.fromfile(self.spill, self.back_dtype, length * self.n_units * self.n_states,
                              offset=offset).reshape(length, self.n_units, self.n_states)

    def finish(self) -> tuple[np.ndarray, list[DecodedUnit], float]:
        """The best path (flat state u * S + k per frame), the units it traverses with their frames, and its
        score. An utterance shorter than S frames has no complete path: it gets its most likely unit."""
        n_frames, n_states = self.n_frames, self.n_states
        try:
            if n_frames == 0:
                return np.zeros(0, np.int64), [], 0.0
            if n_frames < n_states:
                u = int(self.unit_loglik.argmax())
                return np.full(n_frames, u * n_states), [DecodedUnit(u, 0, n_frames)], float("-inf")
            last = n_states - 1
            exits = self.delta[:, last] + self.log_move[:, last] + self.end
            best = int(exits.argmax())
            state = best * n_states + last
            paths, flags = [], []
            for back in self._back_blocks():
                path, entered = np.empty(len(back), np.int64), np.empty(len(back), np.bool_)
                state = _traceback(back, state, path, entered)
                paths.append(path)
                flags.append(entered)
        finally:
            if self._file is not None:
                self._file.close()
                self.spill.unlink(missing_ok=True)
        path, entered = np.concatenate(paths[::-1]), np.concatenate(flags[::-1])
        return path, decoded_units(path, entered, n_states), float(exits[best])


def viterbi(loglik: np.ndarray, log_stay: np.ndarray, log_move: np.ndarray, cross: np.ndarray, start: np.ndarray,
            end: np.ndarray) -> tuple[np.ndarray, list[DecodedUnit], float]:
    """Best path of (T, U, S) state log-likelihoods: the flat state (u * S + k) of each frame, the units it
    traverses with their frames, and its score. An utterance shorter than S frames has no complete path:
    it gets its most likely unit."""
    search = ViterbiSearch(log_stay, log_move, cross, start, end)
    search.push(loglik)
    return search.finish()


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
