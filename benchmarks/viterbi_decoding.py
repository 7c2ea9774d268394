"""Hybrid Viterbi decoding speed: our loop decoder against librosa.sequence.viterbi on the same model.

    python benchmarks/viterbi_decoding.py --run outputs/default_study/concat    # real test posteriors
    python benchmarks/viterbi_decoding.py                                        # synthetic stand-in

The model: the phone loop of the default decoder, 39 units x 3 states = 117 HMM states, bigram LM. With
`--run`, the posteriors are the run's on the default corpus's dev utterances; without it, noisy
posteriors of random phone sequences of realistic durations stand in.

Printed, all measured in this run, at the thread count printed first (`--threads`, default 1): our
decoder's frames/s and real-time factor (100 frames are one second of speech; target >= 200x real time
per core), including the scaled-likelihood computation; librosa's dense Viterbi (numba, O(T S^2)) on the
same model as one row-stochastic matrix (LM weight 1, no penalty: all it can express), its real-time
factor and our speed-up; the gap between our best score and the score of librosa's path under the same
model (0: both optimal); and dev tuning's grid search (`--grid-points` of the decoder's grid): one search
per utterance and point, `search_grid` at one point a call, and at a batch of points a call (what tuning
runs: vectorised over the points), with the check that all three decode the same units.
"""

from __future__ import annotations

import argparse
import time

from pinning import add_threads_argument, pinned  # first: it pins the thread pools

import numpy as np  # noqa: E402


def posteriors(run_dir: str | None, seed: int = 0) -> tuple[list[np.ndarray], object]:
    from avfusion.corpus.labels import get_scheme
    from avfusion.configs import configured
    from avfusion.decoding.hybrid import HybridDecoder

    if run_dir is not None:
        from avfusion import api
        from avfusion.evaluation.evaluate import posteriors as model_posteriors

        run = api.load_run(run_dir)
        _, frames, _ = api.prepare(run.config)
        dev = frames["dev"]
        post = model_posteriors(run.model, dev)
        return [post[dev.utterance(u)] for u in range(len(dev.ids))], run.decoder
    rng = np.random.default_rng(seed)
    scheme = get_scheme("phone")
    sequences = [rng.integers(0, 39, 40).tolist() for _ in range(200)]
    labels = np.concatenate([np.repeat(s, rng.integers(3, 15, len(s))) for s in sequences])
    offsets = np.array([0, len(labels)])
    decoder = HybridDecoder.fit(configured("decoding", "decoding=viterbi").settings, scheme, labels, offsets, sequences)
    out = []
    for s in sequences[:100]:
        frames = np.repeat(s, rng.integers(3, 15, len(s)))
        p = rng.dirichlet(np.full(39, 0.3), len(frames))
        p[np.arange(len(frames)), frames] += 0.5
        out.append(p / p.sum(axis=1, keepdims=True))
    return out, decoder


def path_score(path: np.ndarray, loglik: np.ndarray, decoder) -> float:
    """Score of a flat state path under the loop model at unit weights (-inf where the topology forbids
    it). The three states of a phone share its posterior, so paths differ in where a phone's states
    change while scoring the same: the scores are what must agree."""
    n_frames, n_units, n_states = loglik.shape
    u, k = np.divmod(path, n_states)
    lm = decoder.lm
    if k[0] != 0 or k[-1] != n_states - 1:
        return -np.inf
    total = lm.log_start[u[0]] + loglik[np.arange(n_frames), u, k].sum()
    pu, pk, nu, nk = u[:-1], k[:-1], u[1:], k[1:]
    stay = (pu == nu) & (pk == nk)
    move = (pu == nu) & (nk == pk + 1)
    enter = (pk == n_states - 1) & (nk == 0) & ~stay
    if not np.all(stay | move | enter):
        return -np.inf
    total += decoder.log_stay[pu[stay], pk[stay]].sum() + decoder.log_move[pu[move], pk[move]].sum()
    total += (decoder.log_move[pu[enter], pk[enter]] + lm.log_next[pu[enter], nu[enter]]).sum()
    return float(total + decoder.log_move[u[-1], k[-1]] + lm.log_end[u[-1]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a finished run folder (its dev posteriors and decoder)")
    parser.add_argument("--repeats", type=int, default=3)
    add_threads_argument(parser)
    parser.add_argument("--grid-points", type=int, default=48, help="grid points timed for tuning")
    args = parser.parse_args()
    print(pinned())
    import librosa

    from avfusion.decoding.hybrid import DecoderParams
    from avfusion.decoding.viterbi import dense_loop, viterbi

    posts, decoder = posteriors(args.run)
    n_frames = sum(len(p) for p in posts)
    n_units, n_states = decoder.log_stay.shape
    print(f"{len(posts)} utterances, {n_frames} frames, {n_units} units x {n_states} states = "
          f"{n_units * n_states} HMM states; decoder params {decoder.params}")
    decoder.decode(posts[0])  # compile (or load numba's cache) outside the timing
    best = np.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        for p in posts:
            decoder.decode(p)
        best = min(best, time.perf_counter() - start)
    ours = n_frames / best
    print(f"ours (scaled likelihoods + search): {ours:>10.0f} frames/s = {ours / 100:>7.0f}x real time "
          f"(target >= 200x per core)")

    # librosa on the model it can express: LM weight 1, no penalty, acoustic scale 1
    unit = DecoderParams(1.0, 1.0, 0.0)
    lm = decoder.lm
    trans, init = dense_loop(decoder.log_stay, decoder.log_move, lm.log_next, lm.log_start, lm.log_end)
    logliks = [decoder.state_loglik(p) for p in posts]
    observed = []
    for x in logliks:  # librosa wants probabilities in [0, 1]: shift each frame (the path does not change)
        frame_probs = np.exp(x.reshape(len(x), -1) - x.reshape(len(x), -1).max(axis=1, keepdims=True))
        end = np.zeros((len(x) + 1, 1))
        end[-1] = 1.0
        observed.append(np.hstack([np.vstack([frame_probs, np.zeros(frame_probs.shape[1])]), end]).T)
    librosa.sequence.viterbi(observed[0], trans, p_init=init)  # compile
    start = time.perf_counter()
    paths = [librosa.sequence.viterbi(o, trans, p_init=init) for o in observed]
    theirs = n_frames / (time.perf_counter() - start)
    gaps = [viterbi(x, decoder.log_stay, decoder.log_move, unit.lm_weight * decoder.lm.log_next,
                    decoder.lm.log_start, decoder.lm.log_end)[2] - path_score(p[:-1], x, decoder)
            for x, p in zip(logliks, paths)]
    print(f"librosa.sequence.viterbi (dense {trans.shape[0]} states): {theirs:>10.0f} frames/s = "
          f"{theirs / 100:>7.0f}x real time; ours {ours / theirs:.1f}x faster")
    print(f"best-path score, ours minus librosa's path under the same model: max |gap| {np.max(np.abs(gaps)):.2e} "
          f"over {len(posts)} utterances (LM weight 1, no penalty)")
    tuning(decoder, posts, args.grid_points)


def tuning(decoder, posts: list[np.ndarray], n_points: int) -> None:
    """Dev tuning's cost per grid point: one search per utterance and point, `search_grid` at one point per
    call, and `search_grid` at `GRID_BATCH` points per call (what tuning runs); all three the same units."""
    from avfusion.decoding.hybrid import GRID_BATCH
    from avfusion.decoding.viterbi import search_grid

    grid = decoder.grid()
    points = [grid[i] for i in np.linspace(0, len(grid) - 1, min(n_points, len(grid))).astype(int)]
    logliks = [decoder.state_loglik(p) for p in posts]
    loglik, offsets = np.concatenate(logliks), np.concatenate([[0], np.cumsum([len(x) for x in logliks])])

    def batched(size: int) -> list[list[list[str]]]:
        units = []
        for first in range(0, len(points), size):
            batch = points[first:first + size]
            cross, start, end = (np.stack(a) for a in zip(*(decoder._arcs(q) for q in batch)))
            paths, entered = search_grid(loglik, offsets, [q.acoustic_scale for q in batch], decoder.log_stay,
                                         decoder.log_move, cross, start, end)
            units += [decoder.scored_sequences(p, e, offsets) for p, e in zip(paths, entered)]
        return units

    search_grid(loglik[:10], np.array([0, 10]), [1.0], decoder.log_stay, decoder.log_move,
                *(a[None] for a in decoder._arcs(points[0])))  # compile
    start = time.perf_counter()
    one_by_one = [[decoder.scored_units(decoder.search(x, q)) for x in logliks] for q in points]
    alone = time.perf_counter() - start
    start = time.perf_counter()
    single = batched(1)
    per_point = time.perf_counter() - start
    start = time.perf_counter()
    together = batched(GRID_BATCH)
    grouped = time.perf_counter() - start
    assert single == one_by_one and together == one_by_one, "search_grid decoded differently from one search each"
    print(f"dev tuning, {len(points)} grid points x {len(posts)} utterances, seconds a point: one search per "
          f"utterance {alone / len(points):.3f}, search_grid one point a call {per_point / len(points):.3f}, "
          f"{GRID_BATCH} points a call {grouped / len(points):.3f} ({per_point / grouped:.2f}x one point a call, "
          f"{alone / grouped:.1f}x one search each; the same units)")


if __name__ == "__main__":
    main()
