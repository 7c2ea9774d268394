"""A finished study's runs decoded again under each decoder tuning policy, without training: the table of
test (or dev) PER and frame error per model, condition and policy.

    python experiments/tuning_policies/compare.py outputs/default_study [--conditions "babble 0 dB" "babble 5 dB"]
    python experiments/tuning_policies/compare.py outputs/paper_study_third_control --split dev \
        --overrides "evaluation.snrs_db=[10,0]" "evaluation.contrasts=[[ih,eh],[ah,ae]]"   # a study's own conditions

Each run (a folder with run.json under the study) is evaluated under every policy other than its own into
<study>_tuning/<policy>/<run>/ beside the study (so that `avfusion-report <study>` still reads one report a
run; skipped when that report exists); its own report (its training-time tuning,
`pooled` by default) gives its own policy's column. A run that kept every policy's points (decoder.json)
is decoded again without any tuning. Frame error does not depend on the decoder, so it must agree across
policies: the script checks it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

POLICIES = ("clean", "pooled", "per_condition")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a folder of finished runs (e.g. outputs/default_study)")
    parser.add_argument("--conditions", nargs="+", default=["babble 0 dB", "babble 5 dB"])
    parser.add_argument("--split", choices=["test", "dev"], default="test")
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES),
                        help="decode again under these only (default: all); the table then shows these")
    parser.add_argument("--overrides", nargs="+", default=[],
                        help="avfusion-evaluate overrides: the study's own conditions where they are not the defaults")
    args = parser.parse_args()
    runs = sorted(p.parent for p in args.study.glob("*/run.json"))
    if not runs:
        parser.error(f"{args.study}: no run folders (run.json) under it")
    unfinished = [run.name for run in runs if not (run / "report.json").is_file()]
    if unfinished:  # still training (a study running beside this), or killed: nothing to decode yet
        print(f"skipped, no report.json yet: {', '.join(unfinished)}", file=sys.stderr)
        runs = [run for run in runs if run.name not in unfinished]
    reports = {}
    for run in runs:
        own = json.loads((run / "report.json").read_text())
        reports[run.name, own["evaluation"].get("tuning", "clean")] = own
        for policy in args.policies:
            if (run.name, policy) in reports:
                continue
            out = args.study.with_name(f"{args.study.name}_tuning") / policy / run.name
            if not (out / "report.json").is_file():
                subprocess.run([sys.executable, "-m", "avfusion.cli.evaluate", f"run_dirs=[{run}]",
                                f"decoding.tune={policy}", f"output_dir={out}", *args.overrides], check=True,
                               stdout=subprocess.DEVNULL)
            reports[run.name, policy] = json.loads((out / "report.json").read_text())
    print(table(reports, [r.name for r in runs], args.conditions, args.split, args.policies))


def table(reports: dict, models: list[str], conditions: list[str], split: str, policies=POLICIES) -> str:
    header = "| model | condition | frame_error | " + " | ".join(f"per ({p})" for p in policies) + " |"
    lines = [header, "|---|---|---:|" + "---:|" * len(policies)]
    for model in models:
        for condition in conditions:
            rows = {p: next(r for r in reports[model, p][split] if r["condition"] == condition) for p in policies}
            frame_errors = {round(r["frame_error"], 9) for r in rows.values()}
            if len(frame_errors) != 1:
                raise SystemExit(f"{model}, {condition}: frame error differs between policies {frame_errors}: "
                                 "the runs were not decoded from the same posteriors")
            lines.append(f"| {model} | {condition} | {rows[policies[0]]['frame_error']:.3f} | "
                         + " | ".join(f"{rows[p]['per']:.3f}" for p in rows) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
