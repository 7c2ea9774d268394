"""`avfusion-report DIR [--metric per]`: one table (model x condition) from every report.json under DIR."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avfusion.cli.boundary import user_errors
from avfusion.reporting.report import METRICS, find_reports, sweep_table
from avfusion.utils.atomic import write_text_atomic


@user_errors("report")
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path, help="a run or multirun folder")
    parser.add_argument("--metric", choices=METRICS, default=None, help="first table (default: per, or wer)")
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
    write_text_atomic(args.directory / "summary.md", tables + "\n")
    print(tables)
    print(f"\n({len(reports)} runs; written to {args.directory / 'summary.md'})")


if __name__ == "__main__":
    main()
