"""Video degradations as evaluation conditions (avfusion.noise.video, evaluation.video_degradations / pairs):
what each does to the frames, reproducibly per utterance; the degraded features cached like noisy audio; the
conditions in the evaluation, a model reading only the other stream unaffected by them."""

import dataclasses

import numpy as np
import pytest

from avfusion import api
from avfusion.configs import compose_config, configured
from avfusion.corpus.labels import get_scheme
from avfusion.decoding.framewise import FramewiseDecoder
from avfusion.errors import ConfigError
from avfusion.evaluation.conditions import degraded_frames
from avfusion.frames.data import with_video
from avfusion.noise.video import (Blur, DegradedVideo, FaceLoss, FrozenFrames, LowLight, Occlusion, PixelNoise,
                                  VideoDegradation, burst_mask)
from conftest import tiny_overrides

SEVERITY = 1.0


@pytest.fixture(scope="module")
def test_split(small_test_split):
    return small_test_split


def shipped(name: str):
    """conf/video_degradation/<name>.yaml's degradation."""
    return configured(f"video_degradation.{name}")


def frames(n: int = 50, size: int = 32) -> np.ndarray:
    """(n, size, size, 3) uint8 frames with texture and a different picture each frame."""
    rng = np.random.default_rng(0)
    return rng.integers(40, 216, (n, size, size, 3), dtype=np.uint8)


def test_bursts_cover_about_the_share_asked_in_runs_of_the_burst_length():
    rng = np.random.default_rng(0)
    for share in (0.2, 0.5, 1.0):
        mask = burst_mask(1000, share, 12, rng)
        assert share <= mask.mean() < share + 12 / 1000
    mask = burst_mask(1000, 0.3, 12, np.random.default_rng(1))
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0])))[::2]
    assert runs.min() >= 12 or mask[:12].all() or mask[-12:].all()  # bursts merge; only the edges cut one short


def test_each_degradation_does_what_it_says_at_its_severity():
    x = frames()
    rng = lambda: np.random.default_rng(3)  # noqa: E731
    dark = LowLight(max_darkening=0.9).pixels(x, 0.5, rng())
    np.testing.assert_array_equal(dark, np.clip((x * 0.55).round(), 0, 255).astype(np.uint8))
    noisy = PixelNoise(max_std=40.0).pixels(x, 0.5, rng()).astype(float)
    assert np.std(noisy - x) == pytest.approx(20.0, rel=0.05)  # clipping at 0/255 is out of reach of 40-216
    blurred = Blur(max_sigma=0.05).pixels(x, 1.0, rng()).astype(float)
    assert np.abs(np.diff(blurred, axis=2)).mean() < 0.5 * np.abs(np.diff(x.astype(float), axis=2)).mean()
    frozen = FrozenFrames(burst_frames=5).pixels(x, 0.4, rng())
    repeats = np.array([np.array_equal(frozen[i], frozen[i - 1]) for i in range(1, len(x))])
    assert 0.3 <= repeats.mean() <= 0.5 and all(any(np.array_equal(f, g) for g in x) for f in frozen)
    lost = FaceLoss(burst_frames=12).lost(50, 1.0, rng())
    assert lost.sum() == 49  # every frame lost but one: a face never found would be no video at all


def test_occlusion_paints_the_lower_part_of_the_mouth_box_in_its_bursts_only():
    x = frames(n=40)
    boxes = np.tile([16.0, 16.0, 16.0, 0.0], (40, 1))  # a 16-pixel mouth box in the middle
    out = Occlusion(burst_frames=12, cover=0.5).occlude(x, boxes, 0.5, np.random.default_rng(0))
    changed = np.array([not np.array_equal(a, b) for a, b in zip(out, x)])
    assert 0.5 <= changed.mean() < 0.5 + 12 / 40
    i = int(np.flatnonzero(changed)[0])
    np.testing.assert_array_equal(out[i, 17:23, 10:22], np.broadcast_to(np.round(x[i].mean(axis=(0, 1))), (6, 12, 3)))
    np.testing.assert_array_equal(out[i, :14], x[i, :14])  # above the box's lower half: untouched


def test_an_utterances_degradation_is_drawn_the_same_whatever_else_is_degraded():
    occlusion = DegradedVideo("occlusion", shipped("occlusion"), 0.5, seed=1234)
    x, boxes = frames(), np.tile([16.0, 16.0, 16.0, 0.0], (50, 1))
    a = occlusion.occlude("utt-1", x, boxes)
    occlusion.occlude("utt-2", x, boxes)
    np.testing.assert_array_equal(occlusion.occlude("utt-1", x, boxes), a)
    stronger = DegradedVideo("occlusion", shipped("occlusion"), 1.0, seed=1234).occlude("utt-1", x, boxes)
    assert not np.array_equal(stronger, a)


def test_the_shipped_degradations_validate_and_bad_settings_are_refused_with_their_key():
    for name in DEGRADATIONS:
        shipped(name).validate(f"video_degradation.{name}")
    with pytest.raises(ConfigError, match=r"video_degradation.blur: \{'max_sigma': -1.0\} must be numbers >= 0"):
        Blur(max_sigma=-1.0).validate("video_degradation.blur")
    with pytest.raises(ConfigError, match="max_darkening=1.5: at most 1"):
        LowLight(max_darkening=1.5).validate("video_degradation.low_light")


def test_no_degradation_gives_the_cached_features_and_a_degraded_condition_is_cached(test_split, tmp_path, monkeypatch):
    frontend, utterances, clean, _ = test_split
    unchanged = with_video(frontend, clean, utterances, DegradedVideo("none", VideoDegradation(), 1.0, seed=0))
    np.testing.assert_array_equal(unchanged.features["video"], clean.features["video"])  # the extraction path is one
    video = DegradedVideo("low_light", shipped("low_light"), SEVERITY, seed=7)
    expected = with_video(frontend, clean, utterances, video)
    first = degraded_frames(frontend, clean, utterances, video, tmp_path)
    np.testing.assert_array_equal(first.features["video"], expected.features["video"])
    assert not np.allclose(first.features["video"], clean.features["video"])
    np.testing.assert_array_equal(first.features["audio"], clean.features["audio"])  # only the video degraded
    assert len(list((tmp_path / "conditions").glob("low_light-1-video-*.npy"))) == 1
    monkeypatch.setattr(type(frontend), "transform", lambda *a, **k: pytest.fail("condition computed again"))
    np.testing.assert_array_equal(degraded_frames(frontend, clean, utterances, video, tmp_path).features["video"],
                                  expected.features["video"])


class StreamProjection:
    """A stand-in model reading one stream: class scores from a fixed random projection of its features."""

    def __init__(self, modality: str, n_in: int, n_classes: int) -> None:
        self.modalities = [modality]
        self.weights = np.random.default_rng(0).standard_normal((n_in, n_classes))

    def posteriors(self, data, batch_size: int = 8192, kept=None) -> np.ndarray:
        scores = np.asarray(data.features[self.modalities[0]]) @ self.weights
        return np.exp(scores - scores.max(1, keepdims=True))


DEGRADATIONS = ("occlusion", "blur", "pixel_noise", "low_light", "frozen_frames", "face_loss")


def evaluator(*overrides):
    """conf/evaluation with white 0 dB and `overrides`, holding the shipped degradations (as api.evaluator_of)."""
    return dataclasses.replace(configured("evaluation", "evaluation.noises=[white]", "evaluation.snrs_db=[0]", *overrides),
                               degradations={name: shipped(name) for name in DEGRADATIONS})


def test_a_runs_evaluation_holds_every_shipped_degradation():
    degradations = api.evaluator_of(compose_config("train", [])).degradations
    assert sorted(degradations) == sorted(DEGRADATIONS)
    assert degradations["occlusion"] == shipped("occlusion") and isinstance(degradations["occlusion"], Occlusion)


def test_video_conditions_and_pairs_are_evaluated_and_each_stream_reads_only_its_own(test_split, tmp_path):
    frontend, utterances, clean, noise = test_split
    scheme = get_scheme("phone")
    models = {m: StreamProjection(m, clean.features[m].shape[1], scheme.num_classes) for m in ("audio", "video")}
    ev = evaluator("evaluation.video_degradations=[occlusion,low_light]", "evaluation.video_severities=[1.0]",
                   "evaluation.pairs=[[white,0,low_light,1.0]]")
    decoders = {m: FramewiseDecoder(scheme, 2) for m in models}
    rows = ev.evaluate(models, frontend, utterances, scheme, decoders, noise=noise, cache_dir=tmp_path)
    audio, video = ({r["condition"]: r for r in rows[m]} for m in ("audio", "video"))
    assert list(audio) == ["clean", "white 0 dB", "occlusion 1", "low_light 1", "white 0 dB + low_light 1"]
    assert audio["white 0 dB + low_light 1"]["video"] == "low_light" and audio["low_light 1"]["video_severity"] == 1.0
    same = lambda a, b: a["by_utterance"] == b["by_utterance"]  # noqa: E731  every utterance's counts
    assert same(audio["low_light 1"], audio["clean"]) and same(audio["white 0 dB + low_light 1"], audio["white 0 dB"])
    assert same(video["white 0 dB"], video["clean"]) and same(video["white 0 dB + low_light 1"], video["low_light 1"])
    assert not same(video["low_light 1"], video["clean"])


@pytest.mark.parametrize("override, message", [
    ("evaluation.video_degradations=[smoke]", r"unknown video degradation 'smoke'; the degradations are \['blur', "),
    ("evaluation.video_severities=[0]", r"evaluation.video_severities"),
    ("evaluation.pairs=[[white,0,blur]]", r"evaluation.pairs: \['white', 0, 'blur'\] is not \[noise, snr_db, degradation"),
])
def test_a_bad_video_condition_is_a_one_line_error_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        evaluator(override).check(api.noise_sources(compose_config("train", [])))


def test_video_degradations_without_a_video_stream_are_refused(test_split, tmp_path):
    frontend, utterances, clean, _ = test_split
    audio_only = type(clean)({"audio": clean.features["audio"]}, clean.labels, clean.offsets, clean.ids, clean.speakers, {})
    video = DegradedVideo("blur", shipped("blur"), SEVERITY, seed=0)
    with pytest.raises(ConfigError, match="degrades the video, but the front-end reads none"):
        degraded_frames(frontend, audio_only, utterances, video, tmp_path)


def test_a_run_is_evaluated_in_a_video_condition_and_its_report_says_what_it_was(tiny_root):
    cfg = compose_config("train", [*tiny_overrides(tiny_root), "fusion=video_only", "trainer.max_epochs=1",
                                   "evaluation.noises=[]", "evaluation.video_degradations=[pixel_noise]",
                                   "evaluation.video_severities=[1.0]"])
    report = api.train(cfg, tiny_root / "video_degradation_run")
    clean, noisy = report["test"]
    assert (clean["condition"], noisy["condition"], noisy["video"]) == ("clean", "pixel_noise 1", "pixel_noise")
    assert noisy["by_utterance"]["frame_errors"] != clean["by_utterance"]["frame_errors"]
    assert report["evaluation"]["video_degradations"] == {"pixel_noise": {"class": "PixelNoise", "max_std": 40.0}}
