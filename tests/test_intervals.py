"""Confidence intervals of error rates: a paired bootstrap over seeds crossed with test speakers and utterances."""

import numpy as np
import pytest
from scipy import stats

from avfusion.reporting.intervals import interval_table, intervals, resamples


def report(name, seed, errors, reference, speakers, condition="clean"):
    n = len(errors)
    detail = {"id": [f"u{i}" for i in range(n)], "speaker": speakers, "errors": list(errors),
              "reference": list(reference), "frame_errors": list(errors), "frames": list(reference)}
    return {"name": name, "seed": seed, "test": [{"condition": condition, "by_utterance": detail}]}


def nested_reference(errors: dict, reference, speakers, baseline: dict | None = None, n_resamples: int = 3000,
                     seed: int = 11) -> tuple[float, float]:
    """The crossed bootstrap in plain loops, with its own random draws: each resample draws as many seeds as
    there are, with replacement, and as many speakers, each bringing as many of its utterances, drawn with
    replacement; the rate is the mean over the drawn seeds of errors / reference on the drawn utterances
    (minus the baseline's on the same draws). `errors`: {seed: per-utterance errors}."""
    rng = np.random.default_rng(seed)
    by_speaker = {}
    for i, s in enumerate(speakers):
        by_speaker.setdefault(s, []).append(i)
    groups, seeds, values = list(by_speaker.values()), list(errors), []
    for _ in range(n_resamples):
        drawn_seeds = [seeds[rng.integers(len(seeds))] for _ in seeds]
        utterances = []
        for _ in groups:
            members = groups[rng.integers(len(groups))]
            utterances += [members[rng.integers(len(members))] for _ in members]
        total = sum(reference[i] for i in utterances)
        rate = 0.0
        for s in drawn_seeds:
            rate += sum(errors[s][i] for i in utterances) / total
            if baseline is not None:
                rate -= sum(baseline[s][i] for i in utterances) / total
        values.append(rate / len(drawn_seeds))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def test_resamples_draw_speakers_then_their_utterances():
    speakers = ["a"] * 3 + ["b"] * 5
    for idx in resamples(speakers, 50, seed=1):
        drawn = [speakers[i] for i in idx]
        # whole speakers are drawn (2 draws), each bringing as many utterances as it has, drawn among its own
        assert drawn.count("a") % 3 == 0 and drawn.count("b") % 5 == 0 and len(idx) in (6, 8, 10)


def test_equal_rates_everywhere_give_a_point_interval():
    rep = report("m", 0, [2] * 12, [10] * 12, [f"s{i % 4}" for i in range(12)])
    iv = intervals([rep], "clean")["m"]
    assert iv.value == iv.low == iv.high == pytest.approx(0.2)


def test_one_utterance_per_speaker_is_the_ordinary_bootstrap_of_the_ratio():
    rng = np.random.default_rng(0)
    reference = rng.integers(10, 40, 60)
    errors = rng.binomial(reference, 0.3)
    rep = report("m", 0, errors, reference, [f"s{i}" for i in range(60)])
    ours = intervals([rep], "clean", n_resamples=4000)["m"]
    ref = stats.bootstrap((errors, reference), lambda e, r: e.sum() / r.sum(), paired=True, vectorized=False,
                          n_resamples=4000, method="percentile", random_state=1).confidence_interval
    assert ours.value == pytest.approx(errors.sum() / reference.sum())
    assert ours.low == pytest.approx(ref.low, abs=0.01) and ours.high == pytest.approx(ref.high, abs=0.01)


def test_a_paired_difference_is_tighter_than_the_two_intervals_and_excludes_zero_when_one_model_is_better():
    rng = np.random.default_rng(2)
    speakers = [f"s{i // 10}" for i in range(40)]
    reference = np.full(40, 20)
    hardness = np.repeat(rng.uniform(0.1, 0.6, 4), 10)  # speakers differ a lot; both models share it
    base = rng.binomial(reference, hardness)
    better = np.maximum(base - rng.integers(1, 3, 40), 0)  # always a little better
    reports = [report("base", 0, base, reference, speakers), report("better", 0, better, reference, speakers)]
    alone = intervals(reports, "clean")
    diff = intervals(reports, "clean", baseline="base")["better"]
    assert diff.high < 0 < alone["base"].low  # better, and the speaker effect cancels in the pairing
    assert diff.high - diff.low < 0.5 * (alone["better"].high - alone["better"].low)
    assert diff.value == pytest.approx(better.sum() / 800 - base.sum() / 800)


def test_seeds_are_averaged_and_other_test_sets_refused():
    speakers = ["a", "a", "b", "b"]
    reps = [report("m", 0, [1, 1, 1, 1], [10] * 4, speakers), report("m", 1, [3, 3, 3, 3], [10] * 4, speakers)]
    assert intervals(reps, "clean")["m"].value == pytest.approx(0.2)
    other = report("x", 0, [1] * 4, [10] * 4, speakers)
    other["test"][0]["by_utterance"]["id"] = ["v0", "v1", "v2", "v3"]
    with pytest.raises(Exception, match="other utterances"):
        intervals(reps + [other], "clean")


def test_seeds_crossed_with_speakers_agree_with_a_nested_loop_reference():
    rng = np.random.default_rng(4)
    speakers = [f"s{i // 4}" for i in range(24)]  # 6 speakers x 4 utterances
    reference = rng.integers(10, 30, 24)
    hardness = np.repeat(rng.uniform(0.2, 0.5, 6), 4)
    errors = {s: rng.binomial(reference, np.clip(hardness + shift, 0, 1)) for s, shift in zip(range(4), (0, .05, -.04, .1))}
    base = {s: rng.binomial(reference, hardness + 0.05) for s in range(4)}
    reps = [report("m", s, e, reference, speakers) for s, e in errors.items()]
    reps += [report("base", s, e, reference, speakers) for s, e in base.items()]
    alone = intervals(reps, "clean", n_resamples=3000)["m"]
    diff = intervals(reps, "clean", baseline="base", n_resamples=3000)["m"]
    for ours, ref in ((alone, nested_reference(errors, reference, speakers)),
                      (diff, nested_reference(errors, reference, speakers, baseline=base))):
        assert ours.low == pytest.approx(ref[0], abs=0.012) and ours.high == pytest.approx(ref[1], abs=0.012)
    assert (alone.seeds, alone.speakers, alone.resampled) == (4, 6, "seeds × speakers × utterances")


def test_a_difference_that_is_all_between_seeds_is_covered_where_a_speaker_only_interval_is_a_point():
    """The review's example (dev, babble 0 dB, bilinear - concat): per-seed differences +0.021, +0.003,
    -0.064, and no speaker or utterance variance at all."""
    speakers = [f"s{i // 5}" for i in range(40)]
    reference = np.full(40, 100)
    shifts = {0: 0.021, 1: 0.003, 2: -0.064}
    base = {s: np.full(40, 40) for s in shifts}
    model = {s: np.full(40, 40 + round(100 * d, 1)) for s, d in shifts.items()}
    reps = [report("concat", s, e, reference, speakers) for s, e in base.items()]
    reps += [report("bilinear", s, e, reference, speakers) for s, e in model.items()]
    diff = intervals(reps, "clean", baseline="concat")["bilinear"]
    assert diff.value == pytest.approx(np.mean(list(shifts.values())))
    assert diff.low <= -0.04 and diff.high >= 0.01  # the seeds' spread, not a point
    averaged = [report("concat", 0, np.mean(list(base.values()), 0), reference, speakers),
                report("bilinear", 0, np.mean(list(model.values()), 0), reference, speakers)]
    speaker_only = intervals(averaged, "clean", baseline="concat")["bilinear"]
    assert speaker_only.high - speaker_only.low == pytest.approx(0, abs=1e-12)  # what the old report gave
    low, high = diff.seed_t  # the t interval over the three per-seed differences
    assert low < -0.064 and high > 0.021 and diff.resampled == "seeds × speakers × utterances"


def test_seeds_that_agree_add_nothing_to_a_speaker_interval():
    rng = np.random.default_rng(8)
    speakers = [f"s{i // 3}" for i in range(30)]
    reference = rng.integers(10, 30, 30)
    errors = rng.binomial(reference, np.repeat(rng.uniform(0.1, 0.6, 10), 3))
    one = intervals([report("m", 0, errors, reference, speakers)], "clean")["m"]
    three = intervals([report("m", s, errors, reference, speakers) for s in range(3)], "clean")["m"]
    assert (three.value, three.low, three.high) == pytest.approx((one.value, one.low, one.high), abs=1e-12)
    assert three.seed_t == pytest.approx((one.value, one.value)) and one.seed_t is None


def test_the_table_names_the_units_resampled_and_the_seeds_and_speakers_behind_each_row():
    speakers = ["a", "a", "b", "b"]
    reps = [report("m", s, [s + 1] * 4, [10] * 4, speakers) for s in range(3)] + [report("x", 0, [1] * 4, [10] * 4, speakers)]
    table = interval_table({"clean": intervals(reps, "clean")})
    assert "resampled: seeds × speakers × utterances / speakers × utterances" in table
    assert "| m | 3 | 2 |" in table and "| x | 1 | 2 |" in table and "seed-level t interval" in table


def test_a_condition_the_baseline_was_not_evaluated_in_has_no_differences_and_an_unknown_baseline_is_refused():
    speakers = ["a", "a", "b", "b"]
    reps = [report("base", 0, [1] * 4, [10] * 4, speakers), report("m", 0, [2] * 4, [10] * 4, speakers),
            report("m", 0, [5] * 4, [10] * 4, speakers, condition="no audio")]  # only m was scored without audio
    assert intervals(reps, "clean", baseline="base")["m"].value == pytest.approx(0.1)
    assert intervals(reps, "no audio", baseline="base") == {}
    with pytest.raises(Exception, match=r"baseline 'typo': no such model in the reports \(models: \['base', 'm'\]\)"):
        intervals(reps, "clean", baseline="typo")
