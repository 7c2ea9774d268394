"""Noise sources as components (avfusion.noise): a user's recordings folder, and a noise kind added from
its own module and YAML, used by evaluation and by multi-condition training without touching the package."""

import json

import numpy as np
import pytest
import soundfile

from avfusion.corpus.alignments import utterance_labels
from avfusion.errors import ConfigError, UserError
from avfusion.media import load_audio
from avfusion.configs import configured
from avfusion.noise import NoiseCondition, NoiseMixer, Recordings, active_samples

from conftest import train_with_plugin


def recordings(**values) -> Recordings:
    """conf/noise/recordings.yaml with `values` changed."""
    return configured("noise.recordings", **values)


def _db(x):
    return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2))


@pytest.fixture
def recordings_folder(tmp_path):
    """A MUSAN-like tree: WAV and FLAC, 8 and 44.1 kHz, mono and stereo, beside a file that is not audio."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "noises"
    for sub, name, rate, channels in [("free-sound", "fan.wav", 8000, 1), ("free-sound", "street.flac", 44100, 2),
                                      ("sound-bible", "hum.flac", 8000, 2), ("sound-bible", "rain.wav", 44100, 1)]:
        (folder / sub).mkdir(parents=True, exist_ok=True)
        t = np.arange(int(1.5 * rate)) / rate
        x = 0.1 * rng.standard_normal((len(t), channels)) + 0.2 * np.sin(2 * np.pi * 120 * t)[:, None]
        soundfile.write(folder / sub / name, x.squeeze(), rate)
    (folder / "ANNOTATIONS.txt").write_text("not audio")
    return folder


def test_recordings_give_reproducible_noise_at_the_asked_active_speech_snr(small_corpus, recordings_folder):
    _, corpus = small_corpus
    source = recordings(folder=str(recordings_folder))
    source.validate("noise.recordings")
    assert [p.name for p in source.files()] == ["fan.wav", "street.flac", "hum.flac", "rain.wav"]
    mixer = NoiseMixer({"recordings": source}, sample_rate=16000, seed=3)
    drawn_files = set()
    for utt in corpus.split("test")[:4]:
        speech = load_audio(utt.audio, 16000)
        active = active_samples(utterance_labels(utt), len(speech), 16000)
        for snr in (10.0, 0.0, -5.0):
            noisy = mixer(utt, speech, NoiseCondition("recordings", snr))
            noise = noisy.astype(np.float64) - speech
            assert _db(speech[active]) - _db(noise) == pytest.approx(snr, abs=0.05)
        again = NoiseMixer({"recordings": recordings(folder=str(recordings_folder))}, sample_rate=16000, seed=3)
        np.testing.assert_array_equal(noisy, again(utt, speech, NoiseCondition("recordings", -5.0)))
        other_seed = NoiseMixer({"recordings": source}, sample_rate=16000, seed=4)
        assert not np.array_equal(noisy, other_seed(utt, speech, NoiseCondition("recordings", -5.0)))
        drawn_files.add(int(mixer.rng("recordings", utt).integers(len(source.files()))))
    assert len(drawn_files) > 1  # utterances draw from different files


def test_a_recording_segment_is_a_stretch_of_its_file_at_the_mixers_rate(recordings_folder):
    """Independent of the source's loop: the drawn noise is a contiguous piece of the file as media decodes
    it at 16 kHz (channels averaged, resampled), found by correlation."""
    source = recordings(folder=str(recordings_folder / "sound-bible"), suffixes=[".flac"])  # hum.flac: 8 kHz stereo
    utt = type("U", (), {"id": "x"})()
    segment = source.draw(utt, 4000, 16000, np.random.default_rng(1))
    whole = load_audio(recordings_folder / "sound-bible" / "hum.flac", 16000).astype(np.float64)
    start = int(np.argmax(np.correlate(whole, segment[:2000], mode="valid")))
    np.testing.assert_allclose(segment[:2000], whole[start:start + 2000], atol=1e-6)


def test_a_folder_without_decodable_audio_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="noise.recordings.folder is not set"):
        recordings().validate("noise.recordings")
    with pytest.raises(ConfigError, match="no such folder"):
        recordings(folder=str(tmp_path / "missing")).validate("noise.recordings")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"noise.recordings.folder=.*empty: no audio files \(.wav, .flac"):
        recordings(folder=str(tmp_path / "empty")).validate("noise.recordings")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.wav").write_bytes(b"RIFF....WAVEnot really")
    with pytest.raises(ConfigError, match="noise.musan.folder=.*broken: none of its 1 audio files can be decoded"):
        recordings(folder=str(tmp_path / "broken")).validate("noise.musan")
    silent = tmp_path / "silent"
    silent.mkdir()
    soundfile.write(silent / "zeros.wav", np.zeros(800), 8000)
    with pytest.raises(UserError, match="all digital silence"):
        recordings(folder=str(silent)).draw(type("U", (), {"id": "x"})(), 100, 16000, np.random.default_rng(0))


PLUGIN_NOISE = '''
"""A noise kind that lives outside avfusion: mains hum with harmonics, at a random phase."""
from dataclasses import dataclass

import numpy as np

from avfusion.noise import NoiseSource


@dataclass
class Hum(NoiseSource):
    hz: float = 50.0
    harmonics: int = 4

    def draw(self, utt, n, sample_rate, rng):
        t = np.arange(n) / sample_rate + rng.uniform(0, 1)
        return sum(np.sin(2 * np.pi * self.hz * k * t) / k for k in range(1, self.harmonics + 1))
'''


def test_a_new_noise_is_used_by_evaluation_and_multicondition_training_from_its_own_module_and_yaml(tiny_root, tmp_path):
    run = tmp_path / "run"
    train_with_plugin(tiny_root, tmp_path, "my_noises", PLUGIN_NOISE, "noise",
                      {"hum": "hum:\n  _target_: my_noises.Hum\n  hz: 60\n"},
                      "+noise=hum", "fusion=audio_only", "evaluation.noises=[hum]", "evaluation.snrs_db=[0]",
                      "decoding=framewise", "train_noise=multi", "train_noise.noises=[hum]",
                      "train_noise.splits=[train]", "trainer.max_epochs=1", f"hydra.run.dir={run}")
    report = json.loads((run / "report.json").read_text())
    assert [row["condition"] for row in report["test"]] == ["clean", "hum 0 dB"]
    assert report["evaluation"]["noise_sources"]["hum"] == {"class": "my_noises.Hum", "hz": 60, "harmonics": 4}
    assert report["test"][1]["frame_error"] != report["test"][0]["frame_error"]  # the hum reached the features
    plans = list((tiny_root / "features").glob("frames-*/noisy-*/train-0/conditions.json"))
    kinds = {c["kind"] for p in plans for c in json.loads(p.read_text()).values()}
    assert "hum" in kinds  # the training copies were mixed with it too
    cached = list((tiny_root / "features").glob("frames-*/conditions/hum-0dB-*.npy"))
    assert cached  # and its condition is cached like any other
