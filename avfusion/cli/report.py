"""`avfusion-report DIR [--metric per] [--baseline NAME]`: tables (model x condition) from every report.json
under DIR: each metric's mean (± std over seeds), then the sequence error rate with 95% intervals (a
paired bootstrap over test speakers and their utterances), and with --baseline, each model's paired
difference from that model with its interval."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from avfusion.cli.boundary import user_errors
from avfusion.reporting.intervals import interval_table, intervals
from avfusion.reporting.report import METRICS, find_reports, sweep_rows, sweep_table
from avfusion.utils.atomic import write_text_atomic


@user_errors("report")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path, help="a run or multirun folder")
    parser.add_argument("--metric", choices=METRICS, default=None, help="first table (default: per, or wer)")
    parser.add_argument("--baseline", default=None, help="a model name: paired differences from it, with intervals")
    args = parser.parse_args(argv)
    reports = find_reports(args.directory)
    if not reports:
        sys.exit(f"no report.json under {args.directory}")
    present = [m for m in METRICS if all(m in row for r in reports for row in r["test"])]
    if not present:
        sys.exit(f"the reports under {args.directory} mix phone and word metrics: report them separately")
    first = args.metric or present[0]
    if first not in present:
        sys.exit(f"--metric {first}: not in the reports under {args.directory} (they have {present})")
    tables = "\n\n".join(sweep_table(reports, m) for m in [first] + [m for m in present if m != first])
    sequence = present[0]  # per or wer
    conditions = list(dict.fromkeys(row["condition"] for r in reports for row in r["test"]))
    ranges = {c: intervals(reports, c, sequence) for c in conditions}  # empty for reports without by_utterance
    if any(ranges.values()):
        tables += "\n\n" + interval_table(ranges, sequence)
        if args.baseline:
            differences = {c: intervals(reports, c, sequence, args.baseline) for c in conditions}
            tables += "\n\n" + interval_table(differences, sequence, args.baseline)
    elif args.baseline:
        sys.exit(f"--baseline: the reports under {args.directory} have no per-utterance results (made by an "
                 "earlier avfusion: evaluate them again with avfusion-evaluate)")
    write_text_atomic(args.directory / "summary.md", tables + "\n")
    write_text_atomic(args.directory / "summary.csv", summary_csv(reports, [first] + [m for m in present if m != first],
                                                                  sequence, ranges))
    print(tables)
    print(f"\n({len(reports)} runs; written to {args.directory / 'summary.md'} and summary.csv)")


def summary_csv(reports: list[dict], metrics: list[str], sequence: str, ranges: dict[str, dict]) -> str:
    """One record per model, condition and metric: mean, sample std over seeds, and for the sequence error
    rate its 95% interval (`ranges`: {condition: intervals}; empty without per-utterance counts)."""
    rows = sweep_rows(reports, metrics)
    out = io.StringIO()
    writer = csv.DictWriter(out, ["model", "seeds", "condition", "metric", "mean", "std", "low", "high"])
    writer.writeheader()
    for row in rows:
        iv = ranges[row["condition"]].get(row["model"]) if row["metric"] == sequence else None
        writer.writerow({**row, "low": iv.low if iv else "", "high": iv.high if iv else "",
                         "std": "" if row["std"] is None else row["std"]})
    return out.getvalue()


if __name__ == "__main__":
    main()
