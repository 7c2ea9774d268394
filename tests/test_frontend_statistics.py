"""Fitting the front-end from sufficient statistics gathered in parts (avfusion.frontends.statistics): the LDA
scikit-learn fits (Ledoit-Wolf shrinkage included) and the CMVN of one pass, whatever the parts."""

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from avfusion.frames.data import UttFrames
from avfusion.frontends.cmvn import Cmvn
from avfusion.frontends.projection import Lda
from avfusion.frontends.statistics import ClassMoments, Moments, lda_scalings


def frames(n: int = 6000, classes: int = 12, dim: int = 20, seed: int = 0):
    """Correlated frames far from the origin (as MFCCs with c0), class means apart: (x, labels)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = 50.0 + rng.normal(0, 2, (classes, dim))[y] + rng.normal(0, 1, (n, dim)) @ rng.normal(0, 1, (dim, dim))
    return x, y


def same_projection(a: np.ndarray, b: np.ndarray, x: np.ndarray, k: int) -> float:
    """Largest difference of the first k projected dims of x, each direction's sign aligned, relative."""
    pa, pb = (x @ a)[:, :k], (x @ b)[:, :k]
    return float(np.abs(pa - pb * np.sign((pa * pb).sum(0))).max() / np.abs(pa).max())


@pytest.mark.parametrize("shrinkage", [None, 0.3, "auto"])
def test_the_lda_from_moments_is_scikit_learns(shrinkage):
    x, y = frames()
    reference = LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage).fit(x, y).scalings_
    assert same_projection(reference, lda_scalings(ClassMoments(12, 20).add(x, y), shrinkage), x, 8) < 1e-9


def test_moments_merged_from_parts_about_other_shifts_are_one_pass():
    x, y = frames()
    parts = np.array_split(np.arange(len(x)), 3)
    merged = ClassMoments(12, 20)
    for rows in parts:  # each part about its own first batch's mean
        merged = merged + ClassMoments(12, 20).add(x[rows], y[rows])
    one = ClassMoments(12, 20).add(x, y).about(merged.shift)
    for name in ("n", "s1", "s2", "s3", "s4"):
        np.testing.assert_allclose(getattr(merged, name), getattr(one, name), rtol=1e-10, atol=1e-6)


def utterances(x: np.ndarray, y: np.ndarray, n: int = 40) -> list[UttFrames]:
    return [UttFrames(f"u{i}", "s", x[rows], y[rows]) for i, rows in enumerate(np.array_split(np.arange(len(x)), n))]


def test_lda_fitted_from_moments_in_parts_is_the_fitted_step_rare_classes_left_out_alike():
    x, y = frames()
    y[0] = 12  # a class with one frame: no covariance, left out by both
    utts = utterances(x, y)
    fitted = Lda(n_components=8, max_frames=None).fit(utts)
    moments = ClassMoments(13, 20)
    for batch in (utts[:15], utts[15:]):
        part = ClassMoments(13, 20)
        for u in batch:
            part.add(u.x, u.labels)
        moments = moments + part
    from_moments = Lda(n_components=8, max_frames=None).fit_moments(moments)
    assert same_projection(fitted.scalings_, from_moments.scalings_, x, 8) < 1e-9
    with pytest.raises(ValueError, match="LDA to 30 dims needs more than 30 classes"):
        Lda(n_components=30).fit_moments(moments)


def test_global_cmvn_from_moments_is_its_fit():
    x, y = frames()
    utts = utterances(x.astype(np.float32), y)
    fitted = Cmvn("global", variance=True).fit(utts)
    moments = Moments()
    for u in utts:
        moments.add(u.x)
    from_moments = Cmvn("global", variance=True).fit_moments(moments)
    np.testing.assert_array_equal(from_moments.mean_, fitted.mean_)
    np.testing.assert_array_equal(from_moments.std_, fitted.std_)
    np.testing.assert_allclose(fitted.mean_, x.astype(np.float32).astype(np.float64).mean(0), rtol=1e-12)
