"""Confidence intervals of error rates over seeds, test speakers and their utterances, by a paired bootstrap.

A result should hold for another training seed and for other speakers. One resample draws the seeds with
replacement and, crossed with them, the test speakers with replacement, then within each drawn speaker its
utterances with replacement; a model's error rate on it is the mean over the drawn seeds of the rate on the
drawn utterances, each a ratio of sums (errors / reference units, or wrong frames / frames), so long
utterances weigh as they do in the rate itself. Every model is scored on the same speaker resamples, and
models trained from the same seeds (which share their pre-trained encoders) on the same seed draws, so the
interval of a difference leaves out what the two share. With one seed per model only speakers and
utterances are resampled; the table header says which. Beside it, with >= 2 seeds: the seed-level t
interval (over per-seed rates, or per-seed differences when paired). 95% percentile intervals from 2,000
resamples, seeded: the same reports give the same intervals.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from avfusion.errors import UserError

# metric -> (per-utterance numerator, denominator) in a report row's `by_utterance`; contrast_error_<P>_<Q>, each
# contrast pair's own (evaluation.contrasts), is ratio_of's
RATIOS = {"per": ("errors", "reference"), "wer": ("errors", "reference"),
          "frame_error": ("frame_errors", "frames"), "contrast_error": ("contrast_errors", "contrast_frames")}


def ratio_of(metric: str) -> tuple[str, str]:
    """The per-utterance numerator and denominator of `metric` (a one-line error for one without them)."""
    if metric in RATIOS:
        return RATIOS[metric]
    if metric.startswith("contrast_error_"):  # one contrast pair's
        pair = metric.removeprefix("contrast_error")
        return f"contrast_errors{pair}", f"contrast_frames{pair}"
    raise UserError(f"confidence intervals are computed for {sorted(RATIOS)} and contrast_error_<P>_<Q>, not {metric!r}")


@dataclass(frozen=True)
class Interval:
    value: float  # on the test set as it is, seeds averaged
    low: float
    high: float
    seeds: int  # behind the value (for a difference: the fewer of the two models')
    speakers: int
    seed_t: tuple[float, float] | None = None  # t interval over per-seed values (differences); None: one seed

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"

    @property
    def resampled(self) -> str:
        return ("seeds × " if self.seeds > 1 else "") + "speakers × utterances"


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


def _rows(reports: list[dict], condition: str, metric: str, split: str = "test") -> dict[str, dict[int, dict]]:
    """Each model's per-utterance data of `condition` by seed, checked to share a test set."""
    ratio_of(metric)  # a metric with per-utterance counts
    by_model: dict[str, dict[int, dict]] = defaultdict(dict)
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
        if rep["seed"] in by_model[rep["name"]]:
            raise UserError(f"{rep['name']} has two reports of seed {rep['seed']}: keep one run per seed")
        by_model[rep["name"]][rep["seed"]] = {k: v if k in ("id", "speaker") else np.asarray(v, float)
                                             for k, v in detail.items()}
    return by_model


def _seed_rates(details: dict[int, dict], metric: str, counts: np.ndarray) -> np.ndarray:
    """(seeds, resamples): each seed's rate on each speaker resample (rows of `counts`), a ratio of sums."""
    top, bottom = ratio_of(metric)
    return np.stack([(counts @ d[top]) / (counts @ d[bottom]) for d in details.values()])


def _seed_draws(seeds: tuple, n_resamples: int, seed: int) -> np.ndarray:
    """(1 + n_resamples, len(seeds)) indices of the drawn seeds: the first row all of them once, then draws
    with replacement. Models with the same seeds get the same draws (paired by seed)."""
    rng = np.random.default_rng([seed, 1, *(zlib.crc32(str(s).encode()) for s in seeds)])
    drawn = rng.integers(0, len(seeds), (n_resamples, len(seeds)))
    return np.vstack([np.arange(len(seeds)), drawn])


def _t_interval(values: np.ndarray) -> tuple[float, float] | None:
    """The 95% t interval of the mean of `values` (None for fewer than two)."""
    from scipy import stats

    if len(values) < 2:
        return None
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def intervals(reports: list[dict], condition: str, metric: str = "per", baseline: str | None = None,
              n_resamples: int = 2000, seed: int = 0, split: str = "test") -> dict[str, Interval]:
    """Per model: its error rate with a 95% interval, or, with `baseline`, its rate minus the baseline's
    (negative: better) with the interval of that paired difference. `split`: the reports' dev or test rows."""
    by_model = _rows(reports, condition, metric, split)
    if not by_model:
        return {}
    if baseline is not None and baseline not in by_model:
        named = sorted({r["name"] for r in reports})
        if baseline in named:  # evaluated, but not in this condition (e.g. `no audio`, which only some runs have)
            return {}
        raise UserError(f"baseline {baseline!r}: no such model in the reports (models: {named})")
    speakers = next(iter(next(iter(by_model.values())).values()))["speaker"]
    counts = np.vstack([np.ones(len(speakers)), resample_counts(speakers, n_resamples, seed)])  # the set as it is first
    per_seed = {name: _seed_rates(details, metric, counts) for name, details in by_model.items()}
    seeds = {name: tuple(details) for name, details in by_model.items()}
    rates = {}
    for name, values in per_seed.items():  # mean over each resample's drawn seeds
        drawn = _seed_draws(seeds[name], n_resamples, seed)
        rates[name] = np.take_along_axis(values, drawn.T, axis=0).mean(axis=0)
    n_speakers = len(set(speakers))
    out = {}
    for name, values in rates.items():
        if name == baseline:
            continue
        n_seeds, seed_t = len(seeds[name]), _t_interval(per_seed[name][:, 0])
        if baseline is not None:
            values = values - rates[baseline]  # paired: the same speaker (and, same seeds, seed) draws
            n_seeds = min(n_seeds, len(seeds[baseline]))
            seed_t = _difference_t(per_seed[name][:, 0], per_seed[baseline][:, 0], seeds[name] == seeds[baseline])
        low, high = np.percentile(values[1:], [2.5, 97.5])
        out[name] = Interval(float(values[0]), float(low), float(high), n_seeds, n_speakers, seed_t)
    return out


def _difference_t(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[float, float] | None:
    """The seed-level t interval of mean(a) - mean(b): over per-seed differences when the seeds pair them,
    else Welch's."""
    from scipy import stats

    if paired:
        return _t_interval(a - b)
    if min(len(a), len(b)) < 2:
        return None
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return float(ci.low), float(ci.high)


def interval_table(cells: dict[str, dict[str, Interval]], metric: str = "per", baseline: str | None = None) -> str:
    """Markdown of `{condition: intervals(...)}`: a row per model (with the seeds and speakers behind it), a
    column per condition, `value [low, high]`; the header says which units were resampled. With >= 2 seeds a
    second table gives the seed-level t intervals."""
    conditions = list(cells)
    names = list(dict.fromkeys(n for c in conditions for n in cells[c]))
    what = f"{metric} - {metric}({baseline})" if baseline else metric
    behind = {n: next(cells[c][n] for c in conditions if n in cells[c]) for n in names}
    resampled = " / ".join(sorted({iv.resampled for iv in behind.values()}))

    def table(title: str, cell) -> list[str]:
        lines = [f"| {title} | seeds | speakers | " + " | ".join(conditions) + " |",
                 "|---|---:|---:|" + "---:|" * len(conditions)]
        for name in names:
            lines.append(f"| {name} | {behind[name].seeds} | {behind[name].speakers} | "
                         + " | ".join(cell(cells[c][name]) if name in cells[c] else "" for c in conditions) + " |")
        return lines

    lines = table(f"{what}, 95% interval (resampled: {resampled})", str)
    if any(iv.seed_t for iv in behind.values()):
        lines += ["", *table(f"{what}, 95% seed-level t interval (over per-seed "
                             f"{'differences' if baseline else 'rates'})",
                             lambda iv: f"{iv.value:.3f} [{iv.seed_t[0]:.3f}, {iv.seed_t[1]:.3f}]" if iv.seed_t else "")]
    return "\n".join(lines)
