"""Reliability measures (avfusion.frontends.reliability, frontend=reliability): computed without references from
the streams themselves, they move the right way as noise or a video degradation rises, are recomputed with the
features a condition changes (and cached with them), and a long recording in pieces gives the frames of one pass."""

import numpy as np
import pytest

from avfusion.configs import configured
from avfusion.errors import ConfigError
from avfusion.evaluation.evaluate import noisy_frames
from avfusion.frames.cache import fit_on_train
from avfusion.frames.data import frames_of, with_video
from avfusion.frames.labelling import FrameLabeller
from avfusion.corpus.labels import get_scheme
from avfusion.frontends.reliability import AudioReliability, VideoReliability
from avfusion.frontends.video import missed_detections
from avfusion.media import VideoError
from avfusion.inference.chunks import for_clip, transformed
from avfusion.noise import NoiseCondition, NoiseMixer
from avfusion.noise.video import DegradedVideo
from conftest import built_in_noises, small_frontend


@pytest.fixture(scope="module")
def measured(small_corpus, tmp_path_factory):
    """The small corpus's front-end with the reliability measures, fitted on train; its test utterances."""
    _, corpus = small_corpus
    frontend = small_frontend(tmp_path_factory.mktemp("reliability"), "frontend=reliability")
    frontend.prepare(list(corpus), progress=False)
    fit_on_train(frontend, corpus)
    utterances = corpus.split("test")
    noise = NoiseMixer(built_in_noises(corpus), frontend.audio.extractor.sample_rate, seed=7)
    return frontend, utterances, frames_of(frontend, utterances, FrameLabeller(get_scheme("phone"))), noise


def column(step, name: str) -> int:
    return step.names.index(name)


def raw_measures(frontend, utterances, modality: str, **conditions) -> np.ndarray:
    """The measure step's output (before its CMVN) over `utterances`, in a condition (`audio_waveform`, `video`)."""
    raw = frontend.raw_frames(utterances, modalities=[modality], **conditions)[modality]
    step = frontend.modalities[modality].steps[0]
    return np.concatenate([step.measure(u.x) for u in raw])


def test_the_audio_measures_fall_as_white_noise_rises(measured):
    frontend, utterances, _, noise = measured
    step = frontend.modalities["audio_reliability"].steps[0]
    means = {}
    for snr in (None, 20, 10, 0, -5):
        condition = NoiseCondition("white", snr) if snr is not None else None
        waveform = (lambda u, w, c=condition: noise(u, w, c)) if condition else None
        means[snr] = raw_measures(frontend, utterances, "audio_reliability", audio_waveform=waveform).mean(axis=0)
    order = [means[s] for s in (None, 20, 10, 0, -5)]
    for name, falls in (("snr", True), ("local_snr", True), ("presence", True), ("floor", False)):
        values = [m[column(step, name)] for m in order]
        assert np.all(np.diff(values) < 0) if falls else np.all(np.diff(values) > 0), (name, values)


def test_the_video_measures_move_with_each_degradation(measured):
    frontend, utterances, _, _ = measured
    step = frontend.modalities["video_reliability"].steps[0]
    clean = raw_measures(frontend, utterances, "video_reliability").mean(axis=0)

    def degraded(name: str, severity: float = 1.0) -> np.ndarray:
        video = DegradedVideo(name, configured(f"video_degradation.{name}"), severity, seed=3)
        return raw_measures(frontend, utterances, "video_reliability", video=video).mean(axis=0)

    assert degraded("blur")[column(step, "sharpness")] < clean[column(step, "sharpness")]
    assert degraded("pixel_noise")[column(step, "sharpness")] > clean[column(step, "sharpness")]
    assert degraded("low_light")[column(step, "brightness")] < clean[column(step, "brightness")]
    assert degraded("frozen_frames")[column(step, "motion")] < clean[column(step, "motion")]
    assert clean[column(step, "interpolated")] == 0 < degraded("face_loss", 0.5)[column(step, "interpolated")]


def test_missed_detections_come_from_the_cache_or_a_clear_error():
    np.testing.assert_array_equal(missed_detections({"n_frames": 4, "n_missed": 2, "missed_frames": [1, 2]}, "v.mp4")[:, 0],
                                  [0, 1, 1, 0])
    assert not missed_detections({"n_frames": 3, "n_missed": 0}, "v.mp4").any()  # cached before: none missed, exact
    with pytest.raises(VideoError, match=r"v.mp4: .* \(2\), not which: extract them again"):
        missed_detections({"n_frames": 3, "n_missed": 2}, "v.mp4")


def test_a_condition_recomputes_the_measures_of_the_stream_it_changes_and_caches_them(measured, tmp_path):
    frontend, utterances, clean, noise = measured
    assert {"audio_reliability", "video_reliability"} <= set(clean.features)
    noisy = noisy_frames(frontend, clean, utterances, NoiseCondition("white", 0), noise, tmp_path)
    assert not np.allclose(noisy.features["audio_reliability"], clean.features["audio_reliability"])
    assert noisy.features["video_reliability"] is clean.features["video_reliability"]
    cached = sorted(p.name for p in (tmp_path / "conditions").iterdir())
    assert len(cached) == 2 and any(n.endswith("-audio_reliability.npy") for n in cached)
    again = noisy_frames(frontend, clean, utterances, NoiseCondition("white", 0), noise, tmp_path)
    assert np.array_equal(again.features["audio_reliability"], noisy.features["audio_reliability"])
    blurred = with_video(frontend, clean, utterances, DegradedVideo("blur", configured("video_degradation.blur"), 1.0, 3))
    assert blurred.features["audio_reliability"] is clean.features["audio_reliability"]
    assert not np.allclose(blurred.features["video_reliability"], clean.features["video_reliability"])


@pytest.mark.parametrize("step", [AudioReliability(n_mels=40, window=31, smooth=5, presence_db=6.0, snr_cap_db=40.0),
                                  VideoReliability(low=10, smooth=9)])
def test_a_long_recording_in_pieces_gives_the_measures_of_one_pass(step):
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(700, 24 if isinstance(step, AudioReliability) else 40)), axis=0).astype(np.float32)
    whole = step.measure(x)
    pieces = transformed([step], x, chunk=97)
    np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-5)


def test_a_window_that_cannot_be_centred_is_refused_by_its_key():
    with pytest.raises(ConfigError, match=r"frontend.measures.audio.window.*odd"):
        AudioReliability(n_mels=40, window=100, smooth=5, presence_db=6.0, snr_cap_db=40.0)
    with pytest.raises(ConfigError, match=r"frontend.measures.0.reads='lips'"):
        configured("frontend", "frontend=reliability", "frontend.measures.0.reads=lips", config="prepare")


def test_the_measures_prediction_computes_in_pieces_equal_the_evaluations(measured):
    """Prediction runs each modality's steps over pieces of the raw features (`inference.chunks`), the measures'
    steps starting from their source's raw features; evaluation transforms whole utterances."""
    frontend, utterances, data, _ = measured
    u = max(range(len(utterances)), key=lambda i: data.lengths[i])
    for name in ("audio_reliability", "video_reliability"):
        raw = frontend.raw_frames([utterances[u]], modalities=[name])[name][0].x  # the source's (+ detections)
        steps = for_clip(frontend.modalities[name].steps, raw, 30)
        np.testing.assert_allclose(transformed(steps, raw, 30), data.features[name][data.utterance(u)], atol=1e-5)
