import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from avfusion.corpus.labels import get_scheme
from avfusion.decoding.framewise import FramewiseDecoder, collapse
from avfusion.metrics.per import edit_counts, frame_error, per


def reference_edit_distance(a, b):
    """Textbook dynamic programme (Wagner-Fischer), independent of rapidfuzz."""
    d = np.arange(len(b) + 1)
    for i, x in enumerate(a, start=1):
        prev, d = d, np.empty_like(d)
        d[0] = i
        for j, y in enumerate(b, start=1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (x != y))
    return int(d[-1])


def test_hand_computed_cases():
    c = edit_counts(["sil", "hh", "ah", "l", "ow", "sil"], ["sil", "hh", "eh", "ow", "sil"])
    assert (c.substitutions, c.deletions, c.insertions) == (1, 1, 0)
    assert c.rate == pytest.approx(2 / 6)
    c = edit_counts(["a", "b"], ["a", "x", "b", "y"])
    assert (c.substitutions, c.deletions, c.insertions) == (0, 0, 2)
    assert edit_counts(["a"], []).deletions == 1


def test_per_sums_over_utterances_not_mean_of_rates():
    total = per([(["a", "b", "c", "d"], ["a", "b", "c", "d"]), (["a", "b"], ["b"])])
    assert total.errors == 1 and total.reference_length == 6
    assert total.rate == pytest.approx(1 / 6)  # a mean of per-utterance rates would give 0.25


def test_total_edits_match_independent_implementations():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.integers(0, 5, rng.integers(0, 12)).tolist()
        b = rng.integers(0, 5, rng.integers(0, 12)).tolist()
        counts = edit_counts(a, b)
        assert counts.errors == reference_edit_distance(a, b) == Levenshtein.distance(a, b)
        assert counts.deletions - counts.insertions == len(a) - len(b)


def test_collapse_and_smoothing():
    assert collapse(["a", "a", "b", "b", "b", "a"]) == ["a", "b", "a"]
    # a one-frame blip is dropped, and the runs it split are merged
    assert collapse(["a", "a", "x", "a", "a", "b", "b"], min_frames=2) == ["a", "b"]


def test_states_fold_to_phones_before_merging():
    s = get_scheme("phone_state")
    frames = [s.classes.index(c) for c in ("sil", "aa_b", "aa_m", "aa_m", "aa_e", "b_b", "b_e", "sil")]
    decoded = FramewiseDecoder(s, min_frames=1).decode(np.eye(s.num_classes)[frames])
    assert [s.units[u.unit] for u in decoded] == ["sil", "aa", "b", "sil"]
    assert [(u.start, u.end) for u in decoded] == [(0, 1), (1, 5), (5, 7), (7, 8)]


def test_frame_error():
    assert frame_error(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 0])) == 0.5
    with pytest.raises(ValueError, match="predictions"):
        frame_error(np.array([1, 2]), np.array([1, 2, 3]))
