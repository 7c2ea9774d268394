"""Reliability-weighted heads (fusion=stream_weighted, fusion=gated_concat) over the reliability measures
(frontend=reliability): what they compute, that they refuse a front-end without the measures, that the head learns
on noisy copies over clean-trained encoders (train_noise.head_only), that the audio weight falls as noise rises,
and that prediction on a recording in pieces gives the evaluation's posteriors."""

import json

import numpy as np
import pytest
import torch

from avfusion import api
from avfusion.configs import compose_config, configured
from avfusion.corpus.labels import get_scheme
from avfusion.errors import ConfigError
from avfusion.frames.data import frames_of, with_audio
from avfusion.frames.labelling import FrameLabeller
from avfusion.inference.outputs import write_prediction
from avfusion.models.fusion.single import SingleEncoderSoftmax
from avfusion.noise import NoiseCondition, NoiseMixer
from avfusion.training.module import FusionModule
from avfusion.models.encoders import PassThrough
from conftest import built_in_noises, tiny_overrides

DIMS = {"audio": 6, "video": 5, "audio_reliability": 4, "video_reliability": 4}


def built(name: str, **values):
    scheme = get_scheme("phone")
    head = configured("fusion", f"fusion={name}", **values).build(DIMS, scheme)
    torch.manual_seed(0)
    unimodal = {e: SingleEncoderSoftmax(e).build(DIMS, scheme) for e in ("audio", "video")}
    head.warm_start(unimodal)
    hidden = {n: torch.randn(7, d) for n, d in DIMS.items()}
    return head, unimodal, hidden, scheme


def test_stream_weighting_starts_as_the_even_product_of_the_unimodal_posteriors_and_only_its_weigher_learns():
    head, unimodal, hidden, _ = built("stream_weighted")
    expected = 0.5 * torch.log_softmax(unimodal["audio"](hidden), -1) + 0.5 * torch.log_softmax(unimodal["video"](hidden), -1)
    torch.testing.assert_close(head(hidden), expected)
    torch.testing.assert_close(head.stream_weights(hidden), torch.full((7, 1), 0.5))
    learned = {n for n, p in head.named_parameters() if p.requires_grad}
    assert learned and all(n.startswith("weigher.") for n in learned)


def test_stream_weights_per_viseme_group_weigh_each_class_by_its_group():
    head, _, hidden, scheme = built("stream_weighted", sharing="viseme")
    with torch.no_grad():
        head.weigher[-1].bias.copy_(torch.linspace(-3, 3, head.weigher[-1].bias.numel()))
    lam = head.stream_weights(hidden)
    assert lam.shape == (7, len(set(scheme.group_index("viseme"))))
    audio, video = (torch.log_softmax(head.inputs.softmaxes[e](hidden[e]), -1) for e in ("audio", "video"))
    per_class = lam[:, torch.as_tensor(scheme.group_index("viseme"))]
    torch.testing.assert_close(head(hidden), per_class * audio + (1 - per_class) * video)


def test_gated_concat_starts_near_the_warm_concat_and_its_gates_scale_each_stream():
    head, unimodal, hidden, _ = built("gated_concat")
    gates = head.stream_weights(hidden)
    assert gates.shape == (7, 2) and torch.allclose(gates, torch.full_like(gates, torch.sigmoid(torch.tensor(3.0))))
    with torch.no_grad():
        head.gater[-1].bias.copy_(torch.tensor([20.0, -20.0]))  # audio open, video shut
    torch.testing.assert_close(head(hidden), unimodal["audio"](hidden) + unimodal["video"].out.bias, atol=1e-6, rtol=0)


def test_modality_dropout_never_drops_the_measures():
    head, _, hidden, _ = built("stream_weighted")
    module = FusionModule({n: PassThrough(n, d) for n, d in DIMS.items()}, head, modality_dropout=1.0)
    kept = module.dropped({n: torch.ones(50, d) for n, d in DIMS.items()}, None)
    assert kept["audio_reliability"].all() and kept["video_reliability"].all()
    assert ((kept["audio"].sum(1) == 0) ^ (kept["video"].sum(1) == 0)).all()  # exactly one stream each frame


@pytest.mark.parametrize("fusion", ["stream_weighted", "gated_concat"])
def test_a_head_without_the_reliability_measures_is_refused_before_any_work(tiny_root, fusion):
    cfg = compose_config("train", [*tiny_overrides(tiny_root), f"fusion={fusion}", "data.root=/nonexistent"])
    with pytest.raises(ConfigError, match=r"audio_reliability.*frontend=reliability"):
        api.train(cfg, tiny_root / "never")


def test_head_only_noise_needs_encoders_pretrained_apart(tiny_root):
    cfg = compose_config("train", [*tiny_overrides(tiny_root), "fusion=audio_only", "train_noise=multi",
                                   "train_noise.head_only=true", "data.root=/nonexistent"])
    with pytest.raises(ConfigError, match="train_noise.head_only"):
        api.train(cfg, tiny_root / "never")


RELIABLE = ["frontend=reliability", "train_noise=multi", "train_noise.head_only=true", "train_noise.noises=[white]",
            "train_noise.snr_db=[-10,20]", "train_noise.copies=2", "train_noise.video_degradations=[pixel_noise,blur]",
            "train_noise.video_share=0.3", "train_noise.video_severity=[0.5,1.0]"]


@pytest.fixture(scope="module")
def weighted_run(tiny_root, tmp_path_factory):
    """A clean concat run and a stream-weighted run sharing a stage cache: the second's encoders come from it."""
    cache = tmp_path_factory.mktemp("reliability_stages")
    common = [*tiny_overrides(tiny_root), "frontend=reliability", f"training.encoder_cache_dir={cache}",
              "trainer.max_epochs=4", "evaluation.noises=[white]", "evaluation.snrs_db=[0]", "decoding=framewise"]
    api.train(compose_config("train", [*common, "fusion=concat"]), tiny_root / "reliability_concat")
    run_dir = tiny_root / "reliability_weighted"
    api.train(compose_config("train", [*common, *RELIABLE, "fusion=stream_weighted"]), run_dir)
    return run_dir


def test_the_head_learns_on_noisy_copies_over_the_clean_runs_encoders(weighted_run):
    for encoder in ("audio", "video"):
        assert (weighted_run / "stages" / f"pretrain_{encoder}" / "from_cache.txt").is_file()
    plans = [json.loads(p.read_text()) for p in weighted_run.parent.glob("features/frames-*/noisy-*/train-0/conditions.json")]
    assert any({c["video"] for c in plan.values()} > {None} and {c["kind"] for c in plan.values()} > {"clean"}
               for plan in plans)  # copies with the video degraded and copies with noisy audio
    rows = {r["condition"]: r for r in json.loads((weighted_run / "report.json").read_text())["test"]}
    assert set(rows) == {"clean", "white 0 dB"}
    assert rows["white 0 dB"]["stream_weights"]["audio weight"] < rows["clean"]["stream_weights"]["audio weight"]


def test_the_audio_weight_falls_as_white_noise_rises(weighted_run):
    run = api.load_run(weighted_run)
    corpus, _ = api.load_corpus(run.config)
    utterances = corpus.split("test")
    clean = frames_of(run.frontend, utterances, FrameLabeller(run.scheme))
    noise = NoiseMixer(built_in_noises(corpus), run.frontend.audio.extractor.sample_rate, seed=11)

    def mean_weight(snr):
        data = clean if snr is None else with_audio(run.frontend, clean, utterances,
                                                     lambda u, w: noise(u, w, NoiseCondition("white", snr)))
        return float(run.model.stream_weights(data).mean())

    weights = [mean_weight(s) for s in (None, 20, 5, -5, -10)]
    assert np.all(np.diff(weights) < 0), weights
    # (the video direction is not asserted here: a 4-epoch video encoder on 12 utterances is near chance, so its
    # degraded posteriors cost nothing and the weight has no reason to move; the study measures it)


def test_prediction_in_pieces_gives_the_evaluations_posteriors_and_weights(weighted_run, tmp_path):
    run = api.load_run(weighted_run)
    corpus, _ = api.load_corpus(run.config)
    u = max(corpus.split("test"), key=lambda u: len(open(u.audio, "rb").read()))
    data = frames_of(run.frontend, [u], FrameLabeller(run.scheme))
    pieces = api.predict(run, u.video, u.audio, chunk_seconds=0.3)
    np.testing.assert_allclose(pieces.posteriors, run.model.posteriors(data), atol=1e-5)
    np.testing.assert_allclose(pieces.stream_weights, run.model.stream_weights(data), atol=1e-5)
    paths = write_prediction(pieces, tmp_path, "clip")
    summary = json.loads(paths["summary"].read_text())["stream_weights"]
    assert summary["labels"] == ["audio weight"] and len(summary["per_unit"]) == len(pieces.units)
    first = pieces.units[0]
    assert summary["per_unit"][0] == [first.label, [round(float(pieces.stream_weights[first.first_frame:first.end_frame,
                                                                                        0].mean()), 4)]]
    assert paths["figure"].stat().st_size > 0
    np.testing.assert_array_equal(np.load(paths["stream_weights"]), pieces.stream_weights)
