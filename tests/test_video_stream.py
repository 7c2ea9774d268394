"""Video-rate streams in FrameData (avfusion.frames.data.VideoStream): windows, saving, concatenation."""

import numpy as np
import pytest

from avfusion.frames.data import FrameData, VideoStream, concatenated
from avfusion.frontends.video import to_frame_rate


def split(fps: list[float], label_frames: list[int], seed: int = 0) -> FrameData:
    """A split of utterances with 100 Hz features and a (T_video, 2, 2) stream at each one's fps."""
    rng = np.random.default_rng(seed)
    n_video = [int(np.floor((n - 1) / 100 * f + 1e-6)) + 1 for f, n in zip(fps, label_frames)]
    stream = VideoStream(rng.integers(0, 256, (sum(n_video), 2, 2), dtype=np.uint8),
                         np.concatenate([[0], np.cumsum(n_video)]), np.array(fps))
    rows = sum(label_frames)
    return FrameData({"audio": rng.normal(size=(rows, 3)).astype(np.float32)}, rng.integers(0, 5, rows),
                     np.concatenate([[0], np.cumsum(label_frames)]), [f"u{i}" for i in range(len(fps))],
                     ["s"] * len(fps), {"video_roi": stream})


@pytest.mark.parametrize("start, stop", [(0, 131), (37, 80), (120, 131)])
def test_a_window_interpolated_at_its_positions_is_the_rate_conversion_of_the_whole_utterance(start, stop):
    data = split([25.0, 29.97], [101, 131])
    stream = data.streams["video_roi"]
    frames, positions = stream.window(1, start, stop)
    whole = np.asarray(stream.frames[stream.utterance(1)], dtype=np.float32).reshape(-1, 4)
    expected = to_frame_rate(whole, 29.97, 131)[start:stop]
    x = np.asarray(frames, dtype=np.float32).reshape(-1, 4)
    k0 = np.floor(positions).astype(int)
    k1 = np.minimum(k0 + 1, len(x) - 1)
    w = (positions - k0)[:, None]
    np.testing.assert_allclose((1 - w) * x[k0] + w * x[k1], expected, rtol=1e-4, atol=1e-3)
    assert len(positions) == stop - start and positions.max() <= len(frames) - 1


def test_streams_are_saved_loaded_and_concatenated_with_their_utterances(tmp_path):
    a, b = split([25.0], [51], seed=1), split([29.97, 30.0], [40, 77], seed=2)
    a.save(tmp_path / "a")
    loaded = FrameData.load(tmp_path / "a")
    np.testing.assert_array_equal(loaded.streams["video_roi"].frames, a.streams["video_roi"].frames)
    np.testing.assert_array_equal(loaded.streams["video_roi"].fps, [25.0])
    both = concatenated([loaded, b])
    stream = both.streams["video_roi"]
    assert list(stream.fps) == [25.0, 29.97, 30.0] and both.ids == ["u0", "u0", "u1"]
    for u, (part, v) in enumerate([(a, 0), (b, 0), (b, 1)]):
        np.testing.assert_array_equal(stream.frames[stream.utterance(u)],
                                      part.streams["video_roi"].frames[part.streams["video_roi"].utterance(v)])
