"""Multi-condition training's gain, separately for matched and unseen noise, from a sweep's reports.

    python experiments/noise_generalisation/gain.py outputs/noise_generalisation [--split dev]

For every model trained both clean (`NAME`) and multi-condition (`NAME+multi`): the error rate of the
multi-condition model minus the clean one's (negative: multi-condition training helps), pooled over each
group of conditions (each utterance's errors summed over the group's conditions), with the paired 95%
interval of avfusion-report (seeds, speakers and utterances resampled). Groups:

- matched: a noise kind training used, at an SNR inside the training range
- unseen voices: babble of talkers training never heard (babble_unseen), inside the range
- unseen kind: a noise kind training never used (music), inside the range
- below range: any noise at an SNR below the training range
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from omegaconf import OmegaConf

from avfusion.errors import UserError
from avfusion.reporting.intervals import intervals
from avfusion.reporting.report import find_reports


def group_of(row: dict, trained_kinds: set[str], snr_range: tuple[float, float]) -> str | None:
    if row["noise"] == "clean":
        return None
    if row["snr_db"] < snr_range[0]:
        return "below range"
    if row["noise"] in trained_kinds:
        return "matched"
    return "unseen voices" if row["noise"].startswith("babble") else "unseen kind"


def pooled(report: dict, split: str, trained_kinds: set[str], snr_range: tuple[float, float]) -> dict:
    """`report` with its `split` rows replaced by one row per group, each utterance's counts summed."""
    groups: dict[str, dict] = {}
    for row in report[split]:
        group = group_of(row, trained_kinds, snr_range)
        if group is None:
            continue
        detail = row["by_utterance"]
        if group not in groups:
            groups[group] = {"condition": group, "by_utterance": copy.deepcopy(detail)}
            continue
        into = groups[group]["by_utterance"]
        if into["id"] != detail["id"]:
            raise UserError(f"{report['name']}: conditions scored on different utterances")
        for key in ("errors", "reference", "frame_errors", "frames"):
            into[key] = [a + b for a, b in zip(into[key], detail[key])]
    return {**report, split: list(groups.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--split", choices=["dev", "test"], default="test")
    args = parser.parse_args()
    reports = find_reports(args.sweep)
    multi = [r for r in reports if r["name"].endswith("+multi")]
    if not multi:
        raise SystemExit(f"{args.sweep}: no multi-condition runs (NAME+multi) under it")
    # what the multi-condition runs trained in, from their saved config
    config = OmegaConf.load(next(p.parent for p in args.sweep.rglob("report.json")
                                 if json.loads(p.read_text())["name"].endswith("+multi")) / "config.yaml")
    trained_kinds, snr_range = set(config.train_noise.noises), tuple(config.train_noise.snr_db)
    groups = ["matched", "unseen voices", "unseen kind", "below range"]
    print(f"{args.split}: error rate (multi-condition) - (clean-trained), 95% interval; training noises "
          f"{sorted(trained_kinds)} at {snr_range[0]:g}..{snr_range[1]:g} dB\n")
    for metric in ("per", "frame_error"):
        print(f"| {metric}: multi - clean | " + " | ".join(groups) + " |\n|---|" + "---:|" * len(groups))
        for m in sorted({r["name"].removesuffix("+multi") for r in multi}):
            pair = [pooled(r, args.split, trained_kinds, snr_range) for r in reports if r["name"] in (m, f"{m}+multi")]
            cells = [intervals(pair, g, metric, baseline=m, split=args.split).get(f"{m}+multi") for g in groups]
            print(f"| {m} | " + " | ".join(str(c) if c else "" for c in cells) + " |")
        print()


if __name__ == "__main__":
    main()
