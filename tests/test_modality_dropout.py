"""Modality dropout (training.modality_dropout) and streams scored as missing (evaluation.missing_streams): one
stream's hidden layer zeroed per training item, never both; a model scored with a stream absent as it was
trained for; a model without that stream scored as it is."""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from avfusion import api
from avfusion.configs import compose_config, configured
from avfusion.corpus.labels import get_scheme
from avfusion.errors import ConfigError
from avfusion.frames.data import FrameData
from avfusion.training.stages import build_model
from conftest import tiny_overrides


def untrained(fusion: str = "concat", p: float | None = None, dims=None):
    """An untrained model of conf/fusion/<fusion>.yaml on 8-dim audio and 6-dim video, 39 phone classes."""
    cfg = compose_config("train", [f"fusion={fusion}", "encoder.widths.audio=[16,8]", "encoder.widths.video=[16,8]",
                                   "encoder.widths.audio_video=[16,8]"])
    torch.manual_seed(0)
    model = build_model(instantiate(cfg.fusion, _convert_="all"), instantiate(cfg.encoder, _convert_="all"),
                        dims or {"audio": 8, "video": 6}, get_scheme("phone"))
    model.modality_dropout = p or 0.0
    return model


def test_dropout_zeroes_one_stream_per_item_never_both_and_only_in_training():
    model = untrained(p=1.0)
    hidden = {"audio": torch.ones(2000, 8), "video": torch.ones(2000, 8)}
    out = model.dropped(hidden, None)
    zeroed = np.stack([(out[n] == 0).all(dim=1).numpy() for n in ("audio", "video")], axis=1)
    assert (zeroed.sum(axis=1) == 1).all() and 0.45 < zeroed[:, 0].mean() < 0.55  # one stream each, either alike
    model.modality_dropout = 0.3
    sequences = model.dropped({n: torch.ones(1000, 5, 8) for n in ("audio", "video")}, torch.ones(1000, 5, dtype=torch.bool))
    per_item = np.stack([(sequences[n] == 0).all(dim=(1, 2)).numpy() for n in ("audio", "video")], axis=1)
    assert 0.25 < per_item.any(axis=1).mean() < 0.35 and not per_item.all(axis=1).any()
    features = {"audio": torch.randn(50, 8), "video": torch.randn(50, 6)}
    model.eval()
    torch.testing.assert_close(model(features), model(features))  # eval: no dropout, the same logits twice
    model.train()
    model.modality_dropout = 0.0
    torch.manual_seed(1)
    a = model(features)
    model.modality_dropout = 1.0
    torch.manual_seed(1)
    assert not torch.allclose(a, model(features))


def frames(n: int = 300) -> FrameData:
    rng = np.random.default_rng(0)
    return FrameData({"audio": rng.normal(size=(n, 8)).astype(np.float32), "video": rng.normal(size=(n, 6)).astype(np.float32)},
                     rng.integers(0, 39, n), np.array([0, n]), ["u"], ["s"])


def test_a_missing_stream_is_scored_with_its_hidden_layer_zeros():
    model = untrained().eval()
    data = frames()
    with torch.no_grad():
        hidden = model.hidden({m: torch.from_numpy(x) for m, x in data.features.items()})
        expected = torch.softmax(model.head({"audio": hidden["audio"], "video": torch.zeros_like(hidden["video"])}), -1)
    np.testing.assert_allclose(model.posteriors(data, missing=frozenset({"video"})), expected.numpy(), atol=1e-6)
    assert not np.allclose(model.posteriors(data), expected.numpy(), atol=1e-3)
    with pytest.raises(ValueError, match=r"no encoder \['lips'\] to leave out"):
        model.posteriors(data, missing=frozenset({"lips"}))


def test_a_model_that_mixes_the_streams_in_one_encoder_cannot_leave_one_out():
    evaluator = configured("evaluation", "evaluation.missing_streams=[video]")
    joint = untrained("feature_concat").eval()
    data = frames()
    with pytest.raises(ConfigError, match=r"feature_concat reads video through its encoders \['audio_video'\]"):
        evaluator.model_posteriors({"feature_concat": joint}, data, data, {}, missing="video")


def test_a_bad_dropout_probability_is_refused_with_the_key():
    with pytest.raises(ConfigError, match=r"training.modality_dropout=1.5"):
        configured("training", "training.modality_dropout=1.5")


def test_a_run_trained_with_modality_dropout_is_scored_without_each_stream(tiny_root):
    overrides = [*tiny_overrides(tiny_root), "evaluation.noises=[]", "evaluation.missing_streams=[audio,video]",
                 "trainer.max_epochs=1"]
    report = api.train(compose_config("train", [*overrides, "fusion=concat", "training.modality_dropout=0.5"]),
                       tiny_root / "modality_dropout_concat")
    rows = {r["condition"]: r for r in report["test"]}
    assert list(rows) == ["clean", "no audio", "no video"] and rows["no video"]["missing"] == "video"
    assert rows["no video"]["by_utterance"] != rows["clean"]["by_utterance"]
    audio_only = api.train(compose_config("train", [*overrides, "fusion=audio_only"]), tiny_root / "modality_dropout_audio")
    rows = {r["condition"]: r for r in audio_only["test"]}
    assert rows["no video"]["by_utterance"] == rows["clean"]["by_utterance"]  # it reads no video: as it is
