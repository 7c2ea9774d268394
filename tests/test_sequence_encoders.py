"""Sequence encoders over the feature streams (avfusion.models.sequence_encoders; encoder=tdnn, encoder=blstm):
the receptive field the TDNN declares, outputs that do not depend on batch padding, training and reloading
under frozen and joint heads, and prediction in pieces (TDNN) or as one piece (BLSTM)."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from avfusion import api
from avfusion.configs import compose_config, configured
from avfusion.errors import ConfigError
from avfusion.frames.data import frames_of
from avfusion.frames.labelling import FrameLabeller
from avfusion.models.sequence_encoders import BlstmEncoder, TdnnEncoder
from conftest import tiny_overrides

# conf/encoder/{tdnn,blstm}.yaml's layer patterns at test widths
SMALL = {"tdnn": ["encoder.modules.audio.widths=[24,24,24,24,16]"],
         "blstm": ["encoder.modules.audio.hidden_size=12", "encoder.modules.audio.output_dim=16"]}


def shipped(kind: str, input_dim: int = 6, **values):
    return configured("encoder.modules.audio", f"encoder={kind}", *SMALL[kind], **values)(input_dim=input_dim)


def test_the_tdnn_declares_its_receptive_field():
    """Kaldi's splices {-2..2}, {-1,0,1}, {-3,0,3}, {-3,0,3}, {0}: 2 + 1 + 3 + 3 = 9 frames each side, and an
    output frame's gradient reaches exactly those input frames."""
    torch.manual_seed(0)
    tdnn = shipped("tdnn").eval()
    assert tdnn.frame_context == 9
    x = torch.randn(1, 60, 6, requires_grad=True)
    tdnn(x, torch.ones(1, 60, dtype=torch.bool))[0, 30].sum().backward()
    reached = torch.nonzero(x.grad[0].abs().sum(dim=1)).flatten().tolist()
    assert reached == list(range(30 - 9, 30 + 9 + 1))


@pytest.mark.parametrize("kind", ["tdnn", "blstm"])
def test_an_items_outputs_do_not_depend_on_what_it_is_batched_with(kind):
    torch.manual_seed(0)
    encoder = shipped(kind).eval()
    short, long_ = torch.randn(1, 23, 6), torch.randn(1, 40, 6)
    batch = torch.zeros(2, 40, 6)
    batch[0, :23], batch[1] = short[0], long_[0]
    mask = torch.arange(40)[None, :] < torch.tensor([[23], [40]])
    with torch.no_grad():
        together = encoder(batch + 5.0 * ~mask[..., None], mask)  # garbage in the padding
        alone = encoder(short, torch.ones(1, 23, dtype=torch.bool))
    torch.testing.assert_close(together[0, :23], alone[0], atol=1e-5, rtol=1e-5)
    assert together.shape == (2, 40, 16) and not together[0, 23:].any()


def test_bad_layer_patterns_and_frame_batches_are_refused_with_the_key():
    with pytest.raises(ConfigError, match=r"kernel_sizes=\[5, 2\]: each must be an odd"):
        TdnnEncoder(6, [8, 4], [5, 2], [1, 1], dropout=0.0)
    with pytest.raises(ConfigError, match="one entry per TDNN layer"):
        TdnnEncoder(6, [8, 4], [5], [1, 1], dropout=0.0)
    with pytest.raises(ConfigError, match="training.batching must be auto, utterances or chunks, not frames"):
        BlstmEncoder(6, 4, 1, 4, dropout=0.0)(torch.randn(10, 6), None)


def _train(root: Path, name: str, *overrides: str, unspliced: bool = False) -> tuple[Path, dict]:
    """`unspliced`: frontend=unspliced_audio (the tiny runs' LDA size does not apply to it)."""
    run_dir = root / f"sequence_{name}"
    tiny = [o for o in tiny_overrides(root) if not (unspliced and o.startswith("frontend.audio.steps"))]
    frontend = ["frontend=unspliced_audio"] if unspliced else []
    cfg = compose_config("train", [*tiny, *frontend, *overrides, "evaluation.noises=[]"])
    return run_dir, api.train(cfg, run_dir)


def test_tdnn_on_unspliced_audio_trains_reloads_and_predicts_in_pieces(tiny_root):
    """The TDNN on the 24 MFCCs themselves (frontend=unspliced_audio): its 9 frames of context are all."""
    run_dir, report = _train(tiny_root, "tdnn", "fusion=audio_only", "encoder=tdnn", *SMALL["tdnn"], unspliced=True)
    run = api.load_run(run_dir)
    encoder = run.model.encoders["audio"]
    assert type(encoder).__name__ == "TdnnEncoder" and encoder.input_dim == 24 and run.model.frame_context == 9
    corpus, _ = api.load_corpus(run.config)
    test = frames_of(run.frontend, corpus.split("test"), FrameLabeller(run.scheme))
    post = run.model.posteriors(test)
    assert np.mean(post.argmax(1) != test.labels) == pytest.approx(report["test"][0]["frame_error"], abs=1e-9)
    u = max(corpus.split("test"), key=lambda u: Path(u.audio).stat().st_size)
    whole = api.predict(run, None, u.audio, chunk_seconds=None)
    pieces = api.predict(run, None, u.audio, chunk_seconds=0.3)  # 30 frames a piece, 9 of context each side
    assert len(whole.posteriors) > 3 * 30
    np.testing.assert_allclose(pieces.posteriors, whole.posteriors, atol=1e-5)


def test_blstm_under_a_frozen_head_trains_reloads_and_predicts_as_one_piece(tiny_root, caplog):
    """concat: the head trains on the encoders' outputs computed once (BLSTM audio, MLP video)."""
    run_dir, report = _train(tiny_root, "blstm", "fusion=concat", "encoder=blstm", *SMALL["blstm"])
    run = api.load_run(run_dir)
    assert type(run.model.encoders["audio"]).__name__ == "BlstmEncoder" and run.model.frame_context is None
    corpus, _ = api.load_corpus(run.config)
    test = frames_of(run.frontend, corpus.split("test"), FrameLabeller(run.scheme))
    post = run.model.posteriors(test)
    assert np.mean(post.argmax(1) != test.labels) == pytest.approx(report["test"][0]["frame_error"], abs=1e-9)
    u = max(corpus.split("test"), key=lambda u: Path(u.audio).stat().st_size)
    expected = run.model.posteriors(frames_of(run.frontend, [u], FrameLabeller(run.scheme)))
    with caplog.at_level(logging.INFO, logger="avfusion.inference.posteriors"):
        prediction = api.predict(run, u.video, u.audio, chunk_seconds=0.3)
    assert "looks at the whole sequence: one piece" in caplog.text
    np.testing.assert_allclose(prediction.posteriors, expected, atol=1e-5)


def test_a_sequence_encoder_fine_tunes_under_a_joint_head_on_chunks(tiny_root):
    """bilinear trains the encoders with the head after their pre-training, here on chunks of 40 frames of
    the utterances (training.batching=chunks): the TDNN's weights move."""
    run_dir, _ = _train(tiny_root, "tdnn_bilinear", "fusion=bilinear", "encoder=tdnn", *SMALL["tdnn"],
                        "training.batching=chunks", "training.chunk_frames=40")
    pretrained = torch.load(run_dir / "stages" / "pretrain_audio" / "best.pt", weights_only=True)
    model = api.load_run(run_dir).model.state_dict()
    assert not torch.equal(pretrained["encoders.audio.convs.0.weight"], model["encoders.audio.convs.0.weight"])
