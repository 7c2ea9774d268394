"""Multi-condition training data (avfusion.training.multicondition): noisy copies of train and dev."""

import numpy as np
import pytest

from avfusion.configs import configured
from avfusion.corpus.labels import get_scheme
from avfusion.errors import ConfigError
from avfusion.noise import NoiseMixer, WhiteNoise
from avfusion.frames.data import frames_of, with_video
from avfusion.noise.video import DegradedVideo
from avfusion.frames.labelling import FrameLabeller
from avfusion.training.multicondition import MultiCondition

from conftest import built_in_noises, fitted_small_frontend


def multi_condition(**values) -> MultiCondition:
    """conf/train_noise/multi.yaml with `values` changed."""
    return configured("train_noise", "train_noise=multi", **values)


@pytest.fixture(scope="module")
def prepared(small_corpus, tmp_path_factory):
    _, corpus = small_corpus
    frontend = fitted_small_frontend(corpus, tmp_path_factory.mktemp("mc_features"))
    labeller = FrameLabeller(get_scheme("phone"))
    frames = {s: frames_of(frontend, corpus.split(s), labeller) for s in ("train", "dev")}
    return corpus, frontend, frames


def test_noisy_copies_change_only_the_audio_and_sit_beside_the_clean_frames(prepared, tmp_path):
    corpus, frontend, frames = prepared
    multi = multi_condition(copies=2, noises=["white", "babble"], snr_db=[0, 10])
    out = multi.apply(frontend, frames, corpus, tmp_path, built_in_noises(corpus))
    for split, clean in frames.items():
        n = len(clean)
        assert len(out[split]) == 3 * n and out[split].ids[:len(clean.ids)] == clean.ids
        assert out[split].ids[len(clean.ids):] == [f"{i}#noisy{c}" for c in range(2) for i in clean.ids]
        np.testing.assert_array_equal(out[split].labels, np.tile(clean.labels, 3))
        np.testing.assert_array_equal(out[split].features["video"], np.tile(clean.features["video"], (3, 1)))
        np.testing.assert_array_equal(out[split].features["audio"][:n], clean.features["audio"])
        for c in (1, 2):
            copy = out[split].features["audio"][c * n:(c + 1) * n]
            assert not np.allclose(copy, clean.features["audio"])
        assert not np.allclose(out[split].features["audio"][n:2 * n], out[split].features["audio"][2 * n:])


def test_each_copy_is_the_drawn_condition_mixed_as_evaluation_mixes_it(prepared, tmp_path):
    """Independent reference: the copy's audio features equal the front-end on the waveform NoiseMixer
    gives for the drawn (kind, SNR) with the copy's seed."""
    corpus, frontend, frames = prepared
    multi = multi_condition(copies=1, noises=["white", "pink", "babble"], snr_db=[-5, 20],
                           splits=["train"], keep_clean=False)
    out = multi.apply(frontend, frames, corpus, tmp_path, built_in_noises(corpus))
    train = corpus.split("train")
    drawn = [multi.draw(u, 0) for u in train]
    assert all(-5 <= d.snr_db <= 20 and d.kind in multi.noises for d in drawn)
    assert multi.draw(train[0], 0) == drawn[0] and multi.draw(train[0], 1) != drawn[0]  # seeded per (utt, copy)
    noise = NoiseMixer(built_in_noises(corpus), frontend.audio.extractor.sample_rate, seed=multi.seed * 1000)
    expected = frontend.transform(train[:1], lambda u, w: noise(u, w, drawn[0]), modalities=["audio"])["audio"][0]
    np.testing.assert_allclose(out["train"].features["audio"][:len(expected)], expected, rtol=1e-5, atol=1e-5)
    assert out["dev"] is frames["dev"]  # splits=[train]: dev stays clean


def test_copies_are_built_once_and_clean_training_is_untouched(prepared, tmp_path, monkeypatch):
    corpus, frontend, frames = prepared
    multi = multi_condition(copies=1, noises=["white"], snr_db=[5, 5])
    sources = built_in_noises(corpus)
    first = multi.apply(frontend, frames, corpus, tmp_path, sources)
    monkeypatch.setattr(type(frontend), "transform", lambda *a, **k: pytest.fail("noisy copies built again"))
    again = multi.apply(frontend, frames, corpus, tmp_path, sources)
    np.testing.assert_array_equal(first["train"].features["audio"], again["train"].features["audio"])
    assert configured("train_noise").apply(frontend, frames, corpus, tmp_path, sources) is frames  # copies: 0


def test_a_copy_with_its_video_degraded_keeps_clean_audio_and_is_the_degradation_evaluation_applies(prepared, tmp_path):
    """Independent reference: a degraded copy's video features equal `with_video` with the drawn degradation alone."""
    corpus, frontend, frames = prepared
    degradations = {n: configured(f"video_degradation.{n}") for n in ("occlusion", "low_light")}
    multi = multi_condition(copies=1, noises=["white"], snr_db=[0, 0], splits=["train"], keep_clean=False,
                            video_degradations=["occlusion", "low_light"], video_share=0.5, video_severity=[0.5, 1.0])
    out = multi.apply(frontend, frames, corpus, tmp_path, built_in_noises(corpus), degradations)
    clean, train = frames["train"], corpus.split("train")
    drawn = [multi.draw(u, 0) for u in train]
    assert {d.video for d in drawn} == {None, "occlusion", "low_light"}  # both kinds and audio noise, on 9 utterances
    for u, (utt, d) in enumerate(zip(train, drawn)):
        rows = clean.utterance(u)
        audio_clean = np.allclose(out["train"].features["audio"][rows], clean.features["audio"][rows], atol=1e-5)
        video_clean = np.array_equal(out["train"].features["video"][rows], clean.features["video"][rows])
        assert (audio_clean, video_clean) == ((True, False) if d.video else (False, True)), (utt.id, d)
        if d.video:
            assert 0.5 <= d.severity <= 1.0 and d.kind == "clean"
            alone = with_video(frontend, clean, train, DegradedVideo(d.video, degradations[d.video], d.severity,
                                                                     multi.seed * 1000), only={utt.id})
            np.testing.assert_array_equal(out["train"].features["video"][rows], alone.features["video"][rows])
    plain = multi_condition(copies=1, noises=["white"], snr_db=[0, 0], splits=["train"], keep_clean=False)
    assert plain.key(built_in_noises(corpus), {}) != multi.key(built_in_noises(corpus), degradations)
    assert [plain.draw(u, 0) for u in train if not multi.draw(u, 0).video] == [d for d in drawn if not d.video]
    with pytest.raises(ConfigError, match=r"train_noise.video_degradations: unknown \['smudge'\]"):
        multi_condition(copies=1, video_degradations=["smudge"], video_share=0.5,
                        video_severity=[0.5, 1]).apply(frontend, frames, corpus, tmp_path, built_in_noises(corpus), degradations)
    with pytest.raises(ConfigError, match=r"train_noise.video_severity"):
        multi_condition(copies=1, video_degradations=["occlusion"], video_share=0.5, video_severity=[0, 1])


def test_copies_built_a_few_utterances_at_a_time_are_the_copies_built_at_once(prepared, tmp_path, monkeypatch):
    """frontend.fit_batch_utterances: each copy built and saved a batch at a time (memory that does not grow with
    the split), the same files byte for byte, audio noise and degraded video alike."""
    corpus, frontend, frames = prepared
    degradations = {"occlusion": configured("video_degradation.occlusion")}
    multi = multi_condition(copies=1, noises=["white", "babble"], snr_db=[0, 10], video_degradations=["occlusion"],
                            video_share=0.5, video_severity=[0.5, 1.0])
    whole = multi.apply(frontend, frames, corpus, tmp_path / "whole", built_in_noises(corpus), degradations)
    monkeypatch.setattr(frontend, "fit_batch_utterances", 2, raising=False)
    batched = multi.apply(frontend, frames, corpus, tmp_path / "batched", built_in_noises(corpus), degradations)
    for split in ("train", "dev"):
        assert batched[split].ids == whole[split].ids
        for m in whole[split].features:
            np.testing.assert_array_equal(batched[split].features[m], whole[split].features[m])
    files = sorted(p.relative_to(tmp_path / "whole") for p in (tmp_path / "whole").rglob("*.npy"))
    assert files and files == sorted(p.relative_to(tmp_path / "batched") for p in (tmp_path / "batched").rglob("*.npy"))
    for f in files:
        assert (tmp_path / "whole" / f).read_bytes() == (tmp_path / "batched" / f).read_bytes(), f
    assert not list((tmp_path / "batched").rglob("*.parts"))


def test_copies_made_before_the_head_only_and_video_settings_keep_their_folder():
    multi = multi_condition(copies=1, noises=["white"], snr_db=[5, 5])
    assert multi.key({"white": WhiteNoise()}, {}) == "6f1c1dda07f4"  # the key avfusion gave before they existed


def test_bad_settings_name_the_key(prepared):
    corpus = prepared[0]
    with pytest.raises(ConfigError, match=r"train_noise.noises: unknown noise 'brown'; the noise sources are \['babble'"):
        multi_condition(copies=1, noises=["brown"]).check(built_in_noises(corpus), corpus)
    with pytest.raises(ConfigError, match="train_noise.snr_db"):
        multi_condition(copies=1, snr_db=[10, 0])
    with pytest.raises(ConfigError, match="train_noise.splits"):
        multi_condition(copies=1, splits=["test"])


def test_a_run_trains_on_the_noisy_copies(tiny_root):
    import json
    import subprocess
    import sys

    from conftest import tiny_overrides

    run = tiny_root / "run_multicondition"
    out = subprocess.run([sys.executable, "-m", "avfusion.cli.train", *tiny_overrides(tiny_root), "fusion=audio_only",
                          "train_noise=multi", "noise.babble.talkers=2", "trainer.max_epochs=1",
                          "evaluation.noises=[]", "decoding=framewise", f"hydra.run.dir={run}"],
                         capture_output=True, text=True, cwd=tiny_root)
    assert out.returncode == 0, out.stderr[-3000:]
    settings = json.loads((run / "stages" / "fusion" / "settings.json").read_text())
    assert settings["train_noise.copies"] == 1  # a noise-trained stage is never mistaken for a clean one
    built = list((tiny_root / "features").glob("frames-*/noisy-*/train-0/complete"))
    assert built  # the copies, beside the prepared frames


def test_what_the_noisy_copies_would_be_shapes_a_clean_stage_not():
    """Clean training (copies: 0) carries multi's settings (conf/train_noise/clean.yaml extends multi.yaml);
    they must not refuse a resume or miss the stage cache, while under multi they do."""
    from avfusion.api import stage_shaping
    from avfusion.configs import compose_config

    def shaping(*overrides):
        cfg = compose_config("train", overrides)
        return stage_shaping(cfg, configured("train_noise", *overrides))

    assert shaping() == shaping("train_noise.snr_db=[0,5]", "train_noise.noises=[white]")
    assert {k for k in shaping() if k.startswith("train_noise.")} == {"train_noise._target_", "train_noise.copies"}
    multi = shaping("train_noise=multi")
    assert multi != shaping("train_noise=multi", "train_noise.snr_db=[0,5]")
    assert "noise.babble.talkers" in multi and "noise.babble.talkers" not in shaping()
