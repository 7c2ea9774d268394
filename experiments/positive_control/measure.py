"""The positive control's strength, measured in the files (issue #40): per-stream probes against a probe on the
product of the streams, on the phone pairs of `conf/data/synthetic_interaction.yaml`.

    python experiments/positive_control/measure.py --sd 2 3 4 6 --work /tmp/positive_control \
        --export experiments/positive_control/results
    python experiments/positive_control/measure.py --runs <run dirs trained on data=synthetic_interaction>

For each `interaction_sd`, the corpus is generated (`avfusion-synth data=synthetic_interaction`) and prepared with
the default front-end (`avfusion-prepare`), as a user would; then, on the prepared frames of each pair's two labels
(train frames to fit, dev frames to score; no model of the study is trained):

- linear probes (standardised logistic regression) on the audio frames alone, the video frames alone, and both
  side by side: with the labels' marginals equal by construction, these should sit at chance (the dev split's
  larger label share);
- a linear probe on the product of the streams: each stream's frames reduced to `--components` principal
  components (fitted on the pair's train frames), the probe given both and their outer product;
- the coupling's sign per label: the audio and video directions along which the two labels' cross-covariances
  differ most (train frames), and the correlation along them of P's, of Q's and of an ordinary class's dev frames
  (`--reference`, coupled +1 like every class outside the pairs, but other sounds: its sign says nothing).

The strength is then chosen from these numbers alone (README), never from a fusion's result.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, ".")

from avfusion.corpus.labels import get_scheme  # noqa: E402
from avfusion.frames.data import FrameData  # noqa: E402


def prepared(work: Path, sd: float) -> Path:
    """The corpus at `sd` generated and prepared under `work` (each step skipped when done); its frames folder."""
    root = work / f"sd{sd:g}"
    common = ["data=synthetic_interaction", f"data.realism.interaction_sd={sd}", f"data.root={root}/corpus"]
    for cli, extra in (("avfusion-synth", []),
                       ("avfusion-prepare", [f"frontend.cache_dir={root}/features", "probe=false"])):
        done = root / f".{cli}.done"
        if not done.is_file():
            subprocess.run([str(Path(sys.executable).parent / cli), *common, *extra, f"hydra.run.dir={root}/{cli}"],
                           check=True, stdout=subprocess.DEVNULL)
            done.write_text("")
    return Path(glob.glob(f"{root}/features/frames-*")[0])


def frames_of_labels(data: FrameData, labels: list[int], utterances: bool = False):
    """The audio and video frames labelled one of `labels`, each one's index in `labels` (and its utterance's)."""
    y = np.asarray(data.labels)
    keep = np.isin(y, labels)
    out = (np.asarray(data.features["audio"])[keep], np.asarray(data.features["video"])[keep],
           (y[keep][:, None] == np.array(labels)).argmax(axis=1))
    return (*out, np.repeat(np.arange(len(data.ids)), data.lengths)[keep]) if utterances else out


def interval(correct: np.ndarray, groups: np.ndarray, n: int = 1000, seed: int = 0) -> list[float]:
    """95% interval of the share correct, dev utterances resampled (a token's frames are not independent)."""
    _, inverse = np.unique(groups, return_inverse=True)
    return share_interval(np.bincount(inverse, weights=correct), np.bincount(inverse), n, seed)


def share_interval(hits: np.ndarray, frames: np.ndarray, n: int = 1000, seed: int = 0) -> list[float]:
    """95% interval of sum(hits) / sum(frames) over the utterances given (each a group of its own), resampled by
    `resample_counts`."""
    from avfusion.reporting.intervals import resample_counts

    drawn = resample_counts([str(i) for i in range(len(frames))], n, seed)
    return [float(x) for x in np.percentile((drawn @ hits) / (drawn @ frames), [2.5, 97.5])]


def probes(train: FrameData, dev: FrameData, p: int, q: int, components: int, seed: int = 0) -> dict:
    """Dev accuracy of the probes on labels p (1) against q (0), fitted on train."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, v, y = frames_of_labels(train, [q, p])
    a2, v2, y2, groups = frames_of_labels(dev, [q, p], utterances=True)
    reduce = {name: make_pipeline(StandardScaler(), PCA(components, random_state=seed)).fit(x)
              for name, x in (("audio", a), ("video", v))}
    za, zv = reduce["audio"].transform(a), reduce["video"].transform(v)
    za2, zv2 = reduce["audio"].transform(a2), reduce["video"].transform(v2)

    def product(x, z):
        return np.hstack([x, z, np.einsum("ni,nj->nij", x, z).reshape(len(x), -1)])

    inputs = {"audio": (a, a2), "video": (v, v2), "audio_video": (np.hstack([a, v]), np.hstack([a2, v2])),
              "product": (product(za, zv), product(za2, zv2))}
    out = {"train_frames": int(len(y)), "dev_frames": int(len(y2)), "chance": float(max(y2.mean(), 1 - y2.mean()))}
    for name, (x, x2) in inputs.items():
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(x, y)
        correct = (probe.predict(x2) == y2).astype(float)
        out[name], out[f"{name}_interval"] = float(correct.mean()), interval(correct, groups)
    return out


def coupling_signs(train: FrameData, dev: FrameData, p: int, q: int, reference: int, components: int) -> dict:
    """The within-label correlation of audio and video along the directions where the pair's labels differ most
    in how the streams covary: u, w the top singular vectors of C_p - C_q (the labels' cross-covariances of
    standardised principal components of each stream, train frames; the mixture of P's and Q's sounds, the same
    under both labels, cancels), then the correlation of u'a with w'v over p's, q's and the reference class's
    dev frames. +- by construction on train; on dev, the sign of each label's coupling."""
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, v, y = frames_of_labels(train, [q, p])
    reduce_a = make_pipeline(StandardScaler(), PCA(components, random_state=0)).fit(a)
    reduce_v = make_pipeline(StandardScaler(), PCA(components, random_state=0)).fit(v)
    za, zv = reduce_a.transform(a), reduce_v.transform(v)

    def cross(mask):
        x, z = za[mask] - za[mask].mean(0), zv[mask] - zv[mask].mean(0)
        return x.T @ z / mask.sum()

    left, _, right = np.linalg.svd(cross(y == 1) - cross(y == 0))
    u, w = left[:, 0], right[0]
    out = {}
    for name, label in (("P", p), ("Q", q), ("reference", reference)):
        a2, v2, _ = frames_of_labels(dev, [label])
        out[name] = float(np.corrcoef(reduce_a.transform(a2) @ u, reduce_v.transform(v2) @ w)[0, 1])
    return out


def run_pairs(run_dir: Path, pairs: list[list[str]]) -> dict:
    """A trained run on the control's pairs (dev): per pair, the share of its frames whose posterior is higher for
    the frame's own label than for the other (the two-way decision the interaction carries), with an interval over
    dev utterances; and its dev frame error over all classes (clean, from its report)."""
    from omegaconf import OmegaConf

    from avfusion import api
    from avfusion.evaluation.evaluate import contrast_columns
    from avfusion.frames.cache import frames_directory

    run = api.load_run(run_dir)
    corpus, _ = api.load_corpus(run.config)
    dev = FrameData.load(frames_directory(OmegaConf.to_container(run.config.frontend, resolve=True), run.scheme,
                                          corpus) / "dev")
    columns = contrast_columns(run.model.posteriors(dev), dev, run.scheme, pairs)  # what evaluation.contrasts scores
    report = json.loads((run_dir / "report.json").read_text())
    out = {"run": str(run_dir), "fusion": run.name, "seed": run.seed,
           "dev_frame_error": next(r["frame_error"] for r in report["dev"] if r["condition"] == "clean")}
    out["by_utterance"] = {}
    for p_name, q_name in pairs:
        errors = np.array(columns["by_utterance"][f"contrast_errors_{p_name}_{q_name}"])
        frames = np.array(columns["by_utterance"][f"contrast_frames_{p_name}_{q_name}"])
        some = frames > 0  # the utterances holding the pair's frames
        out[f"{p_name}/{q_name}"] = [1 - columns[f"contrast_error_{p_name}_{q_name}"],
                                     *share_interval((frames - errors)[some], frames[some])]
        # as a report's row: per dev utterance, the pair's frames decided wrongly and all of them
        out["by_utterance"][f"{p_name}/{q_name}"] = {"id": list(dev.ids), "speaker": list(dev.speakers),
                                                     "frame_errors": errors.tolist(), "frames": frames.tolist()}
    return out


def paired_against(scored: list[dict], pair: str, baseline: str) -> dict:
    """Each fusion's share of the pair's frames decided wrongly minus the baseline's, with the protocol's 95%
    interval (avfusion.reporting.intervals: seeds x dev speakers x utterances, paired by seed)."""
    from avfusion.reporting.intervals import intervals

    reports = [{"name": r["fusion"], "seed": r["seed"],
                "dev": [{"condition": pair, "by_utterance": r["by_utterance"][pair]}]} for r in scored]
    return intervals(reports, pair, "frame_error", baseline=baseline, split="dev")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sd", type=float, nargs="+", default=[2.0, 3.0, 4.0, 6.0])
    parser.add_argument("--work", type=Path, default=Path("outputs/positive_control"))
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--reference", default="iy")
    parser.add_argument("--export", type=Path)
    parser.add_argument("--runs", type=Path, nargs="*", help="trained runs to score on the pairs instead")
    args = parser.parse_args()
    from omegaconf import OmegaConf

    pairs = [list(p) for p in OmegaConf.load("conf/data/synthetic_interaction.yaml").realism.interaction_pairs]
    if args.runs:
        scored = [run_pairs(run, pairs) for run in args.runs]
        names = [f"{p}/{q}" for p, q in pairs]
        print(f"| fusion | seed | dev frame error | {' | '.join(names)} (own label above the other's) |")
        print("|---|---|---|" + "---|" * len(names))
        for row in sorted(scored, key=lambda r: (r["fusion"], r["seed"])):
            print(f"| {row['fusion']} | {row['seed']} | {row['dev_frame_error']:.3f} | " + " | ".join(
                f"{row[n][0]:.3f} [{row[n][1]:.3f}, {row[n][2]:.3f}]" for n in names) + " |")
        if "concat" in {r["fusion"] for r in scored}:
            print("\nshare of the pair's frames decided wrongly, minus concat's (negative: fewer errors than concat):\n")
            for name in names:
                for fusion, iv in paired_against(scored, name, "concat").items():
                    print(f"- {name}, {fusion}: {iv} ({iv.seeds} seeds x {iv.speakers} dev speakers x utterances)")
        if args.export:
            args.export.mkdir(parents=True, exist_ok=True)
            (args.export / "runs.json").write_text(json.dumps(scored))
        return
    classes = list(get_scheme("phone").units)
    results = []
    print(f"| interaction_sd | pair | dev frames | chance | audio | video | audio+video | product | "
          f"r along the pair's directions: P / Q / {args.reference} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for sd in args.sd:
        frames = prepared(args.work, sd)
        train, dev = FrameData.load(frames / "train"), FrameData.load(frames / "dev")
        for p_name, q_name in pairs:
            p, q, ref = classes.index(p_name), classes.index(q_name), classes.index(args.reference)
            row = {"interaction_sd": sd, "pair": [p_name, q_name],
                   **probes(train, dev, p, q, args.components),
                   "r": coupling_signs(train, dev, p, q, ref, args.components)}
            results.append(row)
            r = row["r"]
            shown = " | ".join(f"{row[k]:.3f} [{row[k + '_interval'][0]:.3f}, {row[k + '_interval'][1]:.3f}]"
                               for k in ("audio", "video", "audio_video", "product"))
            print(f"| {sd:g} | {p_name} / {q_name} | {row['dev_frames']} | {row['chance']:.3f} | {shown} | "
                  f"{r['P']:+.2f} / {r['Q']:+.2f} / {r['reference']:+.2f} |", flush=True)
    if args.export:
        args.export.mkdir(parents=True, exist_ok=True)
        (args.export / "probes.json").write_text(json.dumps({"components": args.components, "rows": results},
                                                            indent=1))


if __name__ == "__main__":
    main()
