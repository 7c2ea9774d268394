"""Per-frame window pooling into Fisher vectors: our layer against a loop of skimage.feature.fisher_vector.

    python benchmarks/fisher_pooling.py --run outputs/default_study/concat     # real hidden sequences
    python benchmarks/fisher_pooling.py --data anchor                            # dense posteriors
    python benchmarks/fisher_pooling.py --data clustered                         # sparse posteriors

Three kinds of data, each PCA-whitened to D = 64 with a K = 64 diagonal GMM fitted by EM (as the
`fisher` head does), which differ in how many components a frame's posterior spreads over (printed):
- `--run` (a finished run whose encoders were pre-trained, e.g. the default study's concat): the
  default corpus's training hidden sequences [h_audio; h_video] through those encoders;
- `anchor`: the external anchor's shapes, 10,000 Gaussian frames in sequences of 300: dense posteriors;
- `clustered`: clustered random sequences (40 centres, 300 utterances of 320 frames): sparse posteriors.

Every rate is the best of `--repeats` passes (default 3; the first pass of a process was seen at a
third of the later ones' speed), ours after a warm-up pass that also touches the output buffer.
Printed, all measured in this run: our frames/s at W = 5, 25, 50 (every frame of every sequence gets the
vector of its +-W window) with the evaluation path (`auto`: the compiled sliding-window kernel) and the
sparse-pairs path; skimage's windows/s on a sample of the same windows at W = 25, and the ratios; the
largest difference between our vectors (posterior floor 1e-8, and exact) and skimage's on that sample; the
ratio of our time at W = 50 and W = 5; peak resident memory. Then training's paths (forward and
backward of a learnable layer, one batch, W = 25), sparse against dense running sums, at the data's
posterior density and at the densities `--training-scales` gives (the GMM's variances scaled: smaller,
sparser), with the path `auto` chooses at each: `--training-scales 1,0.8,0.6,0.4` finds the crossover.

Where VLFeat's C implementation is installed (optional, never a dependency of avfusion: Debian's
libvlfeat-dev, then `pip install --no-build-isolation cyvlfeat` from its sdist with cython and wheel),
also a per-window loop of its `fisher` (improved) at W = 25, and our largest difference from it.
"""

from __future__ import annotations

from pinning import add_threads_argument, pinned  # first: it pins the thread pools

import argparse
import resource
import time

import numpy as np
import torch


def hidden_sequences(run_dir: str | None, data: str, seed: int = 0) -> list[np.ndarray]:
    """The training utterances' concatenated hidden sequences (or a synthetic stand-in)."""
    rng = np.random.default_rng(seed)
    if run_dir is None and data == "anchor":
        frames = rng.normal(size=(10_000, 64))
        return [frames[i:i + 300] for i in range(0, len(frames), 300)]
    if run_dir is None:
        centres = rng.normal(size=(40, 400)) * 2
        return [centres[np.repeat(rng.integers(0, 40, 40), 8)] + rng.normal(size=(320, 400)) for _ in range(300)]
    from avfusion import api
    from avfusion.training.stages import hidden_frames

    run = api.load_run(run_dir)
    _, frames, _ = api.prepare(run.config)
    train = frames["train"]
    hidden = hidden_frames({n: e for n, e in run.model.encoders.items()}, train).features
    x = np.concatenate([hidden[n] for n in run.model.head.encoders], axis=1)
    return [x[train.utterance(u)] for u in range(len(train.ids))]


def best_rate(work, items: int, repeats: int) -> float:
    """Items per second of the fastest of `repeats` calls of `work()`."""
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        fastest = min(fastest, time.perf_counter() - start)
    return items / fastest


def scale_list(text: str) -> list[float]:
    """--training-scales: comma-separated positive numbers, or nothing."""
    try:
        scales = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        scales = [0.0]
    if any(v <= 0 for v in scales):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive numbers separated by commas, e.g. 1,0.8,0.6")
    return scales


def training_rates(x: torch.Tensor, mask: torch.Tensor, gmm, scales: list[float], repeats: int) -> None:
    """Forward and backward of the learnable layer's window pooling (W = 25) on one batch, by path, with the
    GMM's variances scaled to move the posterior density: where `auto` changes from sparse to dense."""
    from avfusion.models.pooling import FisherVectorPooling

    frames = int(mask.sum())
    for scale in scales:
        rates, layers = {}, {}
        for name in ("sparse", "dense", "auto"):
            layers[name] = FisherVectorPooling(gmm.means_.shape[0], gmm.means_.shape[1], learnable=True,
                                               alpha_block=True, window_algorithm=name).set_gmm(
                gmm.weights_, gmm.means_, gmm.covariances_ * scale)

            def step(layer=layers[name]):
                layer.window(x.clone().requires_grad_(True), mask, 25).square().sum().backward()

            rates[name] = best_rate(step, frames, repeats)
        auto = layers["auto"]
        with torch.no_grad():  # the weights `auto` measures: zero on padding
            weights = auto.posteriors(x.reshape(-1, x.shape[-1])) * mask.reshape(-1, 1)
        print(f"training (forward and backward, W=25), variances x{scale:g}: {auto.pair_density(weights, mask):.0%} "
              f"of (frame, component) pairs above the floor; sparse {rates['sparse']:.0f}, dense "
              f"{rates['dense']:.0f} frames/s; auto chooses {auto.auto_algorithm(weights, mask, True, 'cpu')} "
              f"({rates['auto']:.0f})")


def vlfeat_loop(windows, gmm, our_rate: float, layer, sequences, picks, repeats: int) -> None:
    try:
        from cyvlfeat.fisher import fisher
    except ImportError:
        print("VLFeat (cyvlfeat) not installed: its comparison is skipped")
        return
    args = [np.asarray(a, dtype=np.float32) for a in (gmm.means_, gmm.covariances_, gmm.weights_)]
    windows32 = [np.ascontiguousarray(w, dtype=np.float32) for w in windows]
    reference = np.stack([fisher(w, *args, improved=True) for w in windows32])
    rate = best_rate(lambda: [fisher(w, *args, improved=True) for w in windows32], len(windows), repeats)
    print(f"VLFeat fisher loop (cyvlfeat), W=25: {rate:>9.0f} windows/s; ratio {our_rate / rate:.1f}x (target >= 15x dense, 20x on a run)")
    k, d = layer.n_components, layer.dim
    ours = np.stack([layer.window(torch.from_numpy(sequences[u])[None].float(),
                                  torch.ones(1, len(sequences[u]), dtype=torch.bool), 25)[0, t].numpy()
                     for u, t in picks[:200]])
    ours = ours[:, k:].reshape(-1, k, 2, d).transpose(0, 2, 1, 3).reshape(len(ours), -1)  # [all means | all sigmas]
    norm = np.linalg.norm(ours, axis=1, keepdims=True)  # VLFeat has no weights block: renormalise without it
    print(f"max |ours - VLFeat| over 200 windows (weights block left out, renormalised): "
          f"{np.abs(ours / norm - reference[:200]).max():.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None, help="a finished run folder with pre-trained encoders")
    parser.add_argument("--data", choices=["anchor", "clustered"], default="anchor", help="without --run")
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--sample-windows", type=int, default=1500, help="windows skimage pools")
    parser.add_argument("--batch", type=int, default=8, help="utterances per pooling call")
    parser.add_argument("--repeats", type=int, default=3, help="passes per measurement; the fastest counts")
    parser.add_argument("--training-scales", default="1", type=scale_list,
                        help="GMM variance scales at which to time training's paths (comma-separated; '' skips)")
    add_threads_argument(parser)
    args = parser.parse_args()
    print(pinned())  # a per-core figure for both sides by default
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    from skimage.feature import fisher_vector

    from avfusion.models.pooling import FisherVectorPooling

    sequences = hidden_sequences(args.run, args.data)
    frames = np.concatenate(sequences)
    pca = PCA(args.dim, whiten=True, random_state=0).fit(frames[np.random.default_rng(0).permutation(len(frames))[:100_000]])
    sequences = [pca.transform(s) for s in sequences]
    start = time.perf_counter()
    gmm = GaussianMixture(args.components, covariance_type="diag", init_params="kmeans", random_state=0,
                          max_iter=100).fit(np.concatenate(sequences)[:100_000])
    print(f"{len(sequences)} utterances, {len(frames)} frames, D={args.dim}, K={args.components} "
          f"(EM: {time.perf_counter() - start:.1f} s, converged: {gmm.converged_})")

    def layer(floor: float) -> FisherVectorPooling:
        return FisherVectorPooling(args.components, args.dim, alpha_block=True, posterior_floor=floor).double() \
            .set_gmm(gmm.weights_, gmm.means_, gmm.covariances_)

    def batches():
        for i in range(0, len(sequences), args.batch):
            group = sequences[i:i + args.batch]
            x = torch.zeros(len(group), max(map(len, group)), args.dim)
            mask = torch.zeros(x.shape[:2], dtype=torch.bool)
            for j, s in enumerate(group):
                x[j, :len(s)] = torch.from_numpy(s)
                mask[j, :len(s)] = True
            yield x, mask

    evaluation = FisherVectorPooling(args.components, args.dim, alpha_block=True).set_gmm(
        gmm.weights_, gmm.means_, gmm.covariances_)
    sparse = FisherVectorPooling(args.components, args.dim, alpha_block=True, window_algorithm="sparse").set_gmm(
        gmm.weights_, gmm.means_, gmm.covariances_)
    with torch.no_grad():
        pairs = sparse.pairs(torch.from_numpy(np.concatenate(sequences)).float(),
                             torch.ones(len(frames), dtype=torch.bool))
        print(f"posteriors above 1e-8: {len(pairs.row) / len(frames):.2f} components per frame (of {args.components})")
        buffer = np.empty(args.batch * max(map(len, sequences)) * sparse.output_dim, np.float32)  # as the head
        buffer.fill(0)  # the output memory mapped before timing, as the head reuses its buffer
        for x, mask in batches():  # compile before timing
            evaluation.window(x[:1, :10], mask[:1, :10], 2, buffer)
            sparse.window(x[:1, :10], mask[:1, :10], 2, buffer)
            break
        for x, mask in batches():  # a warm-up pass
            evaluation.window(x, mask, 25, buffer)
        rates = {}
        for w in (5, 25, 50):
            for name, pooling in (("auto", evaluation), ("sparse", sparse)):
                rates[name, w] = best_rate(lambda: [pooling.window(x, mask, w, buffer) for x, mask in batches()],
                                           len(frames), args.repeats)
                print(f"ours ({name:>6}), W={w:>2}: {rates[name, w]:>9.0f} frames/s")

        rng = np.random.default_rng(1)
        picks = [(u, int(rng.integers(len(sequences[u])))) for u in rng.integers(len(sequences), size=args.sample_windows)]
        windows = [sequences[u][max(0, t - 25):t + 26] for u, t in picks]
        reference = np.stack([fisher_vector(w, gmm, improved=True) for w in windows])
        skimage_rate = best_rate(lambda: [fisher_vector(w, gmm, improved=True) for w in windows], len(windows),
                                 args.repeats)
        print(f"skimage.feature.fisher_vector loop, W=25: {skimage_rate:>9.0f} windows/s")
        for name in ("auto", "sparse"):
            print(f"ours ({name:>6}) / skimage at W=25: {rates[name, 25] / skimage_rate:.1f}x "
                  f"(target >= 40x dense, 50x on a run); W=50 / W=5 time: "
                  f"{rates[name, 5] / rates[name, 50]:.2f} (target <= 1.5)")
        vlfeat_loop(windows, gmm, rates["auto", 25], evaluation, sequences, picks, args.repeats)
    if args.training_scales:
        training_rates(*next(batches()), gmm, args.training_scales, args.repeats)
    with torch.no_grad():
        for floor in (1e-8, 0.0):
            fine = layer(floor)
            ours = [fine.skimage_layout(fine.window(torch.from_numpy(sequences[u])[None].double(),
                                                    torch.ones(1, len(sequences[u]), dtype=torch.bool), 25)[0, t])
                    for u, t in picks[:200]]
            diff = np.abs(np.stack([o.numpy() for o in ours]) - reference[:200]).max()
            print(f"max |ours - skimage| over 200 windows, posterior floor {floor:g}: {diff:.2e}")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
