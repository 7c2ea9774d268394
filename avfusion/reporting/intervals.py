"""Confidence intervals of error rates over the test set, by a two-level paired bootstrap.

The test set is a sample of speakers and, within each, of utterances; a result should hold for other
speakers. One resample draws the test speakers with replacement, then, within each drawn speaker, its
utterances with replacement; an error rate is recomputed on it as a ratio of sums (errors / reference
units, or wrong frames / frames), so long utterances weigh as they do in the rate itself. Every model is
scored on the same resamples (paired), so the interval of a difference between two models leaves out
what they share (how hard the drawn speakers are). Several seeds of a model are averaged inside each
resample. 95% percentile intervals from 2,000 resamples, seeded: the same reports give the same
intervals.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from avfusion.errors import UserError

# metric -> (per-utterance numerator, denominator) in a report row's `by_utterance`
RATIOS = {"per": ("errors", "reference"), "wer": ("errors", "reference"),
          "frame_error": ("frame_errors", "frames")}


@dataclass(frozen=True)
class Interval:
    value: float  # on the test set as it is
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def resamples(speakers: list[str], n_resamples: int = 2000, seed: int = 0) -> list[np.ndarray]:
    """Utterance indices of each two-level resample (speakers, then utterances within each)."""
    rng = np.random.default_rng(seed)
    by_speaker = defaultdict(list)
    for i, s in enumerate(speakers):
        by_speaker[s].append(i)
    groups = [np.array(v) for v in by_speaker.values()]
    out = []
    for _ in range(n_resamples):
        chosen = rng.integers(0, len(groups), len(groups))
        out.append(np.concatenate([g[rng.integers(0, len(g), len(g))] for g in (groups[c] for c in chosen)]))
    return out


def _rows(reports: list[dict], condition: str, metric: str) -> dict[str, list[dict]]:
    """Each model's per-utterance data of `condition` (one entry per seed), checked to share a test set."""
    if metric not in RATIOS:
        raise UserError(f"confidence intervals are computed for {sorted(RATIOS)}, not {metric!r}")
    by_model: dict[str, list[dict]] = defaultdict(list)
    ids = None
    for rep in reports:
        row = next((r for r in rep["test"] if r["condition"] == condition), None)
        if row is None or "by_utterance" not in row:
            continue
        detail = row["by_utterance"]
        if ids is None:
            ids = detail["id"]
        elif detail["id"] != ids:
            raise UserError(f"{rep['name']} (seed {rep['seed']}) was tested on other utterances than the rest: "
                            "paired intervals need one test set")
        by_model[rep["name"]].append({k: v if k in ("id", "speaker") else np.asarray(v, float) for k, v in detail.items()})
    return by_model


def _rate(details: list[dict], metric: str, index: np.ndarray | None) -> float:
    top, bottom = RATIOS[metric]
    rates = []
    for d in details:
        num, den = d[top], d[bottom]
        if index is not None:
            num, den = num[index], den[index]
        rates.append(num.sum() / den.sum())
    return float(np.mean(rates))  # seeds averaged


def intervals(reports: list[dict], condition: str, metric: str = "per", baseline: str | None = None,
              n_resamples: int = 2000, seed: int = 0) -> dict[str, Interval]:
    """Per model: its error rate with a 95% interval, or, with `baseline`, its rate minus the baseline's
    (negative: better) with the interval of that paired difference."""
    by_model = _rows(reports, condition, metric)
    if not by_model:
        return {}
    if baseline is not None and baseline not in by_model:
        raise UserError(f"baseline {baseline!r}: no such model in the reports (models: {sorted(by_model)})")
    speakers = next(iter(by_model.values()))[0]["speaker"]
    draws = [None] + resamples(speakers, n_resamples, seed)  # the test set as it is, then the resamples
    rates = {name: np.array([_rate(details, metric, d) for d in draws]) for name, details in by_model.items()}
    out = {}
    for name, values in rates.items():
        if name == baseline:
            continue
        if baseline is not None:
            values = values - rates[baseline]  # paired: the same resample for both
        low, high = np.percentile(values[1:], [2.5, 97.5])
        out[name] = Interval(float(values[0]), float(low), float(high))
    return out


def interval_table(cells: dict[str, dict[str, Interval]], metric: str = "per", baseline: str | None = None) -> str:
    """Markdown of `{condition: intervals(...)}`: a row per model, a column per condition, `value [low, high]`."""
    conditions = list(cells)
    names = list(dict.fromkeys(n for c in conditions for n in cells[c]))
    what = f"{metric} - {metric}({baseline})" if baseline else metric
    lines = [f"| {what}, 95% interval | " + " | ".join(conditions) + " |", "|---|" + "---:|" * len(conditions)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(str(cells[c][name]) if name in cells[c] else "" for c in conditions) + " |")
    return "\n".join(lines)
