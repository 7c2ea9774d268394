"""Confidence intervals of error rates: two-level paired bootstrap over test speakers and utterances."""

import numpy as np
import pytest
from scipy import stats

from avfusion.reporting.intervals import intervals, resamples


def report(name, seed, errors, reference, speakers, condition="clean"):
    n = len(errors)
    detail = {"id": [f"u{i}" for i in range(n)], "speaker": speakers, "errors": list(errors),
              "reference": list(reference), "frame_errors": list(errors), "frames": list(reference)}
    return {"name": name, "seed": seed, "test": [{"condition": condition, "by_utterance": detail}]}


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
