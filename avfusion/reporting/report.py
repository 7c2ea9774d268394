"""Run reports (report.json + report.md) and the table across the runs of a sweep."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from avfusion.errors import UserError
from avfusion.utils.atomic import write_text_atomic

METRICS = ("per", "per_framewise", "frame_error", "frame_error_phone", "wer", "wer_framewise", "frame_error_word",
           "segment_error", "substitution_rate", "deletion_rate", "insertion_rate", "contrast_error")
SEQUENCE_METRIC = {"phone": "per", "word": "wer"}


def run_table(rows: list[dict], unit: str = "phone") -> str:
    """Markdown table of one run: a row per condition. S / D / I are the decoder's substitution, deletion
    and insertion rates (they add up to its error rate)."""
    unit_error, sequence = f"frame_error_{unit}", SEQUENCE_METRIC[unit]
    framewise = f"{sequence}_framewise"
    extra = framewise in rows[0] if rows else False
    lines = [f"| condition | utterances | frames | frame_error | {unit_error} | {sequence} | S / D / I |"
             + (f" {framewise} |" if extra else "") + " segment_error |",
             "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if extra else "") + "---:|"]
    for r in rows:
        sdi = f"{r['substitution_rate']:.3f} / {r['deletion_rate']:.3f} / {r['insertion_rate']:.3f}" \
            if "substitution_rate" in r else ""
        lines.append(f"| {r['condition']} | {r['utterances']} | {r['frames']} | {r['frame_error']:.3f} | "
                     f"{r[unit_error]:.3f} | {r[sequence]:.3f} | {sdi} |" + (f" {r[framewise]:.3f} |" if extra else "")
                     + f" {r.get('segment_error', float('nan')):.3f} |")
    return "\n".join(lines)


def write_report(run_dir: str | Path, report: dict, decoder_summary: str = "") -> str:
    """Write report.json and report.md (`decoder_summary`: a line on how the test split was decoded);
    return the Markdown."""
    run_dir = Path(run_dir)
    write_text_atomic(run_dir / "report.json", json.dumps(report, indent=2))
    title = f"# {report['name']} (seed {report['seed']}, labels {report['label_scheme']})"
    if decoder_summary:
        title += f"\n\nDecoder: {decoder_summary}."
    skipped = report.get("skipped_utterances") or []
    note = f" {len(skipped)} invalid utterance(s) left out (on_error=skip; listed in report.json)." if skipped else ""
    md = f"{title}\n\nTest split: {report['test_speakers']} speakers.{note}\n\n" \
         f"{run_table(report['test'], report.get('unit', 'phone'))}\n"
    write_text_atomic(run_dir / "report.md", md)
    return md


def find_reports(directory: str | Path) -> list[dict]:
    reports = []
    for path in sorted(Path(directory).rglob("report.json")):
        try:
            report = json.loads(path.read_text())
            if not isinstance(report, dict) or not isinstance(report.get("test"), list):
                raise ValueError("it has no 'test' rows")
        except ValueError as err:  # JSONDecodeError is a ValueError
            raise UserError(f"{path}: not a report of avfusion-train or -evaluate ({err})") from None
        reports.append(report)
    return reports


SPLITS = ("dev", "test")  # dev: where conclusions are drawn; test: reported once


def split_rows(report: dict, split: str = "test") -> list[dict]:
    """A report's rows of one split (reports made before dev was scored have test rows only)."""
    return report.get(split) or []


def metrics_in(reports: list[dict], split: str = "test") -> list[str]:
    """The metrics every row of `split` has, in METRICS' order, then each contrast pair's (evaluation.contrasts)."""
    rows = [row for r in reports for row in split_rows(r, split)]
    pairs = sorted({k for row in rows for k in row if k.startswith("contrast_error_")})
    return [m for m in [*METRICS, *pairs] if rows and all(m in row for row in rows)]


def seed_values(reports: list[dict], metric: str, split: str = "test") -> tuple[dict[str, dict[str, list[float]]], dict[str, set], list[str]]:
    """{model: {condition: [value per run]}}, the seeds of each model, and the conditions in order."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    seeds: dict[str, set] = defaultdict(set)
    conditions: list[str] = []
    for rep in reports:
        for row in split_rows(rep, split):
            values[rep["name"]][row["condition"]].append(row[metric])
            if row["condition"] not in conditions:
                conditions.append(row["condition"])
        seeds[rep["name"]].add(rep["seed"])
    return values, seeds, conditions


def spread(values: list[float]) -> float | None:
    """Sample standard deviation over seeds (ddof 1); None for a single run."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def sweep_table(reports: list[dict], metric: str = "per", split: str = "test") -> str:
    """One row per model name, one column per condition; mean (+- sample std over seeds when several)."""
    if metric not in METRICS and not metric.startswith("contrast_error_"):
        raise ValueError(f"unknown metric {metric!r}; choose from {METRICS} or a contrast_error_<P>_<Q>")
    values, seeds, conditions = seed_values(reports, metric, split)
    header = f"| {metric} | seeds | " + " | ".join(conditions) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(conditions)]
    for name in values:
        cells = []
        for c in conditions:
            v = values[name].get(c, [])
            cells.append("" if not v else f"{np.mean(v):.3f}" + (f" ± {spread(v):.3f}" if len(v) > 1 else ""))
        lines.append(f"| {name} | {len(seeds[name])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_rows(reports: list[dict], metrics: list[str], split: str = "test") -> list[dict]:
    """The sweep tables as records (for CSV): split, model, seeds, condition, metric, mean, std (ddof 1)."""
    rows = []
    for metric in metrics:
        values, seeds, conditions = seed_values(reports, metric, split)
        for name in values:
            for c in conditions:
                v = values[name].get(c)
                if v:
                    rows.append({"split": split, "model": name, "seeds": len(seeds[name]), "condition": c,
                                 "metric": metric, "mean": float(np.mean(v)), "std": spread(v)})
    return rows
