"""The convolutional visual front-end (avfusion.models.video_cnn): rate alignment, augmentation, batching."""

import numpy as np
import pytest
import torch

from avfusion.configs import configured
from avfusion.errors import ConfigError
from avfusion.frames.clock import num_frames, video_positions
from avfusion.frames.data import VideoBatch
from avfusion.frontends.video import to_frame_rate
from avfusion.models.video_cnn import RoiAugment, VideoCnnEncoder, interpolate_at


def cnn(input_dim: int, **values) -> VideoCnnEncoder:
    """conf/encoder/video_cnn.yaml's CNN with `values` changed, over `input_dim`-pixel ROIs."""
    return configured("encoder.modules.video", "encoder=video_cnn", **values)(input_dim=input_dim)


def small(**kw):
    torch.manual_seed(0)
    return cnn(24, **{"crop": 20, "stem_channels": 4, "widths": [8, 16], "blocks": [1, 1], "temporal_size": 8,
                      "output_dim": 6, **kw})


def item(fps: float, seconds: float, size: int = 24, seed: int = 0):
    """ROIs of a `seconds`-long video at `fps` and the positions of its label frames."""
    n_video = int(np.floor(seconds * fps + 1e-6)) + 1
    n_labels = num_frames(seconds)
    rois = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n_video, size, size), dtype=np.uint8))
    first, pos = video_positions(fps, n_video, 0, n_labels)
    assert first == 0
    return rois, torch.from_numpy(pos).float(), n_labels


def run(encoder, rois, positions, mask, lengths=None):
    """The encoder on (B, Tv, S, S) ROIs; `lengths` default: every item has all Tv frames."""
    if lengths is None:
        lengths = torch.full((rois.shape[0],), rois.shape[1])
    return encoder(VideoBatch(rois, positions, lengths), mask)


@pytest.mark.parametrize("fps", [25.0, 29.97])
def test_one_output_per_label_frame_at_25_and_29_97_fps(fps):
    rois, pos, n_labels = item(fps, 1.3)
    encoder = small(temporal="tcn").eval()
    mask = torch.ones(1, n_labels, dtype=torch.bool)
    out = run(encoder, rois[None], pos[None], mask)
    assert out.shape == (1, n_labels, 6)  # frames in (video rate) -> labels out (100 Hz)
    # the interpolation inside the model is the DCT path's rate conversion (to_frame_rate)
    h = torch.randn(len(rois), 5)
    expected = to_frame_rate(h.numpy(), fps, n_labels)
    got = interpolate_at(h[None], pos[None], torch.tensor([len(rois)]))[0]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=2e-5)  # float32 positions


def test_interpolation_against_numpy_and_holds_the_last_real_frame():
    h = torch.tensor([[[0.0], [10.0], [20.0], [99.0]]])  # the 4th frame is padding
    pos = torch.tensor([[0.0, 0.25, 1.5, 2.0, 2.7]])
    got = interpolate_at(h, pos, torch.tensor([3]))[0, :, 0]
    np.testing.assert_allclose(got.numpy(), np.interp([0.0, 0.25, 1.5, 2.0, 2.0], [0, 1, 2], [0, 10, 20]))


def test_augmentation_is_random_in_training_and_off_in_eval():
    rois, pos, n_labels = item(25.0, 1.0)
    mask = torch.ones(1, n_labels, dtype=torch.bool)
    encoder = small()
    encoder.eval()
    a, b = run(encoder, rois[None], pos[None], mask), run(encoder, rois[None], pos[None], mask)
    torch.testing.assert_close(a, b)  # deterministic: centre crop, no flip, no masking, no dropout
    augment = RoiAugment(crop=20, flip=True, time_masks=2, max_mask_frames=4)
    x = rois[None].float()
    augment.eval()
    torch.testing.assert_close(augment(x, torch.tensor([len(rois)])), x[..., 2:22, 2:22])
    augment.train()
    torch.manual_seed(1)
    draws = [augment(x, torch.tensor([len(rois)])) for _ in range(4)]
    assert all(d.shape == (1, len(rois), 20, 20) for d in draws)
    assert any(not torch.equal(draws[0], d) for d in draws[1:])


@pytest.mark.parametrize("temporal", ["gru", "lstm", "tcn"])
def test_an_item_padded_in_a_batch_gets_the_outputs_it_gets_alone(temporal):
    encoder = small(temporal=temporal).eval()
    short, pos_s, n_s = item(25.0, 0.8, seed=1)
    long, pos_l, n_l = item(29.97, 1.4, seed=2)
    alone = run(encoder, short[None], pos_s[None], torch.ones(1, n_s, dtype=torch.bool))
    rois = torch.zeros(2, len(long), 24, 24, dtype=torch.uint8)
    rois[0, :len(short)], rois[1] = short, long
    pos = torch.zeros(2, n_l)
    pos[0, :n_s], pos[1] = pos_s, pos_l
    mask = torch.arange(n_l)[None, :] < torch.tensor([[n_s], [n_l]])
    batched = run(encoder, rois, pos, mask, lengths=torch.tensor([len(short), len(long)]))
    torch.testing.assert_close(batched[0, :n_s], alone[0], rtol=1e-4, atol=1e-5)
    assert torch.all(batched[0, n_s:] == 0)  # padded label frames are zero


def test_resnet18_widths_build_and_train_one_step():
    torch.manual_seed(0)
    encoder = cnn(48, crop=44, stem_channels=64, widths=[64, 128, 256, 512], blocks=[2, 2, 2, 2], temporal="gru",
                  temporal_size=32, output_dim=10)
    rois, pos, n_labels = item(25.0, 0.5, size=48)
    out = run(encoder, rois[None], pos[None], torch.ones(1, n_labels, dtype=torch.bool))
    out.sum().backward()
    assert out.shape == (1, n_labels, 10)
    assert encoder.stem[0].weight.grad is not None and encoder.stem[0].weight.grad.abs().sum() > 0


def test_a_saved_state_dict_is_loaded_and_bad_settings_are_named(tmp_path):
    encoder = small()
    path = tmp_path / "video_cnn.pt"
    torch.save(encoder.state_dict(), path)
    again = small(state_dict_path=str(path))
    for k, v in encoder.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    with pytest.raises(ConfigError, match=r"temporal='transformer': choose from \['gru', 'lstm', 'tcn'\]"):
        small(temporal="transformer")
    with pytest.raises(ConfigError, match="one entry per ResNet stage"):
        cnn(24, widths=[8, 16], blocks=[1])
    with pytest.raises(ConfigError, match="crop=30 must be within the 24x24 ROIs"):
        cnn(24, crop=30)
    with pytest.raises(ValueError, match="expects 24x24 ROIs"):
        run(small().eval(), torch.zeros(1, 3, 20, 20, dtype=torch.uint8), torch.zeros(1, 5),
            torch.ones(1, 5, dtype=torch.bool))


def test_the_resnet18_config_builds_the_lip_reading_trunk():
    from avfusion.models.video_cnn import BasicBlock

    spec = configured("encoder", "experiment=video_cnn", "encoder=video_cnn_resnet18")
    encoder = spec.build("video", {"audio": 360, "video": 540, "video_roi": 44})
    blocks = [m for m in encoder.trunk if isinstance(m, BasicBlock)]
    assert [b.conv1.out_channels for b in blocks] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert encoder.stem[0].out_channels == 64 and encoder.output_dim == 200
    trunk = sum(p.numel() for b in blocks for p in b.parameters())
    # torchvision's resnet18: 11,689,512 parameters, less conv1 (9,408), bn1 (128) and fc (513,000)
    assert trunk == 11_689_512 - 9_408 - 128 - 513_000
