"""The same runs (config and seed) trained on two machines: each model's paired difference between them.

    python experiments/paper_study/compare_machines.py experiments/paper_study/results/full \\
        experiments/paper_study/results/full_part3 --label 12-04 --models audio_only video_only concat bilinear

The first folder's reports of those models are renamed "<model> (<label> machine)", both sets go into one
temporary folder, and `avfusion-report --baseline <model>` gives each one's difference (first machine minus
second) with the same paired bootstrap as every other comparison. Prints those rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def reports(folder: Path, models: list[str]) -> dict[Path, dict]:
    found = {p: json.loads(p.read_text()) for p in sorted(folder.rglob("report.json"))}
    return {p: r for p, r in found.items() if r["name"] in models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="exported reports from one machine")
    parser.add_argument("second", type=Path, help="the same runs from another machine")
    parser.add_argument("--label", default="first", help="names the first machine in the rows")
    parser.add_argument("--models", nargs="+", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for side, folder in (("a", args.first), ("b", args.second)):
            chosen = reports(folder, args.models)
            if {r["name"] for r in chosen.values()} != set(args.models):
                parser.error(f"{folder} lacks reports of {sorted(set(args.models) - {r['name'] for r in chosen.values()})}")
            for path, report in chosen.items():
                if side == "a":
                    report["name"] = f"{report['name']} ({args.label} machine)"
                out = Path(tmp) / f"{side}-{path.parent.name}" / "report.json"
                out.parent.mkdir()
                out.write_text(json.dumps(report))
        subprocess.run([sys.executable, "-m", "avfusion.cli.report", tmp, "--no-plots",
                        *(f"--baseline={m}" for m in args.models)], check=True, stdout=subprocess.DEVNULL)
        dev = (Path(tmp) / "summary.md").read_text().split("## test")[0]
    header, baseline = None, None
    for line in dev.splitlines():
        if line.startswith("| ") and "| seeds | speakers |" in line:  # a table's header: is it a bootstrap difference?
            difference = line.startswith("| per - per(") and "95% interval (" in line
            baseline = line.split("per(", 1)[1].split("),")[0] if difference else None
            if difference and header is None:  # one table: each row is a model's own difference
                header = "| per(" + args.label + " machine) - per(other), 95% interval |" + line.split("|", 2)[2]
                print(header + "\n|---|" + "---:|" * (header.count("|") - 2))
        elif baseline and line.startswith(f"| {baseline} ({args.label} machine) |"):
            print(line)


if __name__ == "__main__":
    main()
