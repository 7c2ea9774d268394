"""Front-end building blocks on hand-made inputs."""

import cv2
import numpy as np
import pytest

from avfusion.configs import configured
from avfusion.frames.clock import num_frames
from avfusion.frontends.cmvn import Cmvn
from avfusion.frontends.context import splice
from avfusion.frames.data import UttFrames
from avfusion.frontends.projection import Lda
from avfusion.frontends.video import crop_roi, interpolate_boxes, to_frame_rate, zigzag_indices
from avfusion.frontends.detectors import MouthBox


def test_splice_orders_neighbours_and_repeats_edges():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    s = splice(x, 1)
    assert s.shape == (5, 6)
    np.testing.assert_array_equal(s[0], [0, 1, 0, 1, 2, 3])
    np.testing.assert_array_equal(s[2], [2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(s[4], [6, 7, 8, 9, 8, 9])
    assert splice(np.zeros((7, 40)), 4).shape == (7, 360)


def _speech_like(seconds=1.0, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.normal(size=t.size)).astype(np.float32)


def test_mfcc_frames_and_gain_only_moves_c0():
    mfcc = configured("frontend.audio.extractor")
    y = _speech_like(1.234)
    a = mfcc.from_waveform(y)
    assert a.shape == (num_frames(len(y) / 16000), 24)
    b = mfcc.from_waveform(0.5 * y)
    # log-mel energies shift by log(0.25) in every band: only the 0th cepstral coefficient changes
    np.testing.assert_allclose(b[:, 1:], a[:, 1:], atol=1e-3)
    assert np.allclose(b[:, 0] - a[:, 0], np.log(0.25) * np.sqrt(40), atol=1e-2)


def test_mfcc_resamples_other_rates(tmp_path):
    import librosa
    import soundfile

    from avfusion.corpus.types import Utterance

    y = _speech_like(1.0)
    y48 = librosa.resample(y, orig_sr=16000, target_sr=48000)
    soundfile.write(tmp_path / "a48.wav", y48, 48000, subtype="FLOAT")
    utt = Utterance("u", "s", "train", tmp_path / "a48.wav", None, None)
    from48, _ = configured("frontend.audio.extractor").extract(utt)
    direct = configured("frontend.audio.extractor").from_waveform(y)
    assert from48.shape == direct.shape
    assert np.corrcoef(from48[5:-5].ravel(), direct[5:-5].ravel())[0, 1] > 0.99


def _utts(arrays, speakers, labels=None):
    return [UttFrames(f"u{i}", s, a, None if labels is None else labels[i]) for i, (a, s) in enumerate(zip(arrays, speakers))]


def test_cmvn_scopes():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(m, s, (50, 3)).astype(np.float32) for m, s in ((1, 2), (5, 1), (-3, 4))]
    out = Cmvn("utterance", variance=True).transform(_utts(arrays, ["a", "a", "b"]))
    for u in out:
        np.testing.assert_allclose(u.x.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(u.x.std(0), 1, atol=1e-3)
    out = Cmvn("speaker", variance=False).transform(_utts(arrays, ["a", "a", "b"]))
    np.testing.assert_allclose(np.concatenate([out[0].x, out[1].x]).mean(0), 0, atol=1e-5)
    assert abs(out[0].x.mean()) > 1  # not normalised utterance by utterance
    train = _utts(arrays[:2], ["a", "a"])
    g = Cmvn("global", variance=False).fit(train)
    np.testing.assert_allclose(g.mean_, np.concatenate(arrays[:2]).mean(0), rtol=1e-5)
    with pytest.raises(ValueError, match="scope"):
        Cmvn("corpus", variance=False)
    with pytest.raises(RuntimeError, match="before fit"):
        Cmvn("global", variance=False).transform(train)


def test_lda_dims_and_too_few_classes():
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 5, 200) for _ in range(3)]
    arrays = [(rng.normal(size=(200, 8)) + y[:, None]).astype(np.float32) for y in labels]
    utts = _utts(arrays, ["a", "b", "c"], labels)
    out = Lda(n_components=3).fit(utts).transform(utts)
    assert out[0].x.shape == (200, 3) and out[0].x.dtype == np.float32
    with pytest.raises(ValueError, match="needs more than 6 classes"):
        Lda(n_components=6).fit(utts)


def test_projections_kept_as_arrays_equal_sklearns_transforms():
    """LDA and PCA keep only arrays (saved as .npz, no pickled estimator) and project exactly as sklearn."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from avfusion.frontends.projection import Pca

    rng = np.random.default_rng(1)
    labels = [rng.integers(0, 6, 300) for _ in range(2)]
    arrays = [(rng.normal(size=(300, 10)) + y[:, None] * rng.normal(size=10)).astype(np.float32) for y in labels]
    utts = _utts(arrays, ["a", "b"], labels)
    x, y = np.concatenate(arrays), np.concatenate(labels)
    lda = Lda(n_components=4).fit(utts)
    reference = LinearDiscriminantAnalysis(n_components=4, solver="eigen", shrinkage="auto").fit(x, y)
    np.testing.assert_array_equal(lda.transform(utts)[1].x, reference.transform(arrays[1]).astype(np.float32))
    pca = Pca(n_components=3).fit(utts)
    reference = PCA(n_components=3, random_state=0).fit(x)
    np.testing.assert_array_equal(pca.transform(utts)[0].x, reference.transform(arrays[0]).astype(np.float32))
    # a projection rebuilt from its arrays alone transforms identically
    again = Lda(n_components=4)
    again.load_state_dict(lda.state_dict())
    np.testing.assert_array_equal(again.transform(utts)[0].x, lda.transform(utts)[0].x)
    with pytest.raises(ValueError, match="lacks"):
        Pca(n_components=3).load_state_dict({})


def test_zigzag_order_is_jpeg():
    # (0,0) (0,1) (1,0) (2,0) (1,1) (0,2) (0,3) (1,2) (2,1) (3,0)
    np.testing.assert_array_equal(zigzag_indices(4)[:10], [0, 1, 4, 8, 5, 2, 3, 6, 9, 12])
    assert sorted(zigzag_indices(8)) == list(range(64))


def test_rate_conversion_to_100_fps():
    x = np.arange(5, dtype=np.float32)[:, None]  # video frames at 25 fps: values 0..4
    y = to_frame_rate(x, fps=25.0, n_frames=21)
    np.testing.assert_allclose(y[:17, 0], np.arange(17) / 4)  # 100 fps: four steps per video frame
    np.testing.assert_allclose(y[17:, 0], 4.0)  # held after the last video frame


def test_box_interpolation_counts_misses():
    boxes = [None, MouthBox(10, 10, 20), None, MouthBox(20, 30, 40), None]
    filled, missed = interpolate_boxes(boxes)
    assert missed == 3
    np.testing.assert_allclose(filled[:, 0], [10, 10, 15, 20, 20])
    np.testing.assert_allclose(filled[:, 2], [20, 20, 30, 40, 40])
    with pytest.raises(ValueError):
        interpolate_boxes([None, None])


def test_crop_roi_centres_scales_and_levels():
    img = np.zeros((200, 300), np.uint8)
    # a bar 60 px long through (150, 100), tilted by 20 degrees (lower on the right)
    theta = np.deg2rad(20)
    p0 = (int(150 - 30 * np.cos(theta)), int(100 - 30 * np.sin(theta)))
    p1 = (int(150 + 30 * np.cos(theta)), int(100 + 30 * np.sin(theta)))
    cv2.line(img, p0, p1, 255, 3)
    roi = crop_roi(img, np.array([150, 100, 80, 20.0]), 64)
    rows = np.nonzero(roi.max(axis=1) > 128)[0]
    cols = np.nonzero(roi.max(axis=0) > 128)[0]
    assert rows.max() - rows.min() <= 4  # levelled: the bar is horizontal
    assert abs((rows.min() + rows.max()) / 2 - 32) <= 2  # centred
    assert abs((cols.max() - cols.min()) - 60 * 64 / 80) <= 4  # scaled by 64 / 80
