"""What a study cost: for each part's timing.tsv (written by run_study.py, one line per finished step), the steps,
their summed time, the wall time during which any step ran (steps run side by side overlap; the idle time
between sessions is not counted), and the largest peak resident memory of a step.

    python experiments/paper_study/timing.py experiments/paper_study/results/third_control \
        experiments/paper_study/results/third_cd_state experiments/paper_study/results/third
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_study import TIMING  # noqa: E402  the log run_study.py writes into each sweep folder


def steps(path: Path) -> list[tuple[datetime, datetime, float | None]]:
    """(start, end, peak RSS in MB or None for lines written before the memory was logged) per step."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("\t")
        try:
            start = datetime.strptime(fields[0], "%Y-%m-%d %H:%M:%S")
            rows.append((start, start + timedelta(seconds=float(fields[1])),
                         float(fields[3]) if len(fields) > 3 else None))
        except (IndexError, ValueError):
            raise SystemExit(f"{path}:{number}: not a timing line (start, seconds, command[, peak MB]): {line!r}")
    return rows


def busy_seconds(intervals: list[tuple[datetime, datetime]]) -> float:
    """The length of the union of the intervals: wall time during which at least one step ran."""
    total, end = 0.0, datetime.min
    for start, stop in sorted(intervals):
        total += max(0.0, (stop - max(start, end)).total_seconds())  # only what lies past the steps before it
        end = max(end, stop)
    return total


def summary(parts: list[Path]) -> str:
    lines = ["| part | steps | summed step time (min) | wall time, any step running (min) | peak RSS of a step (GB) |",
             "|---|---:|---:|---:|---:|"]
    everything = []
    for part in parts:
        path = part / TIMING if part.is_dir() else part
        if not path.is_file():
            raise SystemExit(f"{path}: no timing log (run_study.py writes one into the sweep folder; --export "
                             "copies it)")
        rows = steps(path)
        everything += rows
        lines.append(row(part.name if part.is_dir() else part.parent.name, rows))
    if len(parts) > 1:
        lines.append(row("all", everything))
    return "\n".join(lines)


def row(name: str, rows: list) -> str:
    peaks = [peak for _, _, peak in rows if peak is not None]
    peak = f"{max(peaks) / 1024:.1f}" if peaks else "not logged"
    return (f"| {name} | {len(rows)} | {sum((e - s).total_seconds() for s, e, _ in rows) / 60:.0f} | "
            f"{busy_seconds([(s, e) for s, e, _ in rows]) / 60:.0f} | {peak} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", type=Path, nargs="+", help="sweep or export folders (or their timing.tsv files)")
    print(summary(parser.parse_args().parts))


if __name__ == "__main__":
    main()
