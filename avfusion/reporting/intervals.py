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


def resample_counts(speakers: list[str], n_resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """(n_resamples, N): how often each utterance is drawn in each two-level resample (speakers with
    replacement, then within each drawn speaker as many of its utterances, with replacement)."""
    rng = np.random.default_rng(seed)
    by_speaker = defaultdict(list)
    for i, s in enumerate(speakers):
        by_speaker[s].append(i)
    sizes = np.array([len(v) for v in by_speaker.values()])
    members = np.full((len(sizes), sizes.max()), -1)  # speaker -> its utterances, padded
    for g, v in enumerate(by_speaker.values()):
        members[g, :len(v)] = v
    chosen = rng.integers(0, len(sizes), (n_resamples, len(sizes)))  # (R, S) drawn speakers
    n_drawn = sizes[chosen][..., None]  # each brings as many utterances as it has
    picks = np.floor(rng.random((*chosen.shape, sizes.max())) * n_drawn).astype(np.int64)
    valid = np.arange(sizes.max()) < n_drawn
    utterances = members[chosen[..., None], picks]
    rows = np.broadcast_to(np.arange(n_resamples)[:, None, None], utterances.shape)
    n = len(speakers)
    return np.bincount(rows[valid] * n + utterances[valid], minlength=n_resamples * n).reshape(n_resamples, n)


def resamples(speakers: list[str], n_resamples: int = 2000, seed: int = 0) -> list[np.ndarray]:
    """Utterance indices of each two-level resample (see `resample_counts`)."""
    counts = resample_counts(speakers, n_resamples, seed)
    return [np.repeat(np.arange(counts.shape[1]), c) for c in counts]


def _rows(reports: list[dict], condition: str, metric: str, split: str = "test") -> dict[str, list[dict]]:
    """Each model's per-utterance data of `condition` (one entry per seed), checked to share a test set."""
    if metric not in RATIOS:
        raise UserError(f"confidence intervals are computed for {sorted(RATIOS)}, not {metric!r}")
    by_model: dict[str, list[dict]] = defaultdict(list)
    ids = None
    for rep in reports:
        row = next((r for r in rep.get(split) or [] if r["condition"] == condition), None)
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


def _rates(details: list[dict], metric: str, counts: np.ndarray) -> np.ndarray:
    """The rate on each resample (rows of `counts`) as a ratio of sums, seeds averaged."""
    top, bottom = RATIOS[metric]
    return np.mean([(counts @ d[top]) / (counts @ d[bottom]) for d in details], axis=0)


def intervals(reports: list[dict], condition: str, metric: str = "per", baseline: str | None = None,
              n_resamples: int = 2000, seed: int = 0, split: str = "test") -> dict[str, Interval]:
    """Per model: its error rate with a 95% interval, or, with `baseline`, its rate minus the baseline's
    (negative: better) with the interval of that paired difference. `split`: the reports' dev or test rows."""
    by_model = _rows(reports, condition, metric, split)
    if not by_model:
        return {}
    if baseline is not None and baseline not in by_model:
        raise UserError(f"baseline {baseline!r}: no such model in the reports (models: {sorted(by_model)})")
    speakers = next(iter(by_model.values()))[0]["speaker"]
    counts = np.vstack([np.ones(len(speakers)), resample_counts(speakers, n_resamples, seed)])  # the set as it is first
    rates = {name: _rates(details, metric, counts) for name, details in by_model.items()}
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
