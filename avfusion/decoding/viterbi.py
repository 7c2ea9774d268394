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
back a block at a time when the best path is traced from the end. `viterbi` is one block. `search_grid`
decodes a whole set of utterances at many decoder settings in one call, in parallel over utterances and
vectorised over settings: a decoder's dev tuning runs it over its grid.
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


@njit(cache=True)
def _forward_grid(loglik, scales, log_stay, log_move, cross, start, reach, delta, back):  # pragma: no cover
    """`_forward` of one whole utterance (L, U, S) at G decoder settings at once: `scales` (G,), arcs `cross`
    (G, C, U) and `start` (U, G). The scores `delta` (U, S, G) and backpointers `back` (L, U, S, G) carry
    the settings last, so the state updates are the same arithmetic on G adjacent numbers (SIMD) and each
    frame's log-likelihoods are read once for all of them; a bigram's entries go setting by setting, each
    with its own pruning (`reach` (G, C, C): see `_search_grid`). The same comparisons, in the same order,
    as `_forward` at each setting alone: the same paths, ties included."""
    n_frames, n_units, n_states = loglik.shape
    n_points = scales.shape[0]
    n_flat = n_units * n_states
    last = n_states - 1
    neg = -np.inf
    for v in range(n_units):
        for g in range(n_points):
            delta[v, 0, g] = start[v, g] + scales[g] * loglik[0, v, 0]
            back[0, v, 0, g] = -1
        for k in range(1, n_states):
            for g in range(n_points):
                delta[v, k, g] = neg
                back[0, v, k, g] = -1
    new = np.empty_like(delta)
    separable = cross.shape[1] == 1
    exits = np.empty((n_units, n_points))
    best_exit = np.empty(n_points)
    exit_unit = np.empty(n_points, np.int64)
    entry = np.empty((n_units, n_points))  # per unit v and setting g: the best way into v's first state
    entry_from = np.empty((n_units, n_points), np.int32)  # the backpointers' type: the stores vectorise
    into = np.empty(n_units)  # one setting's entries, contiguous
    source = np.empty(n_units)  # its sources as floats: the selects vectorise with the comparisons
    for t in range(1, n_frames):
        for g in range(n_points):
            best_exit[g] = delta[0, last, g] + log_move[0, last]
            exit_unit[g] = 0
        for u in range(n_units):
            for g in range(n_points):
                e = delta[u, last, g] + log_move[u, last]
                exits[u, g] = e
                better = e > best_exit[g]
                best_exit[g] = e if better else best_exit[g]
                exit_unit[g] = u if better else exit_unit[g]
        for v in range(n_units):
            for g in range(n_points):
                entry[v, g] = delta[v, 0, g] + log_stay[v, 0]
                entry_from[v, g] = np.int32(v * n_states)
        if separable:  # every unit's best way in from another is the best exit
            for v in range(n_units):
                for g in range(n_points):
                    score = best_exit[g] + cross[g, 0, v]
                    better = score > entry[v, g]
                    entry[v, g] = score if better else entry[v, g]
                    entry_from[v, g] = np.int32(n_flat + exit_unit[g]) if better else entry_from[v, g]
        else:
            for g in range(n_points):
                best, b, arcs = best_exit[g], exit_unit[g], cross[g]
                for v in range(n_units):
                    into[v], source[v] = entry[v, g], entry_from[v, g]
                for u in range(n_units):
                    # u can win an entry only if it outbids the best exit b somewhere:
                    # exits[u] + cross[u, v] > exits[b] + cross[b, v] for some v (exact, with a margin far
                    # above rounding; `_forward` prunes less tightly, and a pruned unit wins nothing)
                    score_u = exits[u, g]
                    if score_u + reach[g, b, u] < best - 1e-6:
                        continue
                    code = float(n_flat + u)
                    for v in range(n_units):  # written so that it vectorises (max and a blend)
                        score, held = score_u + arcs[u, v], into[v]
                        into[v] = max(score, held)
                        source[v] = code if score > held else source[v]
                for v in range(n_units):
                    entry[v, g], entry_from[v, g] = into[v], np.int32(source[v])
        for v in range(n_units):
            x = loglik[t, v, 0]
            for g in range(n_points):
                new[v, 0, g] = entry[v, g] + scales[g] * x
                back[t, v, 0, g] = entry_from[v, g]
            for k in range(1, n_states):
                stay_w, move_w, x = log_stay[v, k], log_move[v, k - 1], loglik[t, v, k]
                here, before = np.int32(v * n_states + k), np.int32(v * n_states + k - 1)
                for g in range(n_points):
                    stay = delta[v, k, g] + stay_w
                    move = delta[v, k - 1, g] + move_w
                    new[v, k, g] = max(stay, move) + scales[g] * x  # a tie's value is the same either way
                    back[t, v, k, g] = here if stay >= move else before
        delta, new = new, delta
    return delta


@njit(cache=True, parallel=True)
def _search_grid(loglik, offsets, scales, log_stay, log_move, cross, start, end, path, entered):  # pragma: no cover
    """The best path of each utterance offsets[i]:offsets[i + 1] of `loglik` (N, U, S) at each of G decoder
    settings, in parallel over utterances, into `path` and `entered` (G, N)."""
    n_units, n_states = log_stay.shape
    n_points = scales.shape[0]
    last = n_states - 1
    # reach[g, b, u] = max over v of cross[g, u, v] - cross[g, b, v]: how far u's arcs can outbid b's
    n_from = cross.shape[1]
    reach = np.zeros((n_points, n_from, n_from))
    for g in range(n_points):
        for b in range(n_from):
            for u in range(n_from):
                reach[g, b, u] = np.max(cross[g, u] - cross[g, b])
    for i in prange(len(offsets) - 1):
        a, b = offsets[i], offsets[i + 1]
        if b - a < n_states:  # no complete path: the most likely unit (as ViterbiSearch.finish), at any setting
            sums = np.zeros(n_units)
            for t in range(a, b):
                for u in range(n_units):
                    for k in range(n_states):
                        sums[u] += loglik[t, u, k]
            for g in range(n_points):
                for t in range(a, b):
                    path[g, t] = np.argmax(sums) * n_states
                    entered[g, t] = t == a
            continue
        delta = np.empty((n_units, n_states, n_points))
        back = np.empty((b - a, n_units, n_states, n_points), np.int32)
        delta = _forward_grid(loglik[a:b], scales, log_stay, log_move, cross, start, reach, delta, back)
        for g in range(n_points):
            best = np.argmax(delta[:, last, g] + log_move[:, last] + end[:, g])
            _traceback(back[:, :, :, g], best * n_states + last, path[g, a:b], entered[g, a:b])


def search_grid(loglik: np.ndarray, offsets: np.ndarray, scales, log_stay: np.ndarray, log_move: np.ndarray,
                cross: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best paths of many utterances (the frames of utterance i are offsets[i]:offsets[i + 1] of the
    (N, U, S) `loglik`) at G decoder settings in one call: each setting's acoustic scale `scales[g]` and arcs
    `cross[g]` ((1 or U, U)), `start[g]`, `end[g]` (U,). Returns the flat state of each frame and whether a
    unit begins there, (G, N) each: the same paths as `viterbi` of each utterance at each setting, on every
    core numba has. What a decoder's dev tuning runs over its grid, a batch of settings at a time."""
    loglik = np.ascontiguousarray(loglik, dtype=np.float64)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1)
    n_points = len(scales)
    cross, start, end = (np.asarray(x, dtype=np.float64) for x in (cross, start, end))
    if cross.shape[0] != n_points or start.shape != (n_points, log_stay.shape[0]) or end.shape != start.shape:
        raise ValueError(f"search_grid: {n_points} scales need as many cross {cross.shape}, start {start.shape} "
                         f"and end {end.shape}")
    path, entered = np.zeros((n_points, len(loglik)), np.int64), np.zeros((n_points, len(loglik)), np.bool_)
    _search_grid(loglik, np.asarray(offsets, np.int64), scales,
                 *(np.ascontiguousarray(a, dtype=np.float64) for a in (log_stay, log_move)),
                 np.ascontiguousarray(cross), np.ascontiguousarray(start.T), np.ascontiguousarray(end.T),  # (U, G)
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
