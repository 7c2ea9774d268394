"""The reliability-fusion study's verdict tables (issue #34), from its reports (dev by default):

1. each fusion against the better single stream of each condition (the one with the lower mean there): the paired
   difference with its 95% interval over seeds × speakers × utterances; the goal is an upper bound <= +0.005;
2. the share of the gap between concat and oracle_weight that each fusion closes, where that gap exceeds 0.02;
3. the mean audio weight λ of stream_weighted and the gates of gated_concat per condition;
4. modality dropout: each concat model trained with it (`dropout*` runs) scored with a stream absent against the
   dedicated single-stream model (paired on the same utterances), and with both against concat without dropout.

    python experiments/stream_weights/summarise.py experiments/stream_weights/results [--split test]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

from avfusion.reporting.intervals import intervals
from avfusion.reporting.report import find_reports

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "paper_study"))
from verdicts import mean_rate  # noqa: E402  a model's mean rate over seeds in one condition

FUSIONS = ["concat", "bilinear", "fixed_weight", "stream_weighted", "gated_concat", "noisy_head_concat"]
SINGLE = ["audio_only", "video_only"]


def renamed(reports: list[dict], name: str, condition: str, as_name: str, as_condition: str, split: str) -> list[dict]:
    """Copies of `name`'s reports holding only their `condition` rows, relabelled (to pair them with another
    model's rows of another condition on the same utterances)."""
    out = []
    for rep in reports:
        if rep["name"] == name:
            rows = [dict(r, condition=as_condition) for r in rep[split] if r["condition"] == condition]
            out.append({**copy.copy(rep), "name": as_name, split: rows})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--split", choices=["dev", "test"], default="dev")
    parser.add_argument("--metric", default="frame_error")
    args = parser.parse_args()
    split, metric = args.split, args.metric
    reports = [r for r in find_reports(args.directory) if r.get(split)]
    names = {r["name"] for r in reports}
    conditions = [r["condition"] for r in next(rep for rep in reports if rep["name"] == "concat")[split]]
    fusions = [f for f in FUSIONS if f in names]
    print(f"## {split}, {metric}\n")
    print("Against the better single stream of each condition (difference, 95% interval; goal: upper bound <= +0.005):\n")
    print("| condition | better single stream | " + " | ".join(fusions) + " |")
    print("|---|---|" + "---:|" * len(fusions))
    for c in conditions:
        best = min(SINGLE, key=lambda s: mean_rate(reports, s, c, metric, split))
        diff = intervals(reports, c, metric, baseline=best, split=split)
        cells = [f"{diff[f]}{' ✓' if diff[f].high <= 0.005 else ''}" if f in diff else "" for f in fusions]
        print(f"| {c} | {best} {mean_rate(reports, best, c, metric, split):.3f} | " + " | ".join(cells) + " |")
    print("\nShare of the concat - oracle_weight gap closed (where the gap > 0.02; goal >= 0.5):\n")
    print("| condition | concat - oracle | " + " | ".join(fusions[1:]) + " |")
    print("|---|---:|" + "---:|" * (len(fusions) - 1))
    for c in conditions:
        concat, oracle = mean_rate(reports, "concat", c, metric, split), mean_rate(reports, "oracle_weight", c, metric, split)
        gap = concat - oracle
        cells = [f"{(concat - mean_rate(reports, f, c, metric, split)) / gap:.2f}" if gap > 0.02 else "" for f in fusions[1:]]
        print(f"| {c} | {gap:+.3f} | " + " | ".join(cells) + " |")
    print("\nMean stream weights per condition (over seeds and frames):\n")
    weighted = [f for f in ("stream_weighted", "gated_concat") if f in names]
    labels = {f: list(next(r for rep in reports if rep["name"] == f for r in rep[split]).get("stream_weights", {}))
              for f in weighted}
    heads = [f"{f}: {label}" for f in weighted for label in labels[f]]
    print("| condition | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(heads))
    for c in conditions:
        cells = [np.mean([r["stream_weights"][label] for rep in reports if rep["name"] == f for r in rep[split]
                          if r["condition"] == c and "stream_weights" in r] or [np.nan]) for f in weighted
                 for label in labels[f]]
        print(f"| {c} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
    dropped = sorted(n for n in names if n.startswith("dropout"))
    if dropped:
        print("\nModality dropout (one concat model) against the dedicated models, clean (goal: within 0.02; AV no worse):\n")
        print("| model | scored as | against | difference, 95% interval |")
        print("|---|---|---|---:|")
    for model in dropped:
        for missing, dedicated in (("no video", "audio_only"), ("no audio", "video_only"), ("clean", "concat")):
            probe = renamed(reports, model, missing, "dropout", "clean", split)
            diff = intervals(probe + [r for r in reports if r["name"] == dedicated], "clean", metric,
                             baseline=dedicated, split=split)
            print(f"| {model} | {'audio and video' if missing == 'clean' else missing} | {dedicated} clean | "
                  f"{diff['dropout']} |")


if __name__ == "__main__":
    main()
