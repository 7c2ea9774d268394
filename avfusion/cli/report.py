"""`avfusion-report DIR [--metric per] [--baseline NAME] [--no-plots]`: tables (model x condition) from every
report.json under DIR, for the dev split (where conclusions are drawn) and the test split (reported once):
each metric's mean (± sample std over seeds), the sequence error rate and the frame error (and the contrasts'
two-way decision error where the runs scored `evaluation.contrasts`) with 95% intervals (a paired bootstrap
over seeds crossed with speakers and their utterances; with >= 2 seeds also the seed-level t interval), and
with --baseline, each model's paired difference from that model with its intervals. Writes summary.md,
summary.csv and PNG plots (each of those metrics against SNR with interval bands; viseme confusions of
audio-only and of the fusion best on dev at 0 dB)."""

from __future__ import annotations

import argparse
import csv
import io
from collections import Counter
from pathlib import Path

from avfusion.cli.boundary import user_errors
from avfusion.errors import UserError
from avfusion.reporting.intervals import interval_table, intervals
from avfusion.reporting.plots import metric_name, noise_curves, plot_confusions, plot_error_vs_snr
from avfusion.reporting.report import METRICS, SPLITS, find_reports, metrics_in, split_rows, sweep_rows, sweep_table
from avfusion.utils.atomic import write_text_atomic
from avfusion.utils.machine import capability

HEADINGS = {"dev": "## dev: conclusions are drawn here (decoders and averaging weights were tuned on dev)",
            "test": "## test: held-out speakers, reported once"}
UNIMODAL = ("audio_only", "video_only")


@user_errors("report")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path, help="a run or multirun folder")
    parser.add_argument("--metric", choices=METRICS, default=None, help="first table (default: per, or wer)")
    parser.add_argument("--baseline", action="append", default=[],
                        help="a model name: paired differences from it, with intervals (may be given again)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        raise UserError(f"{args.directory}: no such folder")
    reports = find_reports(args.directory)
    if not reports:
        raise UserError(f"{args.directory}: no report.json under it (a run or sweep folder of avfusion-train)")
    present = metrics_in(reports)
    if not present:
        raise UserError(f"the reports under {args.directory} mix phone and word metrics: report them separately")
    first = args.metric or present[0]
    if first not in present:
        raise UserError(f"--metric {first}: not in the reports under {args.directory} (they have {present})")
    metrics = [first] + [m for m in present if m != first]
    sequence = present[0]  # per or wer
    splits = [s for s in SPLITS if any(split_rows(r, s) for r in reports)]
    sections, records, ranges = [], [], {}
    for split in splits:
        tables, ranges[split] = split_tables(reports, split, metrics, sequence, args.baseline, args.directory)
        sections.append(f"{HEADINGS[split]}\n\n{tables}")
        records += csv_records(reports, split, metrics, ranges[split])
    text = "\n\n".join(machines_note(reports) + sections)
    write_text_atomic(args.directory / "summary.md", text + "\n")
    write_text_atomic(args.directory / "summary.csv", to_csv(records))
    figures = [] if args.no_plots else plots(reports, ranges, sequence, args.directory)
    print(text)
    print(f"\n({len(reports)} runs; written to {args.directory / 'summary.md'}, summary.csv"
          + "".join(f", {p.name}" for p in figures) + ")")


def machines_note(reports: list[dict]) -> list[str]:
    """A line when the reports come from CPUs with different instruction sets (the same config and seed give
    other numbers there); none when they share one."""
    counts = Counter(capability(r) for r in reports)
    if len(counts) < 2:
        return []
    return ["**Reports from machines with different CPU instruction sets** ("
            + ", ".join(f"{c}: {n}" for c, n in sorted(counts.items()))
            + "): the same config and seed give other numbers on each; compare runs made on one machine."]


def split_tables(reports: list[dict], split: str, metrics: list[str], sequence: str, baselines: list[str],
                 directory: Path) -> tuple[str, dict]:
    """The Markdown tables of one split, and its intervals by metric and condition ({metric: {condition:
    intervals}}: the sequence error rate and the frame error; {} without per-utterance counts)."""
    tables = "\n\n".join(sweep_table(reports, m, split) for m in metrics)
    conditions = list(dict.fromkeys(row["condition"] for r in reports for row in split_rows(r, split)))
    ranges = {m: {c: intervals(reports, c, m, split=split) for c in conditions}
              for m in dict.fromkeys([sequence, "frame_error", *(["contrast_error"] if "contrast_error" in metrics else [])])}
    if not any(ranges[sequence].values()):
        if baselines:
            raise UserError(f"--baseline: the reports under {directory} have no per-utterance results (made by an "
                            "earlier avfusion: evaluate them again with avfusion-evaluate)")
        return tables, {}
    for metric, by_condition in ranges.items():  # frame error beside the decoded rate: a verdict needs both
        tables += "\n\n" + interval_table(by_condition, metric)
        for baseline in baselines:
            differences = {c: intervals(reports, c, metric, baseline, split=split) for c in conditions}
            tables += "\n\n" + interval_table(differences, metric, baseline)
    return tables, ranges


def csv_records(reports: list[dict], split: str, metrics: list[str], ranges: dict) -> list[dict]:
    """One record per model, condition and metric: mean, sample std over seeds, and for the sequence error
    rate and the frame error its 95% intervals (`ranges`: {metric: {condition: intervals}}; empty without
    per-utterance counts)."""
    out = []
    for row in sweep_rows(reports, metrics, split):
        iv = ranges.get(row["metric"], {}).get(row["condition"], {}).get(row["model"])
        seed_t = iv.seed_t if iv and iv.seed_t else ("", "")
        out.append({**row, "low": iv.low if iv else "", "high": iv.high if iv else "",
                    "std": "" if row["std"] is None else row["std"], "speakers": iv.speakers if iv else "",
                    "resampled": iv.resampled if iv else "", "seed_t_low": seed_t[0], "seed_t_high": seed_t[1]})
    return out


def to_csv(records: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["split", "model", "seeds", "condition", "metric", "mean", "std", "low", "high",
                                  "speakers", "resampled", "seed_t_low", "seed_t_high"])
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def plots(reports: list[dict], by_metric: dict[str, dict], sequence: str, directory: Path) -> list[Path]:
    """PER and frame error against SNR per split (`by_metric`: {split: {metric: {condition: intervals}}}: a
    verdict needs both); viseme confusions at 0 dB of audio-only and the fusion best on dev (by PER)."""
    figures = [plot_error_vs_snr(r, metric, directory / f"{metric}_vs_snr_{split}.png",
                                 f"{metric_name(metric)}, {split} split ({directory.name})")
               for split, metrics in by_metric.items() for metric, r in metrics.items() if r]
    ranges = {split: metrics.get(sequence, {}) for split, metrics in by_metric.items()}
    chooser = ranges.get("dev") or ranges.get("test") or {}  # the best fusion is chosen on dev where there is one
    for kind in sorted(noise_curves(chooser)):
        condition = f"{kind} 0 dB"
        fusions = {m: iv.value for m, iv in chooser.get(condition, {}).items() if m not in UNIMODAL}
        if not fusions:
            continue
        best = min(fusions, key=fusions.get)
        for split in ranges:
            figures.append(plot_confusions(reports, ["audio_only", best], condition, split,
                                           directory / f"viseme_confusion_{kind}_0dB_{split}.png"))
    return [f for f in figures if f is not None]


if __name__ == "__main__":
    main()
