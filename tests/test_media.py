"""Audio decoded a block at a time (long recordings) gives the samples of decoding the file at once."""

import av
import numpy as np
import pytest
import soundfile as sf
import soxr

from avfusion.media import AudioError, iter_audio, load_audio


def test_a_stereo_44k_wav_streams_to_the_one_shot_mono_resampling(tmp_path, rng):
    stereo = (0.1 * rng.standard_normal((44100 * 3 + 17, 2))).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(path, stereo, 44100, subtype="FLOAT")
    expected = soxr.resample(stereo.mean(axis=1), 44100, 16000)  # the independent one-shot reference
    blocks = list(iter_audio(path, 16000, block=5000))
    assert len(blocks) > 20
    np.testing.assert_array_equal(np.concatenate(blocks), expected)
    np.testing.assert_array_equal(load_audio(path, 16000), expected)
    np.testing.assert_array_equal(np.concatenate(list(iter_audio(path, 44100, block=5000))), stereo.mean(axis=1))


def test_a_containers_audio_track_streams_whole(tmp_path, rng):
    samples = (3000 * rng.standard_normal(16000 * 2)).astype(np.int16)
    path = tmp_path / "a.mkv"
    with av.open(str(path), "w") as dst:
        stream = dst.add_stream("pcm_s16le", rate=16000, layout="mono")
        for lo in range(0, len(samples), 1000):  # many small frames
            frame = av.AudioFrame.from_ndarray(samples[None, lo:lo + 1000], format="s16", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    blocks = list(iter_audio(path, 16000, block=4096))
    assert len(blocks) > 4
    np.testing.assert_allclose(np.concatenate(blocks), samples / 32768.0, atol=1e-7)


def test_non_finite_samples_are_refused_naming_the_file(tmp_path):
    x = np.zeros(16000, np.float32)
    x[12345] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: 1 of 16000 audio samples are not finite"):
        list(iter_audio(path, 16000, block=1000))
