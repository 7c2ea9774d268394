"""The third edition's verdict list (issue #40), from a part's reports (dev by default: conclusions are drawn there).

    python experiments/paper_study/verdicts.py experiments/paper_study/results/third [--split dev] [--claims third]
    python experiments/paper_study/verdicts.py experiments/paper_study/results/third_control --claims third_control

For each claim (a model against its control) and condition: the paired difference of PER and of frame error (and,
where the runs scored contrasts, of contrast_error), each with its 95% interval over seeds x speakers x utterances
(avfusion.reporting.intervals), and the verdict: **better** / **worse** where every metric's interval excludes zero
on the same side, **decoder-dependent** where PER and frame error exclude it on opposite sides, `<metric> only` where
one excludes it and another does not (no verdict), `·` where none does. The contrast decision is a frame-level
metric of its own: its verdict is given apart. Then every fusion against the better single stream of each condition
and against the oracle stream weights (frame error and PER), the streams trained as the fusion's audio was (clean or
multi-condition).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avfusion.reporting.intervals import Interval, intervals
from avfusion.reporting.report import find_reports

# (model, control, what the difference says); names as the reports give them
CLAIMS = {
    "third": [
        ("concat", "audio_only", "fusion against the audio stream alone"),
        ("bilinear", "concat", "the bilinear head against concatenation"),
        ("bilinear_unshared", "concat", "the bilinear head without class sharing against concatenation"),
        ("bilinear", "bilinear_unshared", "class sharing by viseme"),
        ("average(concat+bilinear)", "average(concat+concat_head2)",
         "the paper's posterior average against its control (two heads on one pre-training)"),
        ("fisher", "concat", "Fisher-vector pooling against concatenation"),
        ("stream_weighted", "fixed_weight(audio_only+video_only)", "per-frame stream weights against a weight per condition"),
        ("stream_weighted", "concat", "per-frame stream weights against concatenation"),
        ("gated_concat", "concat", "gated concatenation against concatenation"),
        ("gated_concat", "fixed_weight(audio_only+video_only)", "gated concatenation against a weight per condition"),
        ("audio_only+multi", "audio_only", "multi-condition training (audio alone): white and babble heard, music not"),
        ("concat+multi", "concat", "multi-condition training (concat): white and babble heard, music not"),
        ("gated_concat", "concat+multi", "gated concatenation (noisy head only) against multi-condition concat"),
        ("bilinear+multi", "concat+multi", "the bilinear head against concatenation, multi-condition"),
        ("bilinear_unshared+multi", "concat+multi", "unshared bilinear against concatenation, multi-condition"),
        ("average(multi concat+multi bilinear)", "concat+multi", "the posterior average, multi-condition"),
        ("average(multi concat+multi bilinear)", "average(multi concat+concat_head2+multi)",
         "the posterior average against its control (two heads on one pre-training), multi-condition"),
        ("fisher+multi", "concat+multi", "Fisher-vector pooling against concatenation, multi-condition"),
        ("stream_weighted+multi", "fixed_weight(multi audio_only+video_only)",
         "per-frame stream weights against a weight per condition, every encoder multi-condition"),
        ("gated_concat+multi", "concat+multi", "gated concatenation against concatenation, multi-condition encoders"),
        ("gated_concat+multi", "gated_concat", "the reliability head's encoders pre-trained on its noisy copies too"),
        ("fixed_weight(multi audio_only+video_only)", "concat+multi",
         "weighting the multi-condition streams' posteriors (a weight per condition) against the multi-condition head"),
    ],
    "third_control": [
        ("bilinear", "concat", "the bilinear head against concatenation, on the interaction-carried pairs"),
        ("bilinear_unshared", "concat", "the bilinear head without class sharing against concatenation"),
        ("concat_joint", "concat", "concatenation trained jointly with its encoders against frozen ones"),
        ("bilinear", "concat_joint", "the bilinear head against joint concatenation"),
    ],
    "third_cd_state": [
        ("concat", "audio_only", "fusion against the audio stream alone, tied-state targets"),
        ("bilinear", "concat", "the bilinear head (sharing by centre phone) against concatenation"),
        ("average(concat+bilinear)", "average(concat+concat_head2)", "the paper's average against its control"),
        ("average(concat+bilinear)", "concat", "the paper's average against concatenation"),
    ],
}
SINGLE = ("audio_only", "video_only")
SINGLE_MULTI = ("audio_only+multi", "video_only")  # video is clean-trained in both: no video noise in training
ORACLE, ORACLE_MULTI = "oracle_weight(audio_only+video_only)", "oracle_weight(multi audio_only+video_only)"


def streams_of(fusion: str) -> tuple[tuple[str, str], str]:
    """The single streams and the oracle weighting a fusion is measured against: those trained as its audio was
    (a multi-condition fusion against the multi-condition audio stream)."""
    return (SINGLE_MULTI, ORACLE_MULTI) if "multi" in fusion else (SINGLE, ORACLE)


def verdict(cells: dict[str, Interval]) -> str:
    """better / worse / decoder-dependent / `<metric> only: ...` / · from the metrics' difference intervals."""
    sides = {m: (-1 if iv.high < 0 else 1 if iv.low > 0 else 0) for m, iv in cells.items()}
    shown = {s for s in sides.values() if s}
    if not shown:
        return "·"
    if len(shown) == 2:
        return "decoder-dependent"
    direction = "better" if shown == {-1} else "worse"
    if 0 in sides.values():  # no verdict: name the metric that shows a difference
        return f"{' and '.join(m.replace('_', ' ') for m, s in sides.items() if s)} only: {direction}"
    return f"**{direction}**"


class Differences:
    """Paired differences of `metric` from a baseline in a condition, each computed once."""

    def __init__(self, reports: list[dict], split: str):
        self.reports, self.split, self.known = reports, split, {}

    def __call__(self, model: str, baseline: str, condition: str, metric: str) -> Interval | None:
        key = (baseline, condition, metric)
        if key not in self.known:
            self.known[key] = intervals(self.reports, condition, metric, baseline=baseline, split=self.split)
        return self.known[key].get(model)


def mean_rate(reports: list[dict], name: str, condition: str, metric: str, split: str) -> float:
    rows = [r for rep in reports if rep["name"] == name for r in rep[split] if r["condition"] == condition]
    return float(np.mean([r[metric] for r in rows])) if rows else float("nan")


def claims_section(reports: list[dict], claims: list[tuple], conditions: list[str], split: str, sequence: str,
                   differences: Differences) -> list[str]:
    names = {r["name"] for r in reports}
    contrast = all("contrast_error" in row for r in reports for row in r[split])
    out = [f"## Verdicts ({split}): {sequence} and frame error must agree\n",
           "| claim | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
    details = []
    for model, control, meaning in claims:
        if model not in names or control not in names:
            out.append(f"| {model} − {control} | " + " | ".join("not run" for _ in conditions) + " |")
            continue
        cells, rows = [], []
        for c in conditions:
            ivs = {m: differences(model, control, c, m) for m in (sequence, "frame_error")}
            if any(iv is None for iv in ivs.values()):
                cells.append("")
                continue
            v = verdict(ivs)
            cells.append(v)
            extra = ""
            if contrast:
                iv = differences(model, control, c, "contrast_error")
                extra = f" | {iv} | {verdict({'contrast_error': iv})}"
            rows.append(f"| {c} | {ivs[sequence]} | {ivs['frame_error']} | {v}{extra} |")
        out.append(f"| {model} − {control} | " + " | ".join(cells) + " |")
        seeds = differences(model, control, conditions[0], "frame_error")
        details += [f"\n### {model} − {control}: {meaning} ({seeds.seeds} seeds, {seeds.speakers} speakers)\n",
                    f"| condition | {sequence} | frame error | verdict" + (" | contrast_error | its verdict" if contrast else "")
                    + " |", "|---|---:|---:|---|" + ("---:|---|" if contrast else "")] + rows
    return out + details


def streams_section(reports: list[dict], conditions: list[str], split: str, sequence: str,
                    differences: Differences) -> list[str]:
    """Every fusion against the better single stream of each condition and against the oracle stream weights, each
    of the streams trained as the fusion's were (clean or multi-condition audio)."""
    names = {r["name"] for r in reports}
    if not set(SINGLE) <= names:
        return []
    fusions = sorted(n for n in names if n not in SINGLE + SINGLE_MULTI and "oracle_weight" not in n)
    out = []
    for metric in ("frame_error", sequence):
        for against in ("single", "oracle"):
            shown = [f for f in fusions if set(streams_of(f)[0]) <= names and
                     (against == "single" or streams_of(f)[1] in names)]
            if not shown:
                continue
            out += [f"\n## Against the {'better single stream of each condition (the lower mean there)' if against == 'single' else 'oracle stream weights'}, "
                    f"streams trained as the fusion's were: {metric} ({split}; difference, 95% interval; ✓ where the upper "
                    "bound is <= +0.005)\n", "| model | " + " | ".join(conditions) + " |", "|---|" + "---:|" * len(conditions)]
            for family in dict.fromkeys(streams_of(f) for f in shown):
                streams, oracle = family
                bases = {c: min(streams, key=lambda s: mean_rate(reports, s, c, metric, split))
                         if against == "single" else oracle for c in conditions}
                label = (f"(the better stream{', audio multi-condition' if streams == SINGLE_MULTI else ''})"
                         if against == "single" else f"({oracle})")
                out.append(f"| {label} | " + " | ".join(
                    f"{bases[c].split('_')[0] + ' ' if against == 'single' else ''}"
                    f"{mean_rate(reports, bases[c], c, metric, split):.3f}" for c in conditions) + " |")
                for f in (f for f in shown if streams_of(f) == family):
                    cells = []
                    for c in conditions:
                        iv = differences(f, bases[c], c, metric)
                        cells.append("" if iv is None else f"{iv}{' ✓' if iv.high <= 0.005 else ''}")
                    out.append(f"| {f} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, help="a sweep folder or its exported reports")
    parser.add_argument("--split", choices=["dev", "test"], default="dev")
    parser.add_argument("--claims", choices=sorted(CLAIMS), default="third")
    parser.add_argument("--conditions", nargs="+", default=None, help="default: every condition of the reports")
    args = parser.parse_args()
    # runs decoded again under another tuning policy (tuning_policies/compare.py) carry it in their name
    reports = [{**r, "name": r["name"].split(" [tuned ")[0]} for r in find_reports(args.directory) if r.get(args.split)]
    if not reports:
        raise SystemExit(f"{args.directory}: no report with {args.split} rows")
    sequence = "wer" if "wer" in reports[0][args.split][0] else "per"
    conditions = args.conditions or list(dict.fromkeys(row["condition"] for r in reports for row in r[args.split]))
    differences = Differences(reports, args.split)
    lines = claims_section(reports, CLAIMS[args.claims], conditions, args.split, sequence, differences)
    lines += streams_section(reports, conditions, args.split, sequence, differences)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
