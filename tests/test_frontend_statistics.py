"""Fitting the front-end from sufficient statistics gathered in parts (avfusion.frontends.statistics): the LDA
scikit-learn fits (Ledoit-Wolf shrinkage included) and the CMVN of one pass, whatever the parts."""

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from avfusion.frames.data import UttFrames
from avfusion.frontends.cmvn import Cmvn
from avfusion.frontends.projection import Lda, Pca
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
    assert not np.allclose(merged.shift, ClassMoments(12, 20).add(x, y).shift)  # other shifts were re-expressed
    for name in ("n", "s1", "s2", "s3", "s4"):
        np.testing.assert_allclose(getattr(merged, name), getattr(one, name), rtol=1e-10, atol=1e-6)


def test_lda_directions_from_moments_summed_in_another_order_keep_their_signs():
    """A direction's sign is arbitrary in the eigenproblem; fixed (its largest entry positive), shards summed in
    another order give the same directions, not some of their negatives."""
    x, y = frames()
    one = lda_scalings(ClassMoments(12, 20).add(x, y), "auto")
    merged = ClassMoments(12, 20)
    for rows in np.array_split(np.random.default_rng(1).permutation(len(x)), 7):
        merged += ClassMoments(12, 20).add(x[rows], y[rows])
    assert np.abs(lda_scalings(merged, "auto") - one).max() < 1e-9 * np.abs(one).max()
    assert (one[np.abs(one).argmax(axis=0), np.arange(20)] > 0).all()


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


def test_a_front_end_fitted_in_batches_of_utterances_is_the_one_fitted_at_once(small_corpus, tmp_path, monkeypatch):
    """frontend.fit_batch_utterances=1: global CMVN bit for bit, the LDAs to rounding (1e-4 of the largest
    projection: trailing LDA directions with near-equal eigenvalues turn with the last bits), a step without
    statistics (PCA) through its own fit; no batch is more than 1 utterance."""
    from avfusion.frames.cache import fit_on_train
    from avfusion.frames.data import frames_of
    from avfusion.frames.labelling import FrameLabeller
    from avfusion.corpus.labels import get_scheme
    from conftest import small_frontend

    _, corpus = small_corpus
    steps = ["frontend.audio.steps.0.scope=global", "frontend.audio.steps.0.variance=true"]

    def built(*overrides):
        frontend = small_frontend(tmp_path, *steps, *overrides)
        frontend.video.steps.append(Pca(n_components=20, max_frames=None))
        frontend.prepare(list(corpus), progress=False)  # the raw features, extracted once into tmp_path
        return frontend

    whole = fit_on_train(built(), corpus)
    batches = []
    real = type(whole).raw_frames
    monkeypatch.setattr(type(whole), "raw_frames", lambda self, utts, *a, **k: batches.append(len(utts)) or real(self, utts, *a, **k))
    parts = fit_on_train(built("frontend.fit_batch_utterances=1"), corpus)
    assert max(batches) == 1 and len(batches) > 2
    a, b = whole.state_dict(), parts.state_dict()
    assert a.keys() == b.keys()
    np.testing.assert_array_equal(b["audio.steps.0.mean"], a["audio.steps.0.mean"])
    np.testing.assert_array_equal(b["audio.steps.0.std"], a["audio.steps.0.std"])
    test = corpus.split("test")
    x, y = (frames_of(f, test, FrameLabeller(get_scheme("phone"))).features for f in (whole, parts))
    for m in ("audio", "video"):
        aligned = y[m] * np.sign((x[m] * y[m]).sum(0))  # each direction's sign
        assert np.abs(aligned - x[m]).max() < 1e-4 * np.abs(x[m]).max()
