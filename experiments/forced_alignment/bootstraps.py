"""Would another start of the aligner's passes reach #36's goal (>= 90% of test boundaries within 20 ms)?
Exploratory variants of `avfusion-align`'s passes on the same text-only corpus as run_study.py, each pass's
boundary accuracy against the exact alignments (train and test speakers; stop onsets and the others apart):

- `gmm`: a monophone GMM-HMM bootstrap, as Kaldi and the Montreal Forced Aligner start: one diagonal GMM per
  phone state (scikit-learn) on the aligner front-end's frames with deltas and delta-deltas, Viterbi-trained
  through each transcript's HMM (the aligner's realignment), the mixtures doubling every second pass (1 to 8).
- `gmm_dnn`: six of those passes, then the default frame-DNN passes (run_study.py's) from their alignment.
- `from_truth`: the default frame-DNN passes started from the exact alignments instead of a flat start: does
  Viterbi training keep the corpus's conventions once it is given them?

    python experiments/forced_alignment/bootstraps.py --export experiments/forced_alignment/results

Into bootstraps.json (7.3 minutes on 2 cores once the corpus is built). Resumable: finished passes are kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import librosa
import numpy as np
from sklearn.mixture import GaussianMixture

from avfusion import api
from avfusion.aligner import passes
from avfusion.decoding.hybrid import HybridDecoder
from avfusion.frames.data import frames_of
from run_study import FromTruth, align_config, aligner_class, per_pass, text_only

GMM_MIXTURES = (1, 1, 2, 2, 4, 4, 8, 8)  # pass k's components per state
DELTA_WIDTH = 9


def with_deltas(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each utterance's frames with their deltas and delta-deltas (librosa, 9 frames)."""
    parts = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        f = x[a:b].T
        width = min(DELTA_WIDTH, max(3, (b - a - 1) // 2 * 2 + 1))
        parts.append(np.concatenate([f, *(librosa.feature.delta(f, width=width, order=o, mode="nearest")
                                          for o in (1, 2))]).T)
    return np.concatenate(parts)


class GmmBootstrap(passes.Aligner):
    """Passes 1..gmm_passes: per-state GMMs instead of the frame DNN; then the default passes."""

    gmm_passes = len(GMM_MIXTURES)

    def realigned(self, previous, pass_dir, k):
        if k > self.gmm_passes:
            return super().realigned(previous, pass_dir, k)
        corpus, frontend, labeller = self.labelled(previous)
        data = {s: frames_of(frontend, corpus.split(s), labeller) for s in ("train", "dev", "test")}
        train = data["train"]
        x, y = with_deltas(np.asarray(train.features["audio"]), train.offsets), np.asarray(train.labels)
        mixtures = GMM_MIXTURES[k - 1]
        models = {c: GaussianMixture(min(mixtures, int((y == c).sum()) // 20 or 1), covariance_type="diag",
                                     reg_covar=1e-3, random_state=0, max_iter=20).fit(x[y == c])
                  for c in range(self.scheme.num_classes) if (y == c).sum() >= 2}
        decoder = HybridDecoder.fit(self.viterbi, self.scheme, train.labels, train.offsets, [])
        class_of_state = np.asarray(decoder.emits.argmax(axis=0)).reshape(-1)  # one class per HMM state here
        logliks = {}
        for split in data.values():
            frames = with_deltas(np.asarray(split.features["audio"]), split.offsets)
            loglik = np.full((len(frames), self.scheme.num_classes), -1e10)
            for c, model in models.items():
                loglik[:, c] = model.score_samples(frames)
            for u, utt_id in enumerate(split.ids):
                states = loglik[split.utterance(u)][:, class_of_state]
                states[:, decoder.unreachable.reshape(-1)] = -np.inf
                logliks[utt_id] = states.reshape(len(states), len(self.scheme.units), -1)
        return self.forced(logliks, decoder, previous, k)


class GmmThenDnn(GmmBootstrap):
    gmm_passes = 6


VARIANTS = {  # name: (aligner, passes, speaker folds of the DNN passes)
    "gmm": (GmmBootstrap, len(GMM_MIXTURES), 1), "gmm_dnn": (GmmThenDnn, 10, 2), "from_truth": (FromTruth, 5, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("outputs/forced_alignment_study"))
    parser.add_argument("--export", type=Path, help="copy the results (JSON) here")
    args = parser.parse_args()
    manifest = text_only(args.output)
    rows = []
    for name, (aligner, n_passes, folds) in VARIANTS.items():
        cfg = align_config(manifest, f"aligner.passes={n_passes}", f"aligner.folds={folds}", "resume=true")
        started = time.perf_counter()
        with aligner_class(aligner):
            api.align(cfg, args.output / f"bootstrap_{name}")
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
        rows += [{"variant": name, **row} for row in per_pass(args.output, manifest, cfg, f"bootstrap_{name}")
                 if row["pass"] or aligner is not FromTruth]  # pass 0 is the flat start, which from_truth skips
    (args.output / "bootstraps.json").write_text(json.dumps(rows, indent=1))
    if args.export:
        args.export.mkdir(parents=True, exist_ok=True)
        shutil.copy(args.output / "bootstraps.json", args.export / "bootstraps.json")


if __name__ == "__main__":
    main()
