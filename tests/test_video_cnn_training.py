"""The CNN video encoder end to end (experiment=video_cnn) on the 20-utterance corpus: the ROI stream in the
prepared frames, pre-training alone then joint fine-tuning (bilinear), a frozen head on outputs computed once
(concat), a saved run that gives the evaluation's numbers, and avfusion-predict on a recording."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from avfusion import api
from avfusion.errors import ConfigError
from avfusion.frames.data import frames_of
from avfusion.frames.labelling import FrameLabeller
from avfusion.training import stages
from avfusion.training.stages import build_model
from conftest import tiny_overrides

# a CNN small enough for seconds of CPU: 24x24 ROIs cropped to 20, two ResNet stages
CNN = ["experiment=video_cnn", "frontend.streams.0.extractor.roi_size=24", "encoder.modules.video.crop=20",
       "encoder.modules.video.stem_channels=4", "encoder.modules.video.widths=[8,16]", "encoder.modules.video.blocks=[1,1]",
       "encoder.modules.video.temporal_size=16", "encoder.modules.video.output_dim=32", "evaluation.noises=[]"]


def compose_train(root: Path, *overrides, cnn=CNN):
    from avfusion.configs import compose_config

    return compose_config("train", [*tiny_overrides(root), *cnn, f"training.encoder_cache_dir={root}/cnn_encoders",
                                    *overrides])


@pytest.fixture(scope="module")
def bilinear_run(tiny_root):
    """Both encoders pre-trained alone (stage-cached), then trained jointly with the bilinear head."""
    cfg = compose_train(tiny_root, "fusion=bilinear")
    run_dir = tiny_root / "cnn_bilinear"
    return cfg, run_dir, api.train(cfg, run_dir)


def nll(posteriors: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(posteriors[np.arange(len(labels)), labels], 1e-12))))


def test_the_prepared_frames_carry_the_cached_rois_at_the_video_rate(bilinear_run):
    cfg, _, _ = bilinear_run
    frontend, frames, _ = api.prepare(cfg)
    corpus, _ = api.load_corpus(cfg)
    stream = frames["train"].streams["video_roi"]
    store = frontend.store(frontend.streams[0])
    assert stream.frames.dtype == np.uint8 and stream.frames.shape[1:] == (24, 24)
    for u, utt in enumerate(corpus.split("train")):
        rois, meta = store.read(utt)
        np.testing.assert_array_equal(stream.frames[stream.utterance(u)], rois)
        assert stream.fps[u] == meta["fps"] == 25.0
        # the video covers the label frames: 25 video frames a second for 100 label frames
        assert abs(len(rois) / 25.0 - frames["train"].lengths[u] / 100.0) <= 0.12


def test_the_cnn_learns_and_the_saved_run_gives_the_reports_numbers(bilinear_run):
    cfg, run_dir, report = bilinear_run
    run = api.load_run(run_dir)
    corpus, _ = api.load_corpus(cfg)
    test = frames_of(run.frontend, corpus.split("test"), FrameLabeller(run.scheme))  # streams through the run's front-end
    post = run.model.posteriors(test)
    clean = report["test"][0]
    assert clean["condition"] == "clean"
    assert np.mean(post.argmax(1) != test.labels) == pytest.approx(clean["frame_error"], abs=1e-9)
    # trained against untrained (the same architecture): the dev loss fell
    _, frames, scheme = api.prepare(cfg)
    torch.manual_seed(0)
    untrained = build_model(instantiate(cfg.fusion, _convert_="all"), instantiate(cfg.encoder, _convert_="all"),
                            frames["train"].input_dims, scheme)
    dev = frames["dev"]
    assert nll(run.model.posteriors(dev), dev.labels) < nll(untrained.posteriors(dev), dev.labels) - 0.1
    # joint fine-tuning moved the CNN away from its pre-trained weights
    pretrained = torch.load(run_dir / "stages" / "pretrain_video" / "best.pt", weights_only=True)
    key = "encoders.video.stem.0.weight"
    assert not torch.equal(pretrained[key], run.model.state_dict()[key])


def test_a_frozen_head_trains_on_cnn_outputs_computed_once(tiny_root, bilinear_run, monkeypatch):
    calls = []
    real = stages.hidden_frames
    monkeypatch.setattr(stages, "hidden_frames", lambda encoders, data: calls.append(sorted(encoders)) or real(encoders, data))
    cfg = compose_train(tiny_root, "fusion=concat")
    run_dir = tiny_root / "cnn_concat"
    api.train(cfg, run_dir)
    assert calls == [["audio", "video"], ["audio", "video"]]  # train and dev, once each
    # the encoders came from the bilinear run's pre-training (stage cache) and stayed as it left them
    assert (run_dir / "stages" / "pretrain_video" / "from_cache.txt").is_file()
    pretrained = torch.load(run_dir / "stages" / "pretrain_video" / "best.pt", weights_only=True)
    model = api.load_run(run_dir).model.state_dict()
    for key, value in pretrained.items():
        if key.startswith("encoders."):
            torch.testing.assert_close(model[key], value)
    settings = json.loads((run_dir / "stages" / "fusion" / "settings.json").read_text())
    assert settings["fusion._target_"].endswith("ConcatFusion")


def test_predict_on_a_recording_gives_the_evaluation_paths_posteriors(bilinear_run):
    cfg, run_dir, _ = bilinear_run
    run = api.load_run(run_dir)
    corpus, _ = api.load_corpus(cfg)
    u = corpus.split("test")[0]
    expected = run.model.posteriors(frames_of(run.frontend, [u], FrameLabeller(run.scheme)))
    prediction = api.predict(run, u.video, u.audio, chunk_seconds=0.3)  # a whole-sequence model: one piece
    np.testing.assert_allclose(prediction.posteriors, expected, atol=1e-5)


def test_the_cnn_without_the_roi_stream_is_refused_before_any_work(tiny_root):
    cfg = compose_train(tiny_root, "fusion=video_only", "encoder=video_cnn", "data.root=/nonexistent", cnn=[])
    with pytest.raises(ConfigError, match=r"encoder 'video' needs features \['video_roi'\].*frontend=mouth_roi"):
        api.train(cfg, tiny_root / "never")


@pytest.mark.parametrize("fusion", ["concat_joint", "fisher", "netvlad"])
def test_the_other_heads_train_on_the_cnn(tiny_root, bilinear_run, fusion):
    """Every head takes the CNN as its video encoder: joint fine-tuning through it (concat_joint), and the
    pooled heads on its outputs (fisher with a GMM fitted on them, netvlad); the pre-training is the cached one."""
    small = {"concat_joint": [], "fisher": ["fusion.pca_dim=8", "fusion.n_components=2"],
             "netvlad": ["fusion.pca_dim=8", "fusion.n_clusters=2"]}[fusion]
    cfg = compose_train(tiny_root, f"fusion={fusion}", *small)
    run_dir = tiny_root / f"cnn_{fusion}"
    report = api.train(cfg, run_dir)
    assert (run_dir / "stages" / "pretrain_video" / "from_cache.txt").is_file()
    run = api.load_run(run_dir)
    assert type(run.model.encoders["video"]).__name__ == "VideoCnnEncoder"
    corpus, _ = api.load_corpus(cfg)
    test = frames_of(run.frontend, corpus.split("test"), FrameLabeller(run.scheme))
    post = run.model.posteriors(test)
    np.testing.assert_allclose(post.sum(1), 1.0, atol=1e-5)
    assert np.mean(post.argmax(1) != test.labels) == pytest.approx(report["test"][0]["frame_error"], abs=1e-9)


def test_a_video_degradation_reaches_the_mouth_pixel_stream(bilinear_run, tmp_path):
    """The ROI stream of a degraded condition is cut from the degraded frames and cached beside the DCT video."""
    from avfusion.configs import configured
    from avfusion.evaluation.conditions import degraded_frames
    from avfusion.noise.video import DegradedVideo

    cfg, run_dir, _ = bilinear_run
    run = api.load_run(run_dir)
    corpus, _ = api.load_corpus(cfg)
    utterances = corpus.split("test")[:2]
    clean = frames_of(run.frontend, utterances, FrameLabeller(run.scheme))
    dark = DegradedVideo("low_light", configured("video_degradation.low_light"), 1.0, seed=0)
    degraded = degraded_frames(run.frontend, clean, utterances, dark, tmp_path)
    rois, clean_rois = degraded.streams["video_roi"].frames, clean.streams["video_roi"].frames
    assert rois.shape == clean_rois.shape and rois.mean() < 0.2 * clean_rois.mean()
    np.testing.assert_array_equal(degraded.streams["video_roi"].offsets, clean.streams["video_roi"].offsets)
    assert sorted(p.name.split("-")[2] for p in (tmp_path / "conditions").glob("*.npy")) == ["video", "video_roi"]
    np.testing.assert_array_equal(degraded_frames(run.frontend, clean, utterances, dark, tmp_path).streams["video_roi"].frames,
                                  rois)
